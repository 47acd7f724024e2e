"""A new snapshot flows through labels, duplicates and scores by automation conditions alone,
evaluated in-process tick by tick as the daemon would, without touching the earlier snapshot."""

from __future__ import annotations

from dagster import AssetKey, AssetSelection, DagsterInstance, evaluate_automation_conditions

from curation_assets import definitions as d
from curation_assets.partitions import crawl_snapshots, partition_key_for
from tests.dagster_harness import make_snapshot, settings_for

AUTOMATED = {"cluster_labels": d.LABEL_JOB, "semantic_duplicates": d.DEDUP_JOB, "quality_scores": d.SCORE_JOB}


def _run(defs, instance, job, partition_key=None, run_config=None):
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config=run_config
    )
    assert result.success, job
    return result


def test_second_snapshot_materializes_by_automation_and_first_is_untouched(tmp_path):
    settings = settings_for(tmp_path / "home", shards=2, CRAWLMIX_DEVICE="cpu")
    snapshots_root = tmp_path / "home" / "snapshots"
    make_snapshot(snapshots_root, "snap-a", n_files=2)
    defs = d.build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        selection = AssetSelection.assets(*AUTOMATED)
        # The daemon evaluates continuously; its first tick precedes any materialization here.
        cursor = _drain_tick(defs, instance, selection, None)
        instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-a"])
        for shard in settings.shard_keys:
            _run(defs, instance, d.INGEST_JOB, partition_key_for("snap-a", shard))
        _run(defs, instance, d.FIT_JOB, run_config={"ops": {"centroids": {"config": {"ks": [3]}}}})
        for _ in range(4):  # the first snapshot catches up through the same conditions
            cursor = _drain_tick(defs, instance, selection, cursor)
        storage = settings.home / "storage"
        before = {p: p.stat().st_mtime_ns for p in storage.rglob("*") if p.is_file() and "snap-a" in p.parts}
        assert any("quality_scores" in p.parts for p in before)

        make_snapshot(snapshots_root, "snap-b", n_files=2)
        instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-b"])
        for shard in settings.shard_keys:  # what the snapshot sensor requests
            _run(defs, instance, d.INGEST_JOB, partition_key_for("snap-b", shard))
        requested = []
        for _ in range(5):
            cursor = _drain_tick(defs, instance, selection, cursor, requested)
        assert all("snap-b" in str(partition) for _, partition in requested)
        for asset in ("cluster_labels", "quality_scores"):
            done = instance.get_materialized_partitions(AssetKey(asset))
            assert {str(partition_key_for("snap-b", s)) for s in settings.shard_keys} <= done
        assert "snap-b" in instance.get_materialized_partitions(AssetKey("semantic_duplicates"))
        after = {p: p.stat().st_mtime_ns for p in before}
        assert after == before


def _drain_tick(defs, instance, selection, cursor, requested=None):
    result = evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=cursor)
    for asset, job in AUTOMATED.items():
        for partition in sorted(result.get_requested_partitions(AssetKey(asset)), key=str):
            if requested is not None:
                requested.append((asset, partition))
            _run(defs, instance, job, partition)
    return result.cursor
