"""Parquet tables in storage: atomic writes with provenance metadata, reads that name the file on failure."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from crawlmix.storage import Storage

_META_KEY = b"crawlmix"
# Small row groups keep a reader's memory bounded when it streams a large shard.
_ROW_GROUP_ROWS = 4096


class CorruptFileError(RuntimeError):
    """An intermediate file is missing, truncated or unreadable; re-materializing its asset fixes it."""


@dataclass(frozen=True)
class WrittenFile:
    uri: str
    bytes: int
    sha256: str


def write_table(store: Storage, key: str, table: pa.Table, provenance: dict[str, Any]) -> WrittenFile:
    """Write `table` as Parquet at `key`, atomically, with `provenance` in the file's key-value metadata."""
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[_META_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    table = table.replace_schema_metadata(schema_meta)
    with store.atomic_write_path(key) as tmp_path:
        pq.write_table(table, tmp_path, compression="zstd", row_group_size=_ROW_GROUP_ROWS)
        digest, size = sha256_of(tmp_path)
    return WrittenFile(uri=store.uri(key), bytes=size, sha256=digest)


def read_table(store: Storage, key: str, columns: list[str] | None = None) -> pa.Table:
    try:
        with store.open_read(key) as handle:
            return pq.read_table(handle, columns=columns)
    except Exception as exc:
        raise CorruptFileError(_unreadable(store, key, exc)) from exc


def table_file_metadata(store: Storage, key: str) -> dict[str, Any]:
    """The provenance written with the table (versions, input counts)."""
    try:
        with store.open_read(key) as handle:
            raw = (pq.read_schema(handle).metadata or {}).get(_META_KEY)
    except Exception as exc:
        raise CorruptFileError(_unreadable(store, key, exc)) from exc
    return json.loads(raw) if raw else {}


def _unreadable(store: Storage, key: str, exc: Exception) -> str:
    asset, _, rest = key.partition("/")
    return (
        f"cannot read {store.uri(key)} ({type(exc).__name__}: {exc}). The file is missing or corrupt: "
        f"re-materialize the upstream `{asset}` partition {rest.rsplit('.', 1)[0]!r}."
    )


def sha256_of(path: str) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a local file, read in blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
