"""SemDeDup (Abbas et al. 2023): semantic near-duplicate removal inside each cluster.

Within one cluster the points are ordered by their distance to the centroid -- ``"hard"`` (default,
farthest first, so the most prototypical copy is the one removed), ``"easy"`` (closest first) or
``"random"`` (seeded) -- and point j is removed when ``max_{i before j} cos(j, i) > 1 - eps``, the
maximum taken over ALL earlier points, kept or removed, exactly as in the paper (its reference code
takes the column max of the upper-triangular similarity matrix).

Consequences, and the choices made here:

* The per-point score ``similarity[j] = max_{i before j} cos(j, i)`` does not depend on eps, so a
  point is removed at eps iff ``similarity[j] > 1 - eps``: the removed sets grow monotonically with
  eps, and one scoring pass (:func:`semdedup_scores`) answers every eps (:meth:`SemDedupScores.resolve`).
  ``similarity`` is reported for kept points too (``-inf`` for the first point of a cluster).
* Chains: with a~b, b~c and a!~c (order a, b, c) both b and c are removed (c is similar to b even
  though b itself is removed). Every removed point must name a KEPT point, so ``duplicate_of[j]``
  follows the chain of most-similar earlier points until it reaches a kept one: c -> b -> a gives
  ``duplicate_of[c] = a``. The reported ``similarity[c]`` stays the value that decided the removal,
  cos(c, b), not cos(c, a) (which may be below the threshold); compute
  ``vectors[j] @ vectors[duplicate_of[j]]`` when the direct value is needed.
* Exact duplicates: cosines are clipped to [-1, 1] (float32 gives 1.0000001 for identical unit
  vectors) and eps is floored at ``EXACT_TOL = 1e-5``, so ``eps = 0`` removes numerically identical
  directions (cos >= 1 - 1e-5) instead of nothing.
* Memory: rows are scored in blocks of ``block`` against earlier rows in column chunks of
  ``col_block``: at most ``block x col_block`` similarities exist at once, never the n x n matrix.
  Torch does the matmuls, so ``device="cuda"`` runs the same code on a GPU (float32 there too: eps
  0.01 needs the third decimal of the cosine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "EXACT_TOL",
    "SemDedupScores",
    "semdedup_order",
    "semdedup_scores",
    "semdedup_cluster",
    "semdedup_all_scores",
    "semdedup",
]

EXACT_TOL = 1e-5
ORDERS = ("hard", "easy", "random")


@dataclass
class SemDedupScores:
    """eps-independent scores of one or many clusters (arrays in input order).

    rank: position of each point in its cluster's processing order (0 = first, always kept).
    similarity: max cosine to any earlier point of its cluster (-inf for the first).
    nearest: index (input order) of that most similar earlier point (-1 for the first).
    """

    rank: np.ndarray
    similarity: np.ndarray
    nearest: np.ndarray

    def resolve(self, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(keep_mask, duplicate_of, similarity) at ``eps``; duplicate_of is -1 for kept points and
        always names a kept point of the same cluster for removed ones."""
        thr = 1.0 - max(float(eps), EXACT_TOL)
        removed = self.similarity > thr
        dup = np.where(removed, self.nearest, -1).astype(np.int64)
        # pointer jumping: the nearest earlier point is processed before j, so chains are finite
        while True:
            hop = dup >= 0
            hop[hop] = removed[dup[hop]]
            if not hop.any():
                break
            dup[hop] = dup[dup[hop]]
        return ~removed, dup, self.similarity.astype(np.float32)


def semdedup_order(distances_to_centroid: Any, order: str = "hard", seed: Any = 0, n: int | None = None) -> np.ndarray:
    """Processing order (indices) of one cluster: hard = farthest first, easy = closest first,
    random = seeded permutation; ties broken by index."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if order == "random":
        m = n if n is not None else len(distances_to_centroid)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return rng.permutation(m)
    d = np.asarray(distances_to_centroid, dtype=np.float64)
    return np.argsort(-d if order == "hard" else d, kind="stable")


def _unit_tensor(vectors: Any, device: Any):
    import torch

    v = torch.as_tensor(np.asarray(vectors) if not isinstance(vectors, torch.Tensor) else vectors)
    v = v.to(device=torch.device(device), dtype=torch.float32)
    return torch, torch.nn.functional.normalize(v, dim=1)


def _score_ordered(torch, vo, block: int, col_block: int):
    """Max cosine of each row to all earlier rows (and its argmax) for rows already in order."""
    m = vo.shape[0]
    best = torch.full((m,), float("-inf"), dtype=torch.float32, device=vo.device)
    arg = torch.full((m,), -1, dtype=torch.int64, device=vo.device)
    for s in range(1, m, block):  # row 0 has no earlier point
        e = min(m, s + block)
        q = vo[s:e]
        rows = torch.arange(s, e, device=vo.device).unsqueeze(1)
        b_best = best[s:e]
        b_arg = arg[s:e]
        for cs in range(0, e - 1, col_block):
            ce = min(e - 1, cs + col_block)
            sim = q @ vo[cs:ce].T
            if ce > s:  # chunk reaches the diagonal: only strictly earlier columns count
                cols = torch.arange(cs, ce, device=vo.device).unsqueeze(0)
                sim.masked_fill_(cols >= rows, float("-inf"))
            v, a = sim.max(dim=1)
            upd = v > b_best
            b_best = torch.where(upd, v, b_best)
            b_arg = torch.where(upd, a + cs, b_arg)
        best[s:e] = b_best
        arg[s:e] = b_arg
    return best.clamp_(max=1.0), arg  # float32 gives 1.0000001 for identical vectors: clip


def semdedup_scores(
    vectors: Any,
    distances_to_centroid: Any = None,
    order: str = "hard",
    seed: Any = 0,
    block: int = 1024,
    col_block: int = 8192,
    device: Any = "cpu",
) -> SemDedupScores:
    """Score one cluster (see module docstring). distances_to_centroid: the k-means distances; when
    None and order is hard/easy, ``1 - cos`` to the normalised mean of the cluster is used."""
    torch, v = _unit_tensor(vectors, device)
    m = v.shape[0]
    if m == 0:
        e = np.empty(0)
        return SemDedupScores(e.astype(np.int64), e.astype(np.float32), e.astype(np.int64))
    if distances_to_centroid is None and order != "random":
        c = torch.nn.functional.normalize(v.double().mean(dim=0, keepdim=True), dim=1).float()
        distances_to_centroid = (1.0 - (v @ c.T).squeeze(1)).cpu().numpy()
    perm = semdedup_order(distances_to_centroid, order, seed, n=m)
    with torch.no_grad():
        vo = v.index_select(0, torch.as_tensor(perm, device=v.device))
        best, arg = _score_ordered(torch, vo, max(1, int(block)), max(1, int(col_block)))
    best = best.cpu().numpy()
    arg = arg.cpu().numpy()
    rank = np.empty(m, dtype=np.int64)
    rank[perm] = np.arange(m)
    sim = np.empty(m, dtype=np.float32)
    sim[perm] = best
    nearest = np.full(m, -1, dtype=np.int64)
    nearest[perm] = np.where(arg >= 0, perm[np.maximum(arg, 0)], -1)
    return SemDedupScores(rank, sim, nearest)


def semdedup_cluster(
    vectors: Any,
    distances_to_centroid: Any,
    eps: float,
    order: str = "hard",
    seed: Any = 0,
    block: int = 1024,
    col_block: int = 8192,
    device: Any = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SemDeDup of one cluster: (keep_mask, duplicate_of (local index, -1 if kept), similarity)."""
    return semdedup_scores(vectors, distances_to_centroid, order, seed, block, col_block, device).resolve(eps)


def semdedup_all_scores(
    labels: Any,
    vectors: Any,
    distances: Any = None,
    order: str = "hard",
    seed: int = 0,
    block: int = 1024,
    col_block: int = 8192,
    device: Any = "cpu",
) -> SemDedupScores:
    """Scores for every cluster of ``labels`` (global indices). The random order of cluster c is
    seeded by (seed, c), so results do not depend on which other clusters are processed."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    rank = np.zeros(n, dtype=np.int64)
    sim = np.full(n, -np.inf, dtype=np.float32)
    nearest = np.full(n, -1, dtype=np.int64)
    order_idx = np.argsort(labels, kind="stable")
    ls = labels[order_idx]
    starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]]) if n else np.empty(0, dtype=np.int64)
    ends = np.r_[starts[1:], n]
    dist = None if distances is None else np.asarray(distances)
    for a, b in zip(starts.tolist(), ends.tolist()):
        idx = order_idx[a:b]
        if b - a == 1:
            continue
        rng = np.random.default_rng([int(seed), int(ls[a]) & 0x7FFFFFFF])
        sc = semdedup_scores(
            np.asarray(vectors[idx]), None if dist is None else dist[idx], order, rng, block, col_block, device
        )
        rank[idx] = sc.rank
        sim[idx] = sc.similarity
        nearest[idx] = np.where(sc.nearest >= 0, idx[np.maximum(sc.nearest, 0)], -1)
    return SemDedupScores(rank, sim, nearest)


def semdedup(
    labels: Any,
    vectors: Any,
    distances: Any,
    eps: float,
    order: str = "hard",
    seed: int = 0,
    block: int = 1024,
    col_block: int = 8192,
    device: Any = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SemDeDup over all clusters: (keep_mask, duplicate_of (global index, -1 if kept), similarity).
    For several eps values call :func:`semdedup_all_scores` once and ``.resolve(eps)`` each."""
    return semdedup_all_scores(labels, vectors, distances, order, seed, block, col_block, device).resolve(eps)
