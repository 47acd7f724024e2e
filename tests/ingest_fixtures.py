"""Builders of small real input files for the ingestion tests and benchmark: WARC records written by
warcio's WARCWriter (then compressed per record, as crawlers do), JSONL (plain, gzip, zstd) and
Parquet, plus realistic HTML pages with navigation, sidebar and footer boilerplate."""

from __future__ import annotations

import gzip
import io
import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

# ---------------------------------------------------------------------------------------------
# HTML pages

ARTICLE_PARAGRAPHS = (
    "The city council approved the new budget on Tuesday after a long debate about funding for "
    "public libraries, which had faced cuts for three consecutive years.",
    "Supporters argued that libraries serve as community hubs, offering free internet access, "
    "job training workshops and quiet spaces for students who lack them at home.",
    "Opponents said the money would be better spent on road repairs, pointing to a recent survey "
    "in which residents ranked potholes as their most pressing concern.",
    "In the end the council voted seven to two in favour of restoring library hours, while "
    "promising a separate plan for road maintenance before the summer recess.",
)

BOILERPLATE_PHRASES = (
    "Home",
    "World",
    "Business",
    "Sports",
    "Contact us",
    "Subscribe to our newsletter",
    "Popular posts",
    "Advertisement",
    "Share on Facebook",
    "Share on Twitter",
    "Previous",
    "Next",
    "Copyright",
    "All rights reserved",
    "Privacy Policy",
    "Terms of Use",
)

_NAV_SECTIONS = ("Home", "World", "Business", "Technology", "Science", "Sports", "Opinion", "Contact us")
_POPULAR = (
    "Ten tips for a better garden this spring",
    "Why the local bakery closed after forty years",
    "Interview: the mayor on housing prices",
    "Photo gallery: the marathon in pictures",
    "How to read your electricity bill",
)


def realistic_html(
    title: str,
    paragraphs: Sequence[str],
    *,
    meta_charset: str | None = "utf-8",
    lang: str = "en",
    site: str = "Riverside Gazette",
) -> str:
    """A news-style page: header with navigation, sidebar, article, share links, pagination,
    comments and a footer, the way real pages wrap their main text."""
    meta = f'<meta charset="{meta_charset}">' if meta_charset else ""
    nav = "".join(f'<li><a href="/{s.lower().replace(" ", "-")}">{s}</a></li>' for s in _NAV_SECTIONS)
    popular = "".join(f'<li><a href="/p/{i}">{p}</a></li>' for i, p in enumerate(_POPULAR))
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>{meta}<title>{title} | {site}</title>
<style>body {{ font-family: sans-serif; }} .sidebar {{ float: right; }}</style>
<script>window.dataLayer = window.dataLayer || []; function track() {{ return 1; }}</script>
</head>
<body>
<header class="site-header">
  <div class="logo"><a href="/">{site}</a></div>
  <nav class="main-nav"><ul>{nav}</ul></nav>
  <form class="search"><input type="text" name="q" placeholder="Search"><button>Search</button></form>
  <div class="newsletter"><a href="/subscribe">Subscribe to our newsletter</a> | <a href="/login">Log in</a></div>
</header>
<div class="container">
  <aside class="sidebar">
    <h3>Popular posts</h3><ul>{popular}</ul>
    <div class="ad">Advertisement</div>
  </aside>
  <main>
    <article class="post">
      <h1>{title}</h1>
      <p class="byline">By Jane Doe | March 3, 2024</p>
      {body}
    </article>
    <div class="share"><a href="#">Share on Facebook</a> <a href="#">Share on Twitter</a></div>
    <nav class="pagination"><a href="/prev">Previous</a> <a href="/next">Next</a></nav>
    <section class="comments"><h3>2 Comments</h3>
      <div class="comment">Great article, thanks!</div><div class="comment">First!</div>
    </section>
  </main>
</div>
<footer class="site-footer">
  <p>Copyright &copy; 2024 {site}. All rights reserved.</p>
  <ul><li><a href="/privacy">Privacy Policy</a></li><li><a href="/terms">Terms of Use</a></li>
  <li><a href="/contact">Contact us</a></li></ul>
</footer>
</body>
</html>
"""


_WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no will "
    "more about up out who them some could into only time can like other than then its now new "
    "people after also most made over did many before must through back years where much your way "
    "well down should because each just those how too little state good very make world still own "
    "see men work long get here between both life being under never day same another know while "
    "last might great old year off come since against go came right used take three council river "
    "school market research water energy history garden library budget report season players "
    "museum festival community students weather harbour railway village doctors hospital science"
).split()


def random_article(rng: random.Random, n_paragraphs: int = 6) -> list[str]:
    """Paragraphs of plausible-looking prose (sentences of common words)."""
    paragraphs = []
    for _ in range(n_paragraphs):
        sentences = []
        for _ in range(rng.randint(3, 7)):
            words = rng.choices(_WORDS, k=rng.randint(8, 22))
            sentences.append(" ".join(words).capitalize() + ".")
        paragraphs.append(" ".join(sentences))
    return paragraphs


def synthetic_pages(n: int, seed: int = 0) -> list[tuple[str, str, list[str]]]:
    """(url, html, article paragraphs) for n distinct realistic pages."""
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        paragraphs = random_article(rng, rng.randint(3, 10))
        title = " ".join(rng.choices(_WORDS, k=6)).title()
        pages.append((f"https://news{i % 17}.example.com/articles/{i}", realistic_html(title, paragraphs), paragraphs))
    return pages


# ---------------------------------------------------------------------------------------------
# WARC records (raw, uncompressed bytes of one record each)


def _write_one(create) -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=False)
    writer.write_record(create(writer))
    return buf.getvalue()


def response_record(
    url: str,
    body: bytes,
    *,
    status: str = "200 OK",
    content_type: str | None = "text/html; charset=utf-8",
    headers: Iterable[tuple[str, str]] = (),
    content_length: int | None = None,
    warc_headers: dict[str, str] | None = None,
) -> bytes:
    """A WARC response record. `content_length` overrides the HTTP Content-Length header (default:
    the body length); pass -1 to omit the header."""
    http_headers = [("Content-Type", content_type)] if content_type else []
    http_headers += list(headers)
    if content_length != -1:
        http_headers.append(("Content-Length", str(len(body) if content_length is None else content_length)))
    status_headers = StatusAndHeaders(status, http_headers, protocol="HTTP/1.1")
    return _write_one(
        lambda w: w.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=status_headers, warc_headers_dict=warc_headers
        )
    )


def html_response(url: str, html: str, *, charset: str = "utf-8", declared: str | None = "utf-8", **kwargs) -> bytes:
    content_type = f"text/html; charset={declared}" if declared else "text/html"
    return response_record(url, html.encode(charset), content_type=content_type, **kwargs)


def request_record(url: str) -> bytes:
    request = StatusAndHeaders(f"GET {url} HTTP/1.1", [("Host", "example.com")], is_http_request=True)
    return _write_one(lambda w: w.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=request))


def warcinfo_record(filename: str = "test.warc.gz") -> bytes:
    info = {"software": "crawlmix-tests", "format": "WARC/1.0"}
    return _write_one(lambda w: w.create_warcinfo_record(filename, info))


def metadata_record(url: str) -> bytes:
    return _write_one(
        lambda w: w.create_warc_record(
            url, "metadata", payload=io.BytesIO(b"fetchTimeMs: 12\r\n"), warc_content_type="application/warc-fields"
        )
    )


def conversion_record(url: str, text: str | bytes) -> bytes:
    payload = text.encode("utf-8") if isinstance(text, str) else text
    return _write_one(
        lambda w: w.create_warc_record(url, "conversion", payload=io.BytesIO(payload), warc_content_type="text/plain")
    )


def cut_block(raw_record: bytes, n_bytes: int) -> bytes:
    """The record with the last n bytes of its block missing (its Content-Length still claims them)."""
    separator = b"\r\n\r\n"
    assert raw_record.endswith(separator)
    return raw_record[: -len(separator) - n_bytes] + separator


def write_warc(path: Path, raw_records: Sequence[bytes], *, compress: bool | None = None) -> list[int]:
    """Write records (one gzip member each when compressed, the default for .gz names); returns the
    byte offset of every record in the file."""
    compress = path.name.endswith(".gz") if compress is None else compress
    offsets, parts, position = [], [], 0
    for raw in raw_records:
        part = gzip.compress(raw, mtime=0) if compress else raw
        offsets.append(position)
        parts.append(part)
        position += len(part)
    path.write_bytes(b"".join(parts))
    return offsets


def corrupt_bytes(path: Path, start: int, length: int) -> None:
    """Flip `length` bytes from `start` (inside a gzip member: its deflate data goes bad)."""
    data = bytearray(path.read_bytes())
    for i in range(start, start + length):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------------------------
# JSONL and Parquet


def jsonl_line(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n"


def write_jsonl(path: Path, lines: Sequence[bytes | dict]) -> None:
    """Lines given as dicts are JSON-encoded; bytes are written as they are (for bad lines).
    Compression follows the name: .gz (gzip), .zst (zstd, two frames), else plain."""
    data = b"".join(jsonl_line(line) if isinstance(line, dict) else line for line in lines)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):
        half = len(data) // 2
        compressor = zstandard.ZstdCompressor()
        data = compressor.compress(data[:half]) + compressor.compress(data[half:])
    path.write_bytes(data)


def truncate_file(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def write_parquet(path: Path, columns: dict[str, list], row_group_size: int = 2) -> None:
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)


class NonSeekable(io.RawIOBase):
    """A read-only stream without seek, like an S3 response body."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)
