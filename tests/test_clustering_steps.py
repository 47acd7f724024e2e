"""The clustering steps over stored shards on tiny and empty shards: level sizes, fit sample, fit, labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from crawlmix.centroid_store import load_current, save_tree
from crawlmix.clustering_steps import (
    auto_ks,
    default_resampling_steps,
    distinct_rows,
    draw_fit_sample,
    fit_centroid_tree,
    label_vectors,
    labels_table,
)
from crawlmix.storage import LocalStorage
from crawlmix.tables import checked_write, write_table

DIM = 16
WORDS = ["river", "bridge", "compiler", "kernel", "violin", "tomato", "glacier", "ledger"]


def _unit_rows(n: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, DIM))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float16)


def _store_shard(store: LocalStorage, snapshot: str, shard: str, vectors: np.ndarray) -> None:
    """A shard as the embedding and ingestion steps leave it: vectors and the texts they embed."""
    with checked_write(store, store.key("embeddings", snapshot, shard, "npy")) as pending, open(pending.path, "wb") as out:
        np.save(out, vectors)
    texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(3)) for i in range(len(vectors))]
    ids = [f"{snapshot}-{shard}-{i}" for i in range(len(vectors))]
    urls = [f"https://example.org/{snapshot}/{shard}/{i}" for i in range(len(vectors))]
    write_table(store, store.key("raw_corpus", snapshot, shard, "parquet"),
                pa.table({"doc_id": pa.array(ids, pa.string()), "url": pa.array(urls, pa.string()),
                          "text": pa.array(texts, pa.string())}), {})


def _fit(store: LocalStorage, shards):
    return fit_centroid_tree(store, shards, ks=None, sample_size=1000, n_iter=5, resampling_steps=None, seed=0)


def test_auto_ks_never_asks_for_more_clusters_than_points():
    assert auto_ks(1) == [1]
    assert auto_ks(2) == [2] and auto_ks(5) == [2] and auto_ks(30) == [2] and auto_ks(79) == [2]
    assert auto_ks(400) == [10]
    assert auto_ks(40 * 13) == [13, 8]  # above 12 leaves, a top level of 8-12 appears
    for n in range(1, 3000, 7):
        ks = auto_ks(n)
        assert 1 <= ks[0] <= n and ks == sorted(ks, reverse=True) and ks[-1] <= 12
    with pytest.raises(ValueError, match="no points"):
        auto_ks(0)


def test_fit_sample_skips_empty_shards(tmp_path):
    store = LocalStorage(str(tmp_path))
    _store_shard(store, "s", "000", _unit_rows(3, 1))
    _store_shard(store, "s", "001", np.zeros((0, DIM), np.float16))
    _store_shard(store, "s", "002", _unit_rows(2, 2))
    sample = draw_fit_sample(store, [("s", "000"), ("s", "001"), ("s", "002")], sample_size=100, seed=0)
    assert sample.total_rows == 5 and sample.vectors.shape == (5, DIM)
    assert sample.refs == [("s", "000"), ("s", "002")]


@pytest.mark.parametrize("n_docs", [1, 2, 3, 5, 30])
def test_centroids_fit_on_a_tiny_corpus_spread_over_mostly_empty_shards(tmp_path, n_docs):
    store = LocalStorage(str(tmp_path))
    _store_shard(store, "s", "000", _unit_rows(n_docs, n_docs))
    for shard in ("001", "002", "003"):
        _store_shard(store, "s", shard, np.zeros((0, DIM), np.float16))
    fitted = _fit(store, [("s", s) for s in ("000", "001", "002", "003")])
    tree = fitted.tree
    assert list(tree.config.ks) == [min(2, n_docs)]
    # What the centroids gate requires: no empty cluster at any level, a name for every cluster.
    assert all((sizes >= 1).all() for sizes in tree.sizes)
    assert sum(tree.sizes[0]) == n_docs and fitted.fit_info["sample_rows"] == n_docs
    assert set(fitted.names[0]) == set(range(tree.config.ks[0]))


def test_levels_are_sized_by_distinct_vectors_so_repeated_pages_leave_no_cluster_empty(tmp_path):
    store = LocalStorage(str(tmp_path))
    two_pages = _unit_rows(2, 7)
    _store_shard(store, "s", "000", np.repeat(two_pages, [4, 2], axis=0))
    _store_shard(store, "s", "001", np.repeat(two_pages[:1], 3, axis=0))
    one_page = _fit(store, [("s", "001")])
    assert list(one_page.tree.config.ks) == [1] and list(one_page.tree.sizes[0]) == [3]
    both = _fit(store, [("s", "000"), ("s", "001")])
    assert distinct_rows(np.concatenate([two_pages, two_pages])) == 2
    assert list(both.tree.config.ks) == [2] and sorted(both.tree.sizes[0]) == [2, 7]


def test_a_scope_of_empty_shards_has_nothing_to_fit(tmp_path):
    store = LocalStorage(str(tmp_path))
    for shard in ("000", "001"):
        _store_shard(store, "s", shard, np.zeros((0, DIM), np.float16))
    with pytest.raises(ValueError, match="no embedded documents in the 2 shards"):
        _fit(store, [("s", "000"), ("s", "001")])


def test_an_empty_shard_gets_empty_labels_with_every_level_column(tmp_path):
    store = LocalStorage(str(tmp_path))
    _store_shard(store, "s", "000", _unit_rows(600, 3))  # enough for two levels: 15 leaves under 8 tops
    fitted = _fit(store, [("s", "000")])
    assert fitted.tree.levels == 2
    paths, distances = label_vectors(np.zeros((0, DIM), np.float16), fitted)
    assert paths.shape == (0, 2) and distances.shape == (0,)
    table = labels_table([], paths, distances, fitted.version)
    assert table.num_rows == 0
    assert table.schema.names == ["doc_id", "cluster_l1", "cluster_l2", "leaf_distance", "centroid_version"]


def test_resampling_only_where_enough_items_per_cluster_would_be_kept():
    assert default_resampling_steps([105, 21, 8]) == [0, 0, 0]  # auto levels: 2 per cluster
    assert default_resampling_steps([10_000, 100, 10]) == [0, 10, 0]
    assert default_resampling_steps([12]) == [0]


def test_every_cluster_keeps_its_closest_documents_and_they_survive_storage(tmp_path):
    store = LocalStorage(str(tmp_path))
    _store_shard(store, "s", "000", _unit_rows(700, 7))
    fitted = _fit(store, [("s", "000")])
    tree = fitted.tree
    assert len(fitted.representatives) == tree.levels >= 2
    unit = np.asarray(_unit_rows(700, 7), dtype=np.float32)
    for level, by_cluster in enumerate(fitted.representatives):
        assert set(by_cluster) == {c for c in range(tree.config.ks[level]) if tree.sizes[level][c]}
        for cluster, docs in by_cluster.items():
            assert 1 <= len(docs) <= 3
            assert [d["distance"] for d in docs] == sorted(d["distance"] for d in docs)
            for doc in docs:
                row = int(doc["doc_id"].rsplit("-", 1)[1])
                assert tree.paths[row, level] == cluster
                assert doc["url"] == f"https://example.org/s/000/{row}" and 0 < len(doc["snippet"]) <= 200
            # nothing else in the cluster is closer to its centroid than the ones kept
            members = np.flatnonzero(tree.paths[:, level] == cluster)
            centroid = tree.centroids[level][cluster]
            distances = 1 - (unit[members] / np.linalg.norm(unit[members], axis=1, keepdims=True)) @ centroid
            assert docs[-1]["distance"] <= np.sort(distances)[min(len(docs), len(members)) - 1] + 1e-3
    save_tree(store, fitted)
    assert load_current(store).representatives == fitted.representatives
