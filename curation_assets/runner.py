"""Materialize snapshots through Dagster from the command line, recording runs in the instance."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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
class CheckFailure:
    """A blocking check that did not pass: what it checks, and what it observed."""

    check: str  # "asset:check"
    observed: str  # the check result's description: the failing expectations with their observed values
    failed_expectations: list[str] = field(default_factory=list)  # GE expectation types that failed
    checks_for: str = ""  # the check's own description (what it guards)


@dataclass
class StepError:
    step: str
    message: str  # the step's own exception, "ExceptionClass: message" (Dagster's wrapper stripped)


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
    failed_checks: list[CheckFailure] = field(default_factory=list)
    step_errors: list[StepError] = field(default_factory=list)  # check-gate stops excluded (see failed_checks)
    skipped_steps: list[str] = field(default_factory=list)  # not executed because an upstream step or gate failed
    asset_seconds: dict[str, float] = field(default_factory=dict)  # asset -> duration of the step that made it
    seconds: float = 0.0  # the whole run, wall clock


class RunListener(Protocol):
    """Told what `materialize_snapshots` does as it does it (the CLI draws its progress from this)."""

    def stage_started(self, job: str, planned_runs: int) -> None: ...

    def run_finished(self, outcome: RunOutcome) -> None: ...

    def stage_finished(self, job: str) -> None: ...


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
    listener: RunListener | None = None,
    log_level: str = "WARNING",
) -> list[RunOutcome]:
    """Every stage for the snapshots, in dependency order, one stage at a time: ingest and embed each
    shard, fit the centroids (only when none exist yet, or when `refit`), label each shard, dedup
    each snapshot, score each shard, then build every mixture and the reports. A stage that fails
    for a snapshot stops that snapshot's later stages; mixtures and reports run when at least one
    snapshot came through scoring. `log_level` is the Dagster console logger's: the event log keeps
    every level whatever it is."""
    from crawlmix.centroid_store import current_key
    from curation_assets import definitions as d

    defs = d.build_definitions(settings)
    register_snapshots(instance, snapshot_ids)
    outcomes: list[RunOutcome] = []
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}

    def run(job_name: str, partition_key=None, label: str = "") -> RunOutcome:
        started = time.monotonic()
        result = execute_run(defs, instance, job_name, partition_key, run_config=run_config)
        outcome = _outcome(job_name, label, result)
        outcome.seconds = time.monotonic() - started
        outcomes.append(outcome)
        if listener:
            listener.run_finished(outcome)
        return outcome

    @contextmanager
    def stage(job_name: str, planned_runs: int):
        if listener:
            listener.stage_started(job_name, planned_runs)
        try:
            yield
        finally:
            if listener:
                listener.stage_finished(job_name)

    def per_shard(job_name: str, snapshots: list[str]) -> list[str]:
        healthy = []
        with stage(job_name, len(snapshots) * len(settings.shard_keys)):
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
        with stage(d.FIT_JOB, 1):
            fitted = run(d.FIT_JOB).success
        if not fitted:
            return outcomes
    labelled = per_shard(d.LABEL_JOB, ready)
    if not labelled:
        return outcomes
    with stage(d.DEDUP_JOB, len(labelled)):
        deduplicated = [s for s in labelled if run(d.DEDUP_JOB, s, s).success]
    if deduplicated and per_shard(d.SCORE_JOB, deduplicated):
        mixtures = defs.resolve_job_def(d.MIX_JOB).partitions_def.get_partition_keys()
        with stage(d.MIX_JOB, len(mixtures)):
            for name in mixtures:
                run(d.MIX_JOB, name, name)
        with stage(d.REPORT_JOB, 1):
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


def _outcome(job: str, partition: str, result) -> RunOutcome:
    materialized, checks, warnings, failed_checks = {}, {}, [], []
    step_errors, started, step_seconds, step_of_asset = [], set(), {}, {}
    for event in result.all_events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            asset = mat.asset_key.to_user_string()
            materialized[asset] = {k: v.value for k, v in mat.metadata.items()}
            step_of_asset[asset] = event.step_key
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            if not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN:
                warnings.append(f"{name}: {evaluation.description}")
                continue
            checks[name] = evaluation.passed
            if not evaluation.passed:
                failed_checks.append(CheckFailure(
                    check=name,
                    observed=(evaluation.description or "").strip(),
                    failed_expectations=_failed_expectations(evaluation.metadata),
                    checks_for=_check_description(result, evaluation.asset_check_key),
                ))
        elif event.event_type_value == "STEP_SUCCESS":
            step_seconds[event.step_key] = event.event_specific_data.duration_ms / 1000
        elif event.event_type_value == "STEP_START":
            started.add(event.step_key)
        elif event.is_step_failure:
            error = event.step_failure_data.error
            if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
                continue  # a blocking gate stopping its step: reported through failed_checks
            # The first cause is the step's own exception; the outer error is Dagster's wrapper.
            own = (error.cause or error) if error is not None else None
            message = _error_text(own) if own else "failed without an error (see the run's logs)"
            step_errors.append(StepError(event.step_key, message))
    if result.dagster_run.status != DagsterRunStatus.SUCCESS and not step_errors and not failed_checks:
        # A run can fail before any step (resource setup, a bad config): its RUN_FAILURE says why.
        for event in result.all_events:
            if event.event_type_value == "PIPELINE_FAILURE":
                error = getattr(event.event_specific_data, "error", None)
                step_errors.append(StepError("run", _error_text(error) if error else event.message or "run failed"))
    run_ok = result.dagster_run.status == DagsterRunStatus.SUCCESS
    # Steps below a failed step or gate are not executed, and Dagster records no event for them.
    skipped = [k for k in result.dagster_run.step_keys_to_execute or [] if k not in started] if not run_ok else []
    errors = [f"{e.step}: {e.message}" for e in step_errors] + [f"{c.check} failed: {c.observed}" for c in failed_checks]
    return RunOutcome(
        job=job,
        partition=partition,
        run_id=result.run_id,
        success=run_ok and all(checks.values()),
        materialized=materialized,
        checks=checks,
        warnings=warnings,
        error="; ".join(errors) or None,
        failed_checks=failed_checks,
        step_errors=step_errors,
        skipped_steps=skipped,
        asset_seconds={a: step_seconds[s] for a, s in step_of_asset.items() if s in step_seconds},
    )


def _error_text(error) -> str:
    """"ExceptionClass: message" from Dagster's serialized error, without the class's module path."""
    text = error.message.strip()
    head, sep, rest = text.partition(": ")
    if sep and head.split(".")[-1] == error.cls_name:
        return f"{error.cls_name}: {rest}"
    return text


def _failed_expectations(metadata) -> list[str]:
    """The failing expectation types from a gate's `ge_results` metadata (see curation_assets.gates)."""
    results = metadata.get("ge_results")
    values = getattr(results, "value", None) or getattr(results, "data", None) or []
    return [e.get("expectation", "?") for e in values if isinstance(e, dict) and not e.get("success", True)]


def _check_description(result, check_key) -> str:
    try:
        return result.job_def.asset_layer.asset_graph.get_check_spec(check_key).description or ""
    except Exception:  # a check the job's asset graph does not hold (dbt test): its name says enough
        return ""


def materialized_partitions(instance: DagsterInstance, asset: str) -> set[str]:
    return set(instance.get_materialized_partitions(AssetKey(asset)))
