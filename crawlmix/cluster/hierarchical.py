"""Hierarchical k-means (Vo et al. 2024, "Automatic data curation for self-supervised learning").

Level 1 clusters the points; level t clusters the level t-1 centroids. Each level may be refined by
resampling: after the full fit, ``resampling_steps[t]`` times take the ``sample_sizes[t]`` members
closest to each centroid (within its cluster), re-fit k-means with a fresh k-means++ on those only,
and reassign every item of that level to the new centroids.

How centroids vote at the upper levels (``upper_weights``): each centroid weighs the documents it
holds to a power (weighted k-means++ and Lloyd sums), best of ``upper_restarts`` seeded runs by
weighted inertia.

* ``"sqrt"`` (default): the square root of its documents. On real text one vote per centroid let
  many small, generic leaves gather into one top cluster (Debian package descriptions: 47-73% of
  the documents in one of 8, top-level NMI against the sections 0.76-0.90 of flat k-means'); full
  size weights fix that but undo what the tree is for, giving a dense mode several top clusters
  (a long-tailed mixture of 8 modes: balanced-sample entropy 0.87-0.93 instead of 0.975). The
  square root keeps the long tail's 0.975 and brings the descriptions to 0.89-1.07 of flat
  k-means' NMI with no top cluster above 36% (benchmarks/cluster_quality.py).
* ``"sizes"``: all of its documents (each upper level close to flat k-means at that k).
* ``"uniform"``: one vote per centroid, as in Vo et al.

Upper levels cluster at most a few thousand centroids, so several restarts cost little there and
remove most of the seed-to-seed spread that one k-means++ draw on a few dozen points has.

Conventions:

* levels are indexed from 0 in code: level 0 = leaves = the level-1 clusters of the paper;
* ``parents[t][c]`` is the level t+1 cluster of level-t cluster c (``len(parents) == levels - 1``);
* a point's path is ``(leaf, parent of leaf, ..., top)``, shape (n, levels);
* ``sizes[t][c]`` counts points (not child clusters) under cluster c of level t;
* ``resampling_steps[t] = 0`` means no resampling at that level (Vo et al.'s "1 step" is our 0).

Default sample size per level (when not given): about half the mean cluster size of that level's
input, ``max(2, n_t // (2 k_t))`` -- the rule Vo et al. used for their configs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from .kmeans import _is_torch, _normalize_rows, _update, assign, fit_kmeans, resolve_backend, single_thread_blas

_SMALL = 1 << 25  # n x k below which upper levels use the numpy engine instead of FAISS
# how a centroid votes at the upper levels: the power of the documents it holds
UPPER_WEIGHTS = {"sizes": 1.0, "sqrt": 0.5, "uniform": 0.0}

__all__ = [
    "HierarchicalConfig",
    "HierarchicalKMeans",
    "fit_hierarchical_kmeans",
    "assign_paths",
    "paths_from_leaves",
    "closest_per_cluster",
]


@dataclass(frozen=True)
class HierarchicalConfig:
    """Hyper-parameters of a hierarchical k-means fit (everything that enters ``version``)."""

    ks: tuple[int, ...]
    n_iter: int = 20
    resampling_steps: tuple[int, ...] | int = 0
    sample_sizes: tuple[int, ...] | int | None = None
    spherical: bool = True
    seed: int = 0
    init_max_points: int | None = -1
    upper_weights: str = "sqrt"
    upper_restarts: int = 10

    def __post_init__(self) -> None:
        ks = tuple(int(k) for k in self.ks)
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"ks must be a non-empty list of positive ints, got {self.ks}")
        if any(b > a for a, b in zip(ks, ks[1:])):
            raise ValueError(f"cluster counts must not grow towards the top level, got {ks}")
        object.__setattr__(self, "ks", ks)
        object.__setattr__(self, "resampling_steps", _per_level(self.resampling_steps, len(ks), "resampling_steps"))
        if self.sample_sizes is not None:
            object.__setattr__(self, "sample_sizes", _per_level(self.sample_sizes, len(ks), "sample_sizes"))
        if any(s < 0 for s in self.resampling_steps):
            raise ValueError("resampling_steps must be >= 0")
        if self.upper_weights not in UPPER_WEIGHTS:
            raise ValueError(f"upper_weights must be one of {', '.join(UPPER_WEIGHTS)}, got {self.upper_weights!r}")
        if self.upper_restarts < 1:
            raise ValueError("upper_restarts must be >= 1")

    @property
    def levels(self) -> int:
        return len(self.ks)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ks"] = list(self.ks)
        d["resampling_steps"] = list(self.resampling_steps)
        d["sample_sizes"] = None if self.sample_sizes is None else list(self.sample_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "HierarchicalConfig":
        d = dict(d)
        for key in ("ks", "resampling_steps", "sample_sizes"):
            if d.get(key) is not None and not isinstance(d[key], int):
                d[key] = tuple(d[key])
        # trees stored before these settings existed were fitted with one unweighted run per level
        d.setdefault("upper_weights", "uniform")
        d.setdefault("upper_restarts", 1)
        return cls(**d)


def _per_level(v: Any, levels: int, name: str) -> tuple[int, ...]:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * levels
    t = tuple(int(a) for a in v)
    if len(t) != levels:
        raise ValueError(f"{name} needs one value per level ({levels}), got {list(t)}")
    return t


@dataclass
class HierarchicalKMeans:
    """A fitted tree. ``paths`` / ``leaf_distances`` describe the training points (not hashed)."""

    config: HierarchicalConfig
    centroids: list[np.ndarray]
    parents: list[np.ndarray]
    sizes: list[np.ndarray]
    paths: np.ndarray | None = field(default=None, repr=False)
    leaf_distances: np.ndarray | None = field(default=None, repr=False)
    fit_seconds: list[float] = field(default_factory=list, repr=False)  # per level, not hashed

    @property
    def levels(self) -> int:
        return len(self.centroids)

    @property
    def version(self) -> str:
        """sha256 of the config (JSON, sorted keys) and of every tree array (name, dtype, shape, bytes)."""
        h = hashlib.sha256()
        h.update(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        for name, arr in sorted(self._tree_arrays().items()):
            a = np.ascontiguousarray(arr)
            h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    def _tree_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for t, c in enumerate(self.centroids):
            out[f"centroids_{t}"] = np.asarray(c, dtype=np.float32)
            out[f"sizes_{t}"] = np.asarray(self.sizes[t], dtype=np.int64)
        for t, p in enumerate(self.parents):
            out[f"parents_{t}"] = np.asarray(p, dtype=np.int64)
        return out

    def to_arrays(self, include_assignments: bool = False) -> dict[str, np.ndarray]:
        """A flat dict of numpy arrays (``np.savez``-able): tree arrays, ``config`` (JSON string,
        0-d unicode array) and ``version``; with ``include_assignments`` also the training paths."""
        out = self._tree_arrays()
        out["config"] = np.array(json.dumps(self.config.to_dict(), sort_keys=True))
        out["version"] = np.array(self.version)
        if include_assignments and self.paths is not None:
            out["paths"] = np.asarray(self.paths, dtype=np.int64)
            out["leaf_distances"] = np.asarray(self.leaf_distances, dtype=np.float32)
        return out

    @classmethod
    def from_arrays(cls, arrays: Any, verify: bool = True) -> "HierarchicalKMeans":
        """Inverse of :meth:`to_arrays` (accepts a dict or an ``np.load`` result); checks the version."""
        config = HierarchicalConfig.from_dict(json.loads(str(np.asarray(arrays["config"])[()])))
        L = config.levels
        model = cls(
            config=config,
            centroids=[np.asarray(arrays[f"centroids_{t}"], dtype=np.float32) for t in range(L)],
            parents=[np.asarray(arrays[f"parents_{t}"], dtype=np.int64) for t in range(L - 1)],
            sizes=[np.asarray(arrays[f"sizes_{t}"], dtype=np.int64) for t in range(L)],
            paths=np.asarray(arrays["paths"]) if "paths" in arrays else None,
            leaf_distances=np.asarray(arrays["leaf_distances"]) if "leaf_distances" in arrays else None,
        )
        if verify and "version" in arrays:
            stored = str(np.asarray(arrays["version"])[()])
            if stored != model.version:
                raise ValueError(f"tree content does not match its version {stored[:12]}...")
        return model

    def save(self, path: str, include_assignments: bool = False) -> None:
        np.savez(path, **self.to_arrays(include_assignments))

    @classmethod
    def load(cls, path: str) -> "HierarchicalKMeans":
        with np.load(path, allow_pickle=False) as z:
            return cls.from_arrays({k: z[k] for k in z.files})

    def children(self, level: int, cluster: int) -> np.ndarray:
        """Ids of the level-(level-1) clusters whose parent is ``cluster`` of ``level``."""
        if level < 1:
            raise ValueError("leaves have no children")
        return np.flatnonzero(self.parents[level - 1] == cluster)

    def leaf_ancestors(self) -> np.ndarray:
        """(k_leaf, levels) array: the path of each leaf cluster up to the top."""
        return paths_from_leaves(np.arange(len(self.centroids[0])), self.parents)


def paths_from_leaves(leaves: np.ndarray, parents: Sequence[np.ndarray]) -> np.ndarray:
    """Follow parent arrays from leaf ids to the top; returns (n, levels) int64."""
    leaves = np.asarray(leaves, dtype=np.int64)
    paths = np.empty((leaves.shape[0], len(parents) + 1), dtype=np.int64)
    paths[:, 0] = leaves
    for t, p in enumerate(parents):
        paths[:, t + 1] = np.asarray(p, dtype=np.int64)[paths[:, t]]
    return paths


def closest_per_cluster(labels: np.ndarray, distances: np.ndarray, per_cluster: int) -> np.ndarray:
    """Sorted indices of the ``per_cluster`` items closest to their centroid in every cluster
    (all members of smaller clusters); ties broken by index."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    order = np.lexsort((np.arange(n), distances, labels))
    ls = labels[order]
    starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.arange(n) - group_start
    return np.sort(order[rank < per_cluster])


def _take(x: Any, idx: np.ndarray) -> Any:
    if _is_torch(x):
        import torch

        return x.index_select(0, torch.as_tensor(idx, device=x.device))
    return np.asarray(x[idx])


def _level_seed(seed: int, level: int, step: int) -> int:
    return int(np.random.default_rng([int(seed), level, step]).integers(2**31 - 1))


def fit_hierarchical_kmeans(
    x: Any,
    config: HierarchicalConfig | None = None,
    *,
    ks: Sequence[int] | None = None,
    backend: str = "auto",
    device: Any = "cpu",
    block_rows: int | None = None,
    **config_kwargs: Any,
) -> HierarchicalKMeans:
    """Fit the tree. Either pass a :class:`HierarchicalConfig` or its fields as keywords
    (``ks=[1000, 100, 10], n_iter=20, resampling_steps=[0, 10, 10], sample_sizes=..., spherical,
    seed``). ``backend`` / ``device`` go to :func:`fit_kmeans` (they do not change results beyond
    float round-off, so they are not part of the version)."""
    if config is None:
        if ks is None:
            raise ValueError("give a HierarchicalConfig or ks=[...]")
        config = HierarchicalConfig(ks=tuple(ks), **config_kwargs)
    elif ks is not None or config_kwargs:
        raise ValueError("give either a config or keyword fields, not both")
    n = int(x.shape[0])
    if config.ks[0] > n:
        raise ValueError(f"level-1 k={config.ks[0]} exceeds the number of points {n}")

    # resolve default sample sizes now, so the stored config says what was used
    sample_sizes = []
    n_t = n
    for t, k in enumerate(config.ks):
        if config.sample_sizes is not None:
            sample_sizes.append(int(config.sample_sizes[t]))
        else:
            sample_sizes.append(max(2, n_t // (2 * k)))
        n_t = k
    cfg = HierarchicalConfig(**{**config.to_dict(), "sample_sizes": tuple(sample_sizes)})

    centroids: list[np.ndarray] = []
    parents: list[np.ndarray] = []
    leaf_labels = leaf_dist = None
    data: Any = x
    weights: np.ndarray | None = None  # points under each item of `data` (None: the points themselves)
    fit_seconds: list[float] = []
    for t, k in enumerate(cfg.ks):
        t0 = time.perf_counter()
        if t > 0 and (cfg.upper_weights != "uniform" or cfg.upper_restarts > 1):
            w = np.power(weights, UPPER_WEIGHTS[cfg.upper_weights])
            c, labels, dist = _fit_upper_level(np.asarray(data, dtype=np.float32), w, k, cfg, t)
        else:
            c, labels, dist = _fit_level(data, k, cfg, t, backend, device, block_rows)
        centroids.append(c)
        fit_seconds.append(time.perf_counter() - t0)
        if t == 0:
            leaf_labels, leaf_dist = labels, dist
            weights = np.bincount(labels, minlength=k).astype(np.float64)
        else:
            parents.append(labels.astype(np.int64))
            weights = np.bincount(labels, weights=weights, minlength=k)
        data = c

    paths = paths_from_leaves(leaf_labels, parents)
    sizes = [np.bincount(paths[:, t], minlength=cfg.ks[t]).astype(np.int64) for t in range(cfg.levels)]
    return HierarchicalKMeans(cfg, centroids, parents, sizes, paths, np.asarray(leaf_dist, dtype=np.float32),
                              fit_seconds)


def _fit_level(data: Any, k: int, cfg: HierarchicalConfig, t: int, backend: str, device: Any,
               block_rows: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level by plain k-means (every point one vote), refined by resampling."""
    n_t = int(data.shape[0])
    # upper levels cluster a few thousand centroids: FAISS's thread start-up costs more than
    # the numpy engine there (same contract, same results up to float round-off)
    lvl_backend = backend
    cpu = resolve_backend(backend, device) in ("faiss", "faiss-kmeans", "numpy")
    small = t > 0 and cpu and n_t * k <= _SMALL
    if small:
        lvl_backend = "numpy"  # also when "faiss" was named: same contract, same results
    kw = dict(n_iter=cfg.n_iter, spherical=cfg.spherical, backend=lvl_backend, device=device,
              init_max_points=cfg.init_max_points, block_rows=block_rows)
    with single_thread_blas() if small else contextlib.nullcontext():
        res = fit_kmeans(data, k, seed=_level_seed(cfg.seed, t, 0), **kw)
        c, labels, dist = res.centroids, res.assignment, res.distances
        for step in range(cfg.resampling_steps[t]):
            sel = closest_per_cluster(labels, dist, cfg.sample_sizes[t])
            if sel.shape[0] < k:
                _warn_resampling_stops(t, sel.shape[0], k)
                break
            sub = fit_kmeans(_take(data, sel), k, seed=_level_seed(cfg.seed, t, step + 1), **kw)
            c = sub.centroids
            labels, dist = assign(data, c, spherical=cfg.spherical, backend=lvl_backend, device=device,
                                  block_rows=block_rows)
    return c, labels, dist


def _warn_resampling_stops(t: int, kept: int, k: int) -> None:
    warnings.warn(
        f"level {t + 1}: resampling keeps {kept} items for k={k}; stopping resampling at this level "
        "(raise sample_sizes)",
        RuntimeWarning,
        stacklevel=3,
    )


def _fit_upper_level(points: np.ndarray, weights: np.ndarray, k: int, cfg: HierarchicalConfig,
                     t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An upper level by weighted k-means on the centroids below (module docstring): the best of
    ``upper_restarts`` runs by weighted inertia, then resampling as for any level."""
    with single_thread_blas() if points.shape[0] * k <= _SMALL else contextlib.nullcontext():
        best = None
        for run in range(cfg.upper_restarts):
            rng = np.random.default_rng([int(cfg.seed), t, 0, run])
            c = _weighted_lloyd(points, weights, _weighted_kmeanspp(points, weights, k, rng, cfg.spherical),
                                cfg.n_iter, cfg.spherical)
            labels, dist = assign(points, c, spherical=cfg.spherical, backend="numpy")
            inertia = float(np.dot(weights, dist))
            if best is None or inertia < best[0]:
                best = (inertia, c, labels, dist)
        _, c, labels, dist = best
        for step in range(cfg.resampling_steps[t]):
            sel = closest_per_cluster(labels, dist, cfg.sample_sizes[t])
            if sel.shape[0] < k:
                _warn_resampling_stops(t, sel.shape[0], k)
                break
            rng = np.random.default_rng([int(cfg.seed), t, step + 1])
            c = _weighted_lloyd(points[sel], weights[sel],
                                _weighted_kmeanspp(points[sel], weights[sel], k, rng, cfg.spherical),
                                cfg.n_iter, cfg.spherical)
            labels, dist = assign(points, c, spherical=cfg.spherical, backend="numpy")
    return c, labels, dist


def _weighted_kmeanspp(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator,
                       spherical: bool) -> np.ndarray:
    """k-means++ where each point's chance is its weight times its squared distance to the nearest
    chosen centre; uniform over the points not chosen yet once that mass is zero."""
    x = _normalize_rows(points) if spherical else points
    sq = np.einsum("ij,ij->i", x, x)
    chosen = np.zeros(len(x), dtype=bool)
    d2 = np.full(len(x), np.inf)
    centres = np.empty((k, x.shape[1]), dtype=np.float32)
    mass = weights.astype(np.float64)
    for i in range(k):
        p = mass * np.where(np.isinf(d2), 1.0, d2)
        p[chosen] = 0.0
        total = p.sum()
        j = int(rng.choice(len(x), p=p / total)) if total > 0 else int(rng.choice(np.flatnonzero(~chosen)))
        chosen[j] = True
        centres[i] = x[j]
        d2 = np.minimum(d2, np.maximum(sq + sq[j] - 2.0 * (x @ x[j]), 0.0))
    return centres


def _weighted_lloyd(points: np.ndarray, weights: np.ndarray, centres: np.ndarray, n_iter: int,
                    spherical: bool) -> np.ndarray:
    """Lloyd iterations with weighted means (float64 sums); an empty cluster keeps its centre."""
    import scipy.sparse as sp

    x = _normalize_rows(points) if spherical else points
    c = centres
    k = len(c)
    for _ in range(n_iter):
        labels, _ = assign(x, c, spherical=spherical, backend="numpy")
        member = sp.csr_matrix((weights, (labels, np.arange(len(x)))), shape=(k, len(x)))
        mass = np.asarray(member.sum(axis=1)).ravel()
        c = _update(c, member @ x.astype(np.float64), mass, spherical)
    return c


def assign_paths(
    x: Any,
    model: HierarchicalKMeans,
    *,
    backend: str = "auto",
    device: Any = "cpu",
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Label new points against a fitted tree: nearest leaf (level-1) centroid, then follow the
    parents. Returns (paths (n, levels) int64, leaf distances float32). Streams x in blocks."""
    leaves, dist = assign(x, model.centroids[0], spherical=model.config.spherical, backend=backend,
                          device=device, block_rows=block_rows)
    return paths_from_leaves(leaves, model.parents), dist
