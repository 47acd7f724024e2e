"""Copies across snapshots: a mixture never holds two documents dedup calls copies of each other."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crawlmix.mixture import apply_filters, build_mixture, duplicate_groups, edges_frame, parse_mixture_spec


def two_snapshot_pool(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Snapshot s1 of ``n`` documents, and s2 that re-holds every s1 document under a new doc id
    (same cluster path, its own quality and length) plus ``n // 4`` new ones. Dedup says:

    * s2's re-held copies of even s1 documents are exact copies (method exact), of odd ones
      near copies (method semantic); all point at the s1 document;
    * inside s1, every 10th document is a semantic duplicate of the one before it, so the s2 copy
      of such a document joins a group of three through a document it was never compared with.
    """
    rng = np.random.default_rng(seed)
    top = rng.integers(0, 4, size=n)
    leaf = top * 5 + rng.integers(0, 5, size=n)

    def docs(snapshot: str, ids: list[str], top_: np.ndarray, leaf_: np.ndarray) -> pd.DataFrame:
        m = len(ids)
        return pd.DataFrame({
            "doc_id": ids, "snapshot": snapshot, "shard": rng.integers(0, 3, size=m).astype(str),
            "cluster_l1": leaf_, "cluster_l2": top_, "quality": rng.uniform(0.1, 1.0, size=m),
            "n_tokens": rng.integers(100, 3000, size=m),
        })

    s1 = docs("s1", [f"s1-{i}" for i in range(n)], top, leaf)
    new = n // 4
    new_top = rng.integers(0, 4, size=new)
    s2 = docs("s2", [f"s2-copy-{i}" for i in range(n)] + [f"s2-new-{i}" for i in range(new)],
              np.r_[top, new_top], np.r_[leaf, new_top * 5 + rng.integers(0, 5, size=new)])
    edges = [(f"s2-copy-{i}", f"s1-{i}", "exact" if i % 2 == 0 else "semantic") for i in range(n)]
    edges += [(f"s1-{i}", f"s1-{i - 1}", "semantic") for i in range(10, n, 10)]
    edges = pd.DataFrame(edges, columns=["doc_id", "kept_doc_id", "method"])
    pool = pd.concat([s1, s2], ignore_index=True)
    pool["duplicate_group"], pool["duplicate_method"] = duplicate_groups(pool["doc_id"].tolist(), edges)
    pool["is_semantic_duplicate"] = pool["duplicate_method"].notna()
    return pool, edges


def spec(**kw):
    d = {"name": "dups", "size": {"documents": 300}, "policy": "weighted", "seed": 3,
         "options": {"max_repeats": 3}}
    d.update(kw)
    return parse_mixture_spec(d)


def test_duplicate_groups_follow_chains_and_label_by_smallest_member():
    edges = pd.DataFrame({"doc_id": ["c", "b", "x"], "kept_doc_id": ["b", "a", "y"],
                          "method": ["exact", "semantic", "semantic"]})
    group, method = duplicate_groups(["a", "b", "c", "d", "x"], edges)
    assert group.tolist() == ["a", "a", "a", "d", "x"]  # c -> b -> a is one group; x's kept y is not here
    assert method.tolist() == [None, "semantic", "exact", None, "semantic"]
    # a dedup file written before the method column: every row is SemDeDup's
    old = edges_frame(pd.DataFrame({"doc_id": ["c"], "kept_doc_id": ["b"], "similarity": [0.95]}))
    assert old["method"].tolist() == ["semantic"]
    with pytest.raises(ValueError, match="method"):
        edges_frame(edges.assign(method=["exact", "fuzzy", "semantic"]))


@pytest.mark.parametrize("drop", [True, False])
@pytest.mark.parametrize("policy, options, size", [
    ("balanced", {}, {"documents": 400}),
    ("weighted", {"max_repeats": 3}, {"documents": 1200}),
    ("quality_topk", {"level": "top"}, {"tokens": 300_000}),
    ("search", {"rounds": [6, 3], "pool_size": 2000, "max_repeats": 2}, {"documents": 500}),
])
def test_no_two_copies_in_any_policy(policy, options, size, drop):
    pool, _ = two_snapshot_pool()
    sp = spec(policy=policy, options=options, size=size, filters={"drop_semantic_duplicates": drop})
    evaluator = (lambda sample, w: float((sample["cluster_l2"] == 1).mean())) if policy == "search" else None
    res = build_mixture(pool, sp, evaluator=evaluator)
    sel = res.selection.merge(pool[["doc_id", "duplicate_group", "duplicate_method"]], on="doc_id")
    assert len(sel) == len(res.selection) and sel["doc_id"].is_unique
    assert sel["duplicate_group"].is_unique, sel[sel["duplicate_group"].duplicated(keep=False)]
    assert not (sel["duplicate_method"] == "exact").any()  # exact copies: never, whatever the spec says
    if drop:
        assert sel["duplicate_method"].isna().all()
    if policy == "weighted":
        assert sel["repeats"].max() > 1  # repeats of one document are fine: still one row, one group


def test_kept_semantic_copy_stands_in_only_when_its_original_is_out():
    pool, _ = two_snapshot_pool()
    keep_all = {"drop_semantic_duplicates": False}
    # scope s2 only: the s1 originals are out, so s2's near copies of them may be chosen; exact ones not
    fp, counts = apply_filters(pool, spec(scope=["s2"], filters=keep_all))
    assert counts["exact_duplicates"] == 300 and counts["duplicate_copies"] == 0
    assert (fp["duplicate_method"] == "semantic").sum() == 300
    res = build_mixture(pool, spec(scope=["s2"], filters=keep_all, size={"documents": 500}))
    assert res.selection["doc_id"].str.startswith("s2-copy-").any()
    # both snapshots: the original (what dedup kept) represents its group, never the copy
    fp, counts = apply_filters(pool, spec(filters=keep_all))
    assert not fp["doc_id"].str.startswith("s2-copy-").any()
    assert counts["duplicate_copies"] == 300 + 59  # odd s2 copies, and s1's own near duplicates
    assert fp["duplicate_group"].is_unique
    # an original under the quality floor: the best member that passes stands in for the group
    low = pool.copy()
    low.loc[low["doc_id"] == "s1-1", "quality"] = 0.0
    low.loc[low["doc_id"] == "s2-copy-1", "quality"] = 0.9
    fp, _ = apply_filters(low, spec(filters={**keep_all, "min_quality": 0.05}))
    members = fp[fp["duplicate_group"] == "s1-1"]
    assert members["doc_id"].tolist() == ["s2-copy-1"]
    # dropping semantic duplicates: neither the copy nor the original is left
    fp, _ = apply_filters(low, spec(filters={"drop_semantic_duplicates": True, "min_quality": 0.05}))
    assert not (fp["duplicate_group"] == "s1-1").any()


def test_pool_without_dedup_links_keeps_the_flag_behaviour():
    pool, _ = two_snapshot_pool(200)
    bare = pool.drop(columns=["duplicate_group", "duplicate_method"])
    fp, counts = apply_filters(bare, spec(filters={"drop_semantic_duplicates": True}))
    assert counts["semantic_duplicates"] == int(bare["is_semantic_duplicate"].sum())
    assert counts["exact_duplicates"] == counts["duplicate_copies"] == 0
