"""Materialize snapshots through Dagster from the command line, recording runs in the instance."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from crawlmix.settings import Settings
from curation_assets.partitions import crawl_snapshots, partition_key_for

MAIN_JOB = "ingest_snapshot_shard"


@dataclass
class PartitionOutcome:
    snapshot: str
    shard: str
    run_id: str
    success: bool
    materialized: dict[str, dict] = field(default_factory=dict)  # asset -> metadata values
    checks: dict[str, bool] = field(default_factory=dict)  # check name -> passed
    error: str | None = None


def instance_for(settings: Settings) -> DagsterInstance:
    """The Dagster instance under DAGSTER_HOME (SQLite by default), created on first use."""
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # The embedded default runs offline; telemetry would only print a banner and fail to send.
        config.write_text("telemetry:\n  enabled: false\n")
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
    on_partition_done: Callable[[PartitionOutcome], None] | None = None,
) -> list[PartitionOutcome]:
    from curation_assets.definitions import build_definitions

    job = build_definitions(settings).resolve_job_def(MAIN_JOB)
    register_snapshots(instance, snapshot_ids)
    outcomes = []
    for snapshot in snapshot_ids:
        for shard in settings.shard_keys:
            result = job.execute_in_process(
                instance=instance,
                partition_key=partition_key_for(snapshot, shard),
                raise_on_error=False,
                tags={"crawlmix/launched_by": "cli"},
                # Step logs stay in the instance (and the UI); the terminal gets warnings and the summary.
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            outcome = _outcome(snapshot, shard, result)
            outcomes.append(outcome)
            if on_partition_done:
                on_partition_done(outcome)
    return outcomes


def _outcome(snapshot: str, shard: str, result) -> PartitionOutcome:
    materialized, checks, errors = {}, {}, []
    for event in result.all_events:
        if event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            materialized[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            checks[evaluation.check_name] = evaluation.passed
        elif event.is_step_failure:
            error = event.step_failure_data.error
            # The first cause is the step's own exception; the outer error is Dagster's wrapper.
            errors.append(f"{event.step_key}: {(error.cause or error).message.strip()}")
    run_ok = result.dagster_run.status == DagsterRunStatus.SUCCESS
    return PartitionOutcome(
        snapshot=snapshot,
        shard=shard,
        run_id=result.run_id,
        success=run_ok and all(checks.values()),
        materialized=materialized,
        checks=checks,
        error="; ".join(errors) or None,
    )


def materialized_partitions(instance: DagsterInstance, asset: str) -> set[str]:
    return set(instance.get_materialized_partitions(AssetKey(asset)))
