"""The mixture step over stored shards: the pool across snapshots and empty shards, dedup groups from
the dedup files, cut documents in the written mixture, constraints on the data card."""

from __future__ import annotations

import gzip
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawlmix.mixture import build_mixture, parse_mixture_spec
from crawlmix.mixture_steps import build_pool, read_duplicate_edges, write_mixture
from crawlmix.storage import LocalStorage
from crawlmix.tables import write_table

VERSION = "c" * 64


def write_shard(store, snapshot: str, shard: str, docs: list[tuple[str, int, int, str]],
                languages: list[tuple[str, float]] | None = None) -> None:
    """docs: (doc_id, top cluster, n_chars, text); languages: (code, score) per doc, default English."""
    languages = languages or [("en", 0.99)] * len(docs)
    ids = [d[0] for d in docs]
    top = np.array([d[1] for d in docs], dtype=np.int32)
    labels = pa.table({"doc_id": pa.array(ids, pa.string()), "cluster_l1": pa.array(top * 2, pa.int32()),
                       "cluster_l2": pa.array(top, pa.int32()), "leaf_distance": pa.array(np.full(len(ids), 0.1), pa.float32()),
                       "centroid_version": pa.array([VERSION] * len(ids), pa.string())})
    write_table(store, store.key("cluster_labels", snapshot, shard, "parquet"), labels, {"centroid_version": VERSION})
    scores = pa.table({"doc_id": pa.array(ids, pa.string()), "quality": pa.array(np.full(len(ids), 0.8)),
                       "language": pa.array([code for code, _ in languages], pa.string()),
                       "language_score": pa.array([score for _, score in languages], pa.float32()),
                       "is_semantic_duplicate": pa.array([False] * len(ids))})
    write_table(store, store.key("quality_scores", snapshot, shard, "parquet"), scores, {})
    raw = pa.table({"doc_id": pa.array(ids, pa.string()), "url": pa.array([f"https://x/{i}" for i in ids], pa.string()),
                    "text": pa.array([d[3] for d in docs], pa.string()),
                    "n_chars": pa.array([d[2] for d in docs], pa.int64())})
    write_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), raw, {})


def write_dedup(store, snapshot: str, rows: list[tuple[str, str, str, str]], with_method: bool = True) -> None:
    """rows: (doc_id, kept_doc_id, kept_snapshot, method)."""
    columns = {"doc_id": [r[0] for r in rows], "snapshot": [snapshot] * len(rows), "shard": ["000"] * len(rows),
               "kept_doc_id": [r[1] for r in rows], "kept_snapshot": [r[2] for r in rows],
               "kept_shard": ["000"] * len(rows), "similarity": [0.95] * len(rows), "cluster": [0] * len(rows)}
    if with_method:
        columns["method"] = [r[3] for r in rows]
    table = pa.table({k: pa.array(v, pa.float32() if k == "similarity" else pa.int32() if k == "cluster" else pa.string())
                      for k, v in columns.items()})
    write_table(store, store.key("semantic_duplicates", snapshot, "all", "parquet"), table, {})


@pytest.fixture
def three_snapshots(tmp_path):
    """s1 (two shards, one empty), s2 re-holding s1's pages, s3 a copy of s2's copy (a chain)."""
    store = LocalStorage(str(tmp_path / "storage"))
    text = "word " * 400  # 2,000 characters: 500 approximate tokens
    write_shard(store, "s1", "000", [(f"s1-{i}", i % 3, 2000, text) for i in range(12)])
    write_shard(store, "s1", "001", [])  # an empty shard is valid everywhere
    write_shard(store, "s2", "000", [(f"s2-{i}", i % 3, 2000, text) for i in range(12)]
                + [("s2-new", 0, 40_000, "long " * 8000)])
    write_shard(store, "s3", "000", [("s3-0", 0, 2000, text)])
    write_dedup(store, "s1", [], with_method=False)  # written before the method column existed
    write_dedup(store, "s2", [(f"s2-{i}", f"s1-{i}", "s1", "exact" if i < 6 else "semantic") for i in range(12)])
    write_dedup(store, "s3", [("s3-0", "s2-7", "s2", "semantic")])
    return store


def test_pool_spans_snapshots_and_empty_shards_with_duplicate_groups(three_snapshots):
    store = three_snapshots
    shards = [("s1", "000"), ("s1", "001"), ("s2", "000"), ("s3", "000")]
    pool = build_pool(store, shards, SimpleNamespace(version=VERSION))
    assert len(pool) == 12 + 12 + 1 + 1 and pool["doc_id"].is_unique
    group = dict(zip(pool["doc_id"], pool["duplicate_group"]))
    method = dict(zip(pool["doc_id"], pool["duplicate_method"]))
    assert group["s2-3"] == group["s1-3"] == "s1-3" and method["s2-3"] == "exact" and pd.isna(method["s1-3"])
    assert group["s3-0"] == group["s2-7"] == group["s1-7"]  # a copy of a copy: one group
    assert group["s2-new"] == "s2-new" and pd.isna(method["s2-new"])
    # s3 alone in scope: its link into s2, and s2's into s1, are still followed
    edges = read_duplicate_edges(store, ["s3"])
    assert set(edges["kept_doc_id"]) >= {"s2-7", "s1-7"}
    with pytest.raises(FileNotFoundError, match="semantic_duplicates"):
        read_duplicate_edges(store, ["s4"])

    for drop in (True, False):
        spec = parse_mixture_spec({"name": "all", "policy": "weighted", "size": {"documents": 14},
                                   "options": {"max_repeats": 2}, "filters": {"drop_semantic_duplicates": drop}})
        res = build_mixture(pool, spec)
        sel = res.selection.merge(pool[["doc_id", "duplicate_group", "duplicate_method"]], on="doc_id")
        assert sel["duplicate_group"].is_unique and not (sel["duplicate_method"] == "exact").any()
        assert int(sel["repeats"].sum()) == 14


def test_written_mixture_applies_the_cut_and_states_its_constraints(three_snapshots, tmp_path):
    store = three_snapshots
    pool = build_pool(store, [("s1", "000"), ("s2", "000")], SimpleNamespace(version=VERSION))
    # 500-token pages and one of 10,000: 5,250 tokens is no sum of whole pages within 0.5%
    spec = parse_mixture_spec({"name": "cut", "policy": "weighted", "size": {"tokens": 5_250},
                               "options": {"max_repeats": 1}, "seed": 1, "formats": ["parquet", "jsonl.gz"]})
    res = build_mixture(pool, spec)
    sel = res.selection
    cut = sel[sel["n_tokens_used"] < sel["n_tokens"]]
    assert res.achieved == 5_250 and len(cut) == 1 and int(cut["repeats"].iloc[0]) == 1
    centroids = SimpleNamespace(version=VERSION, tree=SimpleNamespace(levels=2, config=SimpleNamespace(ks=[6, 3])),
                                names=[{}, {0: "0_a", 1: "1_b", 2: "2_c"}])
    written = write_mixture(store, spec, res, centroids, {"model_id": "m", "weights_hash": "w", "embedding_version": "e"})
    root = tmp_path / "storage"
    docs = pq.read_table(root / written.doc_keys[0]).to_pandas()
    assert sorted(docs["doc_id"]) == sorted(sel["doc_id"])
    row = docs[docs["doc_id"] == cut["doc_id"].iloc[0]].iloc[0]
    assert len(row["text"]) == 4 * int(row["n_tokens_used"]) < int(row["n_tokens"]) * 4  # only the used part
    uncut = docs[docs["n_tokens_used"] == docs["n_tokens"]]
    assert (uncut["text"].str.len() == uncut["n_tokens"] * 4).all()
    lines = gzip.decompress((root / written.doc_keys[1]).read_bytes()).decode().splitlines()
    assert {json.loads(x)["doc_id"]: len(json.loads(x)["text"]) for x in lines}[row["doc_id"]] == len(row["text"])
    assert int(written.composition["tokens"].sum()) == 5_250
    card = (root / written.card_key).read_text()
    assert "## Constraints" in card and "max_repeats: 1" in card and "5,250 tokens" in card
    assert "cut at the boundary: 1 document" in card and "exact copies never selected" in card
    assert pd.read_parquet(root / written.manifest_key)["n_tokens_used"].sum() == 5_250


def test_language_filters_keep_only_the_named_languages_and_the_card_says_which_rules_applied(tmp_path):
    store = LocalStorage(str(tmp_path / "storage"))
    text = "word " * 400
    docs = [(f"d{i}", i % 2, 2000, text) for i in range(12)]
    languages = [("en", 0.99)] * 4 + [("de", 0.97)] * 4 + [("de", 0.4)] * 2 + [("ja", 0.99)] * 2
    write_shard(store, "s1", "000", docs, languages)
    write_dedup(store, "s1", [])
    pool = build_pool(store, [("s1", "000")], SimpleNamespace(version=VERSION))
    assert pool["language"].tolist() == [code for code, _ in languages]
    spec = parse_mixture_spec({"name": "german", "policy": "weighted", "size": {"documents": 6},
                               "filters": {"languages": ["de", "ja"], "min_language_score": 0.65}})
    assert spec.filters.languages == ("de", "ja") and spec.to_dict()["filters"]["languages"] == ["de", "ja"]
    res = build_mixture(pool, spec)
    chosen = pool.set_index("doc_id").loc[res.selection["doc_id"]]
    assert set(chosen["language"]) <= {"de", "ja"} and (chosen["language_score"] >= 0.65).all()
    assert res.filtered_out["languages"] == 4 and res.filtered_out["min_language_score"] == 2
    centroids = SimpleNamespace(version=VERSION, tree=SimpleNamespace(levels=2, config=SimpleNamespace(ks=[4, 2])),
                                names=[{}, {0: "0_a", 1: "1_b"}])
    written = write_mixture(store, spec, res, centroids, {"model_id": "m", "weights_hash": "w", "embedding_version": "e"})
    card = (tmp_path / "storage" / written.card_key).read_text()
    assert "languages: de, ja; minimum language score 0.65" in card
    assert "- languages: 4 documents removed" in card and "- min_language_score: 2 documents removed" in card
    assert "## Languages and the quality rules applied" in card
    german = next(line for line in card.splitlines() if line.startswith("| de |"))
    assert "14 of 16" in german and "gopher_stop_words" in german and "gopher_mean_word_len" in german
    japanese = next(line for line in card.splitlines() if line.startswith("| ja |"))  # all 6 left are taken
    assert "| 2 |" in japanese and "9 of 16" in japanese and "c4_min_sentences" in japanese


@pytest.mark.parametrize("languages, message", [("en", "must be a list"), (["english"], "not a language code"),
                                                ([3], "string")])
def test_language_filter_refuses_what_is_not_a_list_of_codes(languages, message):
    from crawlmix.mixture import MixtureSpecError

    with pytest.raises(MixtureSpecError, match=message):
        parse_mixture_spec({"name": "x", "policy": "weighted", "size": {"documents": 4},
                            "filters": {"languages": languages}})
