"""Materialize snapshots through Dagster from the command line, recording runs in the instance."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from crawlmix.settings import Settings
from curation_assets.partitions import crawl_snapshots, partition_key_for



# The embedded instance: offline (telemetry would only print a banner and fail to send), and one
# step at a time in the `gpu` pool so concurrent shard runs under `dagster dev` never oversubscribe
# the machine's GPU (or, without one, its CPU cores) with several embedding steps at once.
EMBEDDED_INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
run_monitoring:
  enabled: true
"""


@dataclass
class RunOutcome:
    job: str
    partition: str  # "<snapshot>/<shard>", "<snapshot>", or "" for unpartitioned jobs
    run_id: str
    success: bool
    materialized: dict[str, dict] = field(default_factory=dict)  # asset -> metadata values
    checks: dict[str, bool] = field(default_factory=dict)  # "asset:check" -> passed
    warnings: list[str] = field(default_factory=list)  # non-blocking checks that did not pass
    error: str | None = None


def instance_for(settings: Settings) -> DagsterInstance:
    """The Dagster instance under DAGSTER_HOME (SQLite by default), created on first use."""
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(EMBEDDED_INSTANCE_YAML)
    return DagsterInstance.get()


def register_snapshots(instance: DagsterInstance, snapshot_ids: Iterable[str]) -> list[str]:
    known = set(instance.get_dynamic_partitions(crawl_snapshots.name))
    new = [s for s in snapshot_ids if s not in known]
    if new:
        instance.add_dynamic_partitions(crawl_snapshots.name, new)
    return new


def materialize_snapshots(
    settings: Settings,
    instance: DagsterInstance,
    snapshot_ids: list[str],
    refit: bool = False,
    on_run_done: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Every stage for the snapshots, in dependency order: ingest and embed each shard, fit the
    centroids (only when none exist yet, or when `refit`), label each shard, dedup each snapshot.
    A stage that fails for a snapshot stops that snapshot's later stages."""
    from crawlmix.centroid_store import current_key
    from curation_assets import definitions as d

    defs = d.build_definitions(settings)
    register_snapshots(instance, snapshot_ids)
    outcomes: list[RunOutcome] = []

    def run(job_name: str, partition_key=None, label: str = "") -> RunOutcome:
        result = execute_run(
            defs,
            instance,
            job_name,
            partition_key,
            # Step logs stay in the instance (and the UI); the terminal gets warnings and the summary.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        outcome = _outcome(job_name, label, result)
        outcomes.append(outcome)
        if on_run_done:
            on_run_done(outcome)
        return outcome

    def per_shard(job_name: str, snapshots: list[str]) -> list[str]:
        healthy = []
        for snapshot in snapshots:
            results = [run(job_name, partition_key_for(snapshot, shard), f"{snapshot}/{shard}") for shard in settings.shard_keys]
            if all(r.success for r in results):
                healthy.append(snapshot)
        return healthy

    ready = per_shard(d.INGEST_JOB, snapshot_ids)
    if not ready:
        return outcomes
    storage = defs.resources["storage"].get_storage()
    if refit or not storage.exists(current_key(storage)):
        if not run(d.FIT_JOB).success:
            return outcomes
    deduplicated = [s for s in per_shard(d.LABEL_JOB, ready) if run(d.DEDUP_JOB, s, s).success]
    if per_shard(d.SCORE_JOB, deduplicated):
        for name in defs.resolve_job_def(d.MIX_JOB).partitions_def.get_partition_keys():
            run(d.MIX_JOB, name, name)
        run(d.REPORT_JOB)
    return outcomes


CLI_LOCK_TAG = "crawlmix/process_lock"
_UNFINISHED = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
_process_lock: tuple[int, str, object] | None = None  # (pid, path, open file holding the lock)


def execute_run(defs, instance: DagsterInstance, job_name: str, partition_key=None, run_config=None, asset_selection=None):
    """One job run in this process, tagged with a lock this process holds for its lifetime, after
    releasing the runs of CLI processes that died (see `release_dead_runs`)."""
    release_dead_runs(instance)
    tags = {"crawlmix/launched_by": "cli"}
    lock = _process_lock_path(instance)
    if lock:
        tags[CLI_LOCK_TAG] = lock
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        raise_on_error=False,
        tags=tags,
        run_config=run_config,
        asset_selection=asset_selection,
    )


def release_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the unfinished CLI runs whose process is gone, and free their pool slots.

    A run executed in process that is SIGKILLed (OOM killer, power loss, `kill -9`) stays STARTED and
    keeps its `gpu` / `duckdb_warehouse` pool slot: with a pool limit of 1 every later run of that
    pool would wait forever (Dagster's daemon frees slots of finished runs only, and no launcher can
    health-check a run it did not start). A process's lock file is free exactly when it has died.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on Windows: nothing to tell dead from alive
        return []
    released = []
    for record in instance.get_run_records(RunsFilter(statuses=_UNFINISHED, tags={"crawlmix/launched_by": "cli"})):
        run = record.dagster_run
        lock = run.tags.get(CLI_LOCK_TAG)
        if not lock or not _lock_is_free(fcntl, lock):
            continue  # alive, or a lock file on another machine: not ours to judge
        instance.report_run_failed(run, "the process running this run died (killed or crashed); its pool slots were released")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    folder = Path(instance.root_directory) / "cli-processes"
    for path in folder.glob("*.lock") if folder.is_dir() else []:
        if (not _process_lock or str(path) != _process_lock[1]) and _lock_is_free(fcntl, str(path)):
            path.unlink(missing_ok=True)
    return released


def _lock_is_free(fcntl, path: str) -> bool:
    if not os.path.isfile(path):
        return False
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


def _process_lock_path(instance: DagsterInstance) -> str | None:
    """A lock file under DAGSTER_HOME held by this process (a forked child takes its own)."""
    global _process_lock
    if _process_lock is None or _process_lock[0] != os.getpid():
        try:
            import fcntl
        except ImportError:  # pragma: no cover
            return None
        import uuid

        folder = Path(instance.root_directory) / "cli-processes"
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        handle = open(folder / f".{name}.tmp", "w")  # noqa: SIM115 - held open (and locked) for the process's lifetime
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Locked before it gets its *.lock name, so a sweep never mistakes it for a dead process's.
        os.replace(folder / f".{name}.tmp", folder / f"{name}.lock")
        _process_lock = (os.getpid(), str(folder / f"{name}.lock"), handle)
    return _process_lock[1]


def stage_runs(settings: Settings) -> int:
    """How many runs `materialize_snapshots` makes per snapshot, for progress bars (fit excluded)."""
    return 3 * settings.shards + 1


def _outcome(job: str, partition: str, result) -> RunOutcome:
    materialized, checks, warnings, errors = {}, {}, [], []
    for event in result.all_events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            materialized[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN:
                warnings.append(f"{name}: {evaluation.description}")
            else:
                checks[name] = evaluation.passed
        elif event.is_step_failure:
            error = event.step_failure_data.error
            # The first cause is the step's own exception; the outer error is Dagster's wrapper.
            errors.append(f"{event.step_key}: {(error.cause or error).message.strip()}")
    run_ok = result.dagster_run.status == DagsterRunStatus.SUCCESS
    return RunOutcome(
        job=job,
        partition=partition,
        run_id=result.run_id,
        success=run_ok and all(checks.values()),
        materialized=materialized,
        checks=checks,
        warnings=warnings,
        error="; ".join(errors) or None,
    )


def materialized_partitions(instance: DagsterInstance, asset: str) -> set[str]:
    return set(instance.get_materialized_partitions(AssetKey(asset)))
