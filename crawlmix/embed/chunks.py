"""Resumable, memory-bounded embedding of one shard into a float16 ``.npy`` + a row-aligned ids file.

Rows are processed in fixed chunks ``[i*chunk_rows, (i+1)*chunk_rows)``. Each chunk's vectors are
written atomically (temporary name, fsync, ``os.replace``) as ``work_dir/chunk-<i:06d>.npy``; a
rerun skips every complete chunk (shape, dtype and a sha256 written after the chunk checked; a
damaged chunk is recomputed). When
all chunks exist, the final ``.npy`` is assembled through a memory map under a temporary name and
renamed into place, the ids Parquet likewise, and the chunk folder is deleted.

Texts are read one chunk at a time (Parquet: only the row groups overlapping the chunk), so memory
is bounded by the chunk size, not the shard size. Batches are formed inside a chunk only, and the
CPU math runs on a fixed thread count: a run killed at any point and rerun writes byte-identical
files to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO

import numpy as np

from crawlmix.embed.model import LoadedModel
from crawlmix.embed.pipeline import embed_batches
from crawlmix.tables import sha256_of

__all__ = ["embed_shard_resumable", "embed_parquet_resumable", "ParquetTextSource", "TextSource"]

_MANIFEST = "manifest.json"


class TextSource:
    """Reads texts by row slice; subclasses read from files without loading the whole shard."""

    n_rows: int

    def read_texts(self, start: int, stop: int) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError


class ParquetTextSource(TextSource):
    """Row slices of one Parquet file's text column, read row group by row group.

    ``read_texts(start, stop)`` opens only the row groups overlapping ``[start, stop)`` and only
    the text column; the ids column is read separately (ids are small).
    """

    def __init__(self, path: str | BinaryIO, text_column: str = "text", id_column: str = "doc_id", name: str | None = None):
        """`path` is a local path or an open binary handle (e.g. one whose bytes were just verified
        against their checksum: reading through it guarantees those same bytes are embedded)."""
        import pyarrow.parquet as pq

        self.path = name or (os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(getattr(path, "name", path)))
        self.text_column = text_column
        self.id_column = id_column
        self._file = pq.ParquetFile(path, page_checksum_verification=True)
        names = self._file.schema_arrow.names
        for column in (text_column, id_column):
            if column not in names:
                raise KeyError(f"{self.path} has no column {column!r} (columns: {', '.join(names)})")
        meta = self._file.metadata
        self._group_rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._group_start = np.concatenate([[0], np.cumsum(self._group_rows)]).astype(np.int64)
        self.n_rows = int(self._group_start[-1])
        self.row_groups_read = 0  # observability (tests check reads stay chunk-sized)
        self.max_rows_read = 0

    def read_texts(self, start: int, stop: int) -> list[str]:
        if not 0 <= start <= stop <= self.n_rows:
            raise IndexError(f"rows [{start}, {stop}) outside {self.path} ({self.n_rows} rows)")
        if start == stop:
            return []
        first = int(np.searchsorted(self._group_start, start, side="right") - 1)
        last = int(np.searchsorted(self._group_start, stop, side="left") - 1)
        groups = list(range(first, last + 1))
        table = self._file.read_row_groups(groups, columns=[self.text_column])
        self.row_groups_read += len(groups)
        self.max_rows_read = max(self.max_rows_read, table.num_rows)
        offset = start - int(self._group_start[first])
        column = table.column(0).slice(offset, stop - start)
        return ["" if t is None else t for t in column.to_pylist()]

    def read_ids(self) -> list[str]:
        table = self._file.read(columns=[self.id_column])
        return [str(x) for x in table.column(0).to_pylist()]


def _atomic_path(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _fsync(path: str) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def _atomic_file(path: str) -> Iterator[str]:
    """A temporary path beside `path`: fsynced and renamed over `path` on a clean exit, else removed."""
    tmp = _atomic_path(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _save_npy_atomic(path: str, array: np.ndarray) -> None:
    # np.save to a path would append ".npy" to the temporary name: write through a handle.
    with _atomic_file(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _chunk_digest_path(path: str) -> str:
    return path + ".sha256"


def _save_chunk(path: str, array: np.ndarray) -> None:
    """A chunk and then its digest: a chunk without a matching digest is recomputed, never reused."""
    _save_npy_atomic(path, array)
    with _atomic_file(_chunk_digest_path(path)) as tmp, open(tmp, "w", encoding="ascii") as handle:
        handle.write(sha256_of(path)[0])


def _chunk_ok(path: str, rows: int, dim: int) -> bool:
    """A chunk file is usable when its header says float16 [rows, dim], its size matches and its
    bytes match the digest written after it (a bit flipped on disk since then means recompute)."""
    try:
        with open(_chunk_digest_path(path), encoding="ascii") as handle:
            recorded = handle.read().strip()
        if sha256_of(path)[0] != recorded:
            return False
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception:
        return False
    try:
        if arr.dtype != np.float16 or arr.shape != (rows, dim) or not arr.flags.c_contiguous:
            return False
        expected = arr.offset + rows * dim * 2
        return os.path.getsize(path) == expected
    finally:
        del arr


def _ids_digest(doc_ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for doc_id in doc_ids:
        digest.update(str(doc_id).encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _prepare_work_dir(work_dir: str, manifest: dict) -> None:
    """Create the chunk folder, or wipe it when it holds chunks of a different job."""
    path = os.path.join(work_dir, _MANIFEST)
    if os.path.isdir(work_dir):
        try:
            with open(path, encoding="utf-8") as handle:
                existing = json.load(handle)
        except (OSError, ValueError):
            existing = None
        if existing == manifest:
            return
        shutil.rmtree(work_dir)
    os.makedirs(work_dir, exist_ok=True)
    with _atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, sort_keys=True)
    _fsync_dir(work_dir)


def _write_ids_atomic(path: str, doc_ids: Sequence[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"doc_id": pa.array([str(x) for x in doc_ids], type=pa.string())})
    with _atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=65536, write_page_checksum=True)


def _assemble(work_dir: str, n_chunks: int, n_rows: int, dim: int, chunk_rows: int, final_npy: str) -> None:
    if n_rows == 0:  # numpy cannot memory-map an empty array
        _save_npy_atomic(final_npy, np.zeros((0, dim), dtype=np.float16))
        return
    with _atomic_file(final_npy) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(n_rows, dim))
        for i in range(n_chunks):
            lo = i * chunk_rows
            hi = min(n_rows, lo + chunk_rows)
            part = np.load(os.path.join(work_dir, f"chunk-{i:06d}.npy"), mmap_mode="r", allow_pickle=False)
            out[lo:hi] = part
            del part
        out.flush()
        del out


def embed_shard_resumable(
    model: LoadedModel,
    texts: Callable[[int, int], list[str]] | TextSource | str,
    n_rows: int | None,
    doc_ids: Sequence[str] | None,
    work_dir: str,
    final_npy: str,
    final_ids: str,
    chunk_rows: int = 4096,
    on_chunk: Callable[[dict], None] | None = None,
) -> dict:
    """Embed ``n_rows`` texts into ``final_npy`` (float16 [n_rows, dim]) and ``final_ids`` (Parquet,
    one ``doc_id`` column, row-aligned), resuming from the chunks already in ``work_dir``.

    ``texts`` is ``read(start, stop) -> list[str]``, a :class:`TextSource`, or a Parquet path
    (columns ``text`` and ``doc_id``; then ``n_rows`` and ``doc_ids`` may be None). ``on_chunk``
    is called once per chunk with ``{"chunk", "chunks", "rows", "computed", "computed_so_far"}``:
    ``computed`` False for a chunk reused from an earlier attempt (reported first), True after a
    newly computed chunk is on disk.
    Returns stats: rows, dim, chunks, chunks_reused, chunks_computed, seconds, docs_per_s (rows
    computed in this call per second), bytes, paths and the model's versions.
    """
    started = time.perf_counter()
    if isinstance(texts, (str, os.PathLike)):
        texts = ParquetTextSource(os.fspath(texts))
    if isinstance(texts, TextSource):
        read = texts.read_texts
        if n_rows is None:
            n_rows = texts.n_rows
        elif n_rows != texts.n_rows:
            raise ValueError(f"n_rows={n_rows} but the source has {texts.n_rows} rows")
        if doc_ids is None:
            if not isinstance(texts, ParquetTextSource):
                raise ValueError("doc_ids is required unless the source is a Parquet file")
            doc_ids = texts.read_ids()
    elif callable(texts):
        read = texts
    else:
        raise TypeError(f"texts must be a callable (start, stop) -> list[str], a TextSource or a path, got {type(texts)}")
    if n_rows is None or doc_ids is None:
        raise ValueError("n_rows and doc_ids are required for a callable text source")
    n_rows = int(n_rows)
    if len(doc_ids) != n_rows:
        raise ValueError(f"{len(doc_ids)} doc_ids for {n_rows} rows: ids must be row-aligned")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    dim = model.dim
    n_chunks = -(-n_rows // chunk_rows)
    manifest = {
        "n_rows": n_rows,
        "chunk_rows": int(chunk_rows),
        "dim": dim,
        "embedding_version": model.embedding_version,
        "ids_sha256": _ids_digest(doc_ids),
        "format": 1,
    }
    _prepare_work_dir(work_dir, manifest)

    def chunk_path(i: int) -> str:
        return os.path.join(work_dir, f"chunk-{i:06d}.npy")

    def chunk_bounds(i: int) -> tuple[int, int]:
        return i * chunk_rows, min(n_rows, (i + 1) * chunk_rows)

    todo, reused = [], 0
    for i in range(n_chunks):
        lo, hi = chunk_bounds(i)
        if os.path.exists(chunk_path(i)) and _chunk_ok(chunk_path(i), hi - lo, dim):
            reused += 1
            if on_chunk is not None:
                on_chunk({"chunk": i, "chunks": n_chunks, "rows": hi - lo, "computed": False, "computed_so_far": 0})
        else:
            todo.append(i)

    def read_chunk(i: int) -> list[str]:
        lo, hi = chunk_bounds(i)
        got = read(lo, hi)
        if len(got) != hi - lo:
            raise ValueError(f"text source returned {len(got)} texts for rows [{lo}, {hi})")
        return got

    compute_started = time.perf_counter()
    computed_rows = 0
    done = 0
    for i, vectors in zip(todo, embed_batches(model, (read_chunk(i) for i in todo))):
        _save_chunk(chunk_path(i), np.ascontiguousarray(vectors, dtype=np.float16))
        computed_rows += len(vectors)
        done += 1
        if on_chunk is not None:
            on_chunk({"chunk": i, "chunks": n_chunks, "rows": len(vectors), "computed": True, "computed_so_far": done})
    compute_seconds = time.perf_counter() - compute_started

    for d in (os.path.dirname(os.path.abspath(final_npy)), os.path.dirname(os.path.abspath(final_ids))):
        os.makedirs(d, exist_ok=True)
    _write_ids_atomic(final_ids, doc_ids)
    _assemble(work_dir, n_chunks, n_rows, dim, chunk_rows, final_npy)
    _fsync_dir(os.path.dirname(os.path.abspath(final_npy)))
    shutil.rmtree(work_dir, ignore_errors=True)
    return {
        "rows": n_rows,
        "dim": dim,
        "chunks": n_chunks,
        "chunks_reused": reused,
        "chunks_computed": len(todo),
        "rows_computed": computed_rows,
        "seconds": round(time.perf_counter() - started, 3),
        "docs_per_s": round(computed_rows / compute_seconds, 2) if computed_rows and compute_seconds > 0 else None,
        "bytes": os.path.getsize(final_npy),
        "final_npy": os.path.abspath(final_npy),
        "final_ids": os.path.abspath(final_ids),
        **model.versions(),
    }


def embed_parquet_resumable(
    model: LoadedModel,
    parquet_path: str | BinaryIO,
    work_dir: str,
    final_npy: str,
    final_ids: str,
    chunk_rows: int = 4096,
    text_column: str = "text",
    id_column: str = "doc_id",
    on_chunk: Callable[[dict], None] | None = None,
) -> dict:
    """:func:`embed_shard_resumable` for a raw_corpus Parquet file (columns doc_id, text): a local path
    or an open binary handle."""
    source = ParquetTextSource(parquet_path, text_column=text_column, id_column=id_column)
    stats = embed_shard_resumable(
        model, source, source.n_rows, source.read_ids(), work_dir, final_npy, final_ids, chunk_rows, on_chunk
    )
    stats["max_rows_read"] = source.max_rows_read
    return stats
