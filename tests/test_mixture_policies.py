"""Mixture policies on synthetic pools: balanced entropy, weighted repeats, quality top-k, filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crawlmix.cluster import fit_hierarchical_kmeans, paths_from_leaves
from crawlmix.mixture import (
    MixtureTargetError,
    apply_filters,
    build_mixture,
    parse_mixture_spec,
)


def make_pool(paths: np.ndarray, seed: int = 0, snapshots=("s1", "s2")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, L = paths.shape
    df = pd.DataFrame({
        "doc_id": [f"d{i}" for i in range(n)],
        "snapshot": rng.choice(list(snapshots), size=n),
        "shard": rng.integers(0, 4, size=n).astype(str),
    })
    for t in range(L):
        df[f"cluster_l{t + 1}"] = paths[:, t].astype(np.int64)
    df["quality"] = rng.random(n)
    df["is_semantic_duplicate"] = rng.random(n) < 0.05
    df["n_tokens"] = rng.integers(50, 1500, size=n)
    return df


def synthetic_tree(n: int, ks=(60, 12, 4), seed: int = 0):
    rng = np.random.default_rng(seed)
    parents = [rng.integers(0, ks[t + 1], size=ks[t]) for t in range(len(ks) - 1)]
    for t in range(len(parents)):  # every upper cluster has a child
        parents[t][: ks[t + 1]] = np.arange(ks[t + 1])
    # long-tailed leaf sizes
    p = 1.0 / np.arange(1, ks[0] + 1) ** 1.1
    leaves = rng.choice(ks[0], size=n, p=p / p.sum())
    return paths_from_leaves(leaves, parents), parents


def spec(**kw):
    d = {"name": "t", "size": {"documents": 1000}, "policy": "balanced", "seed": 1}
    d.update(kw)
    return parse_mixture_spec(d)


def norm_entropy(labels: np.ndarray, k: int) -> float:
    c = np.bincount(labels, minlength=k).astype(float)
    p = c[c > 0] / c.sum()
    return float(-(p * np.log(p)).sum() / np.log(k))


def test_balanced_long_tailed_gaussians_entropy():
    rng = np.random.default_rng(0)
    sizes = [20000, 6000, 2000, 600, 200, 100, 60, 40]
    means = rng.normal(size=(8, 8)) * 8
    x = np.concatenate([rng.normal(size=(s, 8)) + means[i] for i, s in enumerate(sizes)]).astype(np.float32)
    truth = np.repeat(np.arange(8), sizes)
    # three levels with resampling (Vo et al.): the top level is close to the true components
    tree = fit_hierarchical_kmeans(x, ks=[100, 20, 8], n_iter=20, spherical=False, seed=0,
                                   resampling_steps=[0, 10, 10])
    pool = make_pool(tree.paths)
    pool["is_semantic_duplicate"] = False
    res = build_mixture(pool, spec(size={"documents": 800}), tree.parents)
    assert len(res.selection) == 800 and res.achieved == 800
    assert (res.selection["repeats"] == 1).all()
    picked = truth[res.selection["doc_id"].str[1:].astype(int).to_numpy()]
    h = norm_entropy(picked, 8)
    assert h >= 0.9, h
    # uniform random sampling is far less balanced
    assert norm_entropy(truth[rng.choice(len(truth), 800, replace=False)], 8) < 0.7


def test_balanced_tokens_within_one_percent_and_closest():
    paths, parents = synthetic_tree(20000)
    pool = make_pool(paths)
    pool["distance"] = np.random.default_rng(3).random(len(pool))
    res = build_mixture(pool, spec(size={"tokens": 2_000_000}), parents)
    assert res.unit == "tokens" and abs(res.achieved - 2_000_000) <= 20_000
    assert res.achieved == int(res.selection["n_tokens"].sum())
    assert abs(sum(res.weights.values()) - 1) < 1e-9
    res2 = build_mixture(pool, spec(size={"documents": 500}, options={"within_leaf": "closest"}), parents)
    assert len(res2.selection) == 500
    with pytest.raises(MixtureTargetError, match="holds"):
        build_mixture(pool, spec(size={"documents": 10**6}), parents)


def test_filters_counts_and_exclusion():
    paths, parents = synthetic_tree(5000)
    pool = make_pool(paths)
    names = [{i: f"{i}_leaf" for i in range(60)}, {i: f"{i}_mid" for i in range(12)},
             {0: "0_casino_poker", 1: "1_science", 2: "2_news", 3: "3_sports"}]
    sp = spec(scope=["s1"], filters={"min_quality": 0.3, "exclude_clusters": [{"level": 1, "id": 0}, "casino"]})
    fp, counts = apply_filters(pool, sp, None, names)
    assert set(fp["snapshot"]) == {"s1"} and fp["quality"].min() >= 0.3
    assert not fp["is_semantic_duplicate"].any()
    assert (fp["cluster_l1"] != 0).all() and (fp["cluster_l3"] != 0).all()
    assert sum(counts.values()) + len(fp) == len(pool)
    assert set(counts) == {"scope", "min_quality", "exact_duplicates", "semantic_duplicates", "exclude_clusters",
                           "duplicate_copies"}
    # no dedup file links in this pool: only the flag-driven filters remove anything
    assert counts["exact_duplicates"] == counts["duplicate_copies"] == 0
    assert all(counts[k] > 0 for k in ("scope", "min_quality", "semantic_duplicates", "exclude_clusters"))


def test_weighted_repeat_cap_and_target():
    paths, parents = synthetic_tree(20000)
    pool = make_pool(paths)
    top = pool["cluster_l3"].to_numpy()
    small = int(np.argmin(np.bincount(top)))
    n_small = int(((top == small) & ~pool["is_semantic_duplicate"]).sum())
    # ask the smallest top cluster for far more than it has: it repeats up to 3x, rest redistributed
    sp = spec(policy="weighted", size={"documents": 15000},
              options={"weights": {small: 10.0}, "default_weight": 1.0, "max_repeats": 3})
    res = build_mixture(pool, sp, parents)
    sel = res.selection
    assert abs(res.achieved - 15000) <= 150 and int(sel["repeats"].sum()) == res.achieved
    assert sel["repeats"].max() <= 3 and sel["repeats"].min() >= 1
    s_small = sel[sel["cluster_l3"] == small]
    assert int(s_small["repeats"].sum()) == 3 * n_small  # saturated at the cap
    assert s_small["doc_id"].is_unique and sel["doc_id"].is_unique
    # tokens target, temperature sampling (no weights)
    sp = spec(policy="weighted", size={"tokens": 5_000_000}, options={"temperature": 2.0, "max_repeats": 2})
    res = build_mixture(pool, sp, parents)
    assert abs(res.achieved - 5_000_000) <= 50_000 and res.selection["repeats"].max() <= 2
    sizes = pool[~pool["is_semantic_duplicate"]].groupby("cluster_l3")["n_tokens"].sum()
    # T = 2 flattens the distribution: the largest cluster's share falls below its natural share
    big = int(sizes.idxmax())
    assert res.weights[big] < sizes[big] / sizes.sum()
    # not achievable: the error says how much is
    with pytest.raises(MixtureTargetError, match="at most"):
        build_mixture(pool, spec(policy="weighted", size={"documents": 100_000}, options={"max_repeats": 2}), parents)


def test_weighted_keyword_weights_and_level():
    paths, parents = synthetic_tree(8000)
    pool = make_pool(paths)
    names = [{}, {}, {0: "0_casino", 1: "1_science", 2: "2_news", 3: "3_sports"}]
    sp = spec(policy="weighted", size={"documents": 2000}, options={"weights": {"science": 1.0, 2: 1.0}})
    res = build_mixture(pool, sp, parents, names=names)
    assert set(res.weights) == {1, 2} and abs(res.weights[1] - 0.5) < 0.01
    sp = spec(policy="weighted", size={"documents": 2000}, options={"level": 2, "temperature": 0.5})
    res = build_mixture(pool, sp, parents)
    assert res.details["level"] == 2 and len(res.selection) == 2000


@pytest.mark.parametrize("shares_from", ["balanced", "prior", "weighted"])
def test_quality_topk_takes_the_best_in_each_cluster(shares_from):
    paths, parents = synthetic_tree(20000)
    pool = make_pool(paths)
    opts = {"shares_from": shares_from, "level": 2}
    if shares_from == "weighted":
        opts["temperature"] = 3.0
    res = build_mixture(pool, spec(policy="quality_topk", size={"documents": 3000}, options=opts), parents)
    assert len(res.selection) == 3000
    fp, _ = apply_filters(pool, spec(policy="quality_topk", size={"documents": 3000}, options=opts))
    chosen = set(res.selection["doc_id"])
    for c, grp in fp.groupby("cluster_l2"):
        sel = grp["doc_id"].isin(chosen)
        if sel.any() and (~sel).any():
            assert grp.loc[sel, "quality"].min() >= grp.loc[~sel, "quality"].max()
    # with Gumbel noise the choice is softer but still favours quality, and is seeded
    o2 = {**opts, "gumbel_scale": 0.1}
    a = build_mixture(pool, spec(policy="quality_topk", size={"documents": 3000}, options=o2), parents)
    b = build_mixture(pool, spec(policy="quality_topk", size={"documents": 3000}, options=o2), parents)
    assert a.selection["doc_id"].tolist() == b.selection["doc_id"].tolist()
    assert a.selection["quality"].mean() > fp["quality"].mean() + 0.2


def test_quality_topk_tokens_target():
    paths, parents = synthetic_tree(20000)
    pool = make_pool(paths)
    res = build_mixture(pool, spec(policy="quality_topk", size={"tokens": 3_000_000}), parents)
    assert abs(res.achieved - 3_000_000) <= 30_000


def test_search_policy_end_to_end():
    paths, parents = synthetic_tree(20000)
    pool = make_pool(paths)
    seen = []

    def evaluator(sample, weights):  # prefers top cluster 1
        return float((sample["cluster_l3"] == 1).mean())

    sp = spec(policy="search", size={"documents": 4000},
              options={"rounds": [16, 8], "pool_size": 5000, "eval_sample_documents": 500, "max_repeats": 2})
    res = build_mixture(pool, sp, parents, evaluator=evaluator, on_candidate=seen.append)
    assert len(seen) == 24 and res.details["n_evaluated"] == 24
    assert abs(res.achieved - 4000) <= 40
    assert res.weights[1] > res.details["prior"][1]
    with pytest.raises(ValueError, match="evaluator"):
        build_mixture(pool, sp, parents)


def test_tree_mismatch_is_rejected():
    paths, parents = synthetic_tree(2000)
    pool = make_pool(paths)
    bad = [p.copy() for p in parents]
    bad[0] = (bad[0] + 1) % 12
    with pytest.raises(ValueError, match="disagree"):
        build_mixture(pool, spec(size={"documents": 100}), bad)
