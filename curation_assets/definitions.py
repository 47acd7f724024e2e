"""The one `Definitions` of the crawlmix code location, built from the environment's settings."""

from __future__ import annotations

import os
import warnings

from dagster import AssetSelection, BetaWarning, Definitions, EnvVar, PreviewWarning, define_asset_job
from dagster_aws.s3 import S3Resource

from crawlmix.mixture import load_mixture_specs
from crawlmix.settings import Settings
from curation_assets.automation import automation_sensor, with_automation
from curation_assets.clustering import build_clustering
from curation_assets.embedding import build_embedding
from curation_assets.ingestion import build_ingestion, build_snapshot_sensor
from curation_assets.partitions import snapshot_shard_partitions
from curation_assets.mixtures import build_mixtures
from curation_assets.quality import build_quality
from curation_assets.reports import build_reports, dbt_project, dbt_resource, prepare_manifest
from resources import EmbedderResource, SnapshotsResource, StorageResource, WarehouseResource

# The stages `crawlmix run` drives in order; the first is what the snapshot sensor requests.
INGEST_JOB = "crawl_pipeline"
FIT_JOB = "fit_centroids"
LABEL_JOB = "label_shards"
DEDUP_JOB = "semantic_dedup"
SCORE_JOB = "score_shards"
MIX_JOB = "build_mixture"
REPORT_JOB = "build_reports"
MAIN_JOB = INGEST_JOB

# DuckDB admits one writing process at a time. With a DuckDB warehouse every warehouse-writing step
# (but `centroids`, already one at a time in the `gpu` pool) takes a slot of this pool, whose limit is
# the instance's `pools.default_limit` (1 in the embedded and docker instances), so concurrent runs
# queue for the file instead of contending for its lock. PostgreSQL takes concurrent writers
# (transactions and per-partition advisory locks), so there is no pool and shards run in parallel.
DUCKDB_WAREHOUSE_POOL = "duckdb_warehouse"


def warehouse_pool(settings: Settings) -> str | None:
    return DUCKDB_WAREHOUSE_POOL if settings.warehouse_url.startswith("duckdb") else None

# Partitioned asset checks (preview) and the snapshot-dimension partition mapping (beta) are what the
# design needs in this Dagster release; we depend on them knowingly and pin Dagster exactly.
warnings.filterwarnings("ignore", category=PreviewWarning)
warnings.filterwarnings("ignore", category=BetaWarning)


def build_resources(settings: Settings) -> dict:
    """Endpoints and secrets stay EnvVar references so the UI and metadata never show their values."""
    s3_options = {}
    if os.environ.get("CRAWLMIX_S3_ENDPOINT_URL"):
        s3_options["endpoint_url"] = EnvVar("CRAWLMIX_S3_ENDPOINT_URL")
    for region_var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(region_var):
            s3_options["region_name"] = EnvVar(region_var)
            break
    s3 = S3Resource(**s3_options)
    warehouse_url = EnvVar("CRAWLMIX_WAREHOUSE_URL") if os.environ.get("CRAWLMIX_WAREHOUSE_URL") else settings.warehouse_url
    return {
        "snapshots": SnapshotsResource(root=settings.snapshots_root, s3=s3, url_blocklists=list(settings.url_blocklists)),
        "storage": StorageResource(root=settings.storage_root, s3=s3),
        "warehouse": WarehouseResource(url=warehouse_url),
        "embedder": EmbedderResource(device=settings.device, work_root=str(settings.home / "work")),
        "dbt": dbt_resource(warehouse_url),
    }


def build_definitions(settings: Settings) -> Definitions:
    partitions_def = snapshot_shard_partitions(settings.shard_keys)
    pool = warehouse_pool(settings)
    ingestion_assets, ingestion_checks = build_ingestion(partitions_def, settings.shard_keys, pool)
    embedding_assets, embedding_checks = build_embedding(partitions_def)
    clustering_assets, clustering_checks = build_clustering(partitions_def, settings.shard_keys, pool)
    centroids, cluster_labels, semantic_duplicates = clustering_assets
    quality_assets, quality_checks = build_quality(partitions_def, settings.shard_keys, pool)
    mixture_assets, mixture_checks = build_mixtures(load_mixture_specs(settings.mixtures_file), pool)
    if not dbt_project().manifest_path.exists():
        # Images and CI prepare the manifest at build time; a fresh checkout does it once, here.
        prepare_manifest()
    report_assets, report_checks = build_reports(warehouse_pool=pool)
    jobs = {
        INGEST_JOB: define_asset_job(
            INGEST_JOB,
            selection=AssetSelection.assets(*ingestion_assets, *embedding_assets),
            partitions_def=partitions_def,
            description="One snapshot shard through ingestion and embedding, each gated by its checks.",
        ),
        FIT_JOB: define_asset_job(
            FIT_JOB,
            selection=AssetSelection.assets(centroids),
            description="Fit (or deliberately refit) the centroid tree; labels made with older centroids become stale.",
        ),
        LABEL_JOB: define_asset_job(
            LABEL_JOB,
            selection=AssetSelection.assets(cluster_labels),
            partitions_def=partitions_def,
            description="Label one snapshot shard against the current centroids.",
        ),
        SCORE_JOB: define_asset_job(
            SCORE_JOB,
            selection=AssetSelection.assets(*quality_assets),
            partitions_def=partitions_def,
            description="Quality-score one snapshot shard (needs its snapshot's semantic duplicates).",
        ),
        DEDUP_JOB: define_asset_job(
            DEDUP_JOB,
            selection=AssetSelection.assets(semantic_duplicates),
            partitions_def=semantic_duplicates.partitions_def,
            description="Semantic deduplication of one snapshot across its shards.",
        ),
        REPORT_JOB: define_asset_job(
            REPORT_JOB,
            selection=AssetSelection.assets(*report_assets),
            description="Build the dbt report models on the warehouse and run their tests.",
        ),
        MIX_JOB: define_asset_job(
            MIX_JOB,
            selection=AssetSelection.assets(*mixture_assets),
            partitions_def=mixture_assets[0].partitions_def,
            description="Build one named mixture, gate it, and publish it only if the gate passes.",
        ),
    }
    return Definitions(
        assets=with_automation(
            [*ingestion_assets, *embedding_assets, *clustering_assets, *quality_assets, *mixture_assets, *report_assets]
        ),
        asset_checks=[*ingestion_checks, *embedding_checks, *clustering_checks, *quality_checks, *mixture_checks, *report_checks],
        jobs=list(jobs.values()),
        sensors=[
            build_snapshot_sensor(jobs[INGEST_JOB], settings.shard_keys, settings.snapshots_per_tick),
            automation_sensor(),
        ],
        resources=build_resources(settings),
    )


defs = build_definitions(Settings.from_env())
