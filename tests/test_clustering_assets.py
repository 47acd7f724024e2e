"""centroids, cluster_labels and semantic_duplicates through real Dagster on real (small) embeddings."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance

from crawlmix.centroid_store import load_current
from crawlmix.storage import LocalStorage
from crawlmix.warehouse import Warehouse
from curation_assets import definitions as d
from curation_assets.partitions import crawl_snapshots, partition_key_for
from tests.dagster_harness import make_snapshot, settings_for

FIT_CONFIG = {"ops": {"centroids": {"config": {"ks": [4, 2], "seed": 3}}}}


def _run(defs, instance, job, partition_key=None, run_config=None):
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config=run_config
    )


def _evaluations(result):
    return [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]


@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """Two shards ingested and embedded, centroids fit, both shards labelled, the snapshot deduplicated."""
    home = tmp_path_factory.mktemp("cluster") / "home"
    settings = settings_for(home, shards=2, CRAWLMIX_DEVICE="cpu")
    folder = make_snapshot(home / "snapshots", "snap-a", n_files=4, plant_copies=True)
    defs = d.build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-a"])
    results = {"ingest": [_run(defs, instance, d.INGEST_JOB, partition_key_for("snap-a", s)) for s in settings.shard_keys]}
    results["fit"] = _run(defs, instance, d.FIT_JOB, run_config=FIT_CONFIG)
    results["label"] = [_run(defs, instance, d.LABEL_JOB, partition_key_for("snap-a", s)) for s in settings.shard_keys]
    results["dedup"] = _run(defs, instance, d.DEDUP_JOB, "snap-a")
    yield settings, defs, instance, results, folder
    instance.dispose()


def test_every_stage_succeeds_with_passing_gates(clustered):
    _, _, _, results, _ = clustered
    runs = [*results["ingest"], results["fit"], *results["label"], results["dedup"]]
    assert all(r.success for r in runs)
    evaluations = [e for r in runs for e in _evaluations(r)]
    assert {e.asset_key.to_user_string() for e in evaluations} == {
        "raw_corpus", "embeddings", "centroids", "cluster_labels", "semantic_duplicates",
    }
    assert all(e.passed for e in evaluations)


def test_centroids_are_versioned_named_and_in_the_warehouse(clustered):
    settings, _, instance, _, _ = clustered
    current = load_current(LocalStorage(settings.storage_root))
    assert list(current.tree.config.ks) == [4, 2]
    assert all(name.startswith(f"{c}_") for c, name in current.names[0].items())
    meta = instance.get_latest_materialization_event(AssetKey("centroids")).asset_materialization.metadata
    assert meta["centroid_version"].value == current.version
    assert "| cluster | name | docs | keywords |" in meta["top_level_clusters"].value
    clusters = Warehouse(settings.warehouse_url).read_frame(
        "SELECT level, COUNT(*) AS n FROM clusters WHERE centroid_version = :v GROUP BY level ORDER BY level",
        {"v": current.version},
    )
    assert list(clusters["n"]) == [4, 2]


def test_labels_carry_paths_consistent_with_the_tree(clustered):
    settings, _, _, _, _ = clustered
    current = load_current(LocalStorage(settings.storage_root))
    for shard in settings.shard_keys:
        labels = pq.read_table(settings.home / "storage" / "cluster_labels" / "snap-a" / f"{shard}.parquet").to_pandas()
        raw = pq.read_table(settings.home / "storage" / "raw_corpus" / "snap-a" / f"{shard}.parquet", columns=["doc_id"])
        assert list(labels["doc_id"]) == raw.column("doc_id").to_pylist()
        assert set(labels["centroid_version"]) == {current.version}
        assert (current.tree.parents[0][labels["cluster_l1"]] == labels["cluster_l2"]).all()
    sizes = Warehouse(settings.warehouse_url).read_frame(
        "SELECT SUM(n) AS n FROM cluster_shard_sizes WHERE level = 1 AND snapshot = 'snap-a'"
    )
    assert int(sizes["n"][0]) == 22


def _docs(settings, snapshot):
    import pandas as pd

    return pd.concat([
        pq.read_table(settings.home / "storage" / "raw_corpus" / snapshot / f"{shard}.parquet").to_pandas()
        for shard in settings.shard_keys
    ], ignore_index=True)


def test_planted_copies_are_removed_exactly_across_shards_and_semantically(clustered):
    settings, _, _, results, _ = clustered
    removed = pq.read_table(settings.home / "storage" / "semantic_duplicates" / "snap-a" / "all.parquet").to_pandas()
    docs = _docs(settings, "snap-a").set_index("url")
    exact_copy, original = docs.loc["https://mirror.example.org/snap-a/0/0.html"], docs.loc["https://docs.example.org/snap-a/0/0.html"]
    assert exact_copy["shard"] != original["shard"]  # the copy is in another shard: raw_corpus cannot see it
    # the copy in the first shard (in shard order) is kept, whichever of the two it is
    first, second = sorted([exact_copy, original], key=lambda doc: doc["shard"])
    exact = removed[removed["method"] == "exact"].set_index("doc_id")
    assert list(exact.index) == [second["doc_id"]]
    semantic = removed[removed["method"] == "semantic"]
    # unless SemDeDup then removed the first copy too (the harness's pages are alike): the exact
    # copy then points at the document the first copy was removed for
    first_removed = semantic[semantic["doc_id"] == first["doc_id"]]
    survivor = first_removed["kept_doc_id"].iloc[0] if len(first_removed) else first["doc_id"]
    assert exact.loc[second["doc_id"], "kept_doc_id"] == survivor
    near_copy, near_original = docs.loc["https://mirror.example.org/snap-a/0/1.html"], docs.loc["https://docs.example.org/snap-a/0/1.html"]
    pair = semantic[semantic["doc_id"].isin([near_copy["doc_id"], near_original["doc_id"]])]
    # one of the two goes (the harness's pages are alike, so it may go in favour of a third)
    assert len(pair) == 1
    assert set(removed["doc_id"]).isdisjoint(set(removed["kept_doc_id"]))
    meta = results["dedup"].asset_materializations_for_node("semantic_duplicates")[0].metadata
    assert meta["docs"].value == 22 and meta["exact_copies_within_snapshot"].value == 1
    # the harness's pages differ only in a number, so SemDeDup finds many of them alike
    assert meta["semantic_duplicates"].value >= 1 and 0 < meta["removal_fraction"].value < 1


def test_refit_makes_labels_stale_and_dedup_refuses_them(clustered):
    settings, defs, instance, _, _ = clustered
    refit = _run(defs, instance, d.FIT_JOB, run_config={"ops": {"centroids": {"config": {"ks": [3, 2], "seed": 9}}}})
    assert refit.success
    stale = _run(defs, instance, d.DEDUP_JOB, "snap-a")
    assert not stale.success
    failure = next(e for e in stale.all_events if e.is_step_failure)
    assert "labelled with other centroids" in failure.step_failure_data.error.cause.message
    # Labelling again against the new version makes the snapshot consistent once more.
    assert all(_run(defs, instance, d.LABEL_JOB, partition_key_for("snap-a", s)).success for s in settings.shard_keys)
    assert _run(defs, instance, d.DEDUP_JOB, "snap-a").success


def test_with_earlier_scope_removes_repeats_of_an_earlier_snapshot_only_from_the_new_one(clustered):
    settings, defs, instance, _, folder = clustered
    # same bodies as snap-a under new titles and URLs, and one page of snap-a re-fetched byte for byte
    make_snapshot(folder.parent, "snap-b", n_files=4, recrawl_of="snap-a")
    instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-b"])
    for job in (d.INGEST_JOB, d.LABEL_JOB):
        assert all(_run(defs, instance, job, partition_key_for("snap-b", s)).success for s in settings.shard_keys)
    result = _run(defs, instance, d.DEDUP_JOB, "snap-b")  # with_earlier is the default scope
    assert result.success and all(e.passed for e in _evaluations(result))
    removed = pq.read_table(settings.home / "storage" / "semantic_duplicates" / "snap-b" / "all.parquet").to_pandas()
    assert set(removed["snapshot"]) == {"snap-b"}
    assert "snap-a" in set(removed["kept_snapshot"])
    recrawl = _docs(settings, "snap-b").set_index("url").loc["https://docs.example.org/snap-a/1/0.html"]
    first = _docs(settings, "snap-a").set_index("url").loc["https://docs.example.org/snap-a/1/0.html"]
    assert recrawl["doc_id"] != first["doc_id"]  # same URL and text, another snapshot: another document
    row = removed.set_index("doc_id").loc[recrawl["doc_id"]]
    assert row["method"] == "exact" and row["kept_doc_id"] == first["doc_id"] and row["kept_snapshot"] == "snap-a"
    # the other pages of snap-b repeat snap-a's bodies under new titles: SemDeDup removes them
    assert (removed["method"] == "semantic").sum() >= 10
    earlier = pq.read_table(settings.home / "storage" / "semantic_duplicates" / "snap-a" / "all.parquet").to_pandas()
    assert set(earlier["snapshot"]) <= {"snap-a"}


def test_labels_gate_passes_an_empty_shard_and_fails_labels_missing_for_embedded_documents():
    """The gate's suites on their own (no Dagster): an empty shard's labels pass when nothing was
    embedded, and the same zero rows fail when the shard has embedded documents, or when the file
    records other centroids."""
    import numpy as np

    from crawlmix.centroid_store import CentroidTree
    from crawlmix.cluster import fit_hierarchical_kmeans
    from crawlmix.clustering_steps import labels_table
    from curation_assets.clustering import judge_labels

    tree = fit_hierarchical_kmeans(np.random.default_rng(0).normal(size=(60, 8)), ks=[4, 2], seed=0)
    current = CentroidTree(tree=tree, version=tree.version, names=[{}, {}], keywords=[{}, {}], fit_mean_distance=0.1, fit_info={})
    empty = labels_table([], np.empty((0, 2), np.int64), np.empty(0, np.float32), current.version).to_pandas()

    assert judge_labels(empty, current.version, [], current).success
    unlabelled = judge_labels(empty, current.version, ["doc-1", "doc-2"], current)
    assert not unlabelled.success and "n_labels" in unlabelled.describe_failures()
    stale = judge_labels(empty, "an-older-version", [], current)
    assert not stale.success and "file_centroid_version" in stale.describe_failures()
    labelled = labels_table(["doc-1"], np.array([[0, tree.parents[0][0]]]), np.array([0.2], np.float32), current.version)
    assert judge_labels(labelled.to_pandas(), current.version, ["doc-1"], current).success
