"""Exact dedup by content hash across shards and snapshots, through the persistent index in storage."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from crawlmix.clustering_steps import DUPLICATES_SCHEMA, combine_duplicates
from crawlmix.content_index import (
    INDEX_PREFIXES,
    IndexNotReadyError,
    find_exact_duplicates,
    has_complete_index,
    index_part_key,
    read_index_marker,
    write_index,
)
from crawlmix.ingest.text import content_hash, make_doc_id
from crawlmix.storage import LocalStorage
from crawlmix.tables import read_table, write_table

SHARDS = ("000", "001", "002")


def put_shard(store, snapshot: str, shard: str, texts: list[str]) -> list[str]:
    ids = [make_doc_id(snapshot, f"{shard}.jsonl", i) for i in range(len(texts))]
    table = pa.table({"doc_id": ids, "content_hash": [content_hash(t) for t in texts], "text": texts})
    write_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), table, {"asset": "raw_corpus"})
    return ids


def dedup(store, snapshot, earlier):
    result = find_exact_duplicates(store, snapshot, SHARDS, earlier)
    write_index(store, snapshot, result, {"code_version": "test"})
    return result


@pytest.fixture
def store(tmp_path):
    return LocalStorage(str(tmp_path / "storage"))


def test_copies_across_shards_keep_the_first_in_shard_order(store):
    a = put_shard(store, "s1", "000", ["alpha page", "beta page"])
    b = put_shard(store, "s1", "001", ["beta page", "gamma page", "alpha page"])
    put_shard(store, "s1", "002", [])

    result = dedup(store, "s1", [])

    removed = result.removed.set_index("doc_id")
    assert set(removed.index) == {b[0], b[2]}
    assert removed.loc[b[0], "kept_doc_id"] == a[1] and removed.loc[b[0], "kept_shard"] == "000"
    assert removed.loc[b[2], "kept_doc_id"] == a[0]
    assert (removed["kept_snapshot"] == "s1").all() and (removed["snapshot"] == "s1").all()
    assert result.n_docs == 5 and result.n_within_snapshot == 2 and result.n_against_earlier == 0
    assert sum(t.num_rows for t in result.index_parts.values()) == 3  # alpha, beta, gamma once each


def test_later_snapshot_loses_its_copies_and_the_earlier_keeps_everything(store):
    s1 = put_shard(store, "s1", "000", ["alpha page", "beta page", "gamma page"])
    for shard in SHARDS[1:]:
        put_shard(store, "s1", shard, [])
    dedup(store, "s1", [])
    s2 = put_shard(store, "s2", "000", ["beta page", "delta page"])
    s2b = put_shard(store, "s2", "001", ["gamma page", "delta page"])
    put_shard(store, "s2", "002", ["epsilon page"])

    result = dedup(store, "s2", ["s1"])

    removed = result.removed.set_index("doc_id")
    assert removed.loc[s2[0], "kept_doc_id"] == s1[1] and removed.loc[s2[0], "kept_snapshot"] == "s1"
    assert removed.loc[s2b[0], "kept_doc_id"] == s1[2]
    assert removed.loc[s2b[1], "kept_doc_id"] == s2[1] and removed.loc[s2b[1], "kept_snapshot"] == "s2"
    assert len(removed) == 3 and result.n_against_earlier == 2 and result.n_within_snapshot == 1
    # the index of s2 holds only what s2 brought in: delta and epsilon
    indexed = {h for t in result.index_parts.values() for h in t.column("content_hash").to_pylist()}
    assert indexed == {content_hash("delta page"), content_hash("epsilon page")}

    # a third snapshot finds each text at its first snapshot
    s3 = put_shard(store, "s3", "000", ["alpha page", "delta page", "zeta page"])
    for shard in SHARDS[1:]:
        put_shard(store, "s3", shard, [])
    third = dedup(store, "s3", ["s1", "s2"]).removed.set_index("doc_id")
    assert third.loc[s3[0], "kept_snapshot"] == "s1" and third.loc[s3[1], "kept_snapshot"] == "s2"
    assert s3[2] not in third.index


def test_rerun_gives_the_same_result_and_replaces_only_its_own_parts(store):
    for shard in SHARDS:
        put_shard(store, "s1", shard, [f"page {shard} {i}" for i in range(20)])
        put_shard(store, "s2", shard, [f"page {shard} {i}" for i in range(10, 30)])
    dedup(store, "s1", [])
    s1_parts = {p: read_table(store, index_part_key(store, p, "s1")) for p in INDEX_PREFIXES}

    first = dedup(store, "s2", ["s1"])
    again = dedup(store, "s2", ["s1"])

    assert first.removed.equals(again.removed)
    assert len(first.removed) == 30  # pages 10-19 of every shard
    assert {p: read_table(store, index_part_key(store, p, "s1")) for p in INDEX_PREFIXES} == s1_parts
    assert read_index_marker(store, "s2")["n_hashes"] == 30


def test_index_is_partitioned_by_hash_prefix(store):
    for shard in SHARDS:
        put_shard(store, "s1", shard, [f"document number {shard}-{i}" for i in range(200)])
    dedup(store, "s1", [])

    assert has_complete_index(store, "s1")
    for prefix in INDEX_PREFIXES:
        hashes = read_table(store, index_part_key(store, prefix, "s1")).column("content_hash").to_pylist()
        assert hashes and all(h.startswith(prefix) for h in hashes)


def test_an_earlier_snapshot_without_an_index_is_an_error_naming_it(store):
    for shard in SHARDS:
        put_shard(store, "s1", shard, ["x"])
        put_shard(store, "s2", shard, ["x"])

    with pytest.raises(IndexNotReadyError, match=r"\['s1'\].*semantic_duplicates"):
        find_exact_duplicates(store, "s2", SHARDS, ["s1"])


def test_empty_snapshot_has_an_empty_index(store):
    for shard in SHARDS:
        put_shard(store, "s1", shard, [])

    result = dedup(store, "s1", [])

    assert result.removed.empty and result.n_docs == 0
    assert has_complete_index(store, "s1")


def test_combine_points_exact_copies_at_a_surviving_document():
    import pandas as pd

    exact = pd.DataFrame({
        "doc_id": ["d2", "d3"], "snapshot": ["s2", "s2"], "shard": ["000", "001"],
        "kept_doc_id": ["d1", "k9"], "kept_snapshot": ["s2", "s1"], "kept_shard": ["000", "000"],
    })
    semantic = pa.table({
        "doc_id": ["d1"], "snapshot": ["s2"], "shard": ["000"], "kept_doc_id": ["e5"],
        "kept_snapshot": ["s1"], "kept_shard": ["001"], "similarity": pa.array([0.93], pa.float32()),
        "cluster": pa.array([7], pa.int32()),
    })

    table = combine_duplicates(exact, semantic, {"d2": 7, "d3": 4})

    assert table.schema == DUPLICATES_SCHEMA
    rows = {r["doc_id"]: r for r in table.to_pylist()}
    assert rows["d2"]["kept_doc_id"] == "e5" and rows["d2"]["method"] == "exact"
    assert np.isclose(rows["d2"]["similarity"], 0.93)
    assert rows["d3"]["kept_doc_id"] == "k9" and rows["d3"]["similarity"] == 1.0 and rows["d3"]["cluster"] == 4
    assert rows["d1"]["method"] == "semantic"
    assert not set(table.column("kept_doc_id").to_pylist()) & set(rows)


def test_several_copies_of_an_earlier_page_all_point_at_the_earlier_page(store):
    """A later snapshot holding a page twice (in different shards), where an earlier snapshot has it
    too: both copies go, and both point at the earlier page, never at the other, removed copy."""
    earlier = put_shard(store, "s1", "000", ["shared page", "only in s1"])
    for shard in ("001", "002"):
        put_shard(store, "s1", shard, [])
    dedup(store, "s1", [])
    first = put_shard(store, "s2", "000", ["shared page", "new page"])
    put_shard(store, "s2", "001", [])
    second = put_shard(store, "s2", "002", ["shared page"])

    result = dedup(store, "s2", ["s1"])

    removed = result.removed.set_index("doc_id")
    assert set(removed.index) == {first[0], second[0]}
    assert (removed["kept_doc_id"] == earlier[0]).all() and (removed["kept_snapshot"] == "s1").all()
    assert set(removed["kept_doc_id"]).isdisjoint(removed.index)
