"""Where an input file can be cut between records, found with a seek and a small read.

A shard reads the records whose split offset lies in a byte range of a file (see `FileRange`). The
split points per format, all absolute byte offsets in the file as stored:

- WARC/WET .gz, one gzip member per record: the offset of a member whose data starts a WARC
  record, found by scanning for a gzip header and probe-inflating a few KB (the readers' resync);
- WARC/WET plain: a `WARC/1.x` version line at a line start whose header parses and whose declared
  block ends where another record (or the file) begins, so a version line quoted in a payload is
  not taken for a record;
- JSONL plain: a line start;
- Parquet: a row group's first byte (from the footer).

Files that are one compressed stream cannot be cut: JSONL .gz/.zst (by name) and a WARC/WET .gz
whose first gzip member holds more than its first record (a file gzipped whole). Every answer is a
pure function of the file's bytes, so separate processes agree on it without talking.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from crawlmix.ingest.readers import (
    _GZIP_MAGIC,
    _MAX_HEADER_BYTES,
    _CompressedWindow,
    _content_length,
    _header_end,
    _next_record_member,
    _parse_header_lines,
    detect_format,
    parquet_row_group_starts,
    splittable_by_name,
)

# Opens the file positioned at a byte offset (a seek, or an S3 ranged GET).
OpenAt = Callable[[int], AbstractContextManager[BinaryIO]]

_SCAN_CHUNK = 64 * 1024  # bytes per read while looking for the next split point
_PLAIN_RECORD_START = re.compile(rb"(?<=\n)WARC/1\.\d+[ \t]*\r?\n")
_PLAIN_START_SPAN = len(b"\nWARC/1.10 \r\n")  # rescanned with the next chunk: a match may straddle
_AFTER_BLOCK_PEEK = 64  # bytes read after a declared block: separator line breaks and "WARC/"
_FIRST_MEMBER_SLACK = 1024  # decompressed bytes allowed past the first record's declared end
_HEAD_LIMIT = _MAX_HEADER_BYTES + 4  # a header section longer than this is not one
_GZIP_START = _GZIP_MAGIC[:2]  # what makes the readers take a WARC file as gzip


class RecordBoundaries:
    """Split points of one input file of `size` bytes, found lazily; answers are cached."""

    def __init__(self, name: str, size: int, open_at: OpenAt):
        self.name = name
        self.size = size
        self._open_at = open_at
        self._format = detect_format(name)
        self._splittable: bool | None = None
        self._gzip: bool | None = None
        self._row_group_starts: list[int] | None = None
        self._found: dict[int, int] = {}

    def splittable(self) -> bool:
        """Whether the file can be cut anywhere but its edges."""
        if self._splittable is None:
            self._splittable = self._check_splittable()
        return self._splittable

    def at_or_after(self, offset: int) -> int:
        """The first split point at or after `offset`, or the file size when none is there."""
        if offset <= 0:
            return 0
        if offset >= self.size:
            return self.size
        if not self.splittable():
            raise ValueError(f"{self.name} cannot be split")
        if offset not in self._found:
            self._found[offset] = self._find(offset)
        return self._found[offset]

    # -- which files can be cut ------------------------------------------------------------------

    def _check_splittable(self) -> bool:
        if self.size == 0 or not splittable_by_name(self.name):
            return False
        if self._format == "jsonl":
            return True
        if self._format == "parquet":
            self._row_group_starts = self._parquet_row_group_starts()
            return self._row_group_starts is not None
        with self._open_at(0) as stream:
            chunks = _chunks(stream)
            first = next(chunks, b"")
            # Readers decide by the bytes too: a plain file named .gz is read as plain.
            self._gzip = first.startswith(_GZIP_START)
            return not self._gzip or _first_member_holds_one_record(_prepend(first, chunks))

    def _parquet_row_group_starts(self) -> list[int] | None:
        """Row group offsets from the footer (one read of the file's tail, two when the footer is
        longer), or None when it cannot be read."""
        if self.size < 12:
            return None
        tail_start = max(self.size - _SCAN_CHUNK, 0)
        tail = _read_at(self._open_at, tail_start, self.size - tail_start)
        if len(tail) != self.size - tail_start or not tail.endswith(b"PAR1"):
            return None
        footer_length = struct.unpack("<I", tail[-8:-4])[0]
        if footer_length + 12 > self.size:
            return None
        if footer_length + 8 <= len(tail):
            footer = tail[len(tail) - 8 - footer_length :]
        else:
            footer = _read_at(self._open_at, self.size - 8 - footer_length, footer_length) + tail[-8:]
        try:
            # The footer framed as a file of its own: Arrow only reads a file's tail for metadata.
            metadata = pq.read_metadata(io.BytesIO(b"PAR1" + footer))
        except (pa.ArrowException, OSError):
            return None
        return parquet_row_group_starts(metadata)

    # -- where to cut ----------------------------------------------------------------------------

    def _find(self, offset: int) -> int:
        if self._format == "jsonl":
            return self._next_line_start(offset)
        if self._format == "parquet":
            return next((start for start in self._row_group_starts if start >= offset), self.size)
        if self._gzip:
            return self._next_record_member(offset)
        return self._next_plain_record(offset)

    def _next_line_start(self, offset: int) -> int:
        position = offset - 1  # a line starts at `offset` when the byte before it ends a line
        with self._open_at(position) as stream:
            while chunk := stream.read(_SCAN_CHUNK):
                found = chunk.find(b"\n")
                if found >= 0:
                    return position + found + 1
                position += len(chunk)
        return self.size

    def _next_record_member(self, offset: int) -> int:
        with self._open_at(offset) as stream:
            window = _CompressedWindow(_chunks(stream), offset)
            found = _next_record_member(window, offset)
        return self.size if found is None else found

    def _next_plain_record(self, offset: int) -> int:
        position = offset - 1  # the line break before a record start is part of the match
        carry = b""
        with self._open_at(position) as stream:
            while chunk := stream.read(_SCAN_CHUNK):
                data = carry + chunk
                data_start = position - len(carry)
                for match in _PLAIN_RECORD_START.finditer(data):
                    candidate = data_start + match.start()
                    if candidate >= offset and self._plain_record_is_real(candidate):
                        return candidate
                position += len(chunk)
                carry = data[-_PLAIN_START_SPAN:]
        return self.size

    def _plain_record_is_real(self, start: int) -> bool:
        header = bytearray(_read_at(self._open_at, start, _MAX_HEADER_BYTES + 4))
        end, separator = _header_end(header, 0)
        if end < 0:
            return False
        try:
            declared = _content_length(_parse_header_lines(bytes(header[:end])))
        except ValueError:
            return False
        block_end = start + end + separator + declared
        if block_end > self.size:
            return False
        after = _read_at(self._open_at, block_end, _AFTER_BLOCK_PEEK)
        rest = after.lstrip(b"\r\n")
        return rest.startswith(b"WARC/") or (not rest and block_end + len(after) >= self.size)


def _first_member_holds_one_record(chunks: Iterator[bytes]) -> bool:
    """Whether a gzip file's first member ends with its first WARC record (one member per record),
    decompressing no more than that record; a file gzipped whole, or one whose first member is
    unreadable, is kept whole."""
    inflater = zlib.decompressobj(31)
    head = bytearray()  # decompressed bytes kept until the header section is parsed
    produced = 0
    record_end = None  # decompressed size of the first record, once its header is parsed
    try:
        for chunk in chunks:
            data = chunk
            while data and not inflater.eof:
                out = inflater.decompress(data, _SCAN_CHUNK)
                data = inflater.unconsumed_tail
                produced += len(out)
                if record_end is None:
                    head += out[: _HEAD_LIMIT - len(head)]
                    record_end = _declared_record_end(head)
                    if record_end is None and len(head) >= _HEAD_LIMIT:
                        return False  # no WARC header: nothing to tell records apart
                if record_end is not None and produced > record_end + _FIRST_MEMBER_SLACK:
                    return False  # the member runs on past its first record
            if inflater.eof:
                return True
    except zlib.error:
        return False
    return False  # the file ends inside its first member


def _declared_record_end(head: bytearray) -> int | None:
    """Decompressed size of the record whose start `head` holds (header, block and the blank line
    after it), once its header section is complete and parses; else None."""
    start = len(head) - len(head.lstrip(b"\r\n"))
    end, separator = _header_end(head, start)
    if end < 0 or not head.startswith(b"WARC/", start):
        return None
    try:
        declared = _content_length(_parse_header_lines(bytes(head[start:end])))
    except ValueError:
        return None
    return end + separator + declared + len(b"\r\n\r\n")


def _read_at(open_at: OpenAt, offset: int, size: int) -> bytes:
    parts, got = [], 0
    with open_at(offset) as stream:
        while got < size and (data := stream.read(size - got)):
            parts.append(data)
            got += len(data)
    return b"".join(parts)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_SCAN_CHUNK):
        yield chunk


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
