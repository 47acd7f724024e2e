"""k-means with one contract and three engines: numpy, FAISS (CPU) and torch (CUDA or CPU tensors).

Contract (shared by the ``numpy``, ``faiss`` and ``torch`` backends, after Vo et al. 2024):

* initialisation: k-means++ (D^2 sampling), seeded, computed by :func:`kmeans_plusplus`, or an
  explicit ``init_centroids`` array;
* exactly ``n_iter`` Lloyd iterations (no early stop), each = assign every point to its nearest
  centroid, then move every non-empty centroid to the mean of its points;
* the sums behind the means are accumulated in float64;
* an empty cluster keeps its previous centroid (no splitting, no re-seeding);
* ``spherical=True``: cosine k-means. Inputs are L2-normalised block by block (never a full copy;
  skipped when the rows already have unit norm),
  centroids are re-normalised after every update, the assignment maximises cosine similarity and the
  reported distance is ``1 - cos``. ``spherical=False``: Euclidean k-means, reported distance is the
  squared Euclidean distance;
* after the last update all points are assigned once more, so ``assignment`` / ``distances``
  always refer to the returned ``centroids``.

Backends:

* ``numpy``: reference implementation; blocked float32 matmul.
* ``faiss``: the same Lloyd loop with the nearest-centroid search done by a FAISS flat index
  (BLAS, multi-threaded) and the float64 update done here. This is the CPU default.
* ``faiss-kmeans``: a thin wrapper around ``faiss.Kmeans`` (our k-means++ centroids passed as
  ``init_centroids``; ``max_points_per_centroid`` raised so every point is used, not FAISS's default
  256 per centroid; ``early_stop_threshold`` disabled so it runs exactly ``n_iter``). It does NOT
  meet the contract in two ways, which is why it is not the default: FAISS splits a large cluster
  to refill an empty one, and its sums are float32. Kept as the "plain FAISS" reference.
* ``torch``: for CUDA. Points are processed in blocks (``block_rows``); on CUDA the block x centroid
  product is a float16 matmul (fp32 accumulation inside cuBLAS), the per-point distance of the chosen
  centroid is recomputed in float32 and the sums are float64 (``index_add_``). The same code
  runs on CPU tensors (in float32), which is how the tests exercise it.

``backend="auto"`` picks ``torch`` when ``device`` is a CUDA device, else ``faiss`` (``numpy`` for
small problems, n x k <= 4M, where FAISS's thread start-up dominates, or when FAISS is missing).

k-means++ (numpy, used by the CPU engines) samples the exact D^2 distribution lazily: stale
distances are upper bounds, candidates are accepted by rejection, and the bounds are refreshed with
one GEMM every 32 centres, so the points are streamed k/32 times instead of k times (the plain
algorithm is memory-bound: about 1,000 passes for k=1,000). The torch version (for CUDA) is the
plain sequential one, kept on the device without host synchronisation. Both run on a seeded
uniform subsample on big inputs (``init_max_points``; default ``max(16 k, 20_000)`` points; ``None``
= all points); the Lloyd iterations always use every point.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

__all__ = [
    "KMeansResult",
    "fit_kmeans",
    "assign",
    "kmeans_plusplus",
    "resolve_backend",
    "BACKENDS",
]

BACKENDS = ("auto", "numpy", "faiss", "faiss-kmeans", "torch")

# float32 elements of one block x centroids score matrix (bounds memory of the assignment step).
_CPU_SCORE_BUDGET = 1 << 23  # 32 MiB of float32
_CUDA_SCORE_BUDGET = 1 << 28  # 512 MiB of float16


@dataclass
class KMeansResult:
    """Result of :func:`fit_kmeans`.

    centroids: (k, d) float32 (unit rows when spherical).
    assignment: (n,) int64 index of the nearest centroid.
    distances: (n,) float32, ``1 - cos`` when spherical, squared Euclidean otherwise.
    n_iter: Lloyd iterations run. backend: engine actually used. n_empty: clusters with no points
    in the final assignment. info: engine-specific extras (e.g. FAISS's split count).
    """

    centroids: np.ndarray
    assignment: np.ndarray
    distances: np.ndarray
    n_iter: int
    backend: str
    n_empty: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def objective(self) -> float:
        return float(np.sum(self.distances, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _is_torch(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch")


def _is_cuda(device: Any) -> bool:
    return str(device).startswith("cuda")


# n x k below which "auto" on CPU uses the numpy engine: FAISS's OpenMP start-up and barriers cost
# milliseconds per search, more than the whole matmul of a small problem (and far more when the
# cores are shared with other processes).
_SMALL_WORK = 1 << 22


def resolve_backend(backend: str = "auto", device: Any = "cpu", work: int | None = None) -> str:
    """Map ``backend="auto"`` to a concrete engine: torch on CUDA, FAISS on CPU (numpy when
    ``work`` = points x centroids is small). Explicit backends are returned as they are."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown k-means backend {backend!r}; expected one of {BACKENDS}")
    if backend != "auto":
        return backend
    if _is_cuda(device):
        return "torch"
    if work is not None and work <= _SMALL_WORK:
        return "numpy"
    try:
        import faiss  # noqa: F401
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        return "numpy"
    return "faiss"


def single_thread_blas():
    """Context manager limiting BLAS/OpenMP pools to one thread (threadpoolctl, when installed).

    Small problems (upper tree levels) run faster single-threaded, and much faster when the cores
    are shared: idle pool threads spin and stall each tiny matmul behind other processes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _as_2d(x: Any) -> Any:
    if _is_torch(x):
        if x.ndim != 2:
            raise ValueError(f"expected a 2-D array, got shape {tuple(x.shape)}")
        return x
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {x.shape}")
    return x


def _normalize_rows(a: np.ndarray) -> np.ndarray:
    """Unit rows in float32 (zero rows stay zero)."""
    a = np.asarray(a, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", a, a, dtype=np.float64)).astype(np.float32)
    norms[norms == 0] = 1.0
    return a / norms[:, None]


def _block_f32(x: np.ndarray, start: int, stop: int, normalize: bool) -> np.ndarray:
    """Rows [start, stop) as float32 (a view when x is already C-contiguous float32)."""
    xb = np.ascontiguousarray(x[start:stop], dtype=np.float32)
    return _normalize_rows(xb) if normalize else xb


def _needs_normalizing(x: np.ndarray, spherical: bool, block_rows: int, tol: float = 1e-3) -> bool:
    """For spherical k-means: False when every row already has unit norm (embeddings usually do),
    so the Lloyd passes can skip the per-block normalisation copy."""
    if not spherical:
        return False
    for s, e in _blocks(x.shape[0], block_rows):
        xb = np.asarray(x[s:e], dtype=np.float32)
        sq = np.einsum("ij,ij->i", xb, xb)
        if np.abs(sq - 1.0).max(initial=0.0) > tol:
            return True
    return False


def _default_block_rows(k: int, cuda: bool, engine: str = "numpy") -> int:
    if engine in ("faiss", "faiss-kmeans"):
        return 1 << 16  # FAISS tiles the search itself; blocks only bound the float32 copies
    budget = _CUDA_SCORE_BUDGET if cuda else _CPU_SCORE_BUDGET
    return int(min(max(budget // max(k, 1), 1024), 1 << 18))


def _blocks(n: int, block_rows: int) -> Iterator[tuple[int, int]]:
    for s in range(0, n, block_rows):
        yield s, min(n, s + block_rows)


# --------------------------------------------------------------------------------------------
# k-means++
# --------------------------------------------------------------------------------------------


_KPP_REFRESH = 32  # centres between two refreshes of the D^2 bounds in kmeans_plusplus


def _default_init_max_points(k: int) -> int:
    # 16 points per centroid (at least 20k points): k-means++ is k sequential passes, each memory
    # bound, so on 100k x 384 with k=1000 the full version costs more than a dozen Lloyd iterations
    # on 2 CPU cores; the subsample keeps it to a fraction of one (Lloyd always uses every point).
    return max(16 * k, 20_000)


def kmeans_plusplus(
    x: Any,
    k: int,
    *,
    spherical: bool = True,
    seed: int | np.random.Generator | None = 0,
    max_points: int | None = -1,
) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) in numpy; returns (k, d) float32 centroids.

    The first centroid is a uniformly drawn point, each next one a point drawn with probability
    proportional to its squared distance to the nearest centroid chosen so far (for spherical, on
    unit vectors: ``2 - 2 cos``). ``max_points``: run on a seeded uniform subsample of that many
    points when there are more (``-1``: the default rule ``max(16 k, 20_000)``; ``None``: all).
    Points are drawn without replacement: if every remaining point coincides with a chosen
    centroid, further centroids are drawn uniformly from the points not chosen yet.
    """
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    x = _as_2d(x)
    n = x.shape[0]
    if k < 1:
        raise ValueError("k must be >= 1")
    if n < k:
        raise ValueError(f"k-means++ needs at least k={k} points, got {n}")
    rng = _rng(seed)
    if max_points == -1:
        max_points = _default_init_max_points(k)
    if max_points is not None and n > max(max_points, k):
        idx = np.sort(rng.choice(n, size=max(max_points, k), replace=False))
        xs = np.asarray(x[idx], dtype=np.float32)
    else:
        xs = np.asarray(x, dtype=np.float32)
    if spherical:
        xs = _normalize_rows(xs)
    xs = np.ascontiguousarray(xs)
    m = xs.shape[0]
    sq = np.einsum("ij,ij->i", xs, xs).astype(np.float32)
    # Exact D^2 sampling with lazy updates. d2 holds each point's squared distance to the centres
    # chosen up to the last refresh: an upper bound of its true D^2. A candidate drawn from d2 is
    # accepted with probability true/bound (true = min(bound, distance to the centres chosen since),
    # O(R d) work), which is rejection sampling from exactly the k-means++ distribution. Every R
    # centres (or after repeated rejections) one (m x R) GEMM refreshes the bounds, so the points are
    # streamed k/R times instead of k times (k-means++ is otherwise memory-bound: k passes).
    R = _KPP_REFRESH
    cen = np.empty((k, xs.shape[1]), dtype=np.float32)
    taken = np.zeros(m, dtype=bool)
    j = int(rng.integers(m))
    cen[0] = xs[j]
    taken[j] = True
    d2 = sq + sq[j] - 2.0 * (xs @ xs[j])
    np.maximum(d2, 0.0, out=d2)
    d2[j] = 0.0
    cum = np.cumsum(d2, dtype=np.float64)
    recent: list[int] = []

    def refresh() -> np.ndarray:
        nonlocal d2, recent
        if recent:
            r = np.asarray(recent)
            dr = sq[:, None] + sq[r][None, :] - 2.0 * (xs @ xs[r].T)
            np.minimum(d2, dr.min(axis=1), out=d2)
            np.maximum(d2, 0.0, out=d2)
            d2[r] = 0.0
            recent = []
        return np.cumsum(d2, dtype=np.float64)

    for i in range(1, k):
        rejections = 0
        while True:
            total = cum[-1]
            if not total > 0.0:
                if recent:
                    cum = refresh()
                    continue
                free = np.flatnonzero(~taken)  # all mass is zero: uniform over the rest
                j = int(free[rng.integers(len(free))])
                break
            j = min(int(np.searchsorted(cum, rng.random() * total, side="right")), m - 1)
            bound = float(d2[j])
            if bound <= 0.0:
                continue  # round-off at a zero-mass edge
            if recent:
                xr = xs[recent]
                true = min(bound, float(np.min(sq[j] + sq[recent] - 2.0 * (xr @ xs[j]))))
            else:
                true = bound
            if rng.random() * bound < true:
                break
            rejections += 1
            if rejections >= 8:  # bounds gone stale: refresh them
                cum = refresh()
                rejections = 0
        cen[i] = xs[j]
        taken[j] = True
        recent.append(j)
        if len(recent) >= R:
            cum = refresh()
    return cen


# --------------------------------------------------------------------------------------------
# CPU engines (numpy / faiss): assignment of one float32 block
# --------------------------------------------------------------------------------------------


def _exact_dist(xb: np.ndarray, c: np.ndarray, lb: np.ndarray, spherical: bool) -> np.ndarray:
    """Distance of each row to its chosen centroid, computed directly (the matmul expansion used to
    pick the centroid loses digits to cancellation on far-from-origin data)."""
    cb = c[lb]
    if spherical:
        return (1.0 - np.einsum("ij,ij->i", xb, cb)).astype(np.float32)
    diff = xb - cb
    return np.einsum("ij,ij->i", diff, diff).astype(np.float32)


class _NumpySearch:
    def __init__(self, centroids: np.ndarray, spherical: bool):
        self.c = np.ascontiguousarray(centroids, dtype=np.float32)
        self.spherical = spherical
        self.cn = np.einsum("ij,ij->i", self.c, self.c)

    def __call__(self, xb: np.ndarray, need_dist: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        s = xb @ self.c.T
        if not self.spherical:
            s *= 2.0
            s -= self.cn[None, :]
        lb = np.argmax(s, axis=1).astype(np.int64)
        return lb, _exact_dist(xb, self.c, lb, self.spherical) if need_dist else None


class _FaissSearch:
    def __init__(self, centroids: np.ndarray, spherical: bool):
        import faiss

        self.c = np.ascontiguousarray(centroids, dtype=np.float32)
        self.index = faiss.IndexFlatIP(self.c.shape[1]) if spherical else faiss.IndexFlatL2(self.c.shape[1])
        self.index.add(self.c)
        self.spherical = spherical

    def __call__(self, xb: np.ndarray, need_dist: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        xb = np.ascontiguousarray(xb, dtype=np.float32)
        _, I = self.index.search(xb, 1)
        lb = I[:, 0].astype(np.int64)
        return lb, _exact_dist(xb, self.c, lb, self.spherical) if need_dist else None


def _accumulate(sums: np.ndarray, counts: np.ndarray, xb: np.ndarray, lb: np.ndarray) -> None:
    """sums[c] += sum of rows of xb labelled c (accumulated in float64), counts[c] += their number.

    Rows are grouped by label with one sort, then each group is summed with a float64 accumulator
    (about 10x faster than ``np.add.reduceat`` along axis 0 or ``np.add.at``)."""
    k = len(counts)
    nb, d = xb.shape
    if k * nb * d <= 1 << 25:  # small problem (upper tree levels): one float64 one-hot matmul
        onehot = np.zeros((k, nb), dtype=np.float64)
        onehot[lb, np.arange(nb)] = 1.0
        sums += onehot @ xb.astype(np.float64)
        counts += np.bincount(lb, minlength=k)
        return
    if d <= 64:  # few columns: one weighted bincount (float64 accumulator) per column
        for j, col in enumerate(np.ascontiguousarray(xb.T)):
            sums[:, j] += np.bincount(lb, weights=col, minlength=k)
        counts += np.bincount(lb, minlength=k)
        return
    order = np.argsort(lb, kind="stable")
    ls = lb[order]
    xs = xb[order]
    starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
    ends = np.r_[starts[1:], len(ls)]
    for u, a, b in zip(ls[starts].tolist(), starts.tolist(), ends.tolist()):
        sums[u] += xs[a:b].sum(axis=0, dtype=np.float64)
    counts += np.bincount(lb, minlength=len(counts))


def _update(c_old: np.ndarray, sums: np.ndarray, counts: np.ndarray, spherical: bool) -> np.ndarray:
    new = c_old.astype(np.float64, copy=True)
    ne = counts > 0
    new[ne] = sums[ne] / counts[ne, None]
    if spherical:
        norms = np.linalg.norm(new, axis=1)
        ok = ne & (norms > 0)
        new[ok] /= norms[ok, None]
        new[ne & ~ok] = c_old[ne & ~ok]  # points cancel out exactly: keep the old direction
    return new.astype(np.float32)


def _lloyd_cpu(x, c0, n_iter, spherical, block_rows, search_cls, normalize):
    n = x.shape[0]
    k = c0.shape[0]
    c = c0
    for _ in range(n_iter):
        search = search_cls(c, spherical)
        sums = np.zeros((k, x.shape[1]), dtype=np.float64)
        counts = np.zeros(k, dtype=np.int64)
        for s, e in _blocks(n, block_rows):
            xb = _block_f32(x, s, e, normalize)
            lb, _ = search(xb, need_dist=False)
            _accumulate(sums, counts, xb, lb)
        c = _update(c, sums, counts, spherical)
    return c


def _assign_cpu(x, c, spherical, block_rows, search_cls, normalize=None):
    n = x.shape[0]
    if normalize is None:
        normalize = spherical
    labels = np.empty(n, dtype=np.int64)
    dist = np.empty(n, dtype=np.float32)
    search = search_cls(c, spherical)
    for s, e in _blocks(n, block_rows):
        labels[s:e], dist[s:e] = search(_block_f32(x, s, e, normalize))
    return labels, dist


# --------------------------------------------------------------------------------------------
# torch engine
# --------------------------------------------------------------------------------------------


def _torch_setup(x: Any, device: Any, compute_dtype: Any):
    import torch

    dev = torch.device(device)
    if compute_dtype is None:
        compute_dtype = torch.float16 if dev.type == "cuda" else torch.float32
    if _is_torch(x):
        xt = x.to(device=dev, dtype=compute_dtype)
    else:
        xt = torch.empty((x.shape[0], x.shape[1]), dtype=compute_dtype, device=dev)
        step = 1 << 20
        for s in range(0, x.shape[0], step):  # stream host -> device without a full fp32 copy
            xt[s : s + step] = torch.from_numpy(np.require(x[s : s + step], requirements=["C", "W"])).to(
                device=dev, dtype=compute_dtype
            )
    return torch, dev, xt, compute_dtype


def _torch_block(torch, xt, s, e, spherical):
    xb = xt[s:e]
    if spherical:
        xb = torch.nn.functional.normalize(xb.float(), dim=1).to(xt.dtype)
    return xb


def _torch_search(torch, xb, c_cd, c32, cn32, spherical):
    """Labels and float32 distances of one block. c_cd: centroids in compute dtype."""
    scores = xb @ c_cd.T
    if spherical:
        lb = scores.argmax(dim=1)
    else:
        scores = scores.float()
        scores.mul_(2.0).sub_(cn32)
        lb = scores.argmax(dim=1)
    del scores
    xb32 = xb.float()
    cb = c32.index_select(0, lb)
    if spherical:
        dist = 1.0 - (xb32 * cb).sum(dim=1)
    else:
        dist = ((xb32 - cb) ** 2).sum(dim=1)
    return lb, dist.clamp_min_(0.0) if not spherical else dist, xb32


def _torch_update(torch, c32, sums, counts, spherical):
    ne = counts > 0
    new = c32.double().clone()
    new[ne] = sums[ne] / counts[ne].unsqueeze(1).to(torch.float64)
    if spherical:
        norms = new.norm(dim=1)
        ok = ne & (norms > 0)
        new = torch.where(ok.unsqueeze(1), new / norms.clamp_min(1e-300).unsqueeze(1), c32.double())
    return new.float()


def _lloyd_torch(xt, c0, n_iter, spherical, block_rows, torch):
    k, d = c0.shape
    c32 = c0
    ones = torch.ones(min(block_rows, xt.shape[0]), dtype=torch.float64, device=xt.device)
    for _ in range(n_iter):
        c_cd = c32.to(xt.dtype)
        cn32 = (c32 * c32).sum(dim=1)
        sums = torch.zeros((k, d), dtype=torch.float64, device=xt.device)
        # counts as float64 (exact below 2**53) through index_add_: torch.bincount would read the
        # max label back to the host, a synchronisation per block on CUDA
        counts = torch.zeros(k, dtype=torch.float64, device=xt.device)
        for s, e in _blocks(xt.shape[0], block_rows):
            xb = _torch_block(torch, xt, s, e, spherical)
            lb, _, xb32 = _torch_search(torch, xb, c_cd, c32, cn32, spherical)
            sums.index_add_(0, lb, xb32.double())  # float64 sums (native fp64 atomics on CUDA)
            counts.index_add_(0, lb, ones[: e - s])
        c32 = _torch_update(torch, c32, sums, counts, spherical)
    return c32


def _assign_torch_t(xt, c32, spherical, block_rows, torch):
    n = xt.shape[0]
    labels = torch.empty(n, dtype=torch.int64, device=xt.device)
    dist = torch.empty(n, dtype=torch.float32, device=xt.device)
    c_cd = c32.to(xt.dtype)
    cn32 = (c32 * c32).sum(dim=1)
    for s, e in _blocks(n, block_rows):
        xb = _torch_block(torch, xt, s, e, spherical)
        lb, db, _ = _torch_search(torch, xb, c_cd, c32, cn32, spherical)
        labels[s:e] = lb
        dist[s:e] = db
    return labels, dist


def _kmeanspp_torch(torch, xt, k, spherical, seed, max_points):
    """k-means++ on the device (seeded torch generator); returns float32 (k, d) on the device."""
    dev = xt.device
    n = xt.shape[0]
    g = torch.Generator(device=dev)
    g.manual_seed(int(seed) if seed is not None else 0)
    if max_points == -1:
        max_points = _default_init_max_points(k)
    if max_points is not None and n > max(max_points, k):
        idx = torch.randperm(n, generator=g, device=dev)[: max(max_points, k)].sort().values
        xs = xt.index_select(0, idx).float()
    else:
        xs = xt.float()
    if spherical:
        xs = torch.nn.functional.normalize(xs, dim=1)
    xs_cd = xs.to(xt.dtype)  # matvecs in the compute dtype (fp16 on CUDA: half the traffic)
    m = xs.shape[0]
    sq = (xs * xs).sum(dim=1)
    chosen = torch.empty(k, dtype=torch.int64, device=dev)
    taken = torch.zeros(m, dtype=torch.bool, device=dev)

    def dist_to(j):
        return (sq + sq[j] - 2.0 * (xs_cd @ xs_cd[j].T).squeeze(1).float()).clamp_min_(0.0)

    # everything below stays on the device: no host synchronisation inside the loop
    j = torch.randint(m, (1,), generator=g, device=dev)
    chosen[0:1] = j
    taken[j] = True
    d2 = dist_to(j).masked_fill_(taken, 0.0)
    for i in range(1, k):
        w = d2.double()
        # degenerate case (all remaining mass is zero): uniform over points not taken yet
        w = torch.where(w.sum() > 0, w, (~taken).double())
        cum = torch.cumsum(w, dim=0)
        r = torch.rand(1, generator=g, device=dev, dtype=torch.float64) * cum[-1]
        j = torch.searchsorted(cum, r, right=True).clamp_(max=m - 1)
        chosen[i : i + 1] = j
        taken[j] = True
        torch.minimum(d2, dist_to(j), out=d2)
        d2.masked_fill_(taken, 0.0)
    return xs.index_select(0, chosen).contiguous()


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def fit_kmeans(
    x: Any,
    k: int,
    *,
    n_iter: int = 20,
    spherical: bool = True,
    seed: int = 0,
    backend: str = "auto",
    device: Any = "cpu",
    init_centroids: np.ndarray | None = None,
    init_max_points: int | None = -1,
    block_rows: int | None = None,
    compute_dtype: Any = None,
) -> KMeansResult:
    """Fit k-means with k-means++ init and exactly ``n_iter`` Lloyd iterations (module docstring).

    x: (n, d) numpy array (float16/32/64, memory maps welcome: read block by block) or torch tensor.
    init_centroids: skip k-means++ and start from these (k, d) centroids.
    init_max_points: k-means++ subsample size (-1: default rule, None: all points).
    block_rows: rows per assignment block (default from a memory budget: 32 MiB of scores on CPU,
    512 MiB on CUDA). compute_dtype (torch only): default float16 on CUDA, float32 on CPU.
    """
    x = _as_2d(x)
    n, d = int(x.shape[0]), int(x.shape[1])
    if k < 1:
        raise ValueError("k must be >= 1")
    if n < k:
        raise ValueError(f"k-means needs at least k={k} points, got {n}")
    if n_iter < 0:
        raise ValueError("n_iter must be >= 0")
    eng = resolve_backend(backend, device, work=n * k)
    cuda = eng == "torch" and _is_cuda(device)
    br = int(block_rows) if block_rows else _default_block_rows(k, cuda, eng)

    if init_centroids is not None:
        c0 = np.asarray(init_centroids, dtype=np.float32)
        if c0.shape != (k, d):
            raise ValueError(f"init_centroids must have shape {(k, d)}, got {c0.shape}")
        c0 = _normalize_rows(c0) if spherical else c0.copy()
    else:
        c0 = None

    if eng == "torch":
        torch, dev, xt, _ = _torch_setup(x, device, compute_dtype)
        with torch.no_grad():
            if c0 is None:
                c0t = _kmeanspp_torch(torch, xt, k, spherical, seed, init_max_points)
            else:
                c0t = torch.from_numpy(c0).to(dev)
            c = _lloyd_torch(xt, c0t, n_iter, spherical, br, torch)
            labels, dist = _assign_torch_t(xt, c, spherical, br, torch)
            counts = torch.bincount(labels, minlength=k)
            out = KMeansResult(
                centroids=c.cpu().numpy().astype(np.float32),
                assignment=labels.cpu().numpy(),
                distances=dist.cpu().numpy(),
                n_iter=n_iter,
                backend="torch",
                n_empty=int((counts == 0).sum().item()),
                info={"device": str(dev), "compute_dtype": str(xt.dtype), "block_rows": br},
            )
        return out

    if _is_torch(x):
        x = x.detach().cpu().numpy()
    small = eng == "numpy" and n * k <= _SMALL_WORK
    with single_thread_blas() if small else contextlib.nullcontext():
        return _fit_cpu(x, k, n_iter, spherical, seed, eng, c0, init_max_points, br)


def _fit_cpu(x, k, n_iter, spherical, seed, eng, c0, init_max_points, br) -> KMeansResult:
    if c0 is None:
        c0 = kmeans_plusplus(x, k, spherical=spherical, seed=seed, max_points=init_max_points)
    info: dict[str, Any] = {"block_rows": br}
    normalize = _needs_normalizing(x, spherical, br)
    if eng == "faiss-kmeans":
        c = _faiss_kmeans(x, c0, n_iter, spherical, seed, info)
        search_cls = _FaissSearch
    else:
        search_cls = _FaissSearch if eng == "faiss" else _NumpySearch
        c = _lloyd_cpu(x, c0, n_iter, spherical, br, search_cls, normalize)
    labels, dist = _assign_cpu(x, c, spherical, br, search_cls, normalize)
    n_empty = int((np.bincount(labels, minlength=k) == 0).sum())
    return KMeansResult(c, labels, dist, n_iter, eng, n_empty, info)


def _faiss_kmeans(x, c0, n_iter, spherical, seed, info) -> np.ndarray:
    import faiss

    n, d = x.shape
    k = c0.shape[0]
    xs = np.ascontiguousarray(x, dtype=np.float32)
    if spherical:
        xs = _normalize_rows(xs)
    if n_iter == 0:
        return c0
    params: dict[str, Any] = dict(
        niter=n_iter,
        spherical=spherical,
        seed=int(seed),
        # FAISS subsamples to 256 points per centroid by default: use every point.
        max_points_per_centroid=int(math.ceil(n / k)) + 1,
        min_points_per_centroid=1,
        verbose=False,
    )
    if hasattr(faiss.ClusteringParameters(), "early_stop_threshold"):
        params["early_stop_threshold"] = -1.0  # recent FAISS stops once the objective stalls
    km = faiss.Kmeans(d, k, **params)
    km.train(xs, init_centroids=np.ascontiguousarray(c0, dtype=np.float32))
    info["faiss_nsplit"] = int(sum(st["nsplit"] for st in km.iteration_stats))
    info["faiss_iterations"] = len(km.iteration_stats)
    return np.ascontiguousarray(km.centroids, dtype=np.float32)


def assign(
    x: Any,
    centroids: np.ndarray,
    spherical: bool = True,
    backend: str = "auto",
    device: Any = "cpu",
    block_rows: int | None = None,
    compute_dtype: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every row of x, streamed in blocks of ``block_rows``.

    Returns (labels int64, distances float32) with the distance convention of :func:`fit_kmeans`.
    """
    x = _as_2d(x)
    c = np.asarray(centroids, dtype=np.float32)
    if c.ndim != 2 or c.shape[1] != x.shape[1]:
        raise ValueError(f"centroids shape {c.shape} does not match data dim {x.shape[1]}")
    if spherical:
        c = _normalize_rows(c)
    k = c.shape[0]
    eng = resolve_backend(backend, device, work=int(x.shape[0]) * k)
    cuda = eng == "torch" and _is_cuda(device)
    br = int(block_rows) if block_rows else _default_block_rows(k, cuda, eng)
    if eng == "torch":
        import torch

        dev = torch.device(device)
        cdt = compute_dtype or (torch.float16 if dev.type == "cuda" else torch.float32)
        ct = torch.from_numpy(c).to(dev)
        cn = (ct * ct).sum(dim=1)
        c_cd = ct.to(cdt)
        labels = np.empty(x.shape[0], dtype=np.int64)
        dist = np.empty(x.shape[0], dtype=np.float32)
        with torch.no_grad():
            for s, e in _blocks(x.shape[0], br):  # stream blocks from host (or device) memory
                blk = x[s:e] if _is_torch(x) else torch.from_numpy(np.require(x[s:e], requirements=["C", "W"]))
                xb = blk.to(device=dev, dtype=cdt)
                if spherical:
                    xb = torch.nn.functional.normalize(xb.float(), dim=1).to(cdt)
                lb, db, _ = _torch_search(torch, xb, c_cd, ct, cn, spherical)
                labels[s:e] = lb.cpu().numpy()
                dist[s:e] = db.cpu().numpy()
        return labels, dist
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    search_cls = _NumpySearch if eng == "numpy" else _FaissSearch
    return _assign_cpu(x, c, spherical, br, search_cls)
