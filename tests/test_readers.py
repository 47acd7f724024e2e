"""Format readers, charset decoding, extraction and normalization, on real files built by the fixtures."""

from __future__ import annotations

import gzip
import io
import random
import zlib
from pathlib import Path

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlmix.ingest import (
    EXTRACTORS,
    Document,
    InputFileError,
    Quarantined,
    ReaderConfig,
    UndecodableError,
    content_hash,
    count_words,
    decode_html_bytes,
    detect_format,
    extract_main_text,
    is_supported,
    make_doc_id,
    normalize_text,
    read_records,
)
from tests.ingest_fixtures import (
    ARTICLE_PARAGRAPHS,
    BOILERPLATE_PHRASES,
    NonSeekable,
    conversion_record,
    corrupt_bytes,
    cut_block,
    html_response,
    jsonl_line,
    metadata_record,
    realistic_html,
    request_record,
    response_record,
    truncate_file,
    warcinfo_record,
    write_jsonl,
    write_parquet,
    write_warc,
)

CONFIG = ReaderConfig()
PAGE = realistic_html("Council restores library hours", ARTICLE_PARAGRAPHS)
KEY_SENTENCE = "voted seven to two in favour of restoring library hours"


def read_file(path: Path, config: ReaderConfig = CONFIG, *, seekable: bool = True) -> list[Document | Quarantined]:
    if seekable:
        with open(path, "rb") as stream:
            return list(read_records(stream, str(path), config))
    return list(read_records(NonSeekable(path.read_bytes()), str(path), config))


def docs_of(items):
    return [i for i in items if isinstance(i, Document)]


def quarantined_of(items):
    return [i for i in items if isinstance(i, Quarantined)]


def only_quarantined(items) -> Quarantined:
    bad = quarantined_of(items)
    assert len(bad) == 1, bad
    return bad[0]


def noise(seed: int, size: int) -> bytes:
    """High bytes in random order: no encoding turns them into text."""
    rng = random.Random(seed)
    return bytes(rng.randrange(0x80, 0x100) for _ in range(size))


def page(i: int) -> str:
    return realistic_html(f"Story number {i}", [f"Paragraph {i} {p}" for p in ARTICLE_PARAGRAPHS])


# ---------------------------------------------------------------------------------------------
# File names and formats


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a/CC-MAIN-1.warc.gz", "warc"),
        ("x.warc", "warc"),
        ("x.wet", "wet"),
        ("x.wet.gz", "wet"),
        ("s3://b/CC-MAIN-1.warc.wet.gz", "wet"),
        ("x.jsonl", "jsonl"),
        ("x.JSONL.GZ", "jsonl"),
        ("x.jsonl.zst", "jsonl"),
        ("x.parquet", "parquet"),
    ],
)
def test_detect_format(name, fmt):
    assert detect_format(name) == fmt
    assert is_supported(name)


@pytest.mark.parametrize("name", ["x.txt", "x.warc.bz2", "x.json", "_SUCCESS", "x.parquet.tmp"])
def test_unsupported_names(name):
    assert not is_supported(name)
    with pytest.raises(ValueError, match="unsupported"):
        detect_format(name)


# ---------------------------------------------------------------------------------------------
# WARC


def test_warc_keeps_responses_and_skips_other_record_types(tmp_path):
    records = [warcinfo_record()]
    for i in range(3):
        url = f"https://example.com/{i}"
        records += [request_record(url), html_response(url, page(i)), metadata_record(url)]
    path = tmp_path / "crawl.warc.gz"
    offsets = write_warc(path, records)

    items = read_file(path)

    assert quarantined_of(items) == []
    assert [d.url for d in items] == [f"https://example.com/{i}" for i in range(3)]
    assert [d.source_offset for d in items] == [offsets[2], offsets[5], offsets[8]]
    assert all(KEY_SENTENCE in d.text and d.fetch_time and d.charset == "utf-8" for d in items)
    assert items[0].source_file == str(path)


@pytest.mark.parametrize("name", ["crawl.warc", "crawl.warc.gz"])
def test_http_status_non_200(tmp_path, name):
    records = [html_response("https://a/1", page(1)), html_response("https://a/404", page(2), status="404 Not Found")]
    records.append(html_response("https://a/3", page(3)))
    offsets = write_warc(tmp_path / name, records)

    items = read_file(tmp_path / name)

    bad = only_quarantined(items)
    assert (bad.reason, bad.detail, bad.url) == ("http_status", "HTTP 404", "https://a/404")
    assert bad.source_offset == offsets[1]
    assert len(docs_of(items)) == 2


def test_non_html_content_type(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    records = [
        response_record("https://a/logo.png", png, content_type="image/png"),
        response_record("https://a/data.json", b'{"a": 1}', content_type="application/json"),
        html_response("https://a/ok", page(1)),
    ]
    write_warc(tmp_path / "c.warc.gz", records)

    items = read_file(tmp_path / "c.warc.gz")

    bad = quarantined_of(items)
    assert [(q.reason, q.detail, q.url) for q in bad] == [
        ("non_html", "content type image/png", "https://a/logo.png"),
        ("non_html", "content type application/json", "https://a/data.json"),
    ]
    assert [d.url for d in docs_of(items)] == ["https://a/ok"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >>", "PDF magic"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", "JPEG magic"),
        (b"GIF89a\x01\x00\x01\x00", "GIF magic"),
        (b"PK\x03\x04\x14\x00\x00\x00", "zip magic"),
        (b"<html>" + b"\x00\x01\x02\x03" * 300, "NUL bytes"),
    ],
)
def test_binary_payload_labelled_html(tmp_path, body, detail):
    records = [response_record("https://a/bin", body), html_response("https://a/ok", page(1))]
    write_warc(tmp_path / "b.warc.gz", records)

    items = read_file(tmp_path / "b.warc.gz")

    bad = only_quarantined(items)
    assert (bad.reason, bad.detail, bad.url) == ("binary", detail, "https://a/bin")
    assert len(docs_of(items)) == 1


def test_http_content_length_longer_than_payload(tmp_path):
    body = page(1).encode()
    records = [
        response_record("https://a/cut", body[:800], content_length=len(body)),
        html_response("https://a/ok", page(2)),
    ]
    offsets = write_warc(tmp_path / "t.warc.gz", records)

    bad = only_quarantined(read_file(tmp_path / "t.warc.gz"))

    assert bad.reason == "truncated"
    assert bad.detail == f"HTTP Content-Length declared {len(body)} bytes, got 800"
    assert (bad.url, bad.source_offset) == ("https://a/cut", offsets[0])


def test_content_length_applies_to_the_gzip_encoded_bytes(tmp_path):
    """Content-Length counts the encoded body: a complete gzip-encoded page is not truncated, a cut
    one is, even though decoding would make either longer."""
    encoded = gzip.compress(page(1).encode(), mtime=0)
    gzipped = [("Content-Encoding", "gzip")]
    records = [
        response_record("https://a/gz", encoded, headers=gzipped),
        response_record("https://a/gz-cut", encoded[:200], headers=gzipped, content_length=len(encoded)),
    ]
    write_warc(tmp_path / "g.warc.gz", records)

    items = read_file(tmp_path / "g.warc.gz")

    assert KEY_SENTENCE in items[0].text
    assert (items[1].reason, items[1].url) == ("truncated", "https://a/gz-cut")


def test_chunked_transfer_encoding(tmp_path):
    body = page(1).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 500]), body[i : i + 500]) for i in range(0, len(body), 500))
    complete = chunked + b"0\r\n\r\n"
    coding = [("Transfer-Encoding", "chunked")]
    records = [
        response_record("https://a/chunked", complete, headers=coding, content_length=-1),
        response_record("https://a/chunked-cut", chunked[:1200], headers=coding, content_length=-1),
    ]
    write_warc(tmp_path / "ch.warc.gz", records)

    items = read_file(tmp_path / "ch.warc.gz")

    assert KEY_SENTENCE in items[0].text
    assert (items[1].reason, items[1].url) == ("truncated", "https://a/chunked-cut")


def test_warc_truncated_header(tmp_path):
    records = [
        html_response("https://a/big", page(1), warc_headers={"WARC-Truncated": "length"}),
        html_response("https://a/ok", page(2)),
    ]
    write_warc(tmp_path / "w.warc.gz", records)

    bad = only_quarantined(read_file(tmp_path / "w.warc.gz"))

    assert (bad.reason, bad.detail, bad.url) == ("truncated", "WARC-Truncated: length", "https://a/big")


@pytest.mark.parametrize("name", ["crawl.warc", "crawl.warc.gz"])
def test_record_shorter_than_warc_content_length(tmp_path, name):
    """The declared block length runs into the next record: the short record is quarantined and the
    next one is still read, compressed per record or not."""
    records = [html_response("https://a/1", page(1)), cut_block(html_response("https://a/cut", page(2)), 300)]
    records += [html_response("https://a/3", page(3)), html_response("https://a/4", page(4))]
    offsets = write_warc(tmp_path / name, records)

    items = read_file(tmp_path / name)

    bad = only_quarantined(items)
    assert (bad.reason, bad.url, bad.source_offset) == ("truncated", "https://a/cut", offsets[1])
    assert bad.detail.startswith("WARC Content-Length declared")
    assert [d.url for d in docs_of(items)] == ["https://a/1", "https://a/3", "https://a/4"]


def test_file_ending_inside_a_record(tmp_path):
    path = tmp_path / "end.warc"
    offsets = write_warc(path, [html_response("https://a/1", page(1)), html_response("https://a/2", page(2))])
    truncate_file(path, offsets[1] + 1500)

    items = read_file(path)

    bad = only_quarantined(items)
    assert (bad.reason, bad.url, bad.source_offset) == ("truncated", "https://a/2", offsets[1])
    assert [d.url for d in docs_of(items)] == ["https://a/1"]


def test_corrupt_gzip_member_in_the_middle_loses_only_that_record(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    records = [html_response(f"https://a/{i}", page(i)) for i in range(5)]
    offsets = write_warc(path, records)
    corrupt_bytes(path, offsets[2] + 60, 40)

    items = read_file(path, seekable=False)

    bad = only_quarantined(items)
    assert (bad.reason, bad.source_offset) == ("truncated_gzip", offsets[2])
    assert [d.url for d in docs_of(items)] == ["https://a/0", "https://a/1", "https://a/3", "https://a/4"]
    assert [d.source_offset for d in docs_of(items)] == [offsets[i] for i in (0, 1, 3, 4)]


def test_gzip_member_cut_short_in_the_middle(tmp_path):
    """A member missing its tail (and CRC): the parser resynchronizes at the next record's member."""
    members = [gzip.compress(html_response(f"https://a/{i}", page(i)), mtime=0) for i in range(3)]
    members[1] = members[1][: len(members[1]) // 2]
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(b"".join(members))

    items = read_file(path)

    bad = only_quarantined(items)
    assert (bad.reason, bad.source_offset) == ("truncated_gzip", len(members[0]))
    assert [d.url for d in docs_of(items)] == ["https://a/0", "https://a/2"]


def test_file_cut_inside_the_last_gzip_member(tmp_path):
    path = tmp_path / "end.warc.gz"
    offsets = write_warc(path, [html_response(f"https://a/{i}", page(i)) for i in range(3)])
    truncate_file(path, offsets[2] + 300)

    items = read_file(path)

    bad = only_quarantined(items)
    assert (bad.reason, bad.source_offset) == ("truncated_gzip", offsets[2])
    assert len(docs_of(items)) == 2


def test_garbage_between_gzip_members(tmp_path):
    members = [gzip.compress(html_response(f"https://a/{i}", page(i)), mtime=0) for i in range(2)]
    path = tmp_path / "junk.warc.gz"
    path.write_bytes(members[0] + b"this is not gzip" * 10 + members[1])

    items = read_file(path)

    bad = only_quarantined(items)
    assert (bad.reason, bad.source_offset) == ("truncated_gzip", len(members[0]))
    assert [d.url for d in docs_of(items)] == ["https://a/0", "https://a/1"]


def test_warc_gzipped_as_one_member(tmp_path):
    path = tmp_path / "whole.warc.gz"
    records = [warcinfo_record(), html_response("https://a/1", page(1)), html_response("https://a/2", page(2))]
    path.write_bytes(gzip.compress(b"".join(records)))

    items = read_file(path)

    # One member holds all records: each has the member's offset plus its index in the member, so
    # every record still has its own offset (and doc id).
    assert [(d.url, d.source_offset) for d in items] == [("https://a/1", 1), ("https://a/2", 2)]


def test_junk_after_a_record_is_reported_and_the_record_kept(tmp_path):
    first, second = html_response("https://a/1", page(1)), html_response("https://a/2", page(2))
    path = tmp_path / "junk.warc"
    path.write_bytes(first + b"<<stray bytes>>\r\n" + second)

    items = read_file(path)

    assert [(type(i).__name__, i.url, getattr(i, "reason", None)) for i in items] == [
        ("Document", "https://a/1", None),
        ("Quarantined", None, "malformed_record"),
        ("Document", "https://a/2", None),
    ]
    assert items[1].source_offset == len(first)


def test_brotli_and_deflate_content_encodings(tmp_path):
    body = page(1).encode()
    records = [
        response_record("https://a/br", brotli.compress(body), headers=[("Content-Encoding", "br")]),
        response_record("https://a/deflate", zlib.compress(body), headers=[("Content-Encoding", "deflate")]),
    ]
    write_warc(tmp_path / "enc.warc.gz", records)

    items = read_file(tmp_path / "enc.warc.gz")

    assert [KEY_SENTENCE in d.text for d in items] == [True, True]


def test_unparsable_warc_header_and_http_head(tmp_path):
    bad_length = html_response("https://a/bad-length", page(1)).replace(b"Content-Length: ", b"Content-Length: x", 1)
    bad_status = response_record("https://a/bad-status", b"<p>x</p>").replace(b"HTTP/1.1 200 OK", b"HTTZ 200 OK", 1)
    path = tmp_path / "m.warc"
    offsets = write_warc(path, [bad_length, bad_status, html_response("https://a/ok", page(2))])

    items = read_file(path)

    bad = quarantined_of(items)
    assert [(q.reason, q.source_offset) for q in bad] == [
        ("malformed_record", offsets[0]),
        ("malformed_record", offsets[1]),
    ]
    assert "Content-Length" in bad[0].detail and "HTTP status line" in bad[1].detail
    assert [d.url for d in docs_of(items)] == ["https://a/ok"]


def test_size_caps(tmp_path):
    config = ReaderConfig(max_record_bytes=20_000, max_text_chars=500)
    big_payload = realistic_html("Big", ["word " * 5000])
    records = [
        html_response("https://a/huge", big_payload),
        html_response("https://a/long-text", realistic_html("Long", ["sentence of text. " * 60])),
        html_response("https://a/ok", realistic_html("Short", ["A short story about a dog."])),
    ]
    write_warc(tmp_path / "s.warc.gz", records)

    items = read_file(tmp_path / "s.warc.gz", config)

    bad = quarantined_of(items)
    assert [(q.reason, q.url) for q in bad] == [("too_large", "https://a/huge"), ("too_large", "https://a/long-text")]
    assert "limit 20000" in bad[0].detail and "limit 500" in bad[1].detail
    assert [d.url for d in docs_of(items)] == ["https://a/ok"]


def test_empty_payloads_and_pages_without_text(tmp_path):
    records = [
        response_record("https://a/empty", b""),
        html_response("https://a/blank", "<html><head><title></title></head><body>  </body></html>"),
        html_response("https://a/ok", page(1)),
    ]
    write_warc(tmp_path / "e.warc.gz", records)

    items = read_file(tmp_path / "e.warc.gz")

    assert [(q.reason, q.url) for q in quarantined_of(items)] == [
        ("empty", "https://a/empty"),
        ("empty", "https://a/blank"),
    ]
    assert len(docs_of(items)) == 1


def test_undecodable_payload(tmp_path):
    records = [response_record("https://a/noise", noise(7, 3000)), html_response("https://a/ok", page(1))]
    write_warc(tmp_path / "u.warc.gz", records)

    bad = only_quarantined(read_file(tmp_path / "u.warc.gz"))

    assert (bad.reason, bad.url) == ("undecodable", "https://a/noise")


class Dribble:
    """Hands out a few hundred bytes per read, so records straddle every kind of boundary."""

    def __init__(self, data: bytes, seed: int):
        self._data = io.BytesIO(data)
        self._rng = random.Random(seed)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(self._rng.randint(1, 700))


def _small_crawl() -> list[bytes]:
    records = [warcinfo_record()]
    for i in range(4):
        url = f"https://a/{i}"
        html = realistic_html(f"t{i}", [f"para {i} " * 30])
        records += [request_record(url), html_response(url, html), metadata_record(url)]
    return records


SMALL_CRAWL = _small_crawl()


def _outcome(items) -> list[tuple]:
    return [(type(i).__name__, i.source_offset, i.url, getattr(i, "reason", None)) for i in items]


@settings(max_examples=150, deadline=None)
@given(
    compressed=st.booleans(),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=6),
    keep=st.floats(0.05, 1),
    seed=st.integers(0, 1000),
)
def test_damaged_warc_never_raises_and_reads_the_same_in_any_chunking(compressed, flips, keep, seed):
    members = [gzip.compress(r, mtime=0) for r in SMALL_CRAWL] if compressed else SMALL_CRAWL
    data = bytearray(b"".join(members))
    for where, value in flips:
        data[int(where * len(data))] = value
    data = bytes(data[: max(1, int(keep * len(data)))])
    name = "f.warc.gz" if compressed else "f.warc"

    whole = list(read_records(io.BytesIO(data), name, CONFIG))

    assert all(isinstance(i, (Document, Quarantined)) for i in whole)
    assert _outcome(read_records(Dribble(data, seed), name, CONFIG)) == _outcome(whole)


# ---------------------------------------------------------------------------------------------
# Charsets


def _html_in(charset: str, text: str) -> bytes:
    return f"<html><body><p>{text}</p></body></html>".encode(charset)


FRENCH = "Le garçon a mangé une crème brûlée à la façon de sa mère."
CP1252_TEXT = "It’s 10 € – “quoted” and déjà vu."
JAPANESE = "日本語のテキストです。今日はいい天気ですね。東京都に住んでいます。"
CHINESE = "这是一个中文网页。我们今天讨论天气和经济。北京是中国的首都。"


@pytest.mark.parametrize(
    ("payload", "declared", "expected", "charset"),
    [
        (_html_in("latin-1", FRENCH), "ISO-8859-1", FRENCH, "cp1252"),
        (_html_in("cp1252", CP1252_TEXT), "windows-1252", CP1252_TEXT, "cp1252"),
        (_html_in("cp1252", CP1252_TEXT), "iso-8859-1", CP1252_TEXT, "cp1252"),
        (_html_in("shift_jis", JAPANESE), "Shift_JIS", JAPANESE, "shift_jis"),
        (_html_in("gb18030", CHINESE), "gb2312", CHINESE, "gb18030"),
        (b"\xff\xfe" + _html_in("utf-16-le", JAPANESE + FRENCH), None, JAPANESE + FRENCH, "utf-16-le"),
        (b"\xfe\xff" + _html_in("utf-16-be", CHINESE), "utf-8", CHINESE, "utf-16-be"),
        (_html_in("cp1252", CP1252_TEXT), "utf-8", CP1252_TEXT, "cp1252"),  # header lies
        (_html_in("latin-1", FRENCH), "utf-8", FRENCH, "cp1252"),  # header lies
        (_html_in("utf-8", CP1252_TEXT), "iso-8859-1", CP1252_TEXT, "utf-8"),  # header lies the other way
        (_html_in("gb18030", CHINESE), "shift_jis", CHINESE, "gb18030"),  # header names the wrong CJK codec
        (_html_in("shift_jis", JAPANESE), None, JAPANESE, "shift_jis"),  # detection
        (_html_in("gb18030", CHINESE), None, CHINESE, "gb18030"),  # detection
    ],
)
def test_decode_html_bytes(payload, declared, expected, charset):
    text, used = decode_html_bytes(payload, declared)
    assert expected in text
    assert used == charset
    assert "\ufeff" not in text


def test_meta_charset_is_used_without_an_http_charset():
    html = '<html><head><meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS"></head>'
    payload = (html + f"<body>{JAPANESE}</body></html>").encode("shift_jis")
    assert JAPANESE in decode_html_bytes(payload, None)[0]


def test_undecodable_bytes_raise():
    with pytest.raises(UndecodableError):
        decode_html_bytes(noise(3, 2000), "utf-8")


@pytest.mark.parametrize(
    ("charset", "declared", "text"),
    [
        ("latin-1", "iso-8859-1", FRENCH),
        ("cp1252", "windows-1252", CP1252_TEXT),
        ("shift_jis", "shift_jis", JAPANESE),
        ("gb18030", "gbk", CHINESE),
        ("cp1252", "utf-8", CP1252_TEXT),
    ],
)
def test_warc_pages_in_legacy_charsets(tmp_path, charset, declared, text):
    html = realistic_html("Title", [text, *ARTICLE_PARAGRAPHS], meta_charset=None)
    write_warc(tmp_path / "cs.warc.gz", [html_response("https://a/x", html, charset=charset, declared=declared)])

    (doc,) = read_file(tmp_path / "cs.warc.gz")

    assert text in doc.text


def test_utf16_page_with_bom_through_warc(tmp_path):
    html = realistic_html("Title", [JAPANESE, *ARTICLE_PARAGRAPHS], meta_charset=None)
    body = b"\xff\xfe" + html.encode("utf-16-le")
    write_warc(tmp_path / "u16.warc.gz", [response_record("https://a/x", body, content_type="text/html")])

    (doc,) = read_file(tmp_path / "u16.warc.gz")

    assert JAPANESE in doc.text and doc.charset == "utf-16-le"


# ---------------------------------------------------------------------------------------------
# WET


@pytest.mark.parametrize("name", ["CC-MAIN-1.warc.wet.gz", "x.wet", "x.wet.gz"])
def test_wet_conversion_records(tmp_path, name):
    records = [
        warcinfo_record(name),
        conversion_record("https://a/1", "First page text.\nSecond line."),
        conversion_record("https://a/2", FRENCH.encode("cp1252")),  # not UTF-8: detection
        conversion_record("https://a/empty", b""),
    ]
    offsets = write_warc(tmp_path / name, records, compress=name.endswith(".gz"))

    items = read_file(tmp_path / name)

    assert [(d.url, d.source_offset) for d in docs_of(items)] == [
        ("https://a/1", offsets[1]),
        ("https://a/2", offsets[2]),
    ]
    assert items[0].text == "First page text.\nSecond line."
    assert items[1].text == FRENCH
    assert (items[2].reason, items[2].url) == ("empty", "https://a/empty")


# ---------------------------------------------------------------------------------------------
# JSONL


def _jsonl_lines() -> list:
    return [
        {"text": "First document.", "url": "https://j/0"},
        b'{"text": "broken json\n',
        {"url": "https://j/2"},
        {"text": 42, "url": "https://j/3"},
        {"text": "   ", "url": "https://j/4"},
        b"\n",
        jsonl_line({"text": FRENCH, "url": "https://j/6"}).decode().encode("cp1252"),
        b"[1, 2, 3]\n",
        {"text": "Last document.", "url": None},
    ]


def line_starts(lines: list) -> list[int]:
    """Byte offset of each line's start in the (decompressed) JSONL file `write_jsonl` writes."""
    sizes = [len(jsonl_line(line) if isinstance(line, dict) else line) for line in lines]
    return [sum(sizes[:n]) for n in range(len(lines))]


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.jsonl.zst"])
def test_jsonl_records(tmp_path, name):
    write_jsonl(tmp_path / name, _jsonl_lines())
    at = line_starts(_jsonl_lines())

    items = read_file(tmp_path / name, seekable=False)

    assert [(d.source_offset, d.url, d.text) for d in docs_of(items)] == [
        (at[0], "https://j/0", "First document."),
        (at[6], "https://j/6", FRENCH),
        (at[8], None, "Last document."),
    ]
    assert [(q.source_offset, q.reason) for q in quarantined_of(items)] == [
        (at[1], "malformed_json"),
        (at[2], "malformed_record"),
        (at[3], "malformed_record"),
        (at[4], "empty"),
        (at[7], "malformed_record"),
    ]
    assert quarantined_of(items)[1].detail == "no 'text' field"
    assert quarantined_of(items)[2].url == "https://j/3"


def test_jsonl_custom_fields_and_line_cap(tmp_path):
    config = ReaderConfig(text_field="content", url_field="link", max_record_bytes=200)
    lines = [{"content": "short", "link": "https://j/0"}, {"content": "x" * 500}, {"content": "after"}]
    write_jsonl(tmp_path / "c.jsonl", lines)

    items = read_file(tmp_path / "c.jsonl", config)

    at = line_starts(lines)
    assert [(i.source_offset, getattr(i, "reason", None)) for i in items] == [
        (at[0], None),
        (at[1], "too_large"),
        (at[2], None),
    ]
    assert items[0].url == "https://j/0"


def test_jsonl_undecodable_line(tmp_path):
    lines = [{"text": "good"}, b'{"text": "' + noise(5, 300) + b'"}\n', {"text": "also good"}]
    write_jsonl(tmp_path / "n.jsonl", lines)

    items = read_file(tmp_path / "n.jsonl")

    at = line_starts(lines)
    assert [(i.source_offset, getattr(i, "reason", None)) for i in items] == [
        (at[0], None),
        (at[1], "undecodable"),
        (at[2], None),
    ]


@pytest.mark.parametrize("name", ["t.jsonl.gz", "t.jsonl.zst"])
def test_truncated_compressed_jsonl_keeps_the_lines_before(tmp_path, name):
    lines = [{"text": f"document number {i} " + "filler " * 20} for i in range(400)]
    path = tmp_path / name
    write_jsonl(path, lines)
    truncate_file(path, path.stat().st_size * 3 // 4)

    items = read_file(path)

    docs = docs_of(items)
    bad = only_quarantined(items)
    at = line_starts(lines)
    assert bad.reason == "truncated_gzip"
    assert len(docs) > 100
    assert [d.source_offset for d in docs] == at[: len(docs)]
    assert bad.source_offset == at[len(docs)]
    assert items[-1] is bad


def test_not_gzip_named_jsonl_gz(tmp_path):
    path = tmp_path / "plain.jsonl.gz"
    path.write_bytes(jsonl_line({"text": "x"}))

    assert [(i.reason, i.source_offset) for i in read_file(path)] == [("truncated_gzip", 0)]


# ---------------------------------------------------------------------------------------------
# Parquet


@pytest.mark.parametrize("seekable", [True, False])
def test_parquet_rows(tmp_path, seekable):
    columns = {
        "text": ["one", None, "", "  two  ", "three"],
        "url": ["https://p/0", "https://p/1", "https://p/2", None, "https://p/4"],
        "lang": ["en"] * 5,
    }
    write_parquet(tmp_path / "p.parquet", columns)

    items = read_file(tmp_path / "p.parquet", seekable=seekable)

    assert [(d.source_offset, d.url, d.text) for d in docs_of(items)] == [
        (0, "https://p/0", "one"),
        (3, None, "two"),
        (4, "https://p/4", "three"),
    ]
    assert [(q.source_offset, q.reason, q.url) for q in quarantined_of(items)] == [
        (1, "malformed_record", "https://p/1"),
        (2, "empty", "https://p/2"),
    ]


def test_parquet_text_column_of_wrong_type(tmp_path):
    write_parquet(tmp_path / "n.parquet", {"text": [1, 2], "url": ["https://p/0", "https://p/1"]})

    items = read_file(tmp_path / "n.parquet")

    assert [(q.reason, q.detail) for q in items] == [("malformed_record", "'text' is int, not a string")] * 2


def test_parquet_binary_text_column_is_decoded(tmp_path):
    write_parquet(tmp_path / "b.parquet", {"text": [FRENCH.encode("utf-8"), FRENCH.encode("cp1252")]})

    assert [d.text for d in read_file(tmp_path / "b.parquet")] == [FRENCH, FRENCH]


def test_parquet_missing_text_column_fails_the_file(tmp_path):
    write_parquet(tmp_path / "m.parquet", {"body": ["x"], "url": ["https://p/0"]})

    with pytest.raises(InputFileError, match=r"m\.parquet.*'text' not found; columns: body, url"):
        read_file(tmp_path / "m.parquet")


def test_corrupt_parquet_is_one_quarantined_item(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not really parquet PAR1")

    bad = only_quarantined(read_file(path))

    assert (bad.source_file, bad.source_offset, bad.reason) == (str(path), 0, "corrupt_file")
    assert bad.detail.startswith("not a readable Parquet file, no rows read: ")


# ---------------------------------------------------------------------------------------------
# Extraction


@pytest.mark.parametrize("extractor", EXTRACTORS)
def test_extractors_keep_the_article_and_drop_boilerplate(extractor):
    text = normalize_text(extract_main_text(PAGE, extractor))

    assert all(p in text for p in ARTICLE_PARAGRAPHS)
    lines = [line for line in text.split("\n") if line.strip()]
    boilerplate = [line for line in lines if any(phrase in line for phrase in BOILERPLATE_PHRASES)]
    assert len(boilerplate) <= 1, boilerplate
    assert "window.dataLayer" not in text and "font-family" not in text


def test_unknown_extractor_is_rejected(tmp_path):
    write_jsonl(tmp_path / "x.jsonl", [{"text": "a"}])
    with pytest.raises(ValueError, match="unknown extractor"):
        read_file(tmp_path / "x.jsonl", ReaderConfig(extractor="boilerpipe"))


# ---------------------------------------------------------------------------------------------
# Normalization, hashing, counting


def test_normalize_text():
    raw = "  Cafe\u0301 \t\r\nline two\x00\x07  \r\n\n\n\n\n\nafter\ufeff gap\u2028end \n\n"
    assert normalize_text(raw) == "Café\nline two\n\n\nafter gap\nend"


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalize_text_is_idempotent_and_storable(text):
    once = normalize_text(text)
    assert normalize_text(once) == once
    once.encode("utf-8")  # no lone surrogates left


def test_content_hash_and_doc_id():
    assert content_hash("Hello  \nworld") == content_hash("Hello\r\nworld\n")
    assert len(content_hash("x")) == 32
    assert make_doc_id("s1", "a.warc.gz", 0) == make_doc_id("s1", "a.warc.gz", 0)
    assert make_doc_id("s1", "a.warc.gz", 0) != make_doc_id("s2", "a.warc.gz", 0)
    assert make_doc_id("s1", "a.warc.gz", 0) != make_doc_id("s1", "b.warc.gz", 0)
    assert make_doc_id("s1", "a.warc.gz", 0) != make_doc_id("s1", "a.warc.gz", 1)
    assert len(make_doc_id("s1", "a.warc.gz", 0)) == 32


def test_count_words():
    assert count_words("Hello, world!  Two\nthree") == 4
    assert count_words("東京 is big") == 4
    assert count_words("") == 0
