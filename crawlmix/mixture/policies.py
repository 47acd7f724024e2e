"""Mixture policies: turn a pool of scored, clustered documents into a selection with repeats.

Pool: a DataFrame, one row per candidate document, with ``doc_id, snapshot, shard,
cluster_l1..cluster_lL`` (leaf first), ``quality`` in [0, 1], ``is_semantic_duplicate`` and
``n_tokens`` (approximate). Levels are 1-based as in the column names; the top level is L.

Policies (``spec.policy``):

* ``balanced`` -- Vo et al. 2024: water-filling top-down through the cluster tree, then random or
  closest-to-centroid (``within_leaf``; ``closest`` needs a ``distance`` column) inside leaves,
  reusing :func:`crawlmix.cluster.sampling.balanced_sample`. No repeats. A tokens target is turned
  into a document count with the mean tokens per document, corrected by a few secant steps, then
  single documents are added / dropped at random until it is within +/-1%.
* ``weighted`` -- shares p_i ∝ w_i^(1/T) over the clusters of ``level`` (top by default); without
  ``weights``, w_i = size_i (in the target unit), i.e. temperature sampling. Weights are keyed by
  cluster id (that cluster's weight), by a name keyword (a group: all clusters at the level whose
  names or keywords contain it, or that sit under / above such a cluster; the weight is split over
  them in proportion to size) or given as a list of groups ``{clusters: [...], weight: w}``.
  Unmentioned clusters get ``default_weight`` (0). A cluster asked for more than it holds repeats
  its documents (each doc at most ``max_repeats`` times, default 1 = no repeats, spread evenly);
  what a cluster cannot take is redistributed to the others in proportion to their shares.
* ``quality_topk`` -- the per-cluster amounts of ``shares_from`` (``balanced`` water-filling,
  ``weighted`` as above, or ``prior`` = proportional to size) at ``level``, filled inside every
  cluster with its best documents by quality (plus seeded Gumbel noise x ``gumbel_scale`` when > 0,
  WebOrganizer's soft top-k).
* ``search`` -- CLIMB/RegMix search over top-level weights (:mod:`.search`), each candidate scored
  by the evaluator on a small sample drawn with its weights, then a ``weighted`` draw with the best.

Targets are met within +/-1% (documents or tokens of ``n_tokens``) when the pool allows it;
otherwise :class:`MixtureTargetError` says how much is achievable.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..cluster.sampling import TargetExceedsTotalWarning, balanced_sample
from .search import search_mixture
from .spec import ClusterRef, MixtureSpec, keyword_matches

__all__ = [
    "MixtureResult",
    "MixtureTargetError",
    "apply_filters",
    "build_mixture",
    "cluster_columns",
    "draw_weighted",
]

TOL = 0.01


class MixtureTargetError(ValueError):
    """The size target cannot be met from the (filtered) pool."""


@dataclass
class MixtureResult:
    selection: pd.DataFrame
    weights: dict[int, float]
    filtered_out: dict[str, int]
    target: int
    achieved: int
    unit: str
    policy: str
    details: dict[str, Any] = field(default_factory=dict)


def cluster_columns(pool: pd.DataFrame) -> list[str]:
    """``cluster_l1 .. cluster_lL`` (leaf first) as present in ``pool``."""
    cols = []
    t = 1
    while f"cluster_l{t}" in pool.columns:
        cols.append(f"cluster_l{t}")
        t += 1
    if not cols:
        raise ValueError("pool has no cluster_l1 column")
    return cols


# ------------------------------------------------------------------------------------------------
# filters


def _rows_in(pool: pd.DataFrame, refs: Sequence[ClusterRef]) -> np.ndarray:
    L = len(cluster_columns(pool))
    m = np.zeros(len(pool), dtype=bool)
    for r in refs:
        if 1 <= r.level <= L:
            m |= pool[f"cluster_l{r.level}"].to_numpy() == r.id
    return m


def apply_filters(pool: pd.DataFrame, spec: MixtureSpec, keywords_by_cluster: Any = None,
                  names: Any = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Scope, ``min_quality``, semantic duplicates, excluded clusters (ids or name keywords), in
    that order; returns the kept rows and how many each filter removed."""
    keep = np.ones(len(pool), dtype=bool)
    counts: dict[str, int] = {}

    def step(name: str, mask: np.ndarray) -> None:
        nonlocal keep
        new = keep & mask
        counts[name] = int(keep.sum() - new.sum())
        keep = new

    if spec.scope != "all":
        step("scope", pool["snapshot"].isin(list(spec.scope)).to_numpy())
    else:
        counts["scope"] = 0
    q = pool["quality"].to_numpy(dtype=np.float64)
    step("min_quality", ~(q < spec.filters.min_quality) if spec.filters.min_quality > 0 else np.ones(len(pool), bool))
    if spec.filters.drop_semantic_duplicates and "is_semantic_duplicate" in pool.columns:
        step("semantic_duplicates", ~pool["is_semantic_duplicate"].fillna(False).to_numpy(dtype=bool))
    else:
        counts["semantic_duplicates"] = 0
    refs: list[ClusterRef] = []
    for e in spec.filters.exclude_clusters:
        refs += keyword_matches(e, keywords_by_cluster, names) if isinstance(e, str) else [e]
    step("exclude_clusters", ~_rows_in(pool, refs) if refs else np.ones(len(pool), bool))
    return pool.loc[keep].reset_index(drop=True), counts


# ------------------------------------------------------------------------------------------------
# allocation and per-cluster drawing


def _alloc_capped(p: np.ndarray, cap: np.ndarray, target: float) -> np.ndarray:
    """Continuous amounts a_i = min(cap_i, lam * p_i) summing to ``target`` (clusters with p_i = 0
    get nothing); the caller checks ``sum(cap[p > 0]) >= target`` first."""
    p = np.asarray(p, dtype=np.float64)
    a = np.zeros_like(p)
    active = p > 0
    remaining = float(target)
    while remaining > 1e-9 and active.any():
        share = np.where(active, p, 0.0)
        share = share / share.sum() * remaining
        over = active & (a + share > cap)
        if not over.any():
            a += share
            break
        remaining -= float((cap[over] - a[over]).sum())
        a[over] = cap[over]
        active &= ~over
    return a


def _largest_remainder(a: np.ndarray, total: int, cap: np.ndarray) -> np.ndarray:
    """Integers close to ``a`` (sum = ``total`` where caps allow), each <= cap."""
    base = np.minimum(np.floor(a + 1e-9).astype(np.int64), cap)
    rem = int(total - base.sum())
    if rem > 0:
        frac = np.where(base < cap, a - base, -np.inf)
        order = np.argsort(-frac, kind="stable")
        order = order[np.isfinite(frac[order])][:rem]
        base[order] += 1
    return base


@dataclass
class _Groups:
    """Pool rows grouped by the cluster id at one level, each group in a given within order."""

    ids: np.ndarray  # unique cluster ids (sorted)
    order: np.ndarray  # row indices, grouped by cluster, within-group order as requested
    starts: np.ndarray
    ends: np.ndarray
    units_sorted: np.ndarray  # units of rows in ``order``
    totals: np.ndarray  # units per group
    counts: np.ndarray  # docs per group
    gid_sorted: np.ndarray  # group index of each row in ``order``


def _groups(codes: np.ndarray, units: np.ndarray, within_key: np.ndarray) -> _Groups:
    ids, inv = np.unique(codes, return_inverse=True)
    order = np.lexsort((within_key, inv))
    gid = inv[order]
    counts = np.bincount(inv, minlength=len(ids))
    ends = np.cumsum(counts)
    starts = ends - counts
    us = units[order]
    totals = np.bincount(inv, weights=units, minlength=len(ids))
    return _Groups(ids, order, starts, ends, us, totals, counts, gid)


def _fill(g: _Groups, amounts: np.ndarray, unit_is_doc: bool, max_repeats: int) -> np.ndarray:
    """Repeats per pool row (0 = not selected) so that group j gets about ``amounts[j]`` units:
    ``full`` whole passes over the group plus the prefix (in the group's order) nearest to the
    remainder."""
    tot = np.where(g.totals > 0, g.totals, 1.0)
    full = np.floor(amounts / tot + 1e-12).astype(np.int64)
    full = np.minimum(full, max_repeats)
    rem = amounts - full * g.totals
    rem = np.where(full >= max_repeats, 0.0, np.maximum(rem, 0.0))
    cum = np.cumsum(g.units_sorted)
    cum_in_group = cum - (cum[g.starts] - g.units_sorted[g.starts])[g.gid_sorted]
    mid = cum_in_group - g.units_sorted / 2.0  # nearest rounding of the prefix
    if unit_is_doc:
        inc = mid < rem[g.gid_sorted]  # rem is an integer count: exactly rem docs
    else:
        inc = mid <= rem[g.gid_sorted]
    reps_sorted = full[g.gid_sorted] + inc.astype(np.int64)
    reps = np.zeros(len(g.order), dtype=np.int64)
    reps[g.order] = reps_sorted
    return reps


def _shares_from_weights(pool: pd.DataFrame, level: int, g: _Groups, opts: Mapping[str, Any], keywords: Any,
                         names: Any) -> np.ndarray:
    """Unnormalized weight per group of ``g`` (clusters at ``level``) from the weighted options."""
    T = float(opts.get("temperature", 1.0))
    spec_w = opts.get("weights")
    if spec_w is None:
        w = g.totals.astype(np.float64)
    else:
        w = np.full(len(g.ids), float(opts.get("default_weight", 0.0)))
        mentioned = np.zeros(len(g.ids), dtype=bool)
        col = pool[f"cluster_l{level}"].to_numpy()
        pos = {int(c): i for i, c in enumerate(g.ids.tolist())}

        def members(key: Any) -> np.ndarray:
            if isinstance(key, str):
                refs = keyword_matches(key, keywords, names)
                if not refs:
                    warnings.warn(f"weights: keyword {key!r} matches no cluster", RuntimeWarning, stacklevel=3)
                    return np.zeros(0, dtype=np.int64)
                ids = np.unique(col[_rows_in(pool, refs)])
            else:
                ids = np.asarray([int(key)])
            return np.asarray([pos[int(i)] for i in ids if int(i) in pos], dtype=np.int64)

        items: list[tuple[tuple, float, bool]] = []
        if isinstance(spec_w, Mapping):
            items = [((k,), float(v), isinstance(k, str)) for k, v in spec_w.items()]
        else:
            items = [(tuple(gr["clusters"]), float(gr["weight"]), True) for gr in spec_w]
        contrib = np.zeros(len(g.ids))
        for keys, val, spread in items:
            mem = np.unique(np.concatenate([members(k) for k in keys])) if keys else np.zeros(0, np.int64)
            if not len(mem):
                continue
            if spread and len(mem) > 1:
                sz = g.totals[mem]
                contrib[mem] += val * sz / sz.sum() if sz.sum() > 0 else val / len(mem)
            else:
                contrib[mem] += val
            mentioned[mem] = True
        w = np.where(mentioned, contrib, w)
    w = np.maximum(w, 0.0)
    with np.errstate(divide="ignore"):
        p = np.where(w > 0, w ** (1.0 / T), 0.0)
    if p.sum() <= 0:
        raise MixtureTargetError("the weights give every cluster left after filtering a weight of 0")
    return p / p.sum()


# ------------------------------------------------------------------------------------------------


def _level(opt: Any, L: int) -> int:
    if opt is None or opt == "top":
        return L
    lv = int(opt)
    if not 1 <= lv <= L:
        raise ValueError(f"level {lv} does not exist (the tree has {L} levels)")
    return lv


def _units(pool: pd.DataFrame, unit: str) -> np.ndarray:
    if unit == "documents":
        return np.ones(len(pool), dtype=np.float64)
    if "n_tokens" not in pool.columns:
        raise ValueError("a tokens target needs an n_tokens column in the pool")
    u = pool["n_tokens"].to_numpy(dtype=np.float64)
    return np.maximum(u, 0.0)


def _check(achieved: float, target: int, unit: str, name: str, why: str) -> None:
    if abs(achieved - target) > TOL * target:
        raise MixtureTargetError(f"mixture {name!r}: target {target:,} {unit} missed by more than 1% "
                                 f"(got {achieved:,.0f}): {why}")


def draw_weighted(pool: pd.DataFrame, level: int, p: np.ndarray | None, target: float, unit: str, *,
                  max_repeats: int = 1, seed: int = 0, groups: _Groups | None = None,
                  order_key: np.ndarray | None = None, name: str = "?", strict: bool = True
                  ) -> tuple[np.ndarray, _Groups, np.ndarray]:
    """Repeats per pool row for shares ``p`` over the clusters at ``level`` (in the order of the
    groups' sorted ids). Raises :class:`MixtureTargetError` when the pool cannot supply ``target``
    (with ``strict``; otherwise takes what it can)."""
    units = _units(pool, unit)
    if groups is None:
        key = order_key if order_key is not None else np.random.default_rng(seed).random(len(pool))
        groups = _groups(pool[f"cluster_l{level}"].to_numpy(), units, key)
    cap = groups.totals * max_repeats
    achievable = float(cap[p > 0].sum())
    if achievable < target * (1 - TOL):
        if strict:
            raise MixtureTargetError(
                f"mixture {name!r}: the filtered pool can supply at most {achievable:,.0f} {unit} with these "
                f"weights and max_repeats={max_repeats} (pool total {groups.totals.sum():,.0f} {unit}); "
                f"target {int(target):,}. Lower the target, loosen the filters or raise max_repeats.")
        target = achievable
    a = _alloc_capped(p, cap, min(target, achievable))
    if unit == "documents":
        a = _largest_remainder(a, int(round(min(target, achievable))), cap.astype(np.int64)).astype(np.float64)
    reps = _fill(groups, a, unit == "documents", max_repeats)
    return reps, groups, a


def _selection(pool: pd.DataFrame, reps: np.ndarray) -> pd.DataFrame:
    cols = ["doc_id", "snapshot", "shard", *cluster_columns(pool), "quality"]
    cols += [c for c in ("n_tokens",) if c in pool.columns]
    cols = [c for c in cols if c in pool.columns]
    m = reps > 0
    sel = pool.loc[m, cols].reset_index(drop=True)
    sel["repeats"] = reps[m].astype(np.int64)
    return sel


def _top_weights(sel: pd.DataFrame, unit: str, L: int) -> dict[int, float]:
    u = sel["repeats"].to_numpy(dtype=np.float64)
    if unit == "tokens":
        u = u * sel["n_tokens"].to_numpy(dtype=np.float64)
    s = pd.Series(u).groupby(sel[f"cluster_l{L}"].to_numpy()).sum()
    tot = float(s.sum())
    return {int(k): float(v / tot) for k, v in s.items()} if tot > 0 else {}


# ------------------------------------------------------------------------------------------------
# balanced


def _balanced(pool: pd.DataFrame, spec: MixtureSpec, paths: np.ndarray, units: np.ndarray) -> tuple[np.ndarray, dict]:
    strategy = spec.options.get("within_leaf", "random")
    dist = None
    if strategy == "closest":
        for c in ("distance", "leaf_distance", "cluster_distance"):
            if c in pool.columns:
                dist = pool[c].to_numpy(dtype=np.float64)
                break
        if dist is None:
            raise ValueError(f"mixture {spec.name!r}: within_leaf 'closest' needs a distance column in the pool")
    n = len(pool)
    target = spec.size.value
    total = float(units.sum())
    if total < target * (1 - TOL):
        raise MixtureTargetError(f"mixture {spec.name!r}: the filtered pool holds {total:,.0f} {spec.size.unit} "
                                 f"({n:,} documents); target {target:,} (balanced takes each document at most once)")

    def draw(k: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TargetExceedsTotalWarning)
            return balanced_sample(paths, min(k, n), dist, strategy=strategy, seed=spec.seed)

    steps = 0
    if spec.size.unit == "documents":
        sel = draw(target)
    else:
        mean = total / max(n, 1)
        k = int(min(n, max(1, round(target / max(mean, 1e-9)))))
        lo, hi = 0, n  # bracket: T(lo) < target <= T(hi) (approximately monotone)
        sel = draw(k)
        for steps in range(1, 13):
            got = float(units[sel].sum())
            if abs(got - target) <= 0.5 * TOL * target or (k == n and got < target):
                break
            if got < target:
                lo = max(lo, k)
            else:
                hi = min(hi, k)
            k_new = int(round(k * target / max(got, 1e-9)))
            if not lo < k_new < hi:
                k_new = (lo + hi) // 2
            if k_new == k:
                break
            k = k_new
            sel = draw(k)
        got = float(units[sel].sum())
        if abs(got - target) > 0.5 * TOL * target:  # fine adjustment, one document at a time
            rng = np.random.default_rng([spec.seed, 1])
            in_sel = np.zeros(n, dtype=bool)
            in_sel[sel] = True
            if got > target:
                cand = rng.permutation(sel)
                cs = np.cumsum(units[cand])
                drop = int(np.searchsorted(cs, got - target, side="left"))
                in_sel[cand[:drop]] = False
            else:
                cand = rng.permutation(np.flatnonzero(~in_sel))
                cs = np.cumsum(units[cand])
                add = int(np.searchsorted(cs, target - got, side="left")) + 1
                in_sel[cand[:add]] = True
            sel = np.flatnonzero(in_sel)
    reps = np.zeros(n, dtype=np.int64)
    reps[sel] = 1
    return reps, {"within_leaf": strategy, "token_steps": steps}


# ------------------------------------------------------------------------------------------------


def build_mixture(
    pool: pd.DataFrame,
    spec: MixtureSpec,
    tree_parents: Sequence[np.ndarray] | None = None,
    names: Sequence[Mapping[int, str]] | None = None,
    keywords: Sequence[Mapping[int, Any]] | None = None,
    evaluator: Callable[[Any, Any], float] | None = None,
    *,
    filtered: bool = False,
    on_candidate: Callable[[Any], Any] | None = None,
) -> MixtureResult:
    """Filter the pool (unless ``filtered``), apply the spec's policy, return the selection.

    tree_parents: the tree's parent arrays (only used to check that the pool's paths agree with
    the tree); names / keywords: per level (0-based, leaf first) ``{cluster id: name | [words]}``
    for keyword filters and weights; evaluator: ``(sample, weights) -> float`` for ``search``;
    on_candidate: called with each evaluated search candidate (:class:`.search.Candidate`)."""
    if filtered:
        fpool, removed = pool.reset_index(drop=True), {}
    else:
        fpool, removed = apply_filters(pool, spec, keywords, names)
    cols = cluster_columns(fpool)
    L = len(cols)
    if tree_parents is not None and len(fpool):
        if len(tree_parents) != L - 1:
            raise ValueError(f"tree has {len(tree_parents) + 1} levels but the pool has {L} cluster columns")
        for t, par in enumerate(tree_parents):
            child = fpool[cols[t]].to_numpy()
            par = np.asarray(par)
            if child.max() >= len(par) or not np.array_equal(par[child], fpool[cols[t + 1]].to_numpy()):
                raise ValueError(f"pool paths disagree with the tree's parents at level {t + 1} -> {t + 2}")
    if not len(fpool):
        raise MixtureTargetError(f"mixture {spec.name!r}: no documents left after the filters {removed}")
    unit = spec.size.unit
    target = spec.size.value
    units = _units(fpool, unit)
    o = spec.options
    details: dict[str, Any] = {}
    policy = spec.policy

    if policy == "balanced":
        reps, details = _balanced(fpool, spec, fpool[cols].to_numpy(dtype=np.int64), units)
    elif policy == "weighted":
        level = _level(o.get("level"), L)
        key = np.random.default_rng(spec.seed).random(len(fpool))
        g = _groups(fpool[cols[level - 1]].to_numpy(), units, key)
        p = _shares_from_weights(fpool, level, g, o, keywords, names)
        reps, g, a = draw_weighted(fpool, level, p, target, unit, max_repeats=int(o.get("max_repeats", 1)),
                                   groups=g, name=spec.name)
        details = {"level": level, "shares": {int(c): float(x) for c, x in zip(g.ids, p)},
                   "temperature": float(o.get("temperature", 1.0)), "max_repeats": int(o.get("max_repeats", 1))}
    elif policy == "quality_topk":
        level = _level(o.get("level"), L)
        rng = np.random.default_rng(spec.seed)
        q = fpool["quality"].to_numpy(dtype=np.float64)
        gs = float(o.get("gumbel_scale", 0.0))
        score = q + gs * rng.gumbel(size=len(q)) if gs > 0 else q.copy()
        # within-group order: best score first, ties by row order
        g = _groups(fpool[cols[level - 1]].to_numpy(), units, -score)
        src = o.get("shares_from", "balanced")
        if src == "prior":
            p = g.totals / g.totals.sum()
        elif src == "weighted":
            p = _shares_from_weights(fpool, level, g, o, keywords, names)
        else:  # balanced water-filling through the levels at and above ``level``
            mean = float(units.mean())
            k = int(min(len(fpool), round(target / mean))) if unit == "tokens" else min(target, len(fpool))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TargetExceedsTotalWarning)
                sel = balanced_sample(fpool[cols[level - 1:]].to_numpy(dtype=np.int64), k, seed=spec.seed)
            lv = fpool[cols[level - 1]].to_numpy()[sel]
            cnt = np.bincount(np.searchsorted(g.ids, lv), minlength=len(g.ids)).astype(np.float64)
            if unit == "tokens":  # doc counts -> token amounts at each cluster's mean doc length
                cnt = cnt * g.totals / np.maximum(g.counts, 1)
            p = cnt / cnt.sum()
        reps, g, a = draw_weighted(fpool, level, p, target, unit, max_repeats=1, groups=g, name=spec.name)
        details = {"level": level, "shares_from": src, "gumbel_scale": gs,
                   "shares": {int(c): float(x) for c, x in zip(g.ids, p)}}
    elif policy == "search":
        if evaluator is None:
            raise ValueError(f"mixture {spec.name!r}: the search policy needs an evaluator")
        reps, details = _search(fpool, spec, cols, units, evaluator, on_candidate)
    else:
        raise ValueError(f"unknown policy {policy!r}")

    sel = _selection(fpool, reps)
    achieved_f = float((reps * units).sum())
    _check(achieved_f, target, unit, spec.name, f"policy {policy}")
    return MixtureResult(selection=sel, weights=_top_weights(sel, unit, L), filtered_out=removed, target=target,
                         achieved=int(round(achieved_f)), unit=unit, policy=policy, details=details)


def _search(fpool: pd.DataFrame, spec: MixtureSpec, cols: list[str], units: np.ndarray,
            evaluator: Callable[[Any, Any], float], on_candidate: Callable | None) -> tuple[np.ndarray, dict]:
    o = spec.options
    L = len(cols)
    max_rep = int(o.get("max_repeats", 1))
    key = np.random.default_rng(spec.seed).random(len(fpool))
    g = _groups(fpool[cols[-1]].to_numpy(), units, key)
    prior = g.totals / g.totals.sum()
    # the evaluation sample: a fixed-size document draw with the candidate's weights, using the same
    # within-cluster random order for every candidate (common random numbers: less evaluator noise)
    gd = _groups(fpool[cols[-1]].to_numpy(), np.ones(len(fpool)), key)
    n_eval = int(o.get("eval_sample_documents", min(20_000, len(fpool))))
    sample_cols = [c for c in ("doc_id", "snapshot", "shard", *cols, "quality", "n_tokens") if c in fpool.columns]
    ids = [int(c) for c in g.ids]

    def evaluate(w: np.ndarray) -> float:
        reps, _, _ = draw_weighted(fpool, L, w, n_eval, "documents", max_repeats=max_rep, groups=gd, strict=False)
        m = np.flatnonzero(reps)
        sample = fpool.iloc[m][sample_cols].reset_index(drop=True)
        sample["repeats"] = reps[m]
        return float(evaluator(sample, dict(zip(ids, map(float, w)))))

    rounds = tuple(o.get("rounds", (64, 32, 16)))
    res = search_mixture(prior, evaluate, rounds=rounds, scale=float(o.get("scale", 1.0)), seed=spec.seed,
                         pool_size=int(o.get("pool_size", 100_000)), on_candidate=on_candidate)
    T = float(o.get("temperature", 1.0))
    w = res.best_weights ** (1.0 / T)
    p = w / w.sum()
    reps, _, _ = draw_weighted(fpool, L, p, spec.size.value, spec.size.unit, max_repeats=max_rep, groups=g,
                               name=spec.name)
    history = [{"round": c.round, "weights": dict(zip(ids, map(float, c.weights))), "score": c.score,
                "predicted": c.predicted} for c in res.history]
    return reps, {"best_score": res.best_score, "best_round": res.best_round, "prior": dict(zip(ids, map(float, prior))),
                  "best_weights": dict(zip(ids, map(float, res.best_weights))), "history": history,
                  "n_evaluated": len(history), "eval_sample_documents": n_eval}
