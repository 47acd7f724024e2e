"""Build one shard: read its record ranges in order, exact-dedup the documents, collect the quarantine."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa

from crawlmix.ingest.extract import check_extractor
from crawlmix.ingest.readers import read_records
from crawlmix.ingest.records import (
    POLICY_REASONS,
    Document,
    FileRange,
    InputFileError,
    Quarantined,
    QuarantineReason,
    ReaderConfig,
)
from crawlmix.ingest.text import content_hash, count_words, make_doc_id
from crawlmix.ingest.url_filter import UrlBlocklist

DOCS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("url", pa.string(), nullable=True),
        pa.field("text", pa.string(), nullable=False),
        pa.field("n_chars", pa.int32(), nullable=False),
        pa.field("n_words", pa.int32(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_offset", pa.int64(), nullable=False),
        pa.field("fetch_time", pa.string(), nullable=True),
        pa.field("snapshot", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("snapshot", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("source_offset", pa.int64(), nullable=False),
        pa.field("url", pa.string(), nullable=True),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
    ]
)

_PROGRESS_EVERY = 1000  # records


@dataclass
class ShardResult:
    docs: pa.Table  # DOCS_SCHEMA, in input order
    quarantine: pa.Table  # QUARANTINE_SCHEMA, exact duplicates included
    stats: dict


# Opens a file (by uri) positioned at a byte offset.
OpenInput = Callable[[str, int], AbstractContextManager[BinaryIO]]


def build_shard(
    ranges: Sequence[FileRange],
    open_input: OpenInput,
    snapshot: str,
    shard: str,
    config: ReaderConfig,
    progress: Callable[[int], None] | None = None,
    url_blocklist: UrlBlocklist | None = None,
) -> ShardResult:
    """Read the records of `ranges` in the given order into one shard's documents and quarantine.

    Each range is opened with `open_input(uri, start)` and read from there (see `read_records`).
    A document's id is `make_doc_id(snapshot, range name, source offset)`. A record that cannot
    become a document is quarantined with a reason; a later document with the content hash of an
    earlier one becomes an `exact_duplicate` row whose detail is the kept doc_id. Only an input
    that cannot be opened or read through raises (`InputFileError`). `progress`, when given, is
    called with the number of records read so far, every 1000 records and once at the end. A
    document whose URL is on `url_blocklist` is quarantined as `blocked_url`, naming list and entry.
    """
    check_extractor(config.extractor)
    started = time.monotonic()
    shard_table = _ShardTables(snapshot, shard, url_blocklist)
    for file_range in ranges:
        for item in _range_records(file_range, open_input, config):
            shard_table.add(item, file_range.name)
            if progress is not None and shard_table.n_records % _PROGRESS_EVERY == 0:
                progress(shard_table.n_records)
    if progress is not None:
        progress(shard_table.n_records)
    docs, quarantine = shard_table.docs_table(), shard_table.quarantine_table()
    stats = shard_table.stats(
        n_input_files=len({r.name for r in ranges}),
        n_ranges=len(ranges),
        input_bytes=sum(r.n_bytes for r in ranges),
        elapsed_s=time.monotonic() - started,
    )
    return ShardResult(docs=docs, quarantine=quarantine, stats=stats)


def _range_records(
    file_range: FileRange, open_input: OpenInput, config: ReaderConfig
) -> Iterator[Document | Quarantined]:
    """Records of one range; any failure to open or read the file becomes InputFileError
    (record-level problems never get here: readers quarantine them)."""
    end = None if file_range.reaches_file_end else file_range.end
    try:
        with open_input(file_range.uri, file_range.start) as stream:
            yield from read_records(stream, file_range.uri, config, file_range.start, end)
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(file_range.uri, f"{type(exc).__name__}: {exc}") from exc


class _ShardTables:
    """Column buffers for the shard's documents and quarantine, with exact dedup."""

    def __init__(self, snapshot: str, shard: str, url_blocklist: UrlBlocklist | None = None):
        self._snapshot = snapshot
        self._shard = shard
        self._blocklist = url_blocklist
        self._docs: dict[str, list] = {name: [] for name in DOCS_SCHEMA.names}
        self._quarantine: dict[str, list] = {name: [] for name in QUARANTINE_SCHEMA.names}
        self._kept_by_hash: dict[str, str] = {}
        self._reasons: Counter[str] = Counter()
        self.n_records = 0

    def add(self, item: Document | Quarantined, source_name: str) -> None:
        """`source_name`: the item's file name inside the snapshot, part of its doc id."""
        self.n_records += 1
        if isinstance(item, Quarantined):
            self._add_quarantined(item.source_file, item.source_offset, item.url, item.reason, item.detail)
            return
        blocked = self._blocklist.match(item.url) if self._blocklist is not None else None
        if blocked is not None:
            self._add_quarantined(item.source_file, item.source_offset, item.url,
                                  QuarantineReason.BLOCKED_URL.value, blocked.describe())
            return
        chash = content_hash(item.text)
        kept = self._kept_by_hash.get(chash)
        if kept is not None:
            self._add_quarantined(
                item.source_file, item.source_offset, item.url, QuarantineReason.EXACT_DUPLICATE.value, kept
            )
            return
        doc_id = make_doc_id(self._snapshot, source_name, item.source_offset)
        self._kept_by_hash[chash] = doc_id
        row = {
            "doc_id": doc_id,
            "url": item.url,
            "text": item.text,
            "n_chars": len(item.text),
            "n_words": count_words(item.text),
            "content_hash": chash,
            "source_file": item.source_file,
            "source_offset": item.source_offset,
            "fetch_time": item.fetch_time,
            "snapshot": self._snapshot,
            "shard": self._shard,
        }
        for name, value in row.items():
            self._docs[name].append(value)

    def _add_quarantined(self, source_file: str, offset: int, url: str | None, reason: str, detail: str) -> None:
        self._reasons[reason] += 1
        row = {
            "snapshot": self._snapshot,
            "shard": self._shard,
            "source_file": source_file,
            "source_offset": offset,
            "url": url,
            "reason": reason,
            "detail": detail,
        }
        for name, value in row.items():
            self._quarantine[name].append(value)

    def docs_table(self) -> pa.Table:
        return pa.Table.from_pydict(self._docs, schema=DOCS_SCHEMA)

    def quarantine_table(self) -> pa.Table:
        return pa.Table.from_pydict(self._quarantine, schema=QUARANTINE_SCHEMA)

    def stats(self, n_input_files: int, n_ranges: int, input_bytes: int, elapsed_s: float) -> dict:
        duplicate = QuarantineReason.EXACT_DUPLICATE.value
        blocked = QuarantineReason.BLOCKED_URL.value
        by_reason = {reason: n for reason, n in sorted(self._reasons.items()) if reason != duplicate}
        return {
            "n_input_files": n_input_files,
            "n_ranges": n_ranges,
            "n_records": self.n_records,
            "n_docs": len(self._docs["doc_id"]),
            "n_exact_duplicates": self._reasons[duplicate],
            "n_quarantined": sum(n for reason, n in by_reason.items() if reason not in POLICY_REASONS),
            "n_blocked_urls": self._reasons[blocked],
            "quarantine_by_reason": by_reason,
            "input_bytes": input_bytes,
            "elapsed_s": round(elapsed_s, 3),
        }
