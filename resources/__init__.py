"""Dagster resources for crawlmix."""

from resources.snapshots import SnapshotsResource
from resources.storage import StorageResource
from resources.warehouse import WarehouseResource

__all__ = ["SnapshotsResource", "StorageResource", "WarehouseResource"]
