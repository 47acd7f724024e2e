"""Format readers: WARC, WET, JSONL (plain, gzip, zstd) and Parquet files to documents.

Every reader streams its input (bounded memory: one record's payload up to the size cap) and turns
every record it cannot use into a `Quarantined` item with a reason instead of raising. Only a file
that cannot be read at all raises `InputFileError`.

WARC and WET files are parsed here rather than with warcio or FastWARC: both abandon the rest of a
file at the first corrupt gzip member, while a crawl file with one bad member must lose only that
record. The reader therefore splits gzip members itself, verifies each one, and resynchronizes at
the next member that starts a WARC record.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import brotli
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from crawlmix.ingest.extract import check_extractor, extract_main_text
from crawlmix.ingest.records import Document, InputFileError, Quarantined, QuarantineReason, ReaderConfig
from crawlmix.ingest.sniff import sniff_non_html
from crawlmix.ingest.text import (
    UndecodableError,
    decode_html_bytes,
    decode_text_bytes,
    normalize_text,
    sniff_binary,
)

_FORMAT_BY_SUFFIX = {
    ".warc": "warc",
    ".warc.gz": "warc",
    ".wet": "wet",
    ".wet.gz": "wet",
    ".warc.wet.gz": "wet",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".jsonl.zst": "jsonl",
    ".parquet": "parquet",
}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_FORMAT_BY_SUFFIX)
_SUFFIXES_LONGEST_FIRST = sorted(_FORMAT_BY_SUFFIX, key=len, reverse=True)

_READ_CHUNK = 1 << 20
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_MAX_HEADER_BYTES = 64 * 1024  # a WARC or HTTP header section longer than this is not one


def detect_format(name: str) -> str:
    """"warc" | "wet" | "jsonl" | "parquet" from the file name; ValueError for anything else."""
    lowered = name.lower()
    for suffix in _SUFFIXES_LONGEST_FIRST:
        if lowered.endswith(suffix):
            return _FORMAT_BY_SUFFIX[suffix]
    raise ValueError(f"unsupported input file {name!r}: expected a name ending in {', '.join(SUPPORTED_SUFFIXES)}")


def is_supported(name: str) -> bool:
    try:
        detect_format(name)
    except ValueError:
        return False
    return True


def read_records(
    stream: BinaryIO,
    source_file: str,
    config: ReaderConfig,
    start: int = 0,
    end: int | None = None,
) -> Iterator[Document | Quarantined]:
    """Documents and quarantined records of one input file, or of the part of it whose records
    have a split offset in [start, end) (`end` None: to the end of the file), in file order.

    `stream` is an open binary file object positioned at byte `start`, possibly not seekable (an
    S3 body); only `read(n)` is used, except for Parquet, which seeks to absolute positions (a
    stream that cannot seek is spooled to a temporary file, from the file's first byte only).
    `start` must be a split point (see `crawlmix.ingest.boundaries`); a record that starts before
    `end` is read to its end even past `end`. Compressed JSONL is one stream: only whole files.

    Source offsets are absolute positions in the file: WARC/WET, the byte offset of the record in
    the file as stored (the offset of its gzip member in a .gz file; when one member holds several
    records, as in a file gzipped whole, the member's offset plus the record's index in it); JSONL,
    the byte offset of the line's start in the decompressed file; Parquet, the 0-based row index.
    """
    check_extractor(config.extractor)
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"{source_file}: invalid range [{start}, {end})")
    file_format = detect_format(source_file)
    if file_format in ("warc", "wet"):
        yield from _read_warc(stream, source_file, config, file_format, start, end)
    elif file_format == "jsonl":
        yield from _read_jsonl(stream, source_file, config, start, end)
    else:
        yield from _read_parquet(stream, source_file, config, start, end)


def splittable_by_name(name: str) -> bool:
    """False for formats that are one compressed stream (JSONL .gz/.zst): read whole, never cut.
    A WARC/WET .gz can still be one stream (gzipped whole); only its bytes tell."""
    return not (detect_format(name) == "jsonl" and name.lower().endswith((".gz", ".zst")))


class _Reject(Exception):
    """A record that cannot become a document; carries the quarantine reason."""

    def __init__(self, reason: QuarantineReason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _quarantined(source_file: str, offset: int, url: str | None, reason: QuarantineReason, detail: str) -> Quarantined:
    return Quarantined(
        source_file=source_file,
        source_offset=offset,
        url=_clean_url(url),
        reason=reason.value,
        detail=_storable(detail),
    )


def _storable(text: str) -> str:
    """Lone surrogates (JSON "\\ud800" escapes) replaced by U+FFFD: Arrow strings must be UTF-8."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def _clean_url(url: str | None) -> str | None:
    return _storable(url).strip() or None if url else None


def _finish_document(
    text: str,
    url: str | None,
    source_file: str,
    offset: int,
    config: ReaderConfig,
    fetch_time: str | None,
    charset: str | None,
) -> Document:
    text = normalize_text(text)
    if len(text) < config.min_text_chars:
        detail = "no text" if not text else f"{len(text)} chars, minimum {config.min_text_chars}"
        raise _Reject(QuarantineReason.EMPTY, detail)
    if len(text) > config.max_text_chars:
        raise _Reject(QuarantineReason.TOO_LARGE, f"text of {len(text)} chars, limit {config.max_text_chars}")
    return Document(
        url=_clean_url(url),
        text=text,
        source_file=source_file,
        source_offset=offset,
        fetch_time=fetch_time,
        charset=charset,
    )


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_READ_CHUNK):
        yield chunk


# =============================================================================================
# WARC / WET container: gzip members and the record parser


@dataclass
class _RawRecord:
    offset: int  # the record's source offset
    split_offset: int  # where a reader starts to reach it: `offset`, or its gzip member's offset
    headers: dict[str, str]  # lower-cased names
    block: bytes  # the block's first bytes, at most the retention limit
    block_length: int  # block bytes present in the file

    @property
    def url(self) -> str | None:
        return _target_uri(self.headers)


def _target_uri(headers: dict[str, str]) -> str | None:
    return headers.get("warc-target-uri", "").strip().strip("<>") or None


@dataclass
class _Problem:
    offset: int
    reason: QuarantineReason
    detail: str
    url: str | None = None
    warc_type: str | None = None  # of the record concerned, when its header was read
    split_offset: int | None = None  # where a reader starts to reach it; None: `offset`

    def __post_init__(self) -> None:
        if self.split_offset is None:
            self.split_offset = self.offset


@dataclass
class _MemberData:
    member_offset: int
    data: bytes
    first: bool  # the member's first decompressed bytes


@dataclass
class _MemberEnd:
    member_offset: int


@dataclass
class _MemberBroken:
    member_offset: int
    detail: str


_GZIP_MAGIC = b"\x1f\x8b\x08"
_INFLATE_INPUT = 64 * 1024
_INFLATE_OUTPUT = 1 << 20
_RESYNC_PROBE = 4096
_RESYNC_WINDOW = 16 << 20  # compressed bytes kept behind the read position to resync from


class _CompressedWindow:
    """Compressed bytes from a file position onward, read from the stream on demand."""

    def __init__(self, chunks: Iterator[bytes], base: int = 0):
        self._chunks = chunks  # the file's bytes from offset `base` on
        self._buf = bytearray()
        self._buf_start = base  # file offset of _buf[0]
        self.start = base  # file offset of the first byte still needed

    @property
    def end(self) -> int:
        return self._buf_start + len(self._buf)

    def fill_to(self, offset: int) -> bool:
        """Read until the window reaches `offset`; False when the file ends first."""
        while self.end < offset:
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._buf += chunk
        return True

    def bytes_at(self, offset: int, size: int) -> bytes:
        self.fill_to(offset + size)
        begin = offset - self._buf_start
        return bytes(self._buf[begin : begin + size])

    def find(self, needle: bytes, offset: int) -> int:
        found = self._buf.find(needle, offset - self._buf_start)
        return -1 if found < 0 else self._buf_start + found

    def drop_before(self, offset: int) -> None:
        self.start = max(self.start, offset)
        dead = self.start - self._buf_start
        # Compact lazily: deleting after every small member would move the whole buffer each time.
        if dead > _READ_CHUNK and dead * 2 > len(self._buf):
            del self._buf[:dead]
            self._buf_start = self.start


def _gzip_member_events(
    window: _CompressedWindow,
) -> Iterator[_MemberData | _MemberEnd | _MemberBroken]:
    """Decompress member by member; after a broken member, resume at the next WARC-record member."""
    offset = window.start
    while window.fill_to(offset + 1):
        if window.bytes_at(offset, len(_GZIP_MAGIC)) != _GZIP_MAGIC:
            yield _MemberBroken(offset, "no gzip member starts here")
            resume = _next_record_member(window, offset + 1)
        else:
            try:
                offset = yield from _inflate_member(window, offset)
                continue
            except (zlib.error, EOFError) as exc:
                yield _MemberBroken(offset, f"corrupt or truncated gzip member: {exc}")
                resume = _next_record_member(window, max(offset + 1, window.start))
        if resume is None:
            return
        offset = resume


def _inflate_member(window: _CompressedWindow, offset: int) -> Iterator[_MemberData | _MemberEnd]:
    """Yield one member's data and its end; returns the next member's offset."""
    inflater = zlib.decompressobj(31)
    position = offset
    first = True
    while not inflater.eof:
        if not window.fill_to(position + 1):
            raise EOFError("file ends inside the member")
        data = window.bytes_at(position, _INFLATE_INPUT)
        position += len(data)
        out = inflater.decompress(data, _INFLATE_OUTPUT)
        while out:
            yield _MemberData(offset, out, first)
            first = False
            out = b"" if inflater.eof else inflater.decompress(inflater.unconsumed_tail, _INFLATE_OUTPUT)
        if position - window.start > _RESYNC_WINDOW:
            window.drop_before(position - _RESYNC_WINDOW)
    yield _MemberEnd(offset)
    next_offset = position - len(inflater.unused_data) - len(inflater.unconsumed_tail)
    window.drop_before(next_offset)
    return next_offset


def _next_record_member(window: _CompressedWindow, offset: int) -> int | None:
    """Offset of the next gzip member whose data starts a WARC record, or None."""
    while True:
        found = window.find(_GZIP_MAGIC, offset)
        if found < 0:
            window.drop_before(max(window.start, window.end - len(_GZIP_MAGIC) + 1))
            if not window.fill_to(window.end + 1):
                return None
            offset = window.start
            continue
        if _starts_warc_record(_inflate_probe(window.bytes_at(found, _RESYNC_PROBE))):
            window.drop_before(found)
            return found
        offset = found + 1


def _inflate_probe(compressed: bytes) -> bytes:
    try:
        return zlib.decompressobj(31).decompress(compressed, 64)
    except zlib.error:
        return b""


def _starts_warc_record(data: bytes) -> bool:
    return data.lstrip(b"\r\n").startswith(b"WARC/")


@dataclass
class _OpenRecord:
    offset: int
    split_offset: int
    headers: dict[str, str]
    declared: int  # WARC Content-Length
    block_position: int  # decompressed stream position of the block's first byte
    block: bytearray = field(default_factory=bytearray)
    got: int = 0

    def complete(self) -> _RawRecord:
        return _RawRecord(self.offset, self.split_offset, self.headers, bytes(self.block), self.got)

    def problem(self, reason: QuarantineReason, detail: str) -> _Problem:
        warc_type = self.headers.get("warc-type", "").lower() or None
        return _Problem(self.offset, reason, detail, _target_uri(self.headers), warc_type, self.split_offset)

    def truncated(self, got: int | None = None) -> _Problem:
        got = self.got if got is None else got
        detail = f"WARC Content-Length declared {self.declared} bytes, got {got}"
        return self.problem(QuarantineReason.TRUNCATED, detail)


@dataclass
class _Skip:
    """Bytes that are not a WARC record, skipped up to the next record start."""

    offset: int
    reported: bool


_RECORD_START = b"WARC/"
# In skipped bytes a full version line starts a record even when it does not start a line: damage
# can eat the line break before it.
_VERSION_LINE = re.compile(rb"WARC/\d+\.\d+[ \t]*\r?\n")
_ANY_VERSION_LINE = re.compile(rb"WARC/1\.[01]\r?\n")
_RESYNC_RECORD_START = re.compile(rb"(?<=\n)WARC/|" + _ANY_VERSION_LINE.pattern)
_RESYNC_KEEP = len(b"\nWARC/1.0\r")  # bytes rescanned with the next input: a start may straddle the end
_SEPARATOR_BYTES = b"\r\n"


class _WarcParser:
    """Push parser: bytes in (decompressed), complete records and problems out, in file order."""

    def __init__(self, retain_limit: int, position: int = 0):
        self._retain_limit = retain_limit
        self._buf = bytearray()
        # Stream position of _buf[0]: the file offset in a plain file; in a .gz file, counted in
        # decompressed bytes from `position`, the first member's offset.
        self._position = position
        self._record: _OpenRecord | None = None
        self._skip: _Skip | None = None
        # [decompressed position, member offset, records started in the member so far]
        self._member_starts: list[list[int]] = []

    # -- input -------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[_RawRecord | _Problem]:
        self._buf += data
        return self._drain(at_eof=False)

    def start_member(self, member_offset: int, data: bytes) -> list[_RawRecord | _Problem]:
        """A new gzip member begins with `data`; a record start there ends whatever was open."""
        out: list[_RawRecord | _Problem] = []
        if _starts_warc_record(data):
            out += self._close_at_record_start()
        self._member_starts.append([self._position + len(self._buf), member_offset, 0])
        return out + self.feed(data)

    def end_member(self) -> list[_RawRecord | _Problem]:
        """A gzip member ended cleanly: a record whose block is complete ends with it."""
        if self._record is not None and self._record.got == self._record.declared:
            return [self._emit_record()]
        return []

    def abort_member(self, member_offset: int, detail: str) -> list[_Problem]:
        """A gzip member is corrupt: the record being read in it is lost."""
        if self._record is not None:
            problem = self._record.problem(QuarantineReason.TRUNCATED_GZIP, detail)
        else:
            problem = _Problem(member_offset, QuarantineReason.TRUNCATED_GZIP, detail)
        self._reset()
        return [problem]

    def finish(self) -> list[_RawRecord | _Problem]:
        return self._drain(at_eof=True)

    # -- state machine -----------------------------------------------------------------------

    def _reset(self) -> None:
        self._position += len(self._buf)
        self._buf.clear()
        self._record = None
        self._skip = None

    def _close_at_record_start(self) -> list[_RawRecord | _Problem]:
        out: list[_RawRecord | _Problem] = []
        if self._record is not None:
            out.append(self._emit_record() if self._record.got == self._record.declared else self._record.truncated())
        elif self._skip is not None and not self._skip.reported:
            out.append(self._garbage_problem(self._skip.offset))
        elif self._buf.strip():
            out.append(_Problem(self._offset_at(self._position), QuarantineReason.TRUNCATED, "WARC header cut short"))
        self._reset()
        return out

    def _drain(self, at_eof: bool) -> list[_RawRecord | _Problem]:
        out: list[_RawRecord | _Problem] = []
        i = 0
        while True:
            if self._skip is not None:
                i, progressed = self._skip_garbage(i, at_eof, out)
            elif self._record is None:
                i, progressed = self._take_header(i, at_eof, out)
            elif self._record.got < self._record.declared:
                i, progressed = self._take_block(i, at_eof, out)
            else:
                i, progressed = self._take_separator(i, at_eof, out)
            if not progressed:
                break
        del self._buf[:i]
        self._position += i
        return out

    def _take_header(self, i: int, at_eof: bool, out: list) -> tuple[int, bool]:
        buf = self._buf
        while i < len(buf) and buf[i] in b"\r\n \t":
            i += 1
        if len(buf) - i < len(_RECORD_START):
            if at_eof and i < len(buf):
                out.append(self._header_cut_at(i))
                return len(buf), False
            return i, False
        if not buf.startswith(_RECORD_START, i):
            self._skip = _Skip(self._offset_at(self._position + i), reported=False)
            return i, True
        end, separator = _header_end(buf, i)
        if end < 0:
            if len(buf) - i > _MAX_HEADER_BYTES:
                self._skip = _Skip(self._offset_at(self._position + i), reported=False)
                return i + 1, True
            if at_eof:
                out.append(self._header_cut_at(i))
                return len(buf), False
            return i, False
        # Not one record's header: a cut-off record run into the next one, which resyncing finds.
        if not _VERSION_LINE.match(buf, i, end + separator) or _ANY_VERSION_LINE.search(buf, i + 1, end + separator):
            self._skip = _Skip(self._offset_at(self._position + i), reported=False)
            return i + 1, True
        record_offset, split_offset = self._record_offsets(self._position + i)
        block_start = end + separator
        try:
            headers = _parse_header_lines(bytes(buf[i:end]))
            declared = _content_length(headers)
        except ValueError as exc:
            detail = f"bad WARC header: {exc}"
            out.append(_Problem(record_offset, QuarantineReason.MALFORMED_RECORD, detail, split_offset=split_offset))
            self._skip = _Skip(record_offset, reported=True)
            return block_start, True
        self._record = _OpenRecord(record_offset, split_offset, headers, declared, self._position + block_start)
        self._prune_member_starts(self._position + i)
        return block_start, True

    def _take_block(self, i: int, at_eof: bool, out: list) -> tuple[int, bool]:
        record = self._record
        take = min(record.declared - record.got, len(self._buf) - i)
        if take == 0:
            if not at_eof:
                return i, False
            self._consume(i)
            out.append(self._truncate(record, _embedded_record_start(record)))
            return 0, True
        room = self._retain_limit - len(record.block)
        if room > 0:
            record.block += self._buf[i : i + min(take, room)]
        record.got += take
        return i + take, True

    def _take_separator(self, i: int, at_eof: bool, out: list) -> tuple[int, bool]:
        """After a block: CR/LF, then the next record or the end of the file. Anything else means
        the declared length ran into the next record (truncated record) or junk follows."""
        buf = self._buf
        block_end = i
        while i < len(buf) and buf[i] in _SEPARATOR_BYTES:
            i += 1
        rest = bytes(buf[i : i + len(_RECORD_START)])
        if rest == _RECORD_START or (at_eof and not rest):
            out.append(self._emit_record())
            return i, True
        # Undecided: keep the bytes from the block's end, a record start may straddle it.
        if not at_eof and (_RECORD_START.startswith(rest) or len(buf) - block_end < _RESYNC_KEEP):
            return block_end, False
        cut = _embedded_record_start(self._record, buf[block_end : block_end + _RESYNC_KEEP])
        if cut is not None:
            self._consume(block_end)
            out.append(self._truncate(self._record, cut))
            return 0, True
        out.append(self._emit_record())
        self._skip = _Skip(self._offset_at(self._position + i), reported=False)
        return i, True

    def _skip_garbage(self, i: int, at_eof: bool, out: list) -> tuple[int, bool]:
        start = _find_record_start(self._buf, i)
        if start < 0:
            if at_eof:
                if not self._skip.reported:
                    out.append(self._garbage_problem(self._skip.offset))
                self._skip = None
                return len(self._buf), False
            return max(i, len(self._buf) - _RESYNC_KEEP), False
        if not self._skip.reported:
            out.append(self._garbage_problem(self._skip.offset))
        self._skip = None
        return start, True

    def _consume(self, i: int) -> None:
        del self._buf[:i]
        self._position += i

    def _truncate(self, record: _OpenRecord, cut: int | None) -> _Problem:
        """A record shorter than its declared length. When the next record starts at `cut` in its
        block (the declared length ran into it), re-read from there. Call with the buffer consumed
        up to the block's end."""
        self._record = None
        if cut is None:
            return record.truncated()
        self._buf[:0] = record.block[cut:]
        self._position = record.block_position + cut
        return record.truncated(got=cut)

    def _emit_record(self) -> _RawRecord:
        record = self._record.complete()
        self._record = None
        return record

    def _header_cut_at(self, i: int) -> _Problem:
        offset = self._offset_at(self._position + i)
        return _Problem(offset, QuarantineReason.TRUNCATED, "file ends inside a WARC header")

    def _garbage_problem(self, offset: int) -> _Problem:
        return _Problem(offset, QuarantineReason.MALFORMED_RECORD, "bytes that are not a WARC record")

    def _member_at(self, position: int) -> list[int] | None:
        member = None
        for candidate in self._member_starts:
            if candidate[0] > position:
                break
            member = candidate
        return member

    def _offset_at(self, position: int) -> int:
        """File offset for a stream position: itself, or its gzip member's offset."""
        member = self._member_at(position)
        return position if member is None else member[1]

    def _record_offsets(self, position: int) -> tuple[int, int]:
        """(source offset, split offset) of a record starting at a stream position. In a .gz file
        the n-th record starting in a member (from 0) gets the member's offset plus n, so that a
        member holding several records (a file gzipped whole) still gives each its own offset, and
        so its own doc id; a reader reaches all of them from the member's offset."""
        member = self._member_at(position)
        if member is None:
            return position, position
        index = member[2]
        member[2] += 1
        return member[1] + index, member[1]

    def _prune_member_starts(self, position: int) -> None:
        while len(self._member_starts) > 1 and self._member_starts[1][0] <= position:
            self._member_starts.pop(0)


def _embedded_record_start(record: _OpenRecord, after: bytes = b"") -> int | None:
    """Index in the block of a record start (a WARC version line), if the whole block was kept; one
    that runs on into `after` (the bytes following the block) counts."""
    if len(record.block) < record.got:
        return None
    # A version line anywhere: the block ran past a record boundary already, so where the next
    # record starts (after a cut-off payload) need not be a line start.
    found = _ANY_VERSION_LINE.search(bytes(record.block) + after)
    if found is None or found.start() >= len(record.block):
        return None
    return found.start()


def _header_end(buf: bytearray, start: int) -> tuple[int, int]:
    """(index of the blank line ending the header section, separator length) or (-1, 0)."""
    limit = start + _MAX_HEADER_BYTES + 4
    crlf = buf.find(b"\r\n\r\n", start, limit)
    lf = buf.find(b"\n\n", start, limit)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, 2
    return (crlf, 4) if crlf >= 0 else (-1, 0)


def _parse_header_lines(section: bytes) -> dict[str, str]:
    """Header lines after the first (status/version) line; names lower-cased, first value kept."""
    headers: dict[str, str] = {}
    last_name = None
    for line in section.decode("iso-8859-1").split("\n")[1:]:
        line = line.rstrip("\r")
        if line[:1] in (" ", "\t") and last_name:  # obsolete line folding
            headers[last_name] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        last_name = name.strip().lower()
        headers.setdefault(last_name, value.strip())
    return headers


def _content_length(headers: dict[str, str]) -> int:
    value = headers.get("content-length")
    if value is None:
        raise ValueError("no Content-Length")
    if not value.isdigit():
        raise ValueError(f"Content-Length {value!r} is not a number")
    return int(value)


def _find_record_start(buf: bytearray, i: int) -> int:
    """Index of the next "WARC/" at a line start, or "WARC/1.x" version line anywhere, at or after i; or -1."""
    found = _RESYNC_RECORD_START.search(buf, i)
    return -1 if found is None else found.start()


def _warc_events(stream: BinaryIO, retain_limit: int, start: int = 0) -> Iterator[_RawRecord | _Problem]:
    """Raw records and container problems of a WARC/WET file, compressed per member or not, from
    byte `start` (the stream's position) on."""
    chunks = _chunks(stream)
    first = next(chunks, b"")
    parser = _WarcParser(retain_limit, start)
    if first.startswith(b"\x1f\x8b"):
        window = _CompressedWindow(_prepend(first, chunks), start)
        for event in _gzip_member_events(window):
            if isinstance(event, _MemberData):
                if event.first:
                    yield from parser.start_member(event.member_offset, event.data)
                else:
                    yield from parser.feed(event.data)
            elif isinstance(event, _MemberEnd):
                yield from parser.end_member()
            else:
                yield from parser.abort_member(event.member_offset, event.detail)
    else:
        for chunk in _prepend(first, chunks):
            yield from parser.feed(chunk)
    yield from parser.finish()


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


# =============================================================================================
# WARC / WET records to documents


_WARC_TYPE_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HTTP_STATUS_LINE = re.compile(rb"\s*HTTP/\d(?:\.\d)?\s+(\d{3})")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"})
_PLAIN_TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/x-markdown"})
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([^"';,\s]+)""", re.IGNORECASE)


def _read_warc(
    stream: BinaryIO, source_file: str, config: ReaderConfig, file_format: str, start: int, end: int | None
) -> Iterator[Document | Quarantined]:
    to_document = _response_document if file_format == "warc" else _conversion_document
    document_type = "response" if file_format == "warc" else "conversion"
    # Room for the HTTP header section in front of a payload of up to the cap.
    retain_limit = config.max_record_bytes + 2 * _MAX_HEADER_BYTES
    for event in _warc_events(stream, retain_limit, start):
        # Events come in file order: the first one past the range ends it (its record belongs to
        # the next range, which reads it from there).
        if end is not None and event.split_offset >= end:
            return
        if isinstance(event, _Problem):
            if event.warc_type in (None, document_type):  # other record types are not documents
                yield _quarantined(source_file, event.offset, event.url, event.reason, event.detail)
        elif event.headers.get("warc-type", "").lower() == document_type:
            yield _record_item(event, source_file, config, to_document)
        elif not _WARC_TYPE_TOKEN.fullmatch(event.headers.get("warc-type", "")):
            # Mandatory, and a token: a damaged one could hide a document that would vanish unreported.
            detail = f"WARC-Type {event.headers['warc-type']!r}" if "warc-type" in event.headers else "no WARC-Type"
            yield _quarantined(source_file, event.offset, event.url, QuarantineReason.MALFORMED_RECORD, detail)


def _record_item(
    record: _RawRecord,
    source_file: str,
    config: ReaderConfig,
    to_document: Callable[[_RawRecord, str, ReaderConfig], Document],
) -> Document | Quarantined:
    try:
        return to_document(record, source_file, config)
    except _Reject as rejected:
        return _quarantined(source_file, record.offset, record.url, rejected.reason, rejected.detail)
    except Exception as exc:  # a record must never take its file down with it
        detail = f"{type(exc).__name__}: {exc}"[:500]
        return _quarantined(source_file, record.offset, record.url, QuarantineReason.MALFORMED_RECORD, detail)


@dataclass
class _HttpResponse:
    status: int
    headers: dict[str, str]
    body_start: int

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].split(",")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        match = _CHARSET_PARAM.search(self.headers.get("content-type", ""))
        return match.group(1) if match else None


def _response_document(record: _RawRecord, source_file: str, config: ReaderConfig) -> Document:
    _check_warc_content_type(record)
    http = _parse_http_head(record.block)
    if http.status != 200:
        raise _Reject(QuarantineReason.HTTP_STATUS, f"HTTP {http.status}")
    media_type = http.media_type
    if media_type and media_type not in _HTML_TYPES and media_type not in _PLAIN_TEXT_TYPES:
        raise _Reject(QuarantineReason.NON_HTML, f"content type {media_type}")
    _check_payload_size(record.block_length - http.body_start, config)
    _check_not_truncated_by_crawler(record)
    payload = _http_payload(record, http, config)
    binary = sniff_binary(payload)
    if binary:
        raise _Reject(QuarantineReason.BINARY, binary)
    if not payload.strip():
        raise _Reject(QuarantineReason.EMPTY, "empty HTTP body")
    if media_type not in _PLAIN_TEXT_TYPES:  # served as HTML, or with no type (read as HTML)
        kind = sniff_non_html(payload)
        if kind:
            served = f"served as {media_type}" if media_type else "served without a content type"
            raise _Reject(QuarantineReason.NON_HTML, f"{served} but looks like {kind}")
    try:
        decoded, charset = decode_html_bytes(payload, http.charset)
    except UndecodableError as exc:
        raise _Reject(QuarantineReason.UNDECODABLE, str(exc)) from None
    text = decoded if media_type in _PLAIN_TEXT_TYPES else extract_main_text(decoded, config.extractor)
    fetch_time = record.headers.get("warc-date")
    return _finish_document(text, record.url, source_file, record.offset, config, fetch_time, charset)


def _conversion_document(record: _RawRecord, source_file: str, config: ReaderConfig) -> Document:
    _check_payload_size(record.block_length, config)
    if not record.block.strip():
        raise _Reject(QuarantineReason.EMPTY, "empty conversion record")
    try:
        text, charset = decode_text_bytes(record.block)
    except UndecodableError as exc:
        raise _Reject(QuarantineReason.UNDECODABLE, str(exc)) from None
    fetch_time = record.headers.get("warc-date")
    return _finish_document(text, record.url, source_file, record.offset, config, fetch_time, charset)


def _check_warc_content_type(record: _RawRecord) -> None:
    warc_content_type = record.headers.get("content-type", "application/http").lower()
    if not warc_content_type.startswith("application/http"):
        raise _Reject(QuarantineReason.NON_HTML, f"WARC response record of type {warc_content_type}")


def _check_not_truncated_by_crawler(record: _RawRecord) -> None:
    if "warc-truncated" in record.headers:
        raise _Reject(QuarantineReason.TRUNCATED, f"WARC-Truncated: {record.headers['warc-truncated']}")


def _check_payload_size(size: int, config: ReaderConfig) -> None:
    if size > config.max_record_bytes:
        raise _Reject(QuarantineReason.TOO_LARGE, f"payload of {size} bytes, limit {config.max_record_bytes}")


def _parse_http_head(block: bytes) -> _HttpResponse:
    status = _HTTP_STATUS_LINE.match(block)
    if not status:
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"bad HTTP status line {block[:60]!r}")
    end, separator = _header_end(bytearray(block[: _MAX_HEADER_BYTES + 4]), 0)
    if end < 0:
        raise _Reject(QuarantineReason.MALFORMED_RECORD, "HTTP headers do not end")
    return _HttpResponse(int(status.group(1)), _parse_header_lines(block[:end]), end + separator)


def _http_payload(record: _RawRecord, http: _HttpResponse, config: ReaderConfig) -> bytes:
    """The entity body: de-chunked, checked against Content-Length, content-decoded."""
    raw = record.block[http.body_start :]
    if "chunked" in http.headers.get("transfer-encoding", "").lower():
        raw = _dechunk(raw)
    else:
        _check_content_length(len(raw), http.headers.get("content-length"))
    return _content_decode(raw, http.headers.get("content-encoding", ""), config.max_record_bytes)


def _check_content_length(size: int, declared: str | None) -> None:
    # The header counts the bytes as sent, before content decoding: the raw body compares to it.
    if declared and declared.strip().isdigit() and size < int(declared):
        raise _Reject(QuarantineReason.TRUNCATED, f"HTTP Content-Length declared {int(declared)} bytes, got {size}")


def _dechunk(raw: bytes) -> bytes:
    """Decode chunked transfer coding; a body not in chunked form at all is taken as is (lying
    servers and crawlers that store decoded bodies under the original headers)."""
    parts = []
    i = 0
    while True:
        line_end = raw.find(b"\n", i)
        size_text = raw[i:line_end].split(b";")[0].strip() if line_end >= 0 else b""
        try:
            size = int(size_text, 16)
        except ValueError:
            if i == 0:
                return raw
            raise _Reject(QuarantineReason.TRUNCATED, "chunked body ends before its last chunk") from None
        if size == 0:
            return b"".join(parts)
        start = line_end + 1
        if start + size > len(raw):
            raise _Reject(QuarantineReason.TRUNCATED, "chunked body ends inside a chunk")
        parts.append(raw[start : start + size])
        i = start + size
        i += 2 if raw.startswith(b"\r\n", i) else 1 if raw.startswith(b"\n", i) else 0


def _content_decode(body: bytes, content_encoding: str, limit: int) -> bytes:
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        body = _decode_one_coding(body, coding, limit)
    return body


def _decode_one_coding(body: bytes, coding: str, limit: int) -> bytes:
    if coding in ("identity", "none", "utf-8", "utf8", "text"):  # all but the first: server misconfigurations
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate_bounded(body, 31, coding, limit) if body.startswith(b"\x1f\x8b") else body
    if coding == "deflate":
        return _inflate_bounded(body, 15 if _is_zlib_header(body) else -15, coding, limit)
    if coding == "br":
        return _unbrotli_bounded(body, limit)
    if coding == "zstd":
        return _unzstd_bounded(body, limit)
    raise _Reject(QuarantineReason.MALFORMED_RECORD, f"unsupported Content-Encoding {coding!r}")


def _is_zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and (body[0] & 0x0F) == 8 and ((body[0] << 8) | body[1]) % 31 == 0


def _inflate_bounded(body: bytes, wbits: int, coding: str, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"Content-Encoding {coding}: {exc}") from None
    _check_decoded_size(len(out), limit)
    if not inflater.eof:
        raise _Reject(QuarantineReason.TRUNCATED, f"Content-Encoding {coding} stream ends early")
    return out


def _unbrotli_bounded(body: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    try:
        out = decompressor.process(body, output_buffer_limit=limit + 1)
    except brotli.error as exc:
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"Content-Encoding br: {exc}") from None
    _check_decoded_size(len(out), limit)
    if not decompressor.is_finished():
        raise _Reject(QuarantineReason.TRUNCATED, "Content-Encoding br stream ends early")
    return out


def _unzstd_bounded(body: bytes, limit: int) -> bytes:
    try:
        out = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)).read(limit + 1)
    except zstandard.ZstdError as exc:
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"Content-Encoding zstd: {exc}") from None
    _check_decoded_size(len(out), limit)
    return out


def _check_decoded_size(size: int, limit: int) -> None:
    if size > limit:
        raise _Reject(QuarantineReason.TOO_LARGE, f"decoded payload over {limit} bytes")


# =============================================================================================
# JSONL


class _TruncatedStream(Exception):
    """The compressed stream is corrupt or ends early; what follows is lost."""


class _StreamReader(io.RawIOBase):
    """A raw binary stream over any object with read(n), so io.BufferedReader can wrap it."""

    def __init__(self, source: BinaryIO):
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ZstdFrames(io.RawIOBase):
    """Decompresses concatenated zstd frames, raising _TruncatedStream when the input ends inside a
    frame (zstandard's stream reader reports a cut-off stream as a normal end)."""

    def __init__(self, source: BinaryIO):
        self._source = source
        self._frame = zstandard.ZstdDecompressor().decompressobj()
        self._pending = b""
        self._frame_started = False
        self._broken: str | None = None  # raised once the frames decoded before the damage are read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            if not self._decompress_more():
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _decompress_more(self) -> bool:
        # Small input pieces: output per call is unbounded (zstd ratios reach the thousands).
        if self._broken is not None:
            raise _TruncatedStream(self._broken)
        compressed = self._source.read(_INFLATE_INPUT)
        if not compressed:
            if self._frame_started:
                raise _TruncatedStream("zstd stream ends inside a frame")
            return False
        self._pending = self._decompress(compressed)
        return True

    def _decompress(self, compressed: bytes) -> bytes:
        out = []
        try:
            while compressed:
                self._frame_started = True
                out.append(self._frame.decompress(compressed))
                if not self._frame.eof:
                    break
                compressed = self._frame.unused_data
                self._frame = zstandard.ZstdDecompressor().decompressobj()
                self._frame_started = False
        except zstandard.ZstdError as exc:  # the frames before the damage are still good
            self._broken = f"corrupt zstd stream: {exc}"
        return b"".join(out)


def _decompressed_lines_source(stream: BinaryIO, source_file: str) -> io.BufferedIOBase:
    lowered = source_file.lower()
    if lowered.endswith(".gz"):
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if lowered.endswith(".zst"):
        return io.BufferedReader(_ZstdFrames(stream), _READ_CHUNK)
    return io.BufferedReader(_StreamReader(stream), _READ_CHUNK)


def _read_jsonl(
    stream: BinaryIO, source_file: str, config: ReaderConfig, start: int, end: int | None
) -> Iterator[Document | Quarantined]:
    if not splittable_by_name(source_file) and (start or end is not None):
        raise ValueError(f"{source_file} is one compressed stream: it can only be read whole")
    source = _decompressed_lines_source(stream, source_file)
    line_start = start  # byte offset of the line being read, in the decompressed file
    try:
        for line, size in _bounded_lines(source, config.max_record_bytes):
            if end is not None and line_start >= end:
                return
            item = _jsonl_item(line, line_start, source_file, config)
            if item is not None:
                yield item
            line_start += size
    except (_TruncatedStream, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        detail = f"compressed stream broken, lines from decompressed byte {line_start} on lost: {exc}"
        yield _quarantined(source_file, line_start, None, QuarantineReason.TRUNCATED_GZIP, detail)


def _bounded_lines(source: io.BufferedIOBase, limit: int) -> Iterator[tuple[bytes | None, int]]:
    """(line, its size in bytes) for lines of at most `limit` bytes; a longer line is skipped
    and given as None."""
    while True:
        line = source.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(b"\n"):
            size = len(line)
            while rest := source.readline(_READ_CHUNK):
                size += len(rest)
                if rest.endswith(b"\n"):
                    break
            yield None, size
        else:
            yield line, len(line)


def _jsonl_item(
    line: bytes | None, line_start: int, source_file: str, config: ReaderConfig
) -> Document | Quarantined | None:
    if line is None:
        detail = f"line over {config.max_record_bytes} bytes"
        return _quarantined(source_file, line_start, None, QuarantineReason.TOO_LARGE, detail)
    if not line.strip():
        return None
    url = None
    try:
        text_line, charset = _decode_line(line)
        obj = _parse_json_object(text_line)
        url = _optional_string(obj, config.url_field)
        text = _required_string(obj, config.text_field)
        return _finish_document(text, url, source_file, line_start, config, None, charset)
    except _Reject as rejected:
        return _quarantined(source_file, line_start, url, rejected.reason, rejected.detail)


def _decode_line(line: bytes) -> tuple[str, str]:
    try:
        return line.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return decode_text_bytes(line)
    except UndecodableError as exc:
        raise _Reject(QuarantineReason.UNDECODABLE, str(exc)) from None


def _parse_json_object(text_line: str) -> dict:
    try:
        obj = json.loads(text_line.lstrip("\ufeff"))
    except (ValueError, RecursionError) as exc:
        raise _Reject(QuarantineReason.MALFORMED_JSON, str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"JSON value is {_json_type(obj)}, not an object")
    return obj


def _required_string(obj: dict, name: str) -> str:
    if name not in obj:
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"no {name!r} field")
    value = obj[name]
    if not isinstance(value, str):
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"{name!r} is {_json_type(value)}, not a string")
    return value


def _optional_string(obj: dict, name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"{name!r} is {_json_type(value)}, not a string")
    return value or None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


# =============================================================================================
# Parquet

_PARQUET_BATCH_ROWS = 1024


def _read_parquet(
    stream: BinaryIO, source_file: str, config: ReaderConfig, start: int, end: int | None
) -> Iterator[Document | Quarantined]:
    """Rows in order, of the row groups whose first byte lies in [start, end). Damage found by
    Arrow (a bad footer, a corrupt page, a failed page checksum) loses what it makes unreadable:
    the file, or one row group, quarantined with the row range."""
    with _seekable(stream, start, source_file) as seekable:
        try:
            parquet = pq.ParquetFile(seekable, page_checksum_verification=True)
            schema = parquet.schema_arrow
            group_rows = [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
            group_starts = parquet_row_group_starts(parquet.metadata)
        except (pa.ArrowException, OSError) as exc:
            if start == 0:  # an unreadable file is never split: its one range starts at 0
                detail = f"not a readable Parquet file, no rows read: {exc}"
                yield _quarantined(source_file, 0, None, QuarantineReason.CORRUPT_FILE, detail)
            return
        columns = _parquet_columns(schema, source_file, config)
        row = 0
        for group, n_rows in enumerate(group_rows):
            end_row = row + n_rows
            if not _row_group_in_range(group, group_starts, start, end):
                row = end_row
                continue
            try:
                for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, row_groups=[group], columns=columns):
                    texts = _column_values(batch.column(0))
                    urls = _column_values(batch.column(1)) if batch.num_columns > 1 else [None] * batch.num_rows
                    for text, url in zip(texts, urls):
                        yield _parquet_item(text, url, row, source_file, config)
                        row += 1
            except (pa.ArrowException, OSError) as exc:
                problem = f"{exc}"
            else:
                problem = "fewer rows than the file metadata states"
            if row < end_row:
                detail = f"corrupt row group {group}: rows {row} to {end_row - 1} lost: {problem}"
                yield _quarantined(source_file, row, None, QuarantineReason.CORRUPT_FILE, detail)
            row = max(row, end_row)


def parquet_row_group_starts(metadata: pq.FileMetaData) -> list[int] | None:
    """Byte offset of each row group's first page, or None when they do not strictly increase in
    row group order (or a group has no column): then the file is never split."""
    starts = []
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        if row_group.num_columns == 0:
            return None
        starts.append(
            min(
                chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
                for chunk in (row_group.column(c) for c in range(row_group.num_columns))
            )
        )
    if any(later <= earlier for earlier, later in zip(starts, starts[1:])):
        return None
    return starts


def _row_group_in_range(group: int, group_starts: list[int] | None, start: int, end: int | None) -> bool:
    if group_starts is None:
        return start == 0  # a file that is never split is read whole by the range from 0
    return start <= group_starts[group] and (end is None or group_starts[group] < end)


def _column_values(column: pa.Array) -> list:
    try:
        return column.to_pylist()
    except UnicodeDecodeError:  # invalid UTF-8 in a string column: decode (or reject) row by row
        return column.cast(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary()).to_pylist()


@contextmanager
def _seekable(stream: BinaryIO, start: int, source_file: str) -> Iterator[BinaryIO]:
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        yield stream
        return
    if start:
        raise InputFileError(source_file, f"reading Parquet row groups from byte {start} needs a seekable input")
    with tempfile.TemporaryFile(prefix="crawlmix-parquet-") as spool:
        shutil.copyfileobj(stream, spool, _READ_CHUNK)
        spool.seek(0)
        yield spool


def _parquet_columns(schema: pa.Schema, source_file: str, config: ReaderConfig) -> list[str]:
    if config.text_field not in schema.names:
        raise InputFileError(
            source_file,
            f"text column {config.text_field!r} not found; columns: {', '.join(schema.names) or '(none)'}",
        )
    return [config.text_field] + ([config.url_field] if config.url_field in schema.names else [])


def _parquet_item(
    text: object, url: object, row: int, source_file: str, config: ReaderConfig
) -> Document | Quarantined:
    url_value = url if isinstance(url, str) and url else None
    try:
        if url is not None and not isinstance(url, str):
            raise _not_a_string(config.url_field, url)
        text_value, charset = _parquet_text(text, config)
        return _finish_document(text_value, url_value, source_file, row, config, None, charset)
    except _Reject as rejected:
        return _quarantined(source_file, row, url_value, rejected.reason, rejected.detail)


def _parquet_text(value: object, config: ReaderConfig) -> tuple[str, str]:
    """(text, charset) of one row's text value; binary columns are decoded like WET text."""
    if isinstance(value, str):
        return value, "utf-8"
    if value is None:
        raise _Reject(QuarantineReason.MALFORMED_RECORD, f"{config.text_field!r} is null")
    if not isinstance(value, bytes):
        raise _not_a_string(config.text_field, value)
    if len(value) > config.max_record_bytes:
        raise _Reject(QuarantineReason.TOO_LARGE, f"payload of {len(value)} bytes, limit {config.max_record_bytes}")
    try:
        return decode_text_bytes(value)
    except UndecodableError as exc:
        raise _Reject(QuarantineReason.UNDECODABLE, str(exc)) from None


def _not_a_string(name: str, value: object) -> _Reject:
    return _Reject(QuarantineReason.MALFORMED_RECORD, f"{name!r} is {type(value).__name__}, not a string")
