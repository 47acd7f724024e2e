"""Automation, condition by condition at a controlled clock, and a new snapshot flowing through
labels, duplicates and scores by automation conditions alone, evaluated in-process tick by tick as the
daemon would, without touching the earlier snapshot. (tests/test_daemon_e2e.py runs the real daemon.)

The condition tests fake materializations and check results with runless events: what is asserted is
exactly which partitions each tick requests.
"""

from __future__ import annotations

import datetime

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DefaultSensorStatus,
    evaluate_automation_conditions,
)

# Not exported at the top level: a reported check result names the materialization it checked, and
# is filed under a run id of its own.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.utils import make_new_run_id

from curation_assets import definitions as d
from curation_assets.automation import AUTOMATION_SENSOR
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


# ----------------------------------------------------------------------------------------------
# Conditions at a controlled clock
# ----------------------------------------------------------------------------------------------

MONDAY = datetime.datetime(2027, 1, 4, tzinfo=datetime.timezone.utc)  # the rebuild cron: Mondays 04:00 UTC
SHARDS = ("000", "001")
# The dbt report models that read each asset's warehouse tables (dbt_project/models).
LABEL_REPORTS = {"cluster_summary": {None}, "snapshot_drift": {None}, "mixture_composition_report": {None}}
QUALITY_REPORTS = {"quality_by_cluster_report": {None}, "filter_impact_report": {None}, "language_report": {None}}


def at(days: int, hours: int, minutes: int = 0) -> datetime.datetime:
    """A time relative to Monday 2027-01-04 00:00 UTC."""
    return MONDAY + datetime.timedelta(days=days, hours=hours, minutes=minutes)


def shards_of(snapshot: str) -> list[str]:
    return [str(partition_key_for(snapshot, shard)) for shard in SHARDS]


class Deployment:
    """An instance whose materializations and check results are reported rather than computed, and
    automation ticks evaluated at chosen times, carrying the cursor from tick to tick as the daemon does."""

    def __init__(self, defs, instance: DagsterInstance):
        self.defs, self.instance = defs, instance
        self.graph = defs.resolve_asset_graph()
        self.mixtures = sorted(self.graph.get(AssetKey("final_mixtures")).partitions_def.get_partition_keys())
        self.reports = sorted(k.to_user_string() for k in AssetSelection.groups("reports").resolve(self.graph))
        self.cursor = None

    def materialize(self, asset: str, partitions=(None,), checks_pass: bool = True) -> None:
        key = AssetKey(asset)
        for partition in partitions:
            self.instance.report_runless_asset_event(AssetMaterialization(asset_key=key, partition=partition))
            # A check result counts for the materialization it names, as a real check run's does.
            (record,) = self.instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None), limit=1
            ).records
            target = AssetCheckEvaluationTargetMaterializationData(
                storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
            )
            # Each result under its own run id, as a rerun's would be: the instance keeps one result
            # per (check, run, partition), so a second runless result for a partition is refused.
            run_id = make_new_run_id()
            for check_key in self.graph.get_check_keys_for_assets({key}):
                evaluation = AssetCheckEvaluation(
                    asset_key=key, check_name=check_key.name, passed=checks_pass, partition=partition,
                    blocking=self.graph.get(check_key).blocking, target_materialization_data=target,
                )
                self.instance.report_dagster_event(
                    DagsterEvent(
                        event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION.value,
                        job_name="reported_checks",
                        event_specific_data=evaluation,
                    ),
                    run_id=run_id,
                )

    def tick(self, when: datetime.datetime) -> dict[str, set]:
        """What one automation tick at `when` requests: asset -> partition keys (None if unpartitioned)."""
        result = evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor, evaluation_time=when
        )
        self.cursor = result.cursor
        requested = {}
        for key in self.graph.get_all_asset_keys():
            partitions = result.get_requested_partitions(key)
            if partitions:
                requested[key.to_user_string()] = {None if p is None else str(p) for p in partitions}
        return requested


@pytest.fixture(scope="module")
def graph_defs(tmp_path_factory):
    return d.build_definitions(settings_for(tmp_path_factory.mktemp("conditions") / "home", shards=len(SHARDS)))


@pytest.fixture
def deployment(graph_defs):
    """snap-a processed all the way: shards, centroids, dedup, scores, every mixture built and
    published, every report built; all blocking checks passed."""
    with DagsterInstance.ephemeral() as instance:
        deployment = Deployment(graph_defs, instance)
        instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-a"])
        for asset in ("raw_corpus", "embeddings"):
            deployment.materialize(asset, shards_of("snap-a"))
        deployment.materialize("centroids")
        deployment.materialize("cluster_labels", shards_of("snap-a"))
        deployment.materialize("semantic_duplicates", ["snap-a"])
        deployment.materialize("quality_scores", shards_of("snap-a"))
        deployment.materialize("final_mixtures", deployment.mixtures)
        deployment.materialize("mixture_publication", deployment.mixtures)
        for report in deployment.reports:
            deployment.materialize(report)
        yield deployment


def test_one_running_sensor_evaluates_every_condition(graph_defs):
    sensors = {s.name: s for s in graph_defs.sensors}
    sensor = sensors[AUTOMATION_SENSOR]
    assert isinstance(sensor, AutomationConditionSensorDefinition)
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    graph = graph_defs.resolve_asset_graph()
    conditioned = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition is not None}
    assert {"cluster_labels", "semantic_duplicates", "quality_scores", "final_mixtures", "cluster_summary"} <= {
        k.to_user_string() for k in conditioned
    }
    assert conditioned <= sensor.asset_selection.resolve(graph)
    # Nothing is left to Dagster's implicit default automation sensor, which starts stopped.
    repository_sensors = {s.name for s in graph_defs.get_repository_def().sensor_defs}
    assert repository_sensors == {"crawl_snapshot_sensor", AUTOMATION_SENSOR}


def test_a_processed_deployment_requests_nothing(deployment):
    assert deployment.tick(at(2, 12)) == {}
    assert deployment.tick(at(2, 12, 1)) == {}


def test_a_new_snapshot_steps_through_one_tick_per_stage_and_refreshes_reports(deployment):
    assert deployment.tick(at(2, 12)) == {}
    deployment.instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-b"])
    assert deployment.tick(at(2, 12, 1)) == {}  # registered, not yet ingested: nothing to do

    deployment.materialize("raw_corpus", shards_of("snap-b"))  # what crawl_pipeline's runs write
    deployment.materialize("embeddings", shards_of("snap-b"))
    # Labels only: dedup and the cluster reports wait for the labels to exist, not merely be requested.
    assert deployment.tick(at(2, 12, 2)) == {"cluster_labels": set(shards_of("snap-b"))}
    assert deployment.tick(at(2, 12, 3)) == {}

    deployment.materialize("cluster_labels", shards_of("snap-b"))
    # snapshot_drift selects from cluster_summary: requested together, they share one dbt run.
    assert deployment.tick(at(2, 12, 4)) == {"semantic_duplicates": {"snap-b"}, **LABEL_REPORTS}
    for report in LABEL_REPORTS:
        deployment.materialize(report)

    deployment.materialize("semantic_duplicates", ["snap-b"])
    assert deployment.tick(at(2, 12, 5)) == {"quality_scores": set(shards_of("snap-b"))}

    deployment.materialize("quality_scores", shards_of("snap-b"))
    assert deployment.tick(at(2, 12, 6)) == QUALITY_REPORTS  # and no mixture rebuild on a Wednesday
    assert deployment.tick(at(2, 12, 7)) == {}


def test_a_failed_shard_gate_holds_its_snapshots_next_stage(deployment):
    deployment.tick(at(2, 12))
    deployment.instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-b"])
    deployment.materialize("raw_corpus", shards_of("snap-b"))
    deployment.materialize("embeddings", shards_of("snap-b"))
    assert deployment.tick(at(2, 12, 1)) == {"cluster_labels": set(shards_of("snap-b"))}
    first, second = shards_of("snap-b")
    deployment.materialize("cluster_labels", [first])
    deployment.materialize("cluster_labels", [second], checks_pass=False)
    # Dedup reads every shard of the snapshot: one failed gate holds it. The reports show what the
    # warehouse holds, failed shard included.
    assert deployment.tick(at(2, 12, 2)) == LABEL_REPORTS
    for report in LABEL_REPORTS:
        deployment.materialize(report)
    assert deployment.tick(at(2, 12, 3)) == {}
    deployment.materialize("cluster_labels", [second])  # relabelled, gate passed
    assert deployment.tick(at(2, 12, 4)) == {"semantic_duplicates": {"snap-b"}, **LABEL_REPORTS}


def test_weekly_rebuild_fires_at_the_monday_tick_only_when_upstream_changed(deployment):
    everything = set(deployment.mixtures)
    assert deployment.tick(at(-1, 12)) == {}  # Sunday

    # New quality scores on Monday night: the reports follow at once, the mixtures wait for 04:00.
    deployment.materialize("quality_scores", shards_of("snap-a")[:1])
    assert deployment.tick(at(0, 2)) == QUALITY_REPORTS
    for report in QUALITY_REPORTS:
        deployment.materialize(report)
    assert deployment.tick(at(0, 3, 59)) == {}

    # Just after the tick, with new quality scores: every mixture, once, with its publication in the
    # same run (behind the build's blocking gate).
    assert deployment.tick(at(0, 4, 1)) == {"final_mixtures": everything, "mixture_publication": everything}
    assert deployment.tick(at(0, 4, 2)) == {}

    # The builds land; the composition report follows.
    deployment.materialize("final_mixtures", deployment.mixtures)
    deployment.materialize("mixture_publication", deployment.mixtures)
    assert deployment.tick(at(0, 4, 30)) == {"mixture_composition_report": {None}}
    deployment.materialize("mixture_composition_report")
    assert deployment.tick(at(0, 5)) == {}

    # A week later with nothing new: no rebuild.
    assert deployment.tick(at(7, 3, 59)) == {}
    assert deployment.tick(at(7, 4, 1)) == {}

    # New scores on Tuesday wait for the next Monday's tick; a centroid refit alone never triggers.
    deployment.materialize("quality_scores", shards_of("snap-a")[1:])
    assert deployment.tick(at(8, 10)) == QUALITY_REPORTS
    for report in QUALITY_REPORTS:
        deployment.materialize(report)
    assert deployment.tick(at(8, 10, 30)) == {}
    deployment.materialize("centroids")
    assert deployment.tick(at(8, 11)) == {report: {None} for report in deployment.reports}
    for report in deployment.reports:
        deployment.materialize(report)
    assert deployment.tick(at(14, 3, 59)) == {}
    assert deployment.tick(at(14, 4, 1)) == {"final_mixtures": everything, "mixture_publication": everything}


def test_weekly_rebuild_with_nothing_new_skips_the_week(deployment):
    assert deployment.tick(at(-1, 12)) == {}
    assert deployment.tick(at(0, 4, 1)) == {}
    # A change after the tick does not start a build mid-week...
    deployment.materialize("quality_scores", shards_of("snap-a")[:1])
    assert deployment.tick(at(0, 9)) == QUALITY_REPORTS
    for report in QUALITY_REPORTS:
        deployment.materialize(report)
    assert deployment.tick(at(3, 9)) == {}
    # ...but it is picked up by the next weekly tick.
    everything = set(deployment.mixtures)
    assert deployment.tick(at(7, 4, 1)) == {"final_mixtures": everything, "mixture_publication": everything}


def test_weekly_rebuild_waits_for_a_failed_upstream_gate_then_fires(deployment):
    assert deployment.tick(at(-1, 12)) == {}
    deployment.materialize("quality_scores", shards_of("snap-a")[:1], checks_pass=False)
    # The reports show what the warehouse holds, failed shard included; a mixture waits for the rerun.
    assert deployment.tick(at(0, 2)) == QUALITY_REPORTS
    for report in QUALITY_REPORTS:
        deployment.materialize(report)
    assert deployment.tick(at(0, 4, 1)) == {}
    assert deployment.tick(at(0, 5)) == {}
    deployment.materialize("quality_scores", shards_of("snap-a")[:1])  # rerun, gate passed
    everything = set(deployment.mixtures)
    assert deployment.tick(at(0, 6)) == {
        "final_mixtures": everything, "mixture_publication": everything, **QUALITY_REPORTS
    }
