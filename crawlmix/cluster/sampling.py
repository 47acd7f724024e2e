"""Balanced hierarchical sampling (Vo et al. 2024): water-filling allocation applied top-down.

``allocate`` splits a target count over clusters max-min fairly: every cluster gets
``min(c, size)`` for the largest integer c with ``sum(min(c, size_i)) <= target``, and the remainder
goes +1 to randomly drawn clusters that still have room (size > c). ``balanced_sample`` applies it at
the top level (cluster sizes counted in points), then inside every cluster over its children, down
to the leaves, where points are picked at random or closest to the leaf centroid.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["allocate", "balanced_sample", "TargetExceedsTotalWarning"]


class TargetExceedsTotalWarning(UserWarning):
    """The target is larger than the number of items available: everything is taken."""


def _rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def allocate(sizes: Any, target: int, rng: Any = None) -> np.ndarray:
    """Water-filling: counts (int64, same order as ``sizes``) with ``counts <= sizes``.

    If ``target <= sum(sizes)`` the counts sum to ``target`` exactly and are max-min fair (no count
    can be raised without lowering one that is not larger). Otherwise every cluster is taken whole
    (``counts == sizes``) and a :class:`TargetExceedsTotalWarning` says so. ``rng``: Generator or
    seed, used only to place the remainder.
    """
    s = np.asarray(sizes, dtype=np.int64)
    if s.ndim != 1:
        raise ValueError("sizes must be 1-D")
    if (s < 0).any():
        raise ValueError("sizes must be >= 0")
    target = int(target)
    if target < 0:
        raise ValueError("target must be >= 0")
    total = int(s.sum())
    if target >= total:
        if target > total:
            warnings.warn(
                f"target {target} exceeds the {total} items available; taking all of them",
                TargetExceedsTotalWarning,
                stacklevel=2,
            )
        return s.copy()
    # largest c with f(c) = sum(min(c, s)) <= target; f(0) = 0 <= target, f(max s) = total > target
    lo, hi = 0, int(s.max())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if int(np.minimum(s, mid).sum()) <= target:
            lo = mid
        else:
            hi = mid
    c = lo
    counts = np.minimum(s, c)
    rem = target - int(counts.sum())
    if rem:
        room = np.flatnonzero(s > c)  # rem < len(room), else c + 1 would fit
        pick = _rng(rng).choice(room, size=rem, replace=False)
        counts[pick] += 1
    return counts


def balanced_sample(
    paths: Any,
    target: int,
    leaf_distances: Any = None,
    *,
    strategy: str = "random",
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Sorted indices of ``target`` points drawn balanced through the cluster tree.

    paths: (n, levels) cluster ids per point, column 0 = leaf, last column = top (the output of
    ``fit_hierarchical_kmeans`` / ``assign_paths``); a 1-D array is a single level. The nesting is
    read from the paths themselves (a level-t cluster's children are the distinct level t-1 ids of
    its points). strategy: ``"random"`` (seeded) or ``"closest"`` (smallest ``leaf_distances``, ties
    by index). Returns every point (with a warning) when target >= n.
    """
    p = np.asarray(paths, dtype=np.int64)
    if p.ndim == 1:
        p = p[:, None]
    n, L = p.shape
    if strategy not in ("random", "closest"):
        raise ValueError(f"strategy must be 'random' or 'closest', got {strategy!r}")
    if strategy == "closest":
        if leaf_distances is None:
            raise ValueError("strategy='closest' needs leaf_distances")
        dist = np.asarray(leaf_distances, dtype=np.float64)
        if dist.shape != (n,):
            raise ValueError("leaf_distances must have one value per point")
    target = int(target)
    if target >= n:
        if target > n:
            warnings.warn(
                f"target {target} exceeds the {n} points available; taking all of them",
                TargetExceedsTotalWarning,
                stacklevel=2,
            )
        return np.arange(n, dtype=np.int64)
    rng = _rng(seed)
    # points sorted by (top, ..., leaf, [distance], index): every cluster is a contiguous range
    keys: list[np.ndarray] = [np.arange(n)]
    if strategy == "closest":
        keys.append(dist)
    keys += [p[:, t] for t in range(L)]
    order = np.lexsort(keys)
    ps = p[order]
    out: list[np.ndarray] = []

    def groups(level: int, lo: int, hi: int):
        col = ps[lo:hi, level]
        starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]]) + lo
        return starts, np.r_[starts[1:], hi]

    stack = [(L - 1, 0, n, target)]
    while stack:
        level, lo, hi, quota = stack.pop()
        starts, ends = groups(level, lo, hi)
        counts = allocate(ends - starts, quota, rng)
        nxt = []
        for a, b, c in zip(starts.tolist(), ends.tolist(), counts.tolist()):
            if c == 0:
                continue
            if level == 0:
                if c == b - a or strategy == "closest":
                    out.append(order[a : a + c])
                else:
                    out.append(order[a + rng.choice(b - a, size=c, replace=False)])
            else:
                nxt.append((level - 1, a, b, c))
        stack.extend(reversed(nxt))  # depth-first in cluster-id order: deterministic rng use
    sel = np.sort(np.concatenate(out)) if out else np.empty(0, dtype=np.int64)
    return sel.astype(np.int64)
