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
    folder = make_snapshot(home / "snapshots", "snap-a", n_files=4)
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
    assert int(sizes["n"][0]) == 20


def test_semantic_duplicates_point_at_kept_documents(clustered):
    settings, _, _, results, _ = clustered
    removed = pq.read_table(settings.home / "storage" / "semantic_duplicates" / "snap-a" / "all.parquet").to_pandas()
    assert set(removed["doc_id"]).isdisjoint(set(removed["kept_doc_id"]))
    meta = results["dedup"].asset_materializations_for_node("semantic_duplicates")[0].metadata
    assert meta["docs"].value == 20 and 0 <= meta["removal_fraction"].value < 1


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
    make_snapshot(folder.parent, "snap-b", n_files=4)  # same bodies as snap-a under new titles and URLs
    instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-b"])
    for job in (d.INGEST_JOB, d.LABEL_JOB):
        assert all(_run(defs, instance, job, partition_key_for("snap-b", s)).success for s in settings.shard_keys)
    config = {"ops": {"semantic_duplicates": {"config": {"scope": "with_earlier"}}}}
    result = _run(defs, instance, d.DEDUP_JOB, "snap-b", run_config=config)
    assert result.success and all(e.passed for e in _evaluations(result))
    removed = pq.read_table(settings.home / "storage" / "semantic_duplicates" / "snap-b" / "all.parquet").to_pandas()
    assert set(removed["snapshot"]) == {"snap-b"}
    assert "snap-a" in set(removed["kept_snapshot"])
    earlier = pq.read_table(settings.home / "storage" / "semantic_duplicates" / "snap-a" / "all.parquet").to_pandas()
    assert set(earlier["snapshot"]) <= {"snap-a"}
