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

Size: ``spec.size`` is resolved against the filtered pool (fractions, capped amounts), so one
spec fits pools of any size. Every policy ends with the same last pass (:func:`_converge`): single
documents of fitting size are added or dropped, cluster by cluster where the policy has per-cluster
amounts (so shares hold), until the total is within 0.5%; if long documents leave it farther
off, one document selected once is cut at the boundary (``n_tokens_used`` < ``n_tokens`` on that
row; trainers pack sequences anyway). Targets are thus met within +/-1% whenever the pool can
supply them; otherwise :class:`MixtureTargetError` names the achievable range.

Duplicates: the pool may carry ``duplicate_group`` and ``duplicate_method`` (from the dedup files,
see :mod:`.duplicates`). Exact copies are always dropped; removed semantic duplicates are dropped
unless ``drop_semantic_duplicates: false``; and whatever is left, each duplicate group keeps one
document (the one dedup kept when it passed the filters, else the best by quality), so a mixture
never holds two copies of one document -- repeats (``max_repeats``) are of that one document.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..cluster.sampling import TargetExceedsTotalWarning, balanced_sample
from .search import clip_to_caps, search_mixture
from .spec import DEFAULT_MAX_SHARE, ClusterRef, MixtureSpec, keyword_matches

__all__ = [
    "MixtureResult",
    "MixtureTargetError",
    "SearchPlan",
    "apply_filters",
    "build_mixture",
    "cluster_columns",
    "draw_weighted",
    "plan_search",
]

TOL = 0.01
# The last pass stops once within half the tolerance: whole documents whenever that is possible,
# and a margin under the gate's 1% for the rare cut.
CUT_TOL = TOL / 2
# Most candidates in the search's proposal pool per free dimension (top-level clusters - 1): a pool
# over two clusters is a line, 10,000 points on it are plenty.
POOL_PER_DIMENSION = 10_000


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


def _removed_by_dedup(pool: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(exact copy, removed semantic duplicate) per row. Without a ``duplicate_method`` column the
    ``is_semantic_duplicate`` flag is all there is (and counts as semantic)."""
    n = len(pool)
    flag = (pool["is_semantic_duplicate"].fillna(False).to_numpy(dtype=bool) if "is_semantic_duplicate" in pool.columns
            else np.zeros(n, dtype=bool))
    if "duplicate_method" not in pool.columns:
        return np.zeros(n, dtype=bool), flag
    method = pool["duplicate_method"].to_numpy(dtype=object)
    exact = method == "exact"
    return exact, ~exact & ((method == "semantic") | flag)


def _one_per_group(pool: pd.DataFrame, keep: np.ndarray) -> np.ndarray:
    """Rows of ``keep`` that stay when each duplicate group keeps one: the member dedup kept if it
    is among them, else the best by quality (ties by doc id, so the choice does not depend on row
    order)."""
    rows = np.flatnonzero(keep)
    if "duplicate_group" not in pool.columns or not len(rows):
        return keep
    sub = pool.iloc[rows]
    frame = pd.DataFrame({
        "row": rows,
        "group": sub["duplicate_group"].astype(str).to_numpy(),
        "removed": sub["duplicate_method"].notna().to_numpy() if "duplicate_method" in sub.columns
        else np.zeros(len(rows), dtype=bool),
        "quality": -sub["quality"].to_numpy(dtype=np.float64),
        "doc_id": sub["doc_id"].astype(str).to_numpy(),
    })
    first = frame.sort_values(["group", "removed", "quality", "doc_id"], kind="stable").drop_duplicates("group")
    out = np.zeros(len(pool), dtype=bool)
    out[first["row"].to_numpy()] = True
    return out


def apply_filters(pool: pd.DataFrame, spec: MixtureSpec, keywords_by_cluster: Any = None,
                  names: Any = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Scope, ``min_quality``, ``languages`` and ``min_language_score`` (when the spec names them),
    documents sharing an n-gram with an evaluation set (``decontamination``), exact copies (always), removed semantic duplicates (unless the spec keeps them), excluded
    clusters (ids or name keywords), then one document per duplicate group, in that order; returns
    the kept rows and how many each filter removed."""
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
    if spec.filters.languages:
        step("languages", pool["language"].isin(list(spec.filters.languages)).to_numpy())
    if spec.filters.min_language_score > 0:
        score = pool["language_score"].to_numpy(dtype=np.float64)
        step("min_language_score", ~(score < spec.filters.min_language_score))
    if spec.decontamination.sets:
        if "contaminated_by" not in pool.columns:
            raise ValueError("the spec names evaluation sets but the pool was not checked against them "
                             "(crawlmix.mixture_steps.mark_contamination)")
        step("decontamination", (pool["contaminated_by"] == "").to_numpy())
    exact, semantic = _removed_by_dedup(pool)
    step("exact_duplicates", ~exact)
    if spec.filters.drop_semantic_duplicates:
        step("semantic_duplicates", ~semantic)
    else:
        counts["semantic_duplicates"] = 0
    refs: list[ClusterRef] = []
    for e in spec.filters.exclude_clusters:
        refs += keyword_matches(e, keywords_by_cluster, names) if isinstance(e, str) else [e]
    step("exclude_clusters", ~_rows_in(pool, refs) if refs else np.ones(len(pool), bool))
    step("duplicate_copies", _one_per_group(pool, keep))
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


def _row_groups(g: _Groups) -> np.ndarray:
    """Group index of every pool row (the inverse of ``g.order``)."""
    gid = np.empty(len(g.order), dtype=np.int64)
    gid[g.order] = g.gid_sorted
    return gid


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


def _unreachable(name: str, target: float, unit: str, most: float, why: str) -> MixtureTargetError:
    return MixtureTargetError(
        f"mixture {name!r}: target {int(target):,} {unit} is out of reach: the filtered pool can supply "
        f"1 to {most:,.0f} {unit} ({why}). Lower the target (or use a relative size such as "
        f"{{{unit}_fraction: 0.5}}), loosen the filters or raise max_repeats.")


def draw_weighted(pool: pd.DataFrame, level: int, p: np.ndarray | None, target: float, unit: str, *,
                  max_repeats: int = 1, seed: int = 0, groups: _Groups | None = None,
                  order_key: np.ndarray | None = None, name: str = "?", strict: bool = True
                  ) -> tuple[np.ndarray, _Groups, np.ndarray]:
    """Repeats per pool row for shares ``p`` over the clusters at ``level`` (in the order of the
    groups' sorted ids), and the continuous amount per cluster. Raises :class:`MixtureTargetError`
    when the pool cannot supply ``target`` (with ``strict``; otherwise takes what it can)."""
    units = _units(pool, unit)
    if groups is None:
        key = order_key if order_key is not None else np.random.default_rng(seed).random(len(pool))
        groups = _groups(pool[f"cluster_l{level}"].to_numpy(), units, key)
    cap = groups.totals * max_repeats
    achievable = float(cap[p > 0].sum())
    if achievable < target * (1 - TOL):
        if strict:
            raise _unreachable(name, target, unit, achievable,
                               f"at most {achievable:,.0f} with these weights and max_repeats={max_repeats}; "
                               f"pool total {groups.totals.sum():,.0f} {unit}")
        target = achievable
    a = _alloc_capped(p, cap, min(target, achievable))
    if unit == "documents":
        a = _largest_remainder(a, int(round(min(target, achievable))), cap.astype(np.int64)).astype(np.float64)
    reps = _fill(groups, a, unit == "documents", max_repeats)
    return reps, groups, a


# ------------------------------------------------------------------------------------------------
# the last pass: add / drop documents of fitting size, then cut one at the boundary


@dataclass
class _Fill:
    """A policy's draw and what the last pass needs to adjust it the policy's way."""

    reps: np.ndarray  # copies per pool row
    max_repeats: int
    eligible: np.ndarray  # rows the policy may add (those in clusters it gives weight)
    rank: np.ndarray  # preference per row, lower = better: added first, dropped last
    group: np.ndarray | None = None  # cluster index per row, to keep shares while adjusting
    amounts: np.ndarray | None = None  # the policy's units per cluster


def _interleave(rows: np.ndarray, fill: _Fill, units: np.ndarray, reps: np.ndarray, adding: bool) -> np.ndarray:
    """``rows`` in the order to add (or drop) them: inside a cluster by preference (best first to
    add, worst first to drop), across clusters by how far each is from its amount, so the
    clusters most short (or most over) move first and the shares hold."""
    rank = fill.rank[rows] if adding else -fill.rank[rows]
    if fill.group is None or fill.amounts is None:
        return rows[np.argsort(rank, kind="stable")]
    g = fill.group[rows]
    got = np.bincount(fill.group, weights=reps * units, minlength=len(fill.amounts))
    need = fill.amounts - got if adding else got - fill.amounts
    o = np.lexsort((rank, g))
    rs, gs = rows[o], g[o]
    us = units[rs]
    cs = np.cumsum(us)
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    before = np.repeat((cs - us)[starts], np.diff(np.r_[starts, len(gs)]))
    key = (cs - before) - us / 2 - need[gs]  # where the document's middle falls against the need
    return rs[np.argsort(key, kind="stable")]


def _adjust_pass(reps: np.ndarray, units: np.ndarray, fill: _Fill, gap: float, tol: float) -> float:
    """One pass adding (gap > 0) or dropping (gap < 0) single copies that fit in the gap, in place;
    returns the new gap. A document larger than the gap is never taken, so the pass cannot
    overshoot."""
    adding = gap > 0
    if adding:
        cand = fill.eligible & (reps < fill.max_repeats) & (units <= gap) & (units > 0)
    else:
        cand = (reps > 0) & (units <= -gap) & (units > 0)
    rows = np.flatnonzero(cand)
    if not len(rows):
        return gap
    ordered = _interleave(rows, fill, units, reps, adding)
    u = units[ordered]
    suffix_min = np.minimum.accumulate(u[::-1])[::-1]
    for i, r in enumerate(ordered.tolist()):
        if abs(gap) <= tol or abs(gap) < suffix_min[i]:
            break
        if u[i] <= abs(gap):
            if adding:
                reps[r] += 1
                gap -= u[i]
            else:
                reps[r] -= 1
                gap += u[i]
    return gap


def _converge(fill: _Fill, units: np.ndarray, target: int, unit: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(copies, units used per copy) within ``CUT_TOL`` of ``target``: passes over documents of
    fitting size first; if long documents leave the total farther off (tokens only), one document
    selected once is cut at the boundary (its ``used`` < its units)."""
    reps = fill.reps.astype(np.int64).copy()
    used = units.astype(np.float64).copy()
    tol = 0.0 if unit == "documents" else CUT_TOL * target
    gap = float(target - (reps * units).sum())
    for _ in range(fill.max_repeats + 1):  # a pass moves each row by one copy at most
        if abs(gap) <= tol:
            break
        new_gap = _adjust_pass(reps, units, fill, gap, tol)
        if new_gap == gap:
            break
        gap = new_gap
    if abs(gap) <= tol or unit == "documents":
        return reps, used
    whole, whole_gap = reps.copy(), gap  # whole documents only: acceptable if within the 1% after all
    if gap > 0:  # short: the best document left out goes in, cut to what is missing
        fresh = np.flatnonzero(fill.eligible & (reps == 0) & (units > 0))
        if len(fresh):
            r = int(fresh[np.argmin(fill.rank[fresh])])
            reps[r] = 1
            used[r] = gap  # every fitting document was added, so this one is longer than the gap
            return reps, used
        more = np.flatnonzero(fill.eligible & (reps < fill.max_repeats) & (units > 0))
        if not len(more):
            raise _unreachable(name, target, unit, float((reps * units).sum()), "every document is at its repeat cap")
        r = int(more[np.argmin(units[more])])  # the smallest overshoot
        reps[r] += 1
        gap -= units[r]
    # over by `excess`: cut one document selected once (the least preferred one that keeps at least
    # as much as it loses; else the longest); all that remain are longer than the excess
    excess = -gap
    once = np.flatnonzero((reps == 1) & (units > excess))
    if not len(once):
        if abs(whole_gap) <= TOL * target:
            return whole, used
        got = float((whole * units).sum())
        raise MixtureTargetError(
            f"mixture {name!r}: cannot land within 1% of {target:,} {unit}: whole documents give "
            f"{got:,.0f} ({100 * (got - target) / target:+.1f}%) and every selected document is repeated, so "
            "none can be cut at the boundary (a cut applies to a document taken once); lower the target "
            "or max_repeats")
    roomy = once[units[once] >= 2 * excess]
    r = int(roomy[np.argmax(fill.rank[roomy])]) if len(roomy) else int(once[np.argmax(units[once])])
    used[r] = units[r] - excess
    return reps, used


def _selection(pool: pd.DataFrame, reps: np.ndarray, used: np.ndarray | None = None) -> pd.DataFrame:
    cols = ["doc_id", "snapshot", "shard", *cluster_columns(pool), "quality"]
    cols += [c for c in ("language", "language_score", "n_tokens") if c in pool.columns]
    cols = [c for c in cols if c in pool.columns]
    m = reps > 0
    sel = pool.loc[m, cols].reset_index(drop=True)
    sel["repeats"] = reps[m].astype(np.int64)
    if "n_tokens" in sel.columns:
        # tokens of each copy that the mixture uses: n_tokens except on a document cut at the boundary
        n_tok = sel["n_tokens"].to_numpy(dtype=np.int64)
        sel["n_tokens_used"] = n_tok if used is None else np.rint(used[m]).astype(np.int64)
    return sel


def _top_weights(sel: pd.DataFrame, unit: str, L: int) -> dict[int, float]:
    u = sel["repeats"].to_numpy(dtype=np.float64)
    if unit == "tokens":
        u = u * sel["n_tokens_used"].to_numpy(dtype=np.float64)
    s = pd.Series(u).groupby(sel[f"cluster_l{L}"].to_numpy()).sum()
    tot = float(s.sum())
    return {int(k): float(v / tot) for k, v in s.items()} if tot > 0 else {}


# ------------------------------------------------------------------------------------------------
# balanced


def _balanced(pool: pd.DataFrame, spec: MixtureSpec, paths: np.ndarray, units: np.ndarray,
              target: int) -> tuple[_Fill, dict]:
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
    total = float(units.sum())
    if total < target * (1 - TOL):
        raise _unreachable(spec.name, target, spec.size.unit, total,
                           f"it holds {total:,.0f} {spec.size.unit} in {n:,} documents and balanced takes "
                           "each document at most once")

    def draw(k: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TargetExceedsTotalWarning)
            return balanced_sample(paths, min(k, n), dist, strategy=strategy, seed=spec.seed)

    steps = 0
    if spec.size.unit == "documents":
        sel = draw(target)
    else:  # secant steps on the document count; the last pass does the fine adjustment
        mean = total / max(n, 1)
        k = int(min(n, max(1, round(target / max(mean, 1e-9)))))
        lo, hi = 0, n  # bracket: T(lo) < target <= T(hi) (approximately monotone)
        sel = draw(k)
        for steps in range(1, 13):
            got = float(units[sel].sum())
            if abs(got - target) <= CUT_TOL * target or (k == n and got < target):
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
    reps = np.zeros(n, dtype=np.int64)
    reps[sel] = 1
    # adjustments go round-robin over the top-level clusters (each keeps its current amount as the
    # goal), in a seeded random order inside each, so the balance is kept
    top = paths[:, -1]
    ids, gid = np.unique(top, return_inverse=True)
    fill = _Fill(reps, 1, np.ones(n, dtype=bool), np.random.default_rng([spec.seed, 1]).random(n),
                 gid, np.bincount(gid, weights=reps * units, minlength=len(ids)))
    return fill, {"within_leaf": strategy, "token_steps": steps}


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
    units = _units(fpool, unit)
    pool_total = float(units.sum())
    target = spec.size.resolve(pool_total)
    o = spec.options
    details: dict[str, Any] = {}
    policy = spec.policy

    if policy == "balanced":
        fill, details = _balanced(fpool, spec, fpool[cols].to_numpy(dtype=np.int64), units, target)
    elif policy == "weighted":
        level = _level(o.get("level"), L)
        key = np.random.default_rng(spec.seed).random(len(fpool))
        g = _groups(fpool[cols[level - 1]].to_numpy(), units, key)
        p = _shares_from_weights(fpool, level, g, o, keywords, names)
        max_rep = int(o.get("max_repeats", 1))
        reps, g, a = draw_weighted(fpool, level, p, target, unit, max_repeats=max_rep, groups=g, name=spec.name)
        gid = _row_groups(g)
        fill = _Fill(reps, max_rep, p[gid] > 0, key, gid, a)
        details = {"level": level, "shares": {int(c): float(x) for c, x in zip(g.ids, p)},
                   "temperature": float(o.get("temperature", 1.0)), "max_repeats": max_rep}
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
            k = int(min(len(fpool), max(1, round(target / mean)))) if unit == "tokens" else min(target, len(fpool))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TargetExceedsTotalWarning)
                sel = balanced_sample(fpool[cols[level - 1:]].to_numpy(dtype=np.int64), k, seed=spec.seed)
            lv = fpool[cols[level - 1]].to_numpy()[sel]
            cnt = np.bincount(np.searchsorted(g.ids, lv), minlength=len(g.ids)).astype(np.float64)
            if unit == "tokens":  # doc counts -> token amounts at each cluster's mean doc length
                cnt = cnt * g.totals / np.maximum(g.counts, 1)
            p = cnt / cnt.sum()
        reps, g, a = draw_weighted(fpool, level, p, target, unit, max_repeats=1, groups=g, name=spec.name)
        gid = _row_groups(g)
        fill = _Fill(reps, 1, p[gid] > 0, -score, gid, a)
        details = {"level": level, "shares_from": src, "gumbel_scale": gs,
                   "shares": {int(c): float(x) for c, x in zip(g.ids, p)}}
    elif policy == "search":
        if evaluator is None:
            raise ValueError(f"mixture {spec.name!r}: the search policy needs an evaluator")
        fill, details = _search(fpool, spec, cols, units, target, evaluator, on_candidate)
    else:
        raise ValueError(f"unknown policy {policy!r}")

    reps, used = _converge(fill, units, target, unit, spec.name)
    sel = _selection(fpool, reps, used if unit == "tokens" else None)
    achieved_f = float((reps * used).sum())
    _check(achieved_f, target, unit, spec.name, f"policy {policy}")
    details["size"] = spec.size.describe()
    details["pool_total"] = pool_total
    details["cut_documents"] = int((sel["n_tokens_used"] < sel["n_tokens"]).sum()) if "n_tokens_used" in sel else 0
    return MixtureResult(selection=sel, weights=_top_weights(sel, unit, L), filtered_out=removed, target=target,
                         achieved=int(round(achieved_f)), unit=unit, policy=policy, details=details)


# ------------------------------------------------------------------------------------------------
# search


@dataclass(frozen=True)
class SearchPlan:
    """What a search on a given filtered pool may do, scaled to that pool.

    upper: the most weight each top-level cluster may take: ``min(max_share, max_repeats x its
    units / target)``, so every candidate can be drawn without passing the repeat cap, and no
    cluster passes the share cap. ``max_share`` is the spec's cap, raised to the most even split
    there is when fewer than 1 / max_share clusters can take weight (two clusters: 0.5).
    eval_sample_documents: the spec's, but no more than the mixture itself holds in documents nor
    than the smallest cluster can give at its upper weight. token_budget (n-gram evaluator): the
    spec's, but no more than the sample of any allowed candidate holds (documents of the shortest
    clusters up to their caps), so every candidate's proxy model trains on the same token count.
    pool_size: the spec's, at most POOL_PER_DIMENSION per free dimension.
    """

    cluster_ids: list[int]
    prior: np.ndarray
    upper: np.ndarray
    max_share: float
    max_share_requested: float
    max_repeats: int
    target: int
    eval_sample_documents: int
    token_budget: int | None
    pool_size: int

    @property
    def single_point(self) -> bool:
        """Only one mixture satisfies the caps (e.g. one top-level cluster, or two at max_share 0.5)."""
        return bool(self.upper.sum() <= 1 + 1e-9)


def _share_level(rep_cap: np.ndarray, max_share: float) -> float:
    """The smallest share cap s >= max_share with sum(min(s, rep_cap)) >= 1 (water level)."""
    if np.minimum(rep_cap, max_share).sum() >= 1 - 1e-12:
        return max_share
    remaining, c = 1.0, np.sort(rep_cap)
    for j, cj in enumerate(c):
        left = len(c) - j
        if cj * left >= remaining:
            return max(max_share, remaining / left)
        remaining -= cj
    return 1.0  # unreachable: the caller checks sum(rep_cap) >= 1 first


def _least_feasible_mean(means: np.ndarray, upper: np.ndarray) -> float:
    """The smallest mean document length a candidate within ``upper`` can have: the shortest
    clusters filled up to their caps first."""
    order = np.argsort(means)
    left, out = 1.0, 0.0
    for i in order:
        take = min(upper[i], left)
        out += take * means[i]
        left -= take
        if left <= 1e-12:
            break
    return out


def _plan(fpool: pd.DataFrame, spec: MixtureSpec, cols: list[str], units: np.ndarray, target: int) -> SearchPlan:
    o = spec.options
    top = fpool[cols[-1]].to_numpy()
    ids, gid = np.unique(top, return_inverse=True)
    totals = np.bincount(gid, weights=units, minlength=len(ids))
    counts = np.bincount(gid, minlength=len(ids)).astype(np.float64)
    max_rep = int(o.get("max_repeats", 1))
    if totals.sum() * max_rep < target * (1 - TOL):
        raise _unreachable(spec.name, target, spec.size.unit, totals.sum() * max_rep,
                           f"at most {totals.sum() * max_rep:,.0f} with max_repeats={max_rep}")
    rep_cap = np.minimum(max_rep * totals / max(target, 1), 1.0)
    if rep_cap.sum() < 1:  # within the 1% slack above: let the draw take everything it may
        rep_cap = rep_cap / rep_cap.sum()
    requested = float(o.get("max_share", DEFAULT_MAX_SHARE))
    level = _share_level(rep_cap, requested)
    upper = np.minimum(rep_cap, level)
    prior = totals / totals.sum()
    # the evaluation sample: every candidate's draw must fit under the repeat cap, and need not be
    # larger than the mixture itself
    can = upper > 0
    target_docs = target if spec.size.unit == "documents" else int(math.ceil(target / max(units.mean(), 1e-9)))
    drawable = int(np.floor((max_rep * counts[can] / upper[can]).min())) if can.any() else 1
    n_eval = max(1, min(int(o.get("eval_sample_documents", 20_000)), drawable, target_docs))
    evaluator = o.get("evaluator") or {"type": "ngram"}
    budget = None
    if evaluator.get("type", "ngram") == "ngram":
        budget = int(evaluator.get("token_budget", 200_000))
        if "n_tokens" in fpool.columns:
            tokens = np.bincount(gid, weights=fpool["n_tokens"].to_numpy(dtype=np.float64), minlength=len(ids))
            least = _least_feasible_mean(tokens[can] / np.maximum(counts[can], 1), upper[can])
            budget = max(1, min(budget, int(n_eval * least)))
    free = int(can.sum()) - 1
    pool_size = max(1, min(int(o.get("pool_size", 100_000)), POOL_PER_DIMENSION * max(free, 1)))
    return SearchPlan([int(c) for c in ids], prior, upper, float(level), requested, max_rep, target, n_eval,
                      budget, pool_size)


def plan_search(pool: pd.DataFrame, spec: MixtureSpec, keywords: Any = None, names: Any = None, *,
                filtered: bool = False) -> SearchPlan:
    """The :class:`SearchPlan` :func:`build_mixture` will follow for this pool and spec (for sizing
    the evaluator before the search: the n-gram proxy's token budget)."""
    fpool = pool.reset_index(drop=True) if filtered else apply_filters(pool, spec, keywords, names)[0]
    if not len(fpool):
        raise MixtureTargetError(f"mixture {spec.name!r}: no documents left after the filters")
    units = _units(fpool, spec.size.unit)
    return _plan(fpool, spec, cluster_columns(fpool), units, spec.size.resolve(float(units.sum())))


def _search(fpool: pd.DataFrame, spec: MixtureSpec, cols: list[str], units: np.ndarray, target: int,
            evaluator: Callable[[Any, Any], float], on_candidate: Callable | None) -> tuple[_Fill, dict]:
    o = spec.options
    L = len(cols)
    plan = _plan(fpool, spec, cols, units, target)
    max_rep = plan.max_repeats
    key = np.random.default_rng(spec.seed).random(len(fpool))
    g = _groups(fpool[cols[-1]].to_numpy(), units, key)
    # the evaluation sample: a fixed-size document draw with the candidate's weights, using the same
    # within-cluster random order for every candidate (common random numbers: less evaluator noise)
    gd = _groups(fpool[cols[-1]].to_numpy(), np.ones(len(fpool)), key)
    n_eval = plan.eval_sample_documents
    sample_cols = [c for c in ("doc_id", "snapshot", "shard", *cols, "quality", "n_tokens") if c in fpool.columns]
    ids = plan.cluster_ids

    def evaluate(w: np.ndarray) -> float:
        reps, _, _ = draw_weighted(fpool, L, w, n_eval, "documents", max_repeats=max_rep, groups=gd, strict=False)
        m = np.flatnonzero(reps)
        sample = fpool.iloc[m][sample_cols].reset_index(drop=True)
        sample["repeats"] = reps[m]
        return float(evaluator(sample, dict(zip(ids, map(float, w)))))

    rounds = tuple(o.get("rounds", (64, 32, 16)))
    res = search_mixture(plan.prior, evaluate, rounds=rounds, scale=float(o.get("scale", 1.0)), seed=spec.seed,
                         pool_size=plan.pool_size, on_candidate=on_candidate, upper=plan.upper)
    T = float(o.get("temperature", 1.0))
    w = res.best_weights ** (1.0 / T)
    p = clip_to_caps(w / w.sum(), plan.upper)  # tempering may push a weight past its cap: back under
    reps, _, a = draw_weighted(fpool, L, p, target, spec.size.unit, max_repeats=max_rep, groups=g, name=spec.name)
    gid = _row_groups(g)
    fill = _Fill(reps, max_rep, p[gid] > 0, key, gid, a)
    history = [{"round": c.round, "weights": dict(zip(ids, map(float, c.weights))), "score": c.score,
                "predicted": c.predicted} for c in res.history]
    return fill, {"best_score": res.best_score, "best_round": res.best_round, "prior": dict(zip(ids, map(float, plan.prior))),
                  "best_weights": dict(zip(ids, map(float, res.best_weights))), "history": history,
                  "n_evaluated": len(history), "eval_sample_documents": n_eval, "token_budget": plan.token_budget,
                  "pool_size": plan.pool_size, "max_share": plan.max_share,
                  "max_share_requested": plan.max_share_requested, "max_repeats": max_rep,
                  "upper": dict(zip(ids, map(float, plan.upper))), "shares": dict(zip(ids, map(float, p)))}
