"""Scale-out: four shard partitions materialized by four concurrent run processes.

Each run is its own `dagster asset materialize` process, as a run worker on another machine would
be, against one instance configured by docker/dagster.yaml (PostgreSQL run and event storage, the
deployment's concurrency settings):

* with a PostgreSQL warehouse, the four runs write concurrently: the event log shows raw_corpus
  step windows (STEP_START to STEP_SUCCESS) of different runs overlapping in time; all succeed,
  every warehouse row is there exactly once, and no writer ever retried on a lock;
* with a DuckDB warehouse, the `duckdb_warehouse` pool (limit 1) serializes the writing steps across
  the four processes: their step windows never overlap, and the same checks pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, EventRecordsFilter

from crawlmix.warehouse import Warehouse
from curation_assets.definitions import DUCKDB_WAREHOUSE_POOL
from curation_assets.partitions import crawl_snapshots, partition_key_for
from tests.dagster_harness import make_snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = "scale-2026-11"
SHARDS = ["000", "001", "002", "003"]
LOCK_ERRORS = ("could not set lock", "conflicting lock", "deadlock detected", "lock timeout", "WarehouseLockTimeout")


def _environment(home: Path, instance_url: str, warehouse_url: str) -> dict[str, str]:
    import sqlalchemy as sa

    pg = sa.engine.make_url(instance_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWLMIX_", "DAGSTER_"))}
    env.update({
        "CRAWLMIX_HOME": str(home),
        "CRAWLMIX_SHARDS": str(len(SHARDS)),
        "CRAWLMIX_WAREHOUSE_URL": warehouse_url,
        "DAGSTER_HOME": str(home / "dagster"),
        "DAGSTER_POSTGRES_USER": pg.username or "postgres",
        "DAGSTER_POSTGRES_PASSWORD": pg.password or "",
        "DAGSTER_POSTGRES_HOST": pg.host or "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(pg.port or 5432),
        "DAGSTER_POSTGRES_DB": pg.database,
        "DAGSTER_DISABLE_TELEMETRY": "1",
    })
    return env


def _materialize_concurrently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instance_url: str, warehouse_url: str):
    home = tmp_path / "home"
    make_snapshot(home / "snapshots", SNAPSHOT, n_files=8)
    (home / "dagster").mkdir(parents=True)
    shutil.copy(REPO / "docker" / "dagster.yaml", home / "dagster" / "dagster.yaml")
    env = _environment(home, instance_url, warehouse_url)

    # docker/dagster.yaml reads its PostgreSQL settings from the environment
    for key, value in env.items():
        if key.startswith("DAGSTER_"):
            monkeypatch.setenv(key, value)
    instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
    instance.add_dynamic_partitions(crawl_snapshots.name, [SNAPSHOT])
    if warehouse_url.startswith("duckdb"):
        # As docs/deploy.md says to, once per instance: left to the first claims, four processes
        # would race to create the pool's row (a unique-key error inside Dagster).
        instance.event_log_storage.set_concurrency_slots(DUCKDB_WAREHOUSE_POOL, 1)

    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "curation_assets.definitions",
             "--select", "raw_corpus", "--partition", str(partition_key_for(SNAPSHOT, shard))],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for shard in SHARDS
    ]
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        outputs.append((proc.returncode, out))
    return home, instance, outputs


def _step_windows(instance: DagsterInstance) -> list[tuple[float, float, str]]:
    """(start, end, run id) of every raw_corpus step, from the PostgreSQL event log, by start."""
    def records(event_type):
        return instance.get_event_records(EventRecordsFilter(event_type=event_type), limit=1000)

    starts = {(r.run_id, r.event_log_entry.step_key): r.timestamp for r in records(DagsterEventType.STEP_START)}
    ends = {(r.run_id, r.event_log_entry.step_key): r.timestamp for r in records(DagsterEventType.STEP_SUCCESS)}
    return sorted(
        (starts[key], ends[key], key[0]) for key in starts if key[1] == "raw_corpus" and key in ends
    )


def _overlapping_pairs(windows: list[tuple[float, float, str]]) -> list[tuple[str, str, float]]:
    """(run id, run id, seconds both steps were running) of every two steps that ran at once."""
    pairs = []
    for i, (start, end, run_id) in enumerate(windows):
        for other_start, other_end, other_run in windows[i + 1:]:
            shared = min(end, other_end) - max(start, other_start)
            if shared > 0:
                pairs.append((run_id, other_run, shared))
    return pairs


def _describe(windows: list[tuple[float, float, str]]) -> str:
    origin = windows[0][0] if windows else 0.0
    return ", ".join(f"{run[:8]} {start - origin:.2f}-{end - origin:.2f}s" for start, end, run in windows)


def _assert_exact_warehouse(home: Path, instance: DagsterInstance, warehouse_url: str, outputs) -> None:
    for returncode, out in outputs:
        assert returncode == 0, out[-3000:]
        lowered = out.lower()
        assert not any(marker.lower() in lowered for marker in LOCK_ERRORS), out[-3000:]

    runs = instance.get_runs()
    assert len(runs) == len(SHARDS) and all(run.is_success for run in runs)
    assert sorted(run.tags["dagster/partition"] for run in runs) == sorted(
        str(partition_key_for(SNAPSHOT, shard)) for shard in SHARDS
    )

    docs_dir = home / "storage" / "raw_corpus" / SNAPSHOT
    quarantine_dir = home / "storage" / "quarantine" / SNAPSHOT
    n_docs = {shard: pq.read_metadata(docs_dir / f"{shard}.parquet").num_rows for shard in SHARDS}
    assert all(n > 0 for n in n_docs.values())

    warehouse = Warehouse(warehouse_url)
    try:
        stats = warehouse.read_frame("SELECT shard, n_docs FROM snapshot_shard_stats WHERE snapshot = :s", {"s": SNAPSHOT})
        assert sorted(stats["shard"]) == SHARDS  # one row per shard: none missing, none twice
        assert dict(zip(stats["shard"], stats["n_docs"].astype(int))) == n_docs

        counts = warehouse.read_frame(
            "SELECT shard, reason, n FROM quarantine_counts WHERE snapshot = :s", {"s": SNAPSHOT}
        )
        assert not counts.duplicated(["shard", "reason"]).any()
        for shard in SHARDS:
            quarantined = pq.read_table(quarantine_dir / f"{shard}.parquet", columns=["reason"]).column("reason").to_pylist()
            expected = {reason: quarantined.count(reason) for reason in set(quarantined)}
            rows = counts[counts["shard"] == shard]
            got = {r: int(n) for r, n in zip(rows["reason"], rows["n"])}
            assert got == expected, (shard, got, expected)
        # make_snapshot plants one 404 and one exact duplicate in its first file: each lands once
        assert int(counts.loc[counts["reason"] == "http_status", "n"].sum()) == 1
        assert int(counts.loc[counts["reason"] == "exact_duplicate", "n"].sum()) == 1
    finally:
        warehouse.dispose()

    materializations = instance.fetch_materializations(AssetKey("raw_corpus"), limit=10).records
    assert sorted(r.run_id for r in materializations) == sorted(run.run_id for run in runs)
    retries = [r.asset_materialization.metadata["warehouse_lock_retries"].value for r in materializations]
    if not warehouse_url.startswith("duckdb"):
        assert retries == [0] * len(SHARDS), "a writer waited on a warehouse lock"
    # With DuckDB the pool frees its slot when the step ends, which can be a moment before the
    # process that wrote lets go of the file: a next writer may wait a retry or two (the windows
    # test below shows the steps themselves never overlap), never fail.


def test_four_concurrent_runs_on_postgres_instance_and_postgres_warehouse(
    tmp_path, monkeypatch, postgres_url, postgres_instance_url
):
    home, instance, outputs = _materialize_concurrently(tmp_path, monkeypatch, postgres_instance_url, postgres_url)
    try:
        _assert_exact_warehouse(home, instance, postgres_url, outputs)
        windows = _step_windows(instance)
        assert len(windows) == len(SHARDS)
        assert len({run_id for _, _, run_id in windows}) == len(SHARDS)
        # Concurrent means the writing steps of different runs were in flight at the same time,
        # not merely four processes that happened to run one after another.
        assert _overlapping_pairs(windows), f"no two raw_corpus steps ran at the same time: {_describe(windows)}"
    finally:
        instance.dispose()


def test_duckdb_warehouse_pool_serializes_writers_across_run_processes(tmp_path, monkeypatch, postgres_instance_url):
    warehouse_url = "duckdb:///" + str(tmp_path / "warehouse.duckdb")
    home, instance, outputs = _materialize_concurrently(tmp_path, monkeypatch, postgres_instance_url, warehouse_url)
    try:
        _assert_exact_warehouse(home, instance, warehouse_url, outputs)
        windows = _step_windows(instance)
        assert len(windows) == len(SHARDS)
        assert len({run_id for _, _, run_id in windows}) == len(SHARDS)
        assert _overlapping_pairs(windows) == [], (
            f"raw_corpus steps overlapped despite the {DUCKDB_WAREHOUSE_POOL} pool: {_describe(windows)}"
        )
    finally:
        instance.dispose()
