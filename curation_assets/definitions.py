"""The one `Definitions` of the crawlmix code location, built from the environment's settings."""

from __future__ import annotations

import os
import warnings

from dagster import Definitions, EnvVar, PreviewWarning
from dagster_aws.s3 import S3Resource

from crawlmix.settings import Settings
from curation_assets.ingestion import build_ingestion
from curation_assets.partitions import snapshot_shard_partitions
from resources import SnapshotsResource, StorageResource, WarehouseResource

# Partitioned asset checks are a preview feature in this Dagster release; we depend on them knowingly.
warnings.filterwarnings("ignore", category=PreviewWarning)


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
        "snapshots": SnapshotsResource(root=settings.snapshots_root, s3=s3),
        "storage": StorageResource(root=settings.storage_root, s3=s3),
        "warehouse": WarehouseResource(url=warehouse_url),
    }


def build_definitions(settings: Settings) -> Definitions:
    partitions_def = snapshot_shard_partitions(settings.shard_keys)
    assets, checks, jobs, sensors = build_ingestion(
        partitions_def, settings.shard_keys, settings.snapshots_per_tick
    )
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        sensors=sensors,
        resources=build_resources(settings),
    )


defs = build_definitions(Settings.from_env())
