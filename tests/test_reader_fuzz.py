"""Fuzzing every reader with mutated WARC, WET, JSONL and Parquet files (hypothesis, derandomized).

Two kinds of test per format:

- Structure-aware: a file of good records with ONE record mutated (bit flips, truncation, deleted
  bytes, inserted garbage or framing bytes, a huge line, wrong Content-Length, dropped or broken
  headers, invalid UTF-8, NUL bytes, wrong JSON types, bad Parquet values, a corrupt gzip member or
  Parquet row group). Oracle: no exception; every other record comes out as the same document at
  its (shifted) offset; the mutated record's bytes give at least one item unless they no longer hold
  a document record; every quarantined item has a known reason, a detail, the file name and an
  offset inside the mutated record. Which records must survive, per format:
    * WARC/WET, one gzip member per record or uncompressed: every record other than the mutated
      one (the plain reader resyncs at the next `WARC/1.x` record start);
    * JSONL plain/gz/zst with the mutation inside a line: every other line, at its (shifted) byte
      offset (a mutation that adds line breaks makes the line several lines; each non-blank one
      gives exactly one item, at its own line start);
    * JSONL gz/zst with a corrupt compressed member/frame: the lines wholly before it; from there
      one `truncated_gzip` item stands for the rest (a compressed stream cannot be resynced);
    * Parquet with a bad value: every other row; with a corrupt row group: every other row group,
      the lost rows covered by a quarantined item that states the range.
- Blind: random byte damage anywhere in the file, framing and Parquet footer included, through
  `build_shard`. Oracle: no exception (a corrupt file is quarantined, not an InputFileError; the one
  exception is a Parquet footer whose damage renames the text column, which reads as a text_field
  that does not match the data and fails the partition with an error naming file and columns), valid
  quarantine rows, and something (a document or a quarantined item) for any non-blank file.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawlmix.ingest import (
    Document,
    FileRange,
    InputFileError,
    Quarantined,
    QuarantineReason,
    ReaderConfig,
    build_shard,
    read_records,
)
from crawlmix.ingest.text import normalize_text
from tests.ingest_fixtures import (
    ARTICLE_PARAGRAPHS,
    conversion_record,
    html_response,
    jsonl_line,
    realistic_html,
    request_record,
    warcinfo_record,
)

# Small caps so that a "huge" line or header costs little: HUGE passes the 64 KiB WARC header limit
# and both caps.
CONFIG = ReaderConfig(max_record_bytes=40_000, max_text_chars=30_000)
HUGE = 70_000
REASONS = {reason.value for reason in QuarantineReason}

# Every @given test: deterministic (CI reruns the same examples), no per-example deadline (2 slow
# shared cores), and a bounded number of examples per format.
STRUCTURED_EXAMPLES = 120
BLIND_EXAMPLES = 80
FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
STRUCTURED = settings(FUZZ, max_examples=STRUCTURED_EXAMPLES)
BLIND = settings(FUZZ, max_examples=BLIND_EXAMPLES)

# Bytes that mean something to one of the parsers.
TOKENS = (
    b"\x00",
    b"\x00" * 17,
    b"\xff\xfe",
    b"\xc3\x28",  # invalid UTF-8
    b"\xed\xa0\x80",  # UTF-8-encoded surrogate
    b"\x1f\x8b\x08",  # gzip member magic
    b"\x28\xb5\x2f\xfd",  # zstd frame magic
    b"PAR1",
    b"WARC/1.0\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"{",
    b'"',
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"Content-Length: 99999\r\n",
    b"Content-Encoding: gzip\r\n",
    b"Transfer-Encoding: chunked\r\n",
)


# ---------------------------------------------------------------------------------------------
# Mutations


def mutate_bytes(data: st.DataObject, region: bytes, max_ops: int = 3) -> bytes:
    """One to `max_ops` byte-level edits of `region`."""
    for _ in range(data.draw(st.integers(1, max_ops), label="n_ops")):
        op = data.draw(st.sampled_from(["flip", "truncate", "delete", "insert", "overwrite", "huge"]), label="op")
        size = len(region)
        if op == "flip" and size:
            at = data.draw(st.integers(0, size - 1), label="at")
            mask = data.draw(st.integers(1, 255), label="mask")
            region = region[:at] + bytes([region[at] ^ mask]) + region[at + 1 :]
        elif op == "truncate":
            region = region[: data.draw(st.integers(0, size), label="keep")]
        elif op == "delete" and size:
            at = data.draw(st.integers(0, size - 1), label="at")
            region = region[:at] + region[at + data.draw(st.integers(1, 64), label="n") :]
        elif op in ("insert", "overwrite"):
            at = data.draw(st.integers(0, size), label="at")
            junk = data.draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=48)), label="junk")
            region = region[:at] + junk + region[at + (len(junk) if op == "overwrite" else 0) :]
        elif op == "huge":
            at = data.draw(st.integers(0, size), label="at")
            region = region[:at] + data.draw(st.sampled_from([b"A", b"\xff", b"\x00"])) * HUGE + region[at:]
    return region


def _items_in(items: list, start: int, end: int) -> list:
    return [i for i in items if start <= i.source_offset < end]


def assert_well_formed(item: Document | Quarantined, name: str) -> None:
    assert isinstance(item, (Document, Quarantined)), item
    assert item.source_file == name and item.source_offset >= 0
    if isinstance(item, Quarantined):
        assert item.reason in REASONS, item
        assert item.detail.strip(), item
    else:
        assert item.text.strip(), item


def read_bytes(data: bytes, name: str) -> list[Document | Quarantined]:
    items = list(read_records(io.BytesIO(data), name, CONFIG))
    for item in items:
        assert_well_formed(item, name)
    return items


def same_documents(items: list, expected: list[Document], offsets: list[int]) -> None:
    assert [(type(i).__name__, i.source_offset, i.url, getattr(i, "text", None)) for i in items] == [
        ("Document", offset, doc.url, doc.text) for doc, offset in zip(expected, offsets)
    ]


# ---------------------------------------------------------------------------------------------
# WARC and WET: one record mutated, in the record bytes or in its gzip member


def _story(i: int) -> str:
    return realistic_html(f"Story {i}", [f"Record {i} marker. {ARTICLE_PARAGRAPHS[i % len(ARTICLE_PARAGRAPHS)]}"])


def _pinned(records: list[bytes]) -> list[bytes]:
    """Records with fixed ids and dates: hypothesis replays draws whose bounds depend on the bytes."""
    pinned = []
    for n, record in enumerate(records):
        record_id = b"WARC-Record-ID: <urn:uuid:%08d-0000-4000-8000-000000000000>" % n
        record = re.sub(rb"WARC-Record-ID: [^\r]*", record_id, record)
        pinned.append(re.sub(rb"WARC-Date: [^\r]*", b"WARC-Date: 2024-03-03T12:00:00Z", record))
    return pinned


def _warc_records(kind: str) -> tuple[list[bytes], int]:
    """(raw records, index of the record to mutate): documents around a few non-document records."""
    if kind == "warc":
        docs = [html_response(f"https://w.example/{i}", _story(i)) for i in range(5)]
        return _pinned([warcinfo_record(), docs[0], docs[1], request_record("https://w.example/x"), docs[2], docs[3],
                        request_record("https://w.example/y"), docs[4]]), 4  # fmt: skip
    texts = [f"Record {i} marker. {ARTICLE_PARAGRAPHS[i % 4]}" for i in range(5)]
    docs = [conversion_record(f"https://t.example/{i}", text) for i, text in enumerate(texts)]
    return _pinned([warcinfo_record("t.warc.wet.gz"), *docs]), 3


WARC_RECORDS = {kind: _warc_records(kind) for kind in ("warc", "wet")}


_WARC_TYPE = re.compile(rb"(?im)^WARC-Type:[ \t]*([^\r\n]*)")


def _holds_no_document(record_bytes: bytes, document_type: str) -> bool:
    """Mutated bytes that no longer need an item: blank, or a record of a non-document type (the
    reader skips those, as the WARC standard says)."""
    if not record_bytes.strip():
        return True
    declared = _WARC_TYPE.search(record_bytes)
    return declared is not None and declared.group(1).strip().lower() != document_type.encode()


def _inflate_what_decodes(member: bytes) -> bytes:
    inflater = zlib.decompressobj(31)
    out = []
    for i in range(0, len(member), 64):
        try:
            out.append(inflater.decompress(member[i : i + 64]))
        except zlib.error:
            break
        if inflater.eof:
            break
    return b"".join(out)


def _set_header(record: bytes, occurrence: int, name: bytes, value: bytes | None) -> bytes:
    """The `occurrence`-th (0: WARC, 1: HTTP) `name:` header line set to `value`, or removed."""
    pattern = re.compile(rb"(?im)^" + re.escape(name) + rb":[^\r\n]*\r\n")
    matches = list(pattern.finditer(record))
    if len(matches) <= occurrence:
        return record
    match = matches[occurrence]
    line = b"" if value is None else name + b": " + value + b"\r\n"
    return record[: match.start()] + line + record[match.end() :]


def mutate_warc_record(data: st.DataObject, record: bytes) -> bytes:
    """A header-aware edit (lengths, types, status, encodings) and/or byte-level edits."""
    edit = data.draw(st.sampled_from(["bytes", "content_length", "drop_header", "status", "encoding", "charset"]))
    if edit == "content_length":
        value = data.draw(
            st.one_of(
                st.integers(0, 2 * len(record)).map(lambda n: str(n).encode()),
                st.sampled_from([b"-1", b"abc", b"", b"99999999999999999999", b"1e3", b" 12", b"0x10"]),
            )
        )
        record = _set_header(record, data.draw(st.integers(0, 1)), b"Content-Length", value)
    elif edit == "drop_header":
        name = data.draw(st.sampled_from([b"Content-Length", b"WARC-Type", b"WARC-Target-URI", b"Content-Type"]))
        record = _set_header(record, data.draw(st.integers(0, 1)), name, None)
    elif edit == "status":
        junk = data.draw(st.sampled_from([b"HTTP/1.1 404 Not Found", b"HTTP/1.1 2OO OK", b"HTTX/9", b"", b"\x00"]))
        record = record.replace(b"HTTP/1.1 200 OK", junk, 1)
    elif edit == "encoding":
        coding = data.draw(st.sampled_from([b"gzip", b"deflate", b"br", b"zstd", b"compress", b"gzip, br"]))
        encoding_line = b"Content-Encoding: " + coding + b"\r\n"
        record = record.replace(b"Content-Type: text/html", encoding_line + b"Content-Type: text/html", 1)
    elif edit == "charset":
        charset = data.draw(st.sampled_from([b"x-bogus", b"utf-16", b"", b"shift_jis", b"\xff"]))
        record = record.replace(b"charset=utf-8", b"charset=" + charset, 1)
    if edit == "bytes" or data.draw(st.booleans(), label="also_bytes"):
        record = mutate_bytes(data, record)
    return record


@pytest.mark.parametrize("name", ["f.warc.gz", "f.warc", "f.wet.gz", "f.wet"])
@STRUCTURED
@given(data=st.data())
def test_one_mutated_warc_record_loses_only_itself(name, data):
    kind = "wet" if ".wet" in name else "warc"
    document_type = "conversion" if kind == "wet" else "response"
    records, target = WARC_RECORDS[kind]
    compressed = name.endswith(".gz")
    parts = [gzip.compress(r, mtime=0) for r in records] if compressed else list(records)
    good = read_bytes(b"".join(parts), name)
    assert all(isinstance(i, Document) for i in good) and len(good) == 5

    layer = data.draw(st.sampled_from(["record", "member"] if compressed else ["record"]), label="layer")
    if layer == "record":
        mutated_record = mutate_warc_record(data, records[target])
        mutated_part = gzip.compress(mutated_record, mtime=0) if compressed else mutated_record
    else:
        mutated_part = mutate_bytes(data, parts[target])
        mutated_record = _inflate_what_decodes(mutated_part)
    items = read_bytes(b"".join([*parts[:target], mutated_part, *parts[target + 1 :]]), name)

    start = sum(len(p) for p in parts[:target])
    end = start + len(mutated_part)
    outside = [i for i in items if not start <= i.source_offset < end]
    shift = len(mutated_part) - len(parts[target])
    kept = [doc for doc in good if doc.source_offset != start]
    same_documents(outside, kept, [d.source_offset + (shift if d.source_offset > start else 0) for d in kept])
    if not _holds_no_document(mutated_record, document_type):
        assert _items_in(items, start, end), "the mutated record vanished without a quarantined item"


# ---------------------------------------------------------------------------------------------
# JSONL: one line mutated; or a corrupt gzip member / zstd frame


N_LINES = 7
TARGET_LINE = 3
_JSONL_OBJECTS = [
    {"url": f"https://j.example/{i}", "text": f"Line {i} marker. {ARTICLE_PARAGRAPHS[i % 4]}"} for i in range(N_LINES)
]
_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _mutated_line(data: st.DataObject) -> bytes:
    """Line TARGET_LINE's content (no final newline) after a JSON-aware and/or byte-level edit."""
    obj = dict(_JSONL_OBJECTS[TARGET_LINE])
    edit = data.draw(st.sampled_from(["bytes", "text_type", "url_type", "drop_text", "not_object", "escapes", "deep"]))
    if edit == "text_type":
        obj["text"] = data.draw(_JSON_VALUES)
    elif edit == "url_type":
        obj["url"] = data.draw(_JSON_VALUES)
    elif edit == "drop_text":
        del obj["text"]
    if edit == "not_object":
        line = jsonl_line(data.draw(_JSON_VALUES))
    elif edit == "deep":
        depth = data.draw(st.sampled_from([10, 5_000, 50_000]))
        line = b"[" * depth + b"]" * data.draw(st.sampled_from([0, depth]))
    else:
        line = jsonl_line(obj)
    if edit == "escapes":
        escape = data.draw(st.sampled_from([b"\\u0000", b"\\ud800", b"\\udfff\\ud800", b"\\x00", b"\x00", b"\xc3\x28"]))
        line = line.replace(b"marker", escape, 1)
    line = line.rstrip(b"\n")
    if edit == "bytes" or data.draw(st.booleans(), label="also_bytes"):
        line = mutate_bytes(data, line)
    return line


def _compress_jsonl(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.compress(data, mtime=0)
    if name.endswith(".zst"):
        return zstandard.ZstdCompressor().compress(data)
    return data


def _line_starts(lines: list[bytes], base: int = 0) -> list[int]:
    """Byte offset of each line's start, the first one at `base`."""
    return [base + sum(len(line) for line in lines[:n]) for n in range(len(lines))]


def _good_jsonl(name: str) -> list[Document]:
    docs = read_bytes(_compress_jsonl(name, b"".join(jsonl_line(o) for o in _JSONL_OBJECTS)), name)
    assert all(isinstance(i, Document) for i in docs) and len(docs) == N_LINES
    return docs


@pytest.mark.parametrize("name", ["f.jsonl", "f.jsonl.gz", "f.jsonl.zst"])
@STRUCTURED
@given(data=st.data())
def test_one_mutated_jsonl_line_loses_only_itself(name, data):
    good = _good_jsonl(name)
    region_lines = (_mutated_line(data) + b"\n").split(b"\n")[:-1]
    lines = [jsonl_line(o) for o in _JSONL_OBJECTS]
    region = b"".join(line + b"\n" for line in region_lines)
    mutated = b"".join(lines[:TARGET_LINE]) + region + b"".join(lines[TARGET_LINE + 1 :])

    items = read_bytes(_compress_jsonl(name, mutated), name)

    start = sum(len(line) for line in lines[:TARGET_LINE])
    end = start + len(region)
    kept = good[:TARGET_LINE] + good[TARGET_LINE + 1 :]
    offsets = _line_starts(lines[:TARGET_LINE]) + _line_starts(lines[TARGET_LINE + 1 :], end)
    same_documents([i for i in items if not start <= i.source_offset < end], kept, offsets)
    # One item per non-blank line of the mutated region, at that line's start.
    region_starts = _line_starts([line + b"\n" for line in region_lines], start)
    expected = [at for at, line in zip(region_starts, region_lines) if line.strip()]
    assert [i.source_offset for i in _items_in(items, start, end)] == expected


def _jsonl_members(name: str) -> list[bytes]:
    """Compressed pieces of one line each: gzip members or zstd frames, concatenated in the file."""
    if name.endswith(".gz"):
        return [gzip.compress(jsonl_line(o), mtime=0) for o in _JSONL_OBJECTS]
    return [zstandard.ZstdCompressor(write_checksum=True).compress(jsonl_line(o)) for o in _JSONL_OBJECTS]


@pytest.mark.parametrize("name", ["f.jsonl.gz", "f.jsonl.zst"])
@STRUCTURED
@given(data=st.data())
def test_corrupt_compressed_jsonl_member_keeps_the_lines_before(name, data):
    good = _good_jsonl(name)
    members = _jsonl_members(name)
    mutated = mutate_bytes(data, members[TARGET_LINE])

    items = read_bytes(b"".join([*members[:TARGET_LINE], mutated, *members[TARGET_LINE + 1 :]]), name)

    same_documents(items[:TARGET_LINE], good[:TARGET_LINE], [d.source_offset for d in good[:TARGET_LINE]])
    rest = items[TARGET_LINE:]
    assert [i.source_offset for i in rest] == sorted({i.source_offset for i in rest})
    broken = [i for i in rest if isinstance(i, Quarantined) and i.reason == "truncated_gzip"]
    if broken:  # it stands for every line from its offset on, so it comes last
        assert broken == [rest[-1]] and "lost" in broken[0].detail
    else:  # a mutation the stream survived: every line still gives one item
        assert len({i.source_offset for i in rest}) >= N_LINES - TARGET_LINE - 1


# ---------------------------------------------------------------------------------------------
# Parquet: one bad value; or a corrupt row group


N_ROWS = 9
ROW_GROUP_ROWS = 3
TARGET_ROW = 4
_ROW_TEXTS = [f"Row {i} marker. {ARTICLE_PARAGRAPHS[i % 4]}" for i in range(N_ROWS)]
_ROW_URLS = [f"https://p.example/{i}" for i in range(N_ROWS)]


def _parquet_bytes(texts: list, urls: list, text_type: pa.DataType | None = None) -> bytes:
    sink = io.BytesIO()
    table = pa.table({"text": pa.array(texts, text_type or pa.string()), "url": pa.array(urls, pa.string())})
    pq.write_table(table, sink, row_group_size=ROW_GROUP_ROWS, write_page_checksum=True)
    return sink.getvalue()


GOOD_ROWS = [
    Document(url, normalize_text(text), "f.parquet", i) for i, (text, url) in enumerate(zip(_ROW_TEXTS, _ROW_URLS))
]
_BAD_STRINGS = st.one_of(
    st.sampled_from(["", "   \n\t ", "\x00" * 20, "\x00marker\x00", "A" * HUGE, "\ufeff", "\u200b"]),
    st.text(max_size=30),
)
_BAD_BINARY = st.one_of(
    st.sampled_from([b"", b"\xc3\x28" * 40, b"\xff\xfe\x00", b"\x00" * 40, b"\x80\x81\x82\x83" * 30, b"\xa0" * HUGE]),
    st.binary(max_size=60),
)


@STRUCTURED
@given(binary=st.booleans(), data=st.data())
def test_one_bad_parquet_value_loses_only_its_row(binary, data):
    texts: list = list(_ROW_TEXTS) if not binary else [t.encode() for t in _ROW_TEXTS]
    urls: list = list(_ROW_URLS)
    texts[TARGET_ROW] = data.draw(st.one_of(st.none(), _BAD_BINARY if binary else _BAD_STRINGS))
    urls[TARGET_ROW] = data.draw(st.one_of(st.just(urls[TARGET_ROW]), st.none(), st.just(""), st.text(max_size=10)))

    items = read_bytes(_parquet_bytes(texts, urls, pa.binary() if binary else pa.string()), "f.parquet")

    assert [i.source_offset for i in items] == list(range(N_ROWS))
    same_documents(items[:TARGET_ROW] + items[TARGET_ROW + 1 :], GOOD_ROWS[:TARGET_ROW] + GOOD_ROWS[TARGET_ROW + 1 :],
                   [d.source_offset for d in GOOD_ROWS if d.source_offset != TARGET_ROW])  # fmt: skip


_LOST_ROWS = re.compile(r"rows (\d+) to (\d+)")


def _covered_rows(item: Document | Quarantined) -> range:
    if isinstance(item, Document):
        return range(item.source_offset, item.source_offset + 1)
    lost = _LOST_ROWS.search(item.detail)
    if lost is None:
        return range(item.source_offset, item.source_offset + 1)
    return range(int(lost.group(1)), int(lost.group(2)) + 1)


@STRUCTURED
@given(data=st.data())
def test_corrupt_parquet_row_group_loses_only_its_rows(data):
    original = _parquet_bytes(_ROW_TEXTS, _ROW_URLS)
    group = data.draw(st.integers(0, N_ROWS // ROW_GROUP_ROWS - 1), label="row_group")
    chunks = pq.ParquetFile(io.BytesIO(original)).metadata.row_group(group)
    columns = [chunks.column(c) for c in range(chunks.num_columns)]
    start = min(c.dictionary_page_offset or c.data_page_offset for c in columns)
    end = max((c.dictionary_page_offset or c.data_page_offset) + c.total_compressed_size for c in columns)
    # Same-length damage inside the row group's column chunks: the footer still points at them.
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        damaged[data.draw(st.integers(start, end - 1))] ^= data.draw(st.integers(1, 255))

    items = read_bytes(bytes(damaged), "f.parquet")

    group_rows = range(group * ROW_GROUP_ROWS, (group + 1) * ROW_GROUP_ROWS)
    same_documents([i for i in items if i.source_offset not in group_rows],
                   [d for d in GOOD_ROWS if d.source_offset not in group_rows],
                   [d.source_offset for d in GOOD_ROWS if d.source_offset not in group_rows])  # fmt: skip
    covered = [row for i in items if i.source_offset in group_rows for row in _covered_rows(i)]
    assert covered == list(group_rows), "each row of the damaged group is a document or in a stated lost range"


# ---------------------------------------------------------------------------------------------
# Blind damage anywhere in the file, through build_shard


def _blind_inputs() -> dict[str, bytes]:
    warc, _ = WARC_RECORDS["warc"]
    wet, _ = WARC_RECORDS["wet"]
    jsonl = b"".join(jsonl_line(o) for o in _JSONL_OBJECTS)
    half = len(jsonl) // 2
    zst = zstandard.ZstdCompressor()
    return {
        "b.warc.gz": b"".join(gzip.compress(r, mtime=0) for r in warc),
        "b.warc": b"".join(warc),
        "b.wet.gz": b"".join(gzip.compress(r, mtime=0) for r in wet),
        "b.jsonl": jsonl,
        "b.jsonl.gz": gzip.compress(jsonl, mtime=0),
        "b.jsonl.zst": zst.compress(jsonl[:half]) + zst.compress(jsonl[half:]),
        "b.parquet": _parquet_bytes(_ROW_TEXTS, _ROW_URLS),
    }


BLIND_INPUTS = _blind_inputs()


def _open_bytes(files: dict[str, bytes]) -> Callable:
    @contextmanager
    def open_input(name: str, start: int):
        stream = io.BytesIO(files[name])
        stream.seek(start)
        yield stream

    return open_input


def _whole(name: str, data: bytes) -> list[FileRange]:
    return [FileRange.whole(name, name, len(data))]


@pytest.mark.parametrize("name", sorted(BLIND_INPUTS))
@BLIND
@given(data=st.data())
def test_blind_damage_never_fails_the_shard(name, data):
    damaged = mutate_bytes(data, BLIND_INPUTS[name], max_ops=4)

    try:
        result = build_shard(_whole(name, damaged), _open_bytes({name: damaged}), "s", "0", CONFIG)
    except InputFileError as error:
        # Damage to the text column's name in a Parquet footer reads as a text_field that does not
        # match the data: that stops the partition with an error naming the file and its columns.
        assert name.endswith(".parquet") and "text column 'text' not found; columns: " in error.cause
        return

    quarantine = result.quarantine.to_pylist()
    assert all(row["reason"] in REASONS and row["detail"] and row["source_file"] == name for row in quarantine)
    assert all(row["source_offset"] >= 0 for row in quarantine)
    if _may_hold_documents(name, damaged):
        assert result.docs.num_rows + len(quarantine) >= 1, "a file with records gave neither documents nor a reason"


def _may_hold_documents(name: str, damaged: bytes) -> bool:
    """Non-blank JSONL or Parquet; WARC/WET with a document record (or its gzip member) left intact.
    What remains of other records, e.g. a cut-off warcinfo record alone, is skipped like any
    non-document record."""
    if ".warc" not in name and ".wet" not in name:
        return bool(damaged.strip())
    records, _ = WARC_RECORDS["wet" if ".wet" in name else "warc"]
    document_type = b"WARC-Type: conversion" if ".wet" in name else b"WARC-Type: response"
    parts = [gzip.compress(r, mtime=0) if name.endswith(".gz") else r for r in records if document_type in r]
    return any(part in damaged for part in parts)


# ---------------------------------------------------------------------------------------------
# Regressions: the smallest failing cases the fuzzer found, as plain tests


def _docs_and_problems(items: list) -> tuple[list, list]:
    return (
        [(i.url, i.source_offset) for i in items if isinstance(i, Document)],
        [(i.reason, i.source_offset) for i in items if isinstance(i, Quarantined)],
    )


def _plain_warc(records: list[bytes]) -> tuple[bytes, list[int]]:
    offsets = [sum(len(r) for r in records[:n]) for n in range(len(records))]
    return b"".join(records), offsets


def test_record_without_warc_type_is_quarantined():
    records, target = WARC_RECORDS["warc"]
    untyped = _set_header(records[target], 0, b"WARC-Type", None)
    data, offsets = _plain_warc([*records[:target], untyped, *records[target + 1 :]])

    items = read_bytes(data, "f.warc")

    assert _docs_and_problems(items)[1] == [("malformed_record", offsets[target])]
    assert [i.detail for i in items if isinstance(i, Quarantined)] == ["no WARC-Type"]


def test_record_with_a_damaged_warc_type_line_is_quarantined():
    # A flipped line break merges the next header into the type's value: "conversion\r\x0bWARC-Record-ID: ...".
    records, target = WARC_RECORDS["wet"]
    damaged = records[target].replace(b"WARC-Type: conversion\r\n", b"WARC-Type: conversion\r\x0b", 1)
    data, offsets = _plain_warc([*records[:target], damaged, *records[target + 1 :]])

    items = read_bytes(data, "f.wet")

    assert _docs_and_problems(items)[1] == [("malformed_record", offsets[target])]
    assert len(_docs_and_problems(items)[0]) == 4


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(1, id="one byte left: the next record's start is not at a line start"),
        pytest.param(10, id="only a version line left: two version lines in one header section"),
        pytest.param(11, id="a version line and one byte: the second version line is mid-line"),
        pytest.param(-1, id="header only: the block is the next record, from its first byte"),
        pytest.param(-2, id="header and one byte: the next record starts mid-block"),
    ],
)
@pytest.mark.parametrize("kind", ["warc", "wet"])
def test_record_cut_short_in_a_plain_file_keeps_the_next_record(kind, cut):
    records, target = WARC_RECORDS[kind]
    header_end = records[target].index(b"\r\n\r\n") + 4
    keep = cut if cut > 0 else header_end - 1 - cut
    data, offsets = _plain_warc([*records[:target], records[target][:keep], *records[target + 1 :]])

    docs, problems = _docs_and_problems(read_bytes(data, f"f.{kind}"))

    assert len(problems) == 1 and problems[0][1] == offsets[target]
    good, good_offsets = _plain_warc(records)
    moved = dict(zip(good_offsets, offsets))
    expected = [(d.url, moved[d.source_offset]) for d in read_bytes(good, f"f.{kind}")]
    assert docs == [(url, offset) for url, offset in expected if offset != offsets[target]]


def test_declared_length_running_into_the_next_version_line_keeps_the_next_record():
    # The block is 9 bytes short ("HTTP/1.1 200 OK" became "HTTX/9"): the declared length takes the
    # separator and "WARC/" of the next record; its start straddles the end of the block.
    records, target = WARC_RECORDS["warc"]
    shortened = records[target].replace(b"HTTP/1.1 200 OK", b"HTTX/9", 1)
    data, offsets = _plain_warc([*records[:target], shortened, *records[target + 1 :]])

    docs, problems = _docs_and_problems(read_bytes(data, "f.warc"))

    assert problems == [("truncated", offsets[target])]
    assert [offset for _, offset in docs] == [o for n, o in enumerate(offsets) if n in (1, 2, 5, 7)]


def test_corrupt_later_zstd_frame_keeps_the_lines_of_the_frames_before():
    # Every frame lies in the first read of the compressed stream: the good frames' output used to
    # be dropped with the error.
    members = _jsonl_members("f.jsonl.zst")
    data = b"".join([*members[:TARGET_LINE], members[TARGET_LINE][:1], *members[TARGET_LINE + 1 :]])

    items = read_bytes(data, "f.jsonl.zst")

    starts = _line_starts([jsonl_line(o) for o in _JSONL_OBJECTS])
    assert [i.source_offset for i in items if isinstance(i, Document)] == starts[:TARGET_LINE]
    assert _docs_and_problems(items)[1] == [("truncated_gzip", starts[TARGET_LINE])]


def test_parquet_with_a_destroyed_footer_is_one_quarantined_item_not_a_failed_shard():
    data = _parquet_bytes(_ROW_TEXTS, _ROW_URLS)
    damaged = data[:-12] + b"\xff" * 8 + data[-4:]

    result = build_shard(_whole("f.parquet", damaged), _open_bytes({"f.parquet": damaged}), "s", "0", CONFIG)

    assert result.docs.num_rows == 0
    (row,) = result.quarantine.to_pylist()
    assert (row["source_file"], row["source_offset"], row["reason"]) == ("f.parquet", 0, "corrupt_file")
    assert row["detail"].startswith("not a readable Parquet file, no rows read: ")


def test_corrupt_parquet_row_group_loses_only_its_rows_with_the_range_stated():
    data = _parquet_bytes(_ROW_TEXTS, _ROW_URLS)
    chunk = pq.ParquetFile(io.BytesIO(data)).metadata.row_group(1).column(0)
    damaged = bytearray(data)
    chunk_end = (chunk.dictionary_page_offset or chunk.data_page_offset) + chunk.total_compressed_size
    damaged[chunk_end - 5] ^= 0x40  # in the last page's data: its checksum fails

    items = read_bytes(bytes(damaged), "f.parquet")

    assert [i.source_offset for i in items if isinstance(i, Document)] == [0, 1, 2, 6, 7, 8]
    (lost,) = [i for i in items if isinstance(i, Quarantined)]
    assert (lost.reason, lost.source_offset) == ("corrupt_file", 3)
    assert lost.detail.startswith("corrupt row group 1: rows 3 to 5 lost: ")


def test_invalid_utf8_in_a_parquet_string_column_is_decoded_per_row():
    # Arrow does not validate UTF-8 when reading Parquet; converting the column to Python used to
    # raise UnicodeDecodeError out of the reader.
    texts = pa.array([t.encode() for t in _ROW_TEXTS[:4]] + [b"Row 4 \xe9t\xe9."], pa.binary()).view(pa.string())
    sink = io.BytesIO()
    pq.write_table(pa.table({"text": texts}), sink)

    items = read_bytes(sink.getvalue(), "f.parquet")

    assert [type(i).__name__ for i in items] == ["Document"] * 5
    assert items[4].text == "Row 4 été."
