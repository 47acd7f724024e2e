"""Intermediate files in storage: atomic writes with a checksum beside each file, reads that verify it.

Every data file the pipeline writes (Parquet tables, ``.npy`` embeddings, centroid arrays, JSON
pointers) gets a sidecar ``<key>.sha256`` holding ``{"sha256": ..., "bytes": ...}``, written right
after the file is committed. Readers check the size and then the digest of the exact bytes they are
about to use (the same open file, so a concurrent replacement cannot slip in between), and fail with
:class:`CorruptFileError` naming the file, what did not match, and the upstream partition whose
re-materialization rewrites it. Nothing is cached between reads: every step verifies what it reads.

The sidecar is written after the data, so a crash in between leaves a mismatch (a clear error that a
rerun fixes), never an unverified file that looks verified. Parquet files also carry page checksums
(``write_page_checksum``), checked on read, as a second line of defence for paths that bypass the
sidecar (tools reading the files directly).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from crawlmix.storage import KeyNotFoundError, Storage

_META_KEY = b"crawlmix"
# Small row groups keep a reader's memory bounded when it streams a large shard.
_ROW_GROUP_ROWS = 4096
CHECKSUM_SUFFIX = ".sha256"
_BLOCK = 1 << 20
# Per-shard assets whose files live at <asset>/<snapshot>/<shard>.<ext>; quarantine is raw_corpus's.
_SHARD_ASSETS = {"raw_corpus": "raw_corpus", "quarantine": "raw_corpus", "embeddings": "embeddings",
                 "cluster_labels": "cluster_labels", "quality_scores": "quality_scores"}
_JOB_HINTS = {"centroids": " (job fit_centroids)"}


class CorruptFileError(RuntimeError):
    """An intermediate file is missing, truncated or unreadable; re-materializing its asset fixes it."""


@dataclass(frozen=True)
class WrittenFile:
    uri: str
    bytes: int
    sha256: str


class PendingFile:
    """A file being written through :func:`checked_write`: ``path`` while open, ``written`` after."""

    def __init__(self, path: str):
        self.path = path
        self.written: WrittenFile | None = None


def checksum_key(key: str) -> str:
    return key + CHECKSUM_SUFFIX


def remedy(key: str) -> str:
    """What rewrites `key`: the asset (and partition) that produced it."""
    parts = key.split("/")
    folder = parts[0]
    if folder in _SHARD_ASSETS and len(parts) == 3:
        snapshot, shard = parts[1], parts[2].split(".", 1)[0]
        return (f"re-materialize the upstream `{_SHARD_ASSETS[folder]}` partition snapshot={snapshot}, "
                f"shard={shard} (Dagster partition key {shard}|{snapshot})")
    if folder == "semantic_duplicates" and len(parts) == 3:
        return f"re-materialize the upstream `semantic_duplicates` partition {parts[1]}"
    if folder == "final_mixtures" and len(parts) == 3:
        return f"re-materialize `final_mixtures` partition {parts[1]}"
    return f"re-materialize the upstream `{folder}` asset{_JOB_HINTS.get(folder, '')}"


def _corrupt(store: Storage, key: str, problem: str) -> CorruptFileError:
    return CorruptFileError(
        f"{store.uri(key)} is corrupt or unusable: {problem}. Nothing was read from it; "
        f"to fix it, {remedy(key)}, which rewrites the file and its checksum."
    )


# -- writing ---------------------------------------------------------------------------------------


def record_checksum(store: Storage, key: str, digest: str, size: int) -> WrittenFile:
    """Write the sidecar of the committed file `key` (after it, so a crash between reads as a mismatch)."""
    store.write_bytes(checksum_key(key), json.dumps({"sha256": digest, "bytes": size}, sort_keys=True).encode())
    return WrittenFile(uri=store.uri(key), bytes=size, sha256=digest)


def _sweep_folder_of(store: Storage, key: str) -> None:
    """Remove what killed writers left in the folder a partition's output goes to (every output is
    written through the helpers below, so a rerun of the partition cleans up after the killed one)."""
    store.sweep_orphaned_temp_files(key.rpartition("/")[0])


@contextmanager
def checked_write(store: Storage, key: str) -> Iterator[PendingFile]:
    """Like ``store.atomic_write_path`` (write to ``pending.path``), then the checksum sidecar."""
    _sweep_folder_of(store, key)
    with store.atomic_write_path(key) as tmp:
        pending = PendingFile(tmp)
        yield pending
        digest, size = sha256_of(tmp)
    pending.written = record_checksum(store, key, digest, size)


def write_bytes_checked(store: Storage, key: str, data: bytes) -> WrittenFile:
    _sweep_folder_of(store, key)
    store.write_bytes(key, data)
    return record_checksum(store, key, hashlib.sha256(data).hexdigest(), len(data))


def write_table(store: Storage, key: str, table: pa.Table, provenance: dict[str, Any]) -> WrittenFile:
    """Write `table` as Parquet at `key`, atomically, with `provenance` in the file's key-value metadata."""
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[_META_KEY] = json.dumps(provenance, sort_keys=True, default=str).encode()
    table = table.replace_schema_metadata(schema_meta)
    with checked_write(store, key) as pending:
        pq.write_table(table, pending.path, compression="zstd", row_group_size=_ROW_GROUP_ROWS,
                       write_page_checksum=True)
    assert pending.written is not None
    return pending.written


# -- verifying -------------------------------------------------------------------------------------


def expected_checksum(store: Storage, key: str) -> dict[str, Any]:
    """The sidecar of `key`; CorruptFileError when it is missing or malformed."""
    try:
        raw = store.read_bytes(checksum_key(key))
    except KeyNotFoundError:
        raise _corrupt(store, key, f"its checksum file {store.uri(checksum_key(key))} is missing (written by "
                       "an older version, or the write was interrupted), so its content cannot be trusted") from None
    try:
        payload = json.loads(raw)
        digest, size = str(payload["sha256"]), int(payload["bytes"])
        if len(digest) != 64:
            raise ValueError(f"digest of {len(digest)} characters")
    except (ValueError, KeyError, TypeError) as exc:
        raise _corrupt(store, key, f"its checksum file {store.uri(checksum_key(key))} is unreadable ({exc})") from exc
    return {"sha256": digest, "bytes": size}


def verify_handle(store: Storage, key: str, handle: BinaryIO) -> None:
    """Check size, then sha256, of the open file `handle` against the sidecar; leaves it at offset 0."""
    expected = expected_checksum(store, key)
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    if size != expected["bytes"]:
        what = "truncated" if size < expected["bytes"] else "longer than written"
        raise _corrupt(store, key, f"{what}: {size} bytes, the writer recorded {expected['bytes']}")
    handle.seek(0)
    digest, _ = _sha256_of_handle(handle)
    handle.seek(0)
    if digest != expected["sha256"]:
        raise _corrupt(store, key, f"sha256 {digest} does not match the recorded {expected['sha256']} "
                       "(the bytes changed after they were written)")


@contextmanager
def open_verified(store: Storage, key: str) -> Iterator[BinaryIO]:
    """A binary handle on `key` whose bytes matched their checksum (verified through this handle)."""
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(store.open_read(key))
        except KeyNotFoundError:
            raise _corrupt(store, key, "the file is missing") from None
        verify_handle(store, key, handle)
        yield handle


def read_bytes_verified(store: Storage, key: str) -> bytes:
    with open_verified(store, key) as handle:
        return handle.read()


def read_table(store: Storage, key: str, columns: list[str] | None = None) -> pa.Table:
    with open_verified(store, key) as handle:
        try:
            return pq.read_table(handle, columns=columns, page_checksum_verification=True)
        except Exception as exc:
            raise _corrupt(store, key, f"{type(exc).__name__}: {exc}") from exc


def table_file_metadata(store: Storage, key: str) -> dict[str, Any]:
    """The provenance written with the table (versions, input counts)."""
    with open_verified(store, key) as handle:
        try:
            raw = (pq.read_schema(handle).metadata or {}).get(_META_KEY)
            return json.loads(raw) if raw else {}
        except Exception as exc:
            raise _corrupt(store, key, f"{type(exc).__name__}: {exc}") from exc


@contextmanager
def open_npy(store: Storage, key: str) -> Iterator[np.ndarray]:
    """A read-only memory map of the ``.npy`` at `key`, verified before mapping.

    The map is built on the very handle that was hashed, so the array is the verified bytes even if
    the key is replaced meanwhile; the handle is closed right after mapping, so a step can hold many
    shards' maps without holding as many open files. Use the array inside the block (on S3 the
    local copy is removed after it).
    """
    with ExitStack() as stack:
        try:
            path = stack.enter_context(store.local_copy(key))
        except KeyNotFoundError:
            raise _corrupt(store, key, "the file is missing") from None
        with open(path, "rb") as handle:
            verify_handle(store, key, handle)
            array = _map_npy(store, key, handle)
        yield array


def _map_npy(store: Storage, key: str, handle: BinaryIO) -> np.ndarray:
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        if dtype.hasobject:
            raise ValueError("object arrays are not allowed")
        if int(np.prod(shape)) == 0:  # numpy cannot map zero bytes
            return np.empty(shape, dtype=dtype)
        return np.memmap(handle, dtype=dtype, mode="r", shape=shape, offset=handle.tell(),
                         order="F" if fortran else "C")
    except Exception as exc:
        raise _corrupt(store, key, f"{type(exc).__name__}: {exc}") from exc


def sha256_of(path: str) -> tuple[str, int]:
    """(hex sha256, size in bytes) of a local file, read in blocks."""
    with open(path, "rb") as handle:
        return _sha256_of_handle(handle)


def _sha256_of_handle(handle: BinaryIO) -> tuple[str, int]:
    """(hex sha256, bytes read) from the handle's position to its end, in blocks."""
    digest = hashlib.sha256()
    size = 0
    for block in iter(lambda: handle.read(_BLOCK), b""):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size
