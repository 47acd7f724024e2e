"""When each asset materializes by itself, so a new snapshot flows through without anyone clicking.

- The snapshot sensor requests `crawl_pipeline` (raw_corpus + embeddings) for a new snapshot's shards.
- Each step after it runs once the step before it in the chain (embeddings -> cluster_labels ->
  semantic_duplicates -> quality_scores) has updated the partitions it reads, all its inputs exist,
  none of them is running, and none of them failed a blocking check. A backfill or rerun of one
  snapshot therefore only ever touches that snapshot's partitions.
- `cluster_labels` ignores centroid refits: a refit is deliberate, it leaves older labels visibly
  stale (their centroid version differs, which dedup and mixture gates refuse) rather than
  relabelling every partition of every snapshot on its own.
- Mixtures rebuild weekly (Mondays 04:00 UTC), and only if something they read changed since their
  last build; publication follows a build whose gate passed.
- The dbt reports refresh after the warehouse tables they read change.

All of it is evaluated by one sensor, `curation_automation_sensor`, declared running (a condition
that no running sensor evaluates does nothing: Dagster's implicit default sensor starts stopped).
"""

from dagster import (
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

from curation_assets.reports import REPORTS_GROUP

MIXTURE_REBUILD_CRON = "0 4 * * 1"  # Mondays 04:00 UTC
MIXTURE_REBUILD_TIMEZONE = "UTC"
AUTOMATION_SENSOR = "curation_automation_sensor"
# Dagster's default for automation sensors. One tick evaluates every partition of every asset; with
# hundreds of shards per snapshot that takes seconds, and a snapshot's steps take minutes, so a
# shorter interval would mostly burn daemon CPU without moving work forward sooner.
AUTOMATION_INTERVAL_SECONDS = 30


def upstream_gates_passed() -> AutomationCondition:
    # `all_deps_blocking_checks_passed` holds for a dependency as soon as *some* of the upstream
    # partitions mapped to this one passed; a snapshot's dedup reads all its shards and a mixture reads
    # every partition, so a single upstream partition whose gate failed must hold them back too.
    upstream_gate_failed = AutomationCondition.any_deps_match(
        AutomationCondition.any_checks_match(AutomationCondition.check_failed(), blocking_only=True)
    ).with_label("any_upstream_partition_failed_a_blocking_check")
    return (AutomationCondition.all_deps_blocking_checks_passed() & ~upstream_gate_failed).with_label(
        "upstream_gates_passed"
    )


def eager_after(trigger: str) -> AutomationCondition:
    """Eager, but set off only by updates of `trigger`, the dependency that comes last in the chain.

    The other dependencies still have to exist, not be running, and have passed their gates. Why:
    Dagster orders a parent and a child requested in the same tick only when they share a run (same
    partition key); quality_scores (per shard) also reads cluster_labels, and semantic_duplicates
    (per snapshot) also reads embeddings, so plain eager on a relabel would start a scoring run next
    to the dedup run it must follow, and score again when dedup lands. Following the chain, each
    step waits for the one before it and runs once.
    """
    updated = AutomationCondition.any_deps_updated().allow(AssetSelection.assets(trigger))
    return (
        AutomationCondition.eager().replace("any_deps_updated", updated.with_label(f"{trigger}_updated"))
        & upstream_gates_passed()
    ).with_label(f"eager_after({trigger})")


def weekly_mixture_rebuild() -> AutomationCondition:
    """Fires at the first evaluation after the weekly tick if, at that tick, the mixture was never
    built, its last build failed, or anything it reads changed since its last build; once due, it
    waits until no upstream step is running and no upstream partition has a failed blocking check,
    then requests the build once.

    Unlike `AutomationCondition.on_cron`, it does not wait for *every* upstream asset to update after
    the tick (`centroids` is refit only on purpose, so that would never happen), and unlike a plain
    cron-since-last-build, a change made on a Tuesday waits for the next Monday instead of
    triggering a build on the spot. Centroid refits are ignored: they change nothing a mixture reads
    until `label_shards` relabels, and that relabelling is itself an upstream change.
    """
    built = (AutomationCondition.newly_requested() | AutomationCondition.newly_updated()).with_label(
        "requested_or_built"
    )
    upstream_changed = (
        AutomationCondition.any_deps_updated()
        .ignore(AssetSelection.assets("centroids"))
        .since(built)
        .with_label("any_deps_updated_since_last_build")
    )
    stale = (
        AutomationCondition.missing() | AutomationCondition.execution_failed() | upstream_changed
    ).with_label("never_built_or_failed_or_upstream_changed")
    due = (
        (AutomationCondition.cron_tick_passed(MIXTURE_REBUILD_CRON, MIXTURE_REBUILD_TIMEZONE) & stale)
        .since(built)
        .with_label(f"stale_at_weekly_tick({MIXTURE_REBUILD_CRON} {MIXTURE_REBUILD_TIMEZONE})")
    )
    return (
        due
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
        & upstream_gates_passed()
    ).with_label("weekly_rebuild_if_upstream_changed")


def reports_refresh() -> AutomationCondition:
    """Like eager, after any upstream table changes, but not blocked by a missing partition upstream.

    A report is unpartitioned and reads every partition of its partitioned sources, so eager's
    `~any_deps_missing` would hold it back for as long as one shard of one snapshot (or one mixture)
    is missing, which in a live deployment is always. It only needs every upstream to have been
    written once (else the source table may not exist yet). Unlike a mixture, a report is not held
    back by a failed upstream gate: it shows what the warehouse holds, and that helps find the cause.
    A report model and the one it selects from are requested together and share one dbt run.
    """
    return (
        (AutomationCondition.newly_missing() | AutomationCondition.any_deps_updated()).since_last_handled()
        & AutomationCondition.all_deps_match(
            ~AutomationCondition.missing() | AutomationCondition.will_be_requested()
        ).with_label("all_deps_written_once")
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
        & AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("refresh_after_upstream_tables_change")


def conditions() -> dict[str, AutomationCondition]:
    return {
        "embeddings": eager_after("raw_corpus"),
        # Not set off by centroid refits (see the module docstring), but it waits for a fit in progress.
        "cluster_labels": eager_after("embeddings"),
        "semantic_duplicates": eager_after("cluster_labels"),
        "quality_scores": eager_after("semantic_duplicates"),
        "final_mixtures": weekly_mixture_rebuild(),
        # Requested with its build, in the same run: the build's blocking gate stops it there.
        "mixture_publication": eager_after("final_mixtures"),
    }


def with_automation(assets: list) -> list:
    """The assets with their conditions: by key from `conditions()`, `reports_refresh()` for the dbt
    report models (whatever models the dbt project holds)."""
    table = conditions()
    out = []
    for assets_def in assets:
        conditioned = {}
        for key in assets_def.keys:
            if key.to_user_string() in table:
                conditioned[key] = table[key.to_user_string()]
            elif assets_def.group_names_by_key.get(key) == REPORTS_GROUP:
                conditioned[key] = reports_refresh()
        out.append(assets_def.with_attributes(automation_condition=conditioned) if conditioned else assets_def)
    return out


def automation_sensor() -> AutomationConditionSensorDefinition:
    # One sensor for the whole graph, not one per group: every condition of a tick reads the same
    # view of the event log, and a parent and child that can share a run (a mixture and its
    # publication, a report and the report it selects from) are only requested together when one
    # sensor evaluates both. Splitting would not make ticks cheaper either: each sensor would still
    # evaluate every partition of its assets.
    return AutomationConditionSensorDefinition(
        AUTOMATION_SENSOR,
        target=AssetSelection.all(),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
        # One run per requested partition (a parent and child with the same key share one), like the
        # snapshot sensor's one run per shard: the conditions above order parents before children
        # across partition keys, and runs start without waiting for the backfill daemon's 30 s loop.
        emit_backfills=False,
        description=(
            f"Every {AUTOMATION_INTERVAL_SECONDS} s, evaluates the assets' automation conditions and requests runs: "
            "labels, semantic duplicates and quality scores of a snapshot once crawl_snapshot_sensor's runs "
            "have ingested and embedded it (and their blocking checks passed); the dbt reports after the "
            f"tables they read change; each mixture weekly ({MIXTURE_REBUILD_CRON} {MIXTURE_REBUILD_TIMEZONE}) "
            "when anything it reads changed since its last build, and its publication after its gate passed."
        ),
    )
