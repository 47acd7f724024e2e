"""Partitions: dynamic crawl snapshots crossed with a static, deployment-sized shard dimension."""

from __future__ import annotations

from dagster import (
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

SNAPSHOT_DIM = "snapshot"
SHARD_DIM = "shard"

crawl_snapshots = DynamicPartitionsDefinition(name="crawl_snapshots")


def snapshot_shard_partitions(shard_keys: list[str]) -> MultiPartitionsDefinition:
    return MultiPartitionsDefinition(
        {SNAPSHOT_DIM: crawl_snapshots, SHARD_DIM: StaticPartitionsDefinition(shard_keys)}
    )


def partition_key_for(snapshot: str, shard: str) -> MultiPartitionKey:
    return MultiPartitionKey({SNAPSHOT_DIM: snapshot, SHARD_DIM: shard})


def split_partition_key(partition_key: str) -> tuple[str, str]:
    """(snapshot, shard) from a multi-partition key or its string form ("<shard>|<snapshot>")."""
    if isinstance(partition_key, MultiPartitionKey):
        keys = partition_key.keys_by_dimension
    else:
        # Dagster joins dimension keys with "|" in dimension-name order: shard, then snapshot.
        shard, sep, snapshot = str(partition_key).partition("|")
        if not sep:
            raise ValueError(f"expected a <shard>|<snapshot> partition key, got {partition_key!r}")
        keys = {SHARD_DIM: shard, SNAPSHOT_DIM: snapshot}
    return keys[SNAPSHOT_DIM], keys[SHARD_DIM]
