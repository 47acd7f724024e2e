"""A deployment with many registered snapshots, for load tests, benchmarks and UI checks.

``make_registered_instance(home)`` lays out a real crawlmix home: ``n_snapshots`` tiny but complete
snapshot folders (``_SUCCESS`` plus a few small JSONL files) under ``<home>/snapshots``, and a
persistent SQLite Dagster instance under ``<home>/dagster`` (a ``dagster.yaml`` is written there,
so ``DAGSTER_HOME=<home>/dagster dagster dev -w workspace.yaml`` with the returned ``env`` opens the
same instance) with every snapshot registered as a ``crawl_snapshots`` partition. Nothing is
materialized: this measures the cost of the partition space itself.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance

from crawlmix.settings import Settings
from crawlmix.snapshots import SUCCESS_MARKER

# Runs the sensor requests are queued, never launched: the load tests measure the tick, not the
# pipeline, and no daemon dequeues them.
LOAD_INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
"""
REPO_ROOT = Path(__file__).resolve().parents[1]
SENSOR_NAME = "crawl_snapshot_sensor"


@dataclass
class RegisteredDeployment:
    home: Path
    env: dict[str, str]  # the CRAWLMIX_* / DAGSTER_HOME variables of this deployment
    settings: Settings
    instance: DagsterInstance
    snapshot_ids: list[str]
    files_per_snapshot: int
    extra: dict = field(default_factory=dict)


def snapshot_id(i: int) -> str:
    """Ids that sort in creation order, like dated crawl names."""
    return f"load-{i:05d}"


def make_tiny_snapshot(root: Path, snapshot: str, n_files: int = 3, complete: bool = True) -> Path:
    """A snapshot of `n_files` one-record JSONL files (a few hundred bytes in all)."""
    folder = root / snapshot
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        record = {"url": f"https://example.org/{snapshot}/{i}", "text": f"Document {i} of snapshot {snapshot}."}
        (folder / f"part-{i:03d}.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    if complete:
        (folder / SUCCESS_MARKER).touch()
    return folder


def deployment_env(home: Path, n_shards: int) -> dict[str, str]:
    return {
        "CRAWLMIX_HOME": str(home),
        "CRAWLMIX_SHARDS": str(n_shards),
        "DAGSTER_HOME": str(home / "dagster"),
    }


def make_registered_instance(
    home: str | os.PathLike,
    n_snapshots: int = 200,
    n_shards: int = 8,
    files_per_snapshot: int = 3,
    register: bool = True,
) -> RegisteredDeployment:
    """`n_snapshots` complete tiny snapshots on disk, all registered as partitions of a real
    SQLite instance (``register=False`` leaves registration to the sensor)."""
    home = Path(home).resolve()
    env = deployment_env(home, n_shards)
    settings = Settings.from_env(env)
    snapshots_root = Path(settings.snapshots_root)
    ids = [snapshot_id(i) for i in range(n_snapshots)]
    for sid in ids:
        make_tiny_snapshot(snapshots_root, sid, files_per_snapshot)
    dagster_home = Path(env["DAGSTER_HOME"])
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(LOAD_INSTANCE_YAML)
    instance = DagsterInstance.from_config(str(dagster_home))
    if register:
        from curation_assets.partitions import crawl_snapshots

        instance.add_dynamic_partitions(crawl_snapshots.name, ids)
    return RegisteredDeployment(home, env, settings, instance, ids, files_per_snapshot)


@contextlib.contextmanager
def daemon_workspace(deployment: RegisteredDeployment) -> Iterator[tuple[object, float]]:
    """The code location as the sensor daemon sees it: loaded by a fresh `dagster code-server`
    subprocess from `curation_assets.definitions` with this deployment's environment. Yields the
    workspace context and the seconds the load took. The caller's environment must already hold
    ``deployment.env`` (the code server inherits it)."""
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import ModuleTarget

    target = ModuleTarget(
        module_name="curation_assets.definitions",
        attribute=None,
        working_directory=str(REPO_ROOT),
        location_name="crawlmix",
    )
    started = time.perf_counter()
    with create_test_daemon_workspace_context(target, deployment.instance) as workspace:
        entry = next(iter(workspace.create_request_context().get_code_location_entries().values()))
        if entry.load_error is not None:
            raise RuntimeError(f"code location failed to load: {entry.load_error.to_string()}")
        yield workspace, time.perf_counter() - started


def daemon_tick(workspace, instance, at: datetime.datetime):
    """One real sensor-daemon iteration at wall time `at` (evaluation in the code server, partition
    registration and run submission in this process); returns (seconds, the sensor's latest tick).
    Successive calls must be at least the sensor's minimum interval (60 s) apart in `at`."""
    from dagster._core.test_utils import freeze_time
    from dagster._daemon.sensor import execute_sensor_iteration

    with freeze_time(at):
        started = time.perf_counter()
        list(execute_sensor_iteration(workspace, logging.getLogger("crawlmix.load"), None, None))
        elapsed = time.perf_counter() - started
    state = next(s for s in instance.all_instigator_state() if s.instigator_name == SENSOR_NAME)
    ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
    return elapsed, ticks[0]
