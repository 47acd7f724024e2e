"""When each asset materializes by itself, so a new snapshot flows through without anyone clicking.

- The snapshot sensor requests `crawl_pipeline` (raw_corpus + embeddings) for a new snapshot's shards.
- Per-shard and per-snapshot steps after it are eager: a partition runs once its upstream partitions
  exist and their blocking checks passed. A backfill or rerun of one snapshot therefore only ever
  touches that snapshot's partitions.
- `cluster_labels` ignores centroid refits: a refit is deliberate, it leaves older labels visibly
  stale (their centroid version differs, which dedup and mixture gates refuse) rather than
  relabelling every partition of every snapshot on its own.
- Mixtures rebuild weekly (and on demand); publication follows a build whose gate passed.
"""

from dagster import AssetSelection, AutomationCondition

MIXTURE_REBUILD_CRON = "0 4 * * 1"  # Mondays 04:00 UTC


def gated_eager() -> AutomationCondition:
    return AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()


def conditions() -> dict[str, AutomationCondition]:
    return {
        "embeddings": gated_eager(),
        "cluster_labels": (
            AutomationCondition.eager().ignore(AssetSelection.assets("centroids"))
            & AutomationCondition.all_deps_blocking_checks_passed()
        ),
        "semantic_duplicates": gated_eager(),
        "quality_scores": gated_eager(),
        "final_mixtures": AutomationCondition.on_cron(MIXTURE_REBUILD_CRON)
        & AutomationCondition.all_deps_blocking_checks_passed(),
        "mixture_publication": gated_eager(),
    }


def with_automation(assets: list) -> list:
    table = conditions()
    out = []
    for assets_def in assets:
        conditioned = {k: table[k.to_user_string()] for k in assets_def.keys if k.to_user_string() in table}
        out.append(assets_def.with_attributes(automation_condition=conditioned) if conditioned else assets_def)
    return out
