"""Size targets on any pool: token fills converge within 1%, relative sizes, the default file on small pools."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crawlmix
from crawlmix.mixture import (
    MixtureTargetError,
    NgramLMEvaluator,
    build_mixture,
    draw_weighted,
    load_mixture_specs,
    parse_mixture_spec,
)

DEFAULT_FILE = Path(crawlmix.__file__).parent / "sample" / "mixtures.yaml"


def random_pool(rng: np.random.Generator, n: int, k_top: int, long_share: float) -> pd.DataFrame:
    """``n`` documents over ``k_top`` top-level clusters (2 leaves each); a ``long_share`` of them
    are long pages (3k-60k tokens), the rest short (20-400 tokens)."""
    top = rng.integers(0, k_top, size=n)
    long = rng.random(n) < long_share
    tokens = np.where(long, rng.integers(3_000, 60_000, size=n), rng.integers(20, 400, size=n))
    return pd.DataFrame({
        "doc_id": [f"d{i}" for i in range(n)], "snapshot": "s", "shard": "0",
        "cluster_l1": top * 2 + rng.integers(0, 2, size=n), "cluster_l2": top,
        "quality": rng.random(n), "is_semantic_duplicate": False, "n_tokens": tokens,
    })


def check_selection(res, pool: pd.DataFrame, max_repeats: int) -> None:
    sel = res.selection
    used, n_tok, reps = sel["n_tokens_used"].to_numpy(), sel["n_tokens"].to_numpy(), sel["repeats"].to_numpy()
    assert sel["doc_id"].is_unique and (reps >= 1).all() and (reps <= max_repeats).all()
    assert int((reps * (used if res.unit == "tokens" else 1)).sum()) == res.achieved
    cut = used < n_tok
    assert res.unit == "tokens" or not cut.any()  # a documents mixture never cuts
    assert cut.sum() <= 1 and (used[cut] >= 1).all() and (reps[cut] == 1).all()  # one cut, of a doc taken once
    assert res.details["cut_documents"] == int(cut.sum())


def test_token_fill_converges_on_random_pools_of_long_and_short_pages():
    """Property: whatever the pool (long pages, short ones, a mix; 1-6 top clusters; 12-400
    documents) and whatever reachable target, every policy lands within 1%."""
    rng = np.random.default_rng(2024)
    errors = []
    for case in range(60):
        pool = random_pool(rng, int(rng.integers(12, 400)), int(rng.integers(1, 7)), float(rng.choice([0, 0.3, 0.8, 1])))
        policy = ["weighted", "balanced", "quality_topk"][case % 3]
        max_rep = int(rng.integers(1, 4)) if policy == "weighted" else 1
        total = int(pool["n_tokens"].sum())
        most = total * max_rep
        target = int(most * rng.uniform(0.02, 0.995))
        options = {"max_repeats": max_rep, "temperature": float(rng.uniform(0.5, 3))} if policy == "weighted" else {}
        sp = parse_mixture_spec({"name": f"p{case}", "policy": policy, "size": {"tokens": target}, "seed": case,
                                 "options": options})
        res = build_mixture(pool, sp)
        check_selection(res, pool, max_rep)
        err = (res.achieved - target) / target
        assert abs(err) <= 0.01, (case, policy, target, res.achieved)
        errors.append(err)
    errors = np.abs(errors)
    assert np.median(errors) < 0.005  # whole documents close in, cuts are the exception


def test_long_pages_that_missed_by_more_than_one_percent_now_land():
    """The reported misses (141,974 and 155,713 for a 150,000-token weighted mix over pools of long
    pages): per-cluster prefixes of 5k-40k-token pages round far from the amount; the last pass
    cuts one page at the boundary and records it."""
    rng = np.random.default_rng(7)
    raw_misses, cuts = 0, 0
    for seed in range(6):
        pool = random_pool(rng, 60, 8, 1.0)
        sp = parse_mixture_spec({"name": "weighted-tokens", "policy": "weighted", "size": {"tokens": 150_000},
                                 "options": {"level": "top", "temperature": 2.0, "max_repeats": 2}, "seed": seed})
        res = build_mixture(pool, sp)
        check_selection(res, pool, 2)
        assert abs(res.achieved - 150_000) <= 750  # within the last pass's 0.5%
        cuts += res.details["cut_documents"]
        # the per-cluster draw alone (before the last pass) is what missed
        shares = np.array([res.details["shares"][c] for c in sorted(res.details["shares"])])
        reps, _, _ = draw_weighted(pool, 2, shares, 150_000, "tokens", max_repeats=2, seed=seed)
        raw_misses += abs((reps * pool["n_tokens"]).sum() - 150_000) > 1500
    assert raw_misses >= 3 and cuts >= 1


def test_unreachable_targets_name_the_achievable_range():
    rng = np.random.default_rng(1)
    pool = random_pool(rng, 40, 3, 0.5)
    total = int(pool["n_tokens"].sum())
    for policy, reps in (("weighted", 2), ("balanced", 1), ("quality_topk", 1)):
        options = {"max_repeats": reps} if policy == "weighted" else {}
        sp = parse_mixture_spec({"name": "big", "policy": policy, "size": {"tokens": total * reps * 2},
                                 "options": options})
        with pytest.raises(MixtureTargetError, match=f"can supply 1 to {total * reps:,} tokens"):
            build_mixture(pool, sp)
    # a relative size never asks for more than there is
    sp = parse_mixture_spec({"name": "rel", "policy": "weighted", "size": {"tokens_fraction": 2.0},
                             "options": {"max_repeats": 2}})
    res = build_mixture(pool, sp)
    assert abs(res.achieved - 2 * total) <= 0.01 * 2 * total and res.selection["repeats"].min() == 2


def test_all_repeated_corner_takes_whole_documents_within_one_percent_or_says_why():
    """Three 10,000-token pages, two copies each at most: 59,500 is met by all six copies (+0.8%);
    59,000 would need a second copy cut short, which a manifest row cannot say."""
    pool = pd.DataFrame({"doc_id": ["a", "b", "c"], "snapshot": "s", "shard": "0", "cluster_l1": 0,
                         "quality": 0.5, "is_semantic_duplicate": False, "n_tokens": 10_000})

    def weighted(target):
        return parse_mixture_spec({"name": "w", "policy": "weighted", "size": {"tokens": target},
                                   "options": {"max_repeats": 2}})

    res = build_mixture(pool, weighted(59_500))
    assert res.achieved == 60_000 and res.selection["repeats"].tolist() == [2, 2, 2]
    with pytest.raises(MixtureTargetError, match=r"whole documents give 60,000 \(\+1.7%\)"):
        build_mixture(pool, weighted(59_000))


def test_documents_targets_stay_exact_and_resolve_against_the_filtered_pool():
    rng = np.random.default_rng(3)
    pool = random_pool(rng, 200, 3, 0.3)
    pool["quality"] = np.r_[np.full(100, 0.1), np.full(100, 0.9)]
    for size, want in (({"documents_fraction": 0.3}, 30), ({"documents": 400, "at_most_fraction": 0.5}, 50),
                       ({"documents": 20, "at_most_fraction": 0.5}, 20)):
        sp = parse_mixture_spec({"name": "r", "policy": "balanced", "size": size, "filters": {"min_quality": 0.5}})
        res = build_mixture(pool, sp)
        assert res.target == want and res.achieved == want == len(res.selection)
        assert res.details["pool_total"] == 100


# ------------------------------------------------------------------------------------------------
# every spec of the default file, on small and awkward pools


WORDS = [f"w{i}" for i in range(400)]


def small_pool(kind: str) -> pd.DataFrame:
    rng = np.random.default_rng({"30x1": 0, "200x3": 1, "long": 2}[kind])
    if kind == "30x1":
        n, k, tokens = 30, 1, rng.integers(80, 900, size=30)
    elif kind == "200x3":
        n, k, tokens = 200, 3, rng.integers(30, 2000, size=200)
    else:  # long pages: each larger than 1% of the default 150,000-token target
        n, k, tokens = 48, 2, rng.integers(6_000, 45_000, size=48)
    top = rng.integers(0, k, size=n)
    top[:k] = np.arange(k)
    return pd.DataFrame({
        "doc_id": [f"{kind}-{i}" for i in range(n)], "snapshot": "s", "shard": "000",
        "cluster_l1": top * 3 + rng.integers(0, 3, size=n), "cluster_l2": top,
        "quality": rng.uniform(0.25, 1.0, size=n), "is_semantic_duplicate": rng.random(n) < 0.1,
        "n_tokens": tokens, "distance": rng.random(n),
        # as the mixture asset's pool has them: identified language, and checked against evaluation sets
        "language": "en", "language_score": rng.uniform(0.55, 1.0, size=n), "contaminated_by": "",
    })


def ngram_evaluator(pool: pd.DataFrame, token_budget: int) -> NgramLMEvaluator:
    rng = np.random.default_rng(5)
    texts = {d: " ".join(rng.choice(WORDS, size=int(rng.integers(20, 120)))) for d in pool["doc_id"]}
    target = [" ".join(rng.choice(WORDS[:100], size=80)) for _ in range(5)]
    return NgramLMEvaluator(texts, target, token_budget=token_budget)


@pytest.mark.parametrize("kind", ["30x1", "200x3", "long"])
def test_every_default_spec_builds_on_small_pools(kind):
    pool = small_pool(kind)
    specs = load_mixture_specs(str(DEFAULT_FILE))
    for sp in specs:
        evaluator = None
        if sp.policy == "search":
            evaluator = ngram_evaluator(pool, sp.options["evaluator"]["token_budget"])
        res = build_mixture(pool, sp, evaluator=evaluator)
        max_rep = int(sp.options.get("max_repeats", 1))
        check_selection(res, pool, max_rep)
        assert 1 <= res.target <= res.details["pool_total"] * max_rep
        assert abs(res.achieved - res.target) <= 0.01 * res.target, (sp.name, res.target, res.achieved)
        assert abs(sum(res.weights.values()) - 1) < 1e-9
        if sp.policy == "search":
            n_top = pool["cluster_l2"].nunique()
            d = res.details
            # the cap holds where it can, and is raised to the even split where it cannot
            assert d["max_share"] == pytest.approx(max(0.35, 1 / n_top))
            assert d["eval_sample_documents"] <= res.target and d["token_budget"] <= 60_000
            if n_top == 1:
                assert d["n_evaluated"] == 1  # one feasible mixture: scored once, not searched


def test_default_sizes_on_a_large_pool_are_the_demo_sizes():
    rng = np.random.default_rng(9)
    pool = small_pool("200x3")
    big = pd.concat([pool] * 20, ignore_index=True)
    big["doc_id"] = [f"b{i}" for i in range(len(big))]
    big["n_tokens"] = rng.integers(100, 800, size=len(big))
    want = {"balanced-docs": 400, "weighted-tokens": 150_000, "quality-topk": 300, "searched": 300}
    for sp in load_mixture_specs(str(DEFAULT_FILE)):
        units = big["n_tokens"].sum() if sp.size.unit == "tokens" else len(big)
        assert sp.size.resolve(units) == want[sp.name]
