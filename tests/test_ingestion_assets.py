"""raw_corpus, its gate and the snapshot sensor, run through real Dagster on real files."""

from __future__ import annotations

import pyarrow.parquet as pq
from dagster import (
    AssetKey,
    DagsterInstance,
    Definitions,
    SensorResult,
    SkipReason,
    asset,
    build_sensor_context,
    define_asset_job,
)

from crawlmix.warehouse import Warehouse
from curation_assets.definitions import build_definitions, build_resources
from curation_assets.partitions import snapshot_shard_partitions
from tests.dagster_harness import make_snapshot, run_partition, settings_for

JOB = "crawl_pipeline"
INGEST = ["raw_corpus"]  # these tests exercise ingestion alone; embeddings have their own


def _sensor(defs):
    return defs.resolve_sensor_def("crawl_snapshot_sensor")


def _tick(defs, instance, resources):
    with build_sensor_context(instance=instance, resources={"snapshots": resources["snapshots"]}) as context:
        return _sensor(defs)(context)


def test_sensor_registers_only_complete_snapshots_once(tmp_path):
    settings = settings_for(tmp_path / "home")
    make_snapshot(tmp_path / "home" / "snapshots", "snap-a", complete=True)
    make_snapshot(tmp_path / "home" / "snapshots", "snap-b", complete=False)
    defs = build_definitions(settings)
    resources = build_resources(settings)
    with DagsterInstance.ephemeral() as instance:
        first = _tick(defs, instance, resources)
        assert isinstance(first, SensorResult)
        assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["snap-a"]]
        assert sorted(r.run_key for r in first.run_requests) == ["snap-a/000", "snap-a/001"]
        instance.add_dynamic_partitions("crawl_snapshots", ["snap-a"])

        second = _tick(defs, instance, resources)
        assert isinstance(second, SkipReason)


def test_sensor_registers_at_most_the_configured_number_per_tick(tmp_path):
    settings = settings_for(tmp_path / "home", CRAWLMIX_SNAPSHOTS_PER_TICK="2")
    for name in ("s1", "s2", "s3"):
        make_snapshot(tmp_path / "home" / "snapshots", name, n_files=1, bad=False)
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        result = _tick(defs, instance, build_resources(settings))
        assert result.dynamic_partitions_requests[0].partition_keys == ["s1", "s2"]


def test_raw_corpus_materializes_shards_with_quarantine_and_stats(tmp_path):
    settings = settings_for(tmp_path / "home")
    make_snapshot(tmp_path / "home" / "snapshots", "snap-a", n_files=2)
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        results = [run_partition(defs, instance, "snap-a", shard, JOB, assets=INGEST) for shard in settings.shard_keys]
        assert all(r.success for r in results)
        checks = [e.event_specific_data for r in results for e in r.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert len(checks) == 2 and all(c.passed for c in checks)
        assert checks[0].metadata["ge_statistics"].value["unsuccessful_expectations"] == 0

    storage = tmp_path / "home" / "storage"
    docs = [pq.read_table(storage / "raw_corpus" / "snap-a" / f"{s}.parquet") for s in settings.shard_keys]
    quarantine = [pq.read_table(storage / "quarantine" / "snap-a" / f"{s}.parquet") for s in settings.shard_keys]
    assert sum(t.num_rows for t in docs) == 10
    reasons = sorted(r for t in quarantine for r in t.column("reason").to_pylist())
    assert reasons == ["exact_duplicate", "http_status"]
    assert {"doc_id", "url", "text", "n_chars", "n_words", "content_hash", "source_file", "source_offset",
            "snapshot", "shard"} <= set(docs[0].column_names)
    assert b"crawlmix" in docs[0].schema.metadata

    warehouse = Warehouse(settings.warehouse_url)
    stats = warehouse.read_frame("SELECT * FROM snapshot_shard_stats ORDER BY shard")
    assert list(stats["n_docs"]) == [t.num_rows for t in docs]
    counts = warehouse.read_frame("SELECT reason, SUM(n) AS n FROM quarantine_counts GROUP BY reason ORDER BY reason")
    assert dict(zip(counts["reason"], counts["n"])) == {"exact_duplicate": 1, "http_status": 1}


def test_rematerializing_a_partition_replaces_it(tmp_path):
    settings = settings_for(tmp_path / "home", shards=1)
    make_snapshot(tmp_path / "home" / "snapshots", "snap-a", n_files=1)
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        first = run_partition(defs, instance, "snap-a", "000", JOB, assets=INGEST)
        second = run_partition(defs, instance, "snap-a", "000", JOB, assets=INGEST)
        assert first.success and second.success
    warehouse = Warehouse(settings.warehouse_url)
    assert warehouse.count("snapshot_shard_stats") == 1
    assert warehouse.count("quarantine_counts") == 2
    leftovers = [p for p in (tmp_path / "home" / "storage").rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []


def test_missing_input_file_fails_the_partition_naming_the_file(tmp_path):
    settings = settings_for(tmp_path / "home", shards=1)
    folder = make_snapshot(tmp_path / "home" / "snapshots", "snap-a", n_files=2)
    defs = build_definitions(settings)
    # A file listed when the snapshot completed but gone by the time the shard reads it
    # (deleted by a retention job, say): the shard must fail loudly, not come out short.
    (folder / "part-001.warc.gz").rename(folder / "part-001.warc.gz.moved")
    (folder / "part-001.warc.gz").symlink_to(folder / "nowhere.warc.gz")
    (folder / "nowhere.warc.gz").unlink(missing_ok=True)
    with DagsterInstance.ephemeral() as instance:
        result = run_partition(defs, instance, "snap-a", "000", JOB, assets=INGEST)
        assert not result.success
        failure = next(e for e in result.all_events if e.is_step_failure)
        user_error = failure.step_failure_data.error.cause  # Dagster wraps the asset's own exception
        assert "part-001.warc.gz" in user_error.message
        assert "re-materialize this partition" in user_error.message


def test_failing_gate_blocks_downstream_in_the_same_run(tmp_path):
    settings = settings_for(tmp_path / "home", shards=1)
    make_snapshot(tmp_path / "home" / "snapshots", "snap-a", n_files=1)
    base = build_definitions(settings)
    partitions_def = snapshot_shard_partitions(settings.shard_keys)

    @asset(partitions_def=partitions_def, deps=["raw_corpus"])
    def downstream_consumer() -> None:
        raise AssertionError("must not run after a failed blocking check")

    job = define_asset_job("with_consumer", selection=["raw_corpus", "downstream_consumer"], partitions_def=partitions_def)
    defs = Definitions.merge(base, Definitions(assets=[downstream_consumer], jobs=[job]))
    # One record of seven is quarantined (a 404): a zero-tolerance gate must fail.
    run_config = {"ops": {"raw_corpus_expectations": {"config": {"max_quarantine_fraction": 0.0, "min_records_for_fraction": 0}}}}
    with DagsterInstance.ephemeral() as instance:
        result = run_partition(defs, instance, "snap-a", "000", "with_consumer", run_config=run_config)
        assert not result.success
        evaluation = next(e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
        assert not evaluation.passed
        assert "quarantine_fraction" in evaluation.description
        assert instance.get_latest_materialization_event(AssetKey("raw_corpus")) is not None
        assert instance.get_latest_materialization_event(AssetKey("downstream_consumer")) is None


def test_s3_snapshot_is_found_read_and_written_back_to_s3(tmp_path, moto_server, s3_client, s3_bucket, monkeypatch):
    local = tmp_path / "staging"
    folder = make_snapshot(local, "snap-s3", n_files=2)
    for path in sorted(folder.iterdir()):  # _SUCCESS sorts first by name, so upload it last explicitly
        if path.name != "_SUCCESS":
            s3_client.upload_file(str(path), s3_bucket, f"crawl/{folder.name}/{path.name}")
    s3_client.put_object(Bucket=s3_bucket, Key=f"crawl/{folder.name}/_SUCCESS", Body=b"")

    monkeypatch.setenv("CRAWLMIX_S3_ENDPOINT_URL", moto_server)
    settings = settings_for(
        tmp_path / "home",
        CRAWLMIX_SNAPSHOTS=f"s3://{s3_bucket}/crawl",
        CRAWLMIX_STORAGE=f"s3://{s3_bucket}/curated",
    )
    defs = build_definitions(settings)
    resources = build_resources(settings)
    with DagsterInstance.ephemeral() as instance:
        tick = _tick(defs, instance, resources)
        assert tick.dynamic_partitions_requests[0].partition_keys == ["snap-s3"]
        results = [run_partition(defs, instance, "snap-s3", shard, JOB, assets=INGEST) for shard in settings.shard_keys]
        assert all(r.success for r in results)

    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="curated/")["Contents"])
    files = [f"curated/{asset}/snap-s3/{shard}.parquet" for asset in ("quarantine", "raw_corpus") for shard in ("000", "001")]
    # each file with its checksum sidecar, written after it
    assert keys == sorted(files + [f + ".sha256" for f in files])
    assert not (tmp_path / "home" / "storage").exists()
