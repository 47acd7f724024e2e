"""Dagster resources for crawlmix."""

from resources.embedder import EmbedderResource
from resources.snapshots import SnapshotsResource
from resources.storage import StorageResource
from resources.warehouse import WarehouseResource

__all__ = ["EmbedderResource", "SnapshotsResource", "StorageResource", "WarehouseResource"]
