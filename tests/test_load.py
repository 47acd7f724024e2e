"""200 snapshots x 8 shards registered: the code location still loads and a sensor tick stays fast.

The bounds are generous for a loaded 2-core CI box; `python benchmarks/load.py` prints the real
figures. The tick is the real sensor-daemon iteration (evaluation in a `dagster code-server`
subprocess, partition registration and run submission against a SQLite instance), not just the
sensor function.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest
from dagster import DagsterRunStatus, RunsFilter, SensorResult, SkipReason, build_sensor_context
from dagster._core.scheduler.instigation import TickStatus
from dagster._time import get_current_datetime

from tests.load_fixtures import daemon_tick, daemon_workspace, make_registered_instance, make_tiny_snapshot

N_SNAPSHOTS = 200
N_SHARDS = 8
LOAD_BOUND_S = 30.0
NOOP_TICK_BOUND_S = 5.0
# A tick that registers new snapshots also creates one run per (snapshot, shard); on a SQLite
# instance Dagster creates a per-run event-log database for each (about 0.2 s apiece here).
NEW_SNAPSHOTS = 1
NEW_TICK_BOUND_S = 30.0
SENSOR_FUNCTION_BOUND_S = 2.0


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    return make_registered_instance(tmp_path_factory.mktemp("load") / "home", N_SNAPSHOTS, N_SHARDS)


def test_fixture_registers_every_snapshot(deployment):
    assert deployment.settings.shards == N_SHARDS
    assert len(deployment.instance.get_dynamic_partitions("crawl_snapshots")) == N_SNAPSHOTS
    complete = sorted(p.name for p in Path(deployment.settings.snapshots_root).iterdir() if (p / "_SUCCESS").is_file())
    assert complete == deployment.snapshot_ids


def test_sensor_function_over_200_registered_snapshots(deployment):
    from curation_assets.definitions import build_definitions, build_resources

    defs = build_definitions(deployment.settings)
    sensor = defs.resolve_sensor_def("crawl_snapshot_sensor")
    resources = {"snapshots": build_resources(deployment.settings)["snapshots"]}
    timings = []
    for _ in range(3):
        with build_sensor_context(instance=deployment.instance, resources=resources) as context:
            started = time.perf_counter()
            result = sensor(context)
            timings.append(time.perf_counter() - started)
        assert isinstance(result, SkipReason)
    print(f"\nsensor function, {N_SNAPSHOTS} registered: {[round(t, 3) for t in timings]} s")
    assert min(timings) < SENSOR_FUNCTION_BOUND_S

    make_tiny_snapshot(Path(deployment.settings.snapshots_root), "zz-fn-new")
    try:
        with build_sensor_context(instance=deployment.instance, resources=resources) as context:
            result = sensor(context)
        assert isinstance(result, SensorResult)
        assert result.dynamic_partitions_requests[0].partition_keys == ["zz-fn-new"]
        assert len(result.run_requests) == N_SHARDS
    finally:
        import shutil

        shutil.rmtree(Path(deployment.settings.snapshots_root) / "zz-fn-new")


def test_code_location_load_and_daemon_ticks(deployment, monkeypatch):
    for name, value in deployment.env.items():
        monkeypatch.setenv(name, value)
    instance = deployment.instance
    now = get_current_datetime()
    with daemon_workspace(deployment) as (workspace, load_s):
        print(f"\ncode location load with {N_SNAPSHOTS}x{N_SHARDS} partitions: {load_s:.2f} s")
        assert load_s < LOAD_BOUND_S

        noop = []
        for i in range(2):
            elapsed, tick = daemon_tick(workspace, instance, now + datetime.timedelta(seconds=61 * (i + 1)))
            assert tick.status == TickStatus.SKIPPED, tick.error
            noop.append(elapsed)
        print(f"daemon tick, nothing new: {[round(t, 3) for t in noop]} s")
        assert min(noop) < NOOP_TICK_BOUND_S

        new_ids = [f"zz-new-{i}" for i in range(NEW_SNAPSHOTS)]
        for sid in new_ids:
            make_tiny_snapshot(Path(deployment.settings.snapshots_root), sid)
        elapsed, tick = daemon_tick(workspace, instance, now + datetime.timedelta(seconds=61 * 3))
        print(f"daemon tick, {NEW_SNAPSHOTS} new snapshots ({NEW_SNAPSHOTS * N_SHARDS} runs): {elapsed:.2f} s")
        assert tick.status == TickStatus.SUCCESS, tick.error
        assert elapsed < NEW_TICK_BOUND_S

    registered = instance.get_dynamic_partitions("crawl_snapshots")
    assert len(registered) == N_SNAPSHOTS + NEW_SNAPSHOTS and set(new_ids) <= set(registered)
    runs = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
    assert sorted(r.tags["dagster/sensor_name"] for r in runs) == ["crawl_snapshot_sensor"] * (NEW_SNAPSHOTS * N_SHARDS)
    assert sorted(r.tags["dagster/run_key"] for r in runs) == sorted(
        f"{sid}/{shard}" for sid in new_ids for shard in deployment.settings.shard_keys
    )
