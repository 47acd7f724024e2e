"""Payloads served as HTML that are not HTML (stylesheets, scripts, JSON, reStructuredText sources)
are quarantined as `non_html`; HTML pages made mostly of code listings, short pages and fragments
stay documents. Real files from Debian documentation packages: tests/data/non_html/SOURCES.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawlmix.ingest import Document, Quarantined, ReaderConfig, read_records
from crawlmix.ingest.sniff import CSS, JAVASCRIPT, JSON, KINDS, RESTRUCTUREDTEXT, SNIFF_BYTES, sniff_non_html
from tests.ingest_fixtures import response_record, write_warc

DATA = Path(__file__).resolve().parent / "data" / "non_html"
SAMPLE_SNAPSHOT = Path(__file__).resolve().parents[1] / "crawlmix" / "sample" / "snapshots" / "sample-2026-11"

NOT_HTML = {
    "sphinx13.css": CSS,
    "graphviz.css": CSS,  # 299 bytes, two rules
    "bootstrap-reboot.min.css": CSS,  # minified: one line after the licence comment
    "searchindex.js": JAVASCRIPT,  # Search.setIndex({...}), one line; titles in it carry 37 tags
    "documentation_options.js": JAVASCRIPT,  # 420 bytes: one object literal
    "doctools.js": JAVASCRIPT,
    "jquery.min.js": JAVASCRIPT,
    "field-lists.rst.txt": RESTRUCTUREDTEXT,
    "basics.rst.txt": RESTRUCTUREDTEXT,
    "glossary.json": JSON,  # its values are HTML: a JSON file full of tags
}
# Pages made mostly of code listings, and a line of each listing that the document must keep.
CODE_PAGES = {
    "sphinx-parsers-source.html": "class RSTParser(docutils.parsers.rst.Parser, Parser):",
    "sphinx-field-lists.html": ":fieldname: Field content",
    "sqlite-c3ref-module.html": "int (*xBestIndex)(sqlite3_vtab *pVTab, sqlite3_index_info*);",
    "git-setup-server-over-http.html": "$ apt-get install apache2",
}


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def first_listing_onwards(page: bytes) -> bytes:
    """The page from the first text inside its first <pre>: a fragment that opens with code."""
    tag_end = page.index(b">", page.index(b"<pre"))
    while (rest := page[tag_end + 1 :].lstrip()).startswith(b"<"):  # highlighting spans
        tag_end = page.index(b">", tag_end + 1)
    return rest


def read_warc(path: Path) -> list[Document | Quarantined]:
    with open(path, "rb") as stream:
        return list(read_records(stream, path.name, ReaderConfig()))


# ---------------------------------------------------------------------------------------------
# The sniffer alone


def test_every_kind_has_real_files():
    assert sorted(set(NOT_HTML.values())) == sorted(KINDS)


@pytest.mark.parametrize(("name", "kind"), sorted(NOT_HTML.items()))
def test_non_html_files_are_named(name, kind):
    payload = data(name)
    assert sniff_non_html(payload) == kind
    assert sniff_non_html(payload.decode("utf-8")) == kind  # text gives the same verdict as bytes


@pytest.mark.parametrize("name", sorted(CODE_PAGES))
def test_pages_of_code_listings_are_html(name):
    page = data(name)
    assert sniff_non_html(page) is None
    # Cut so that it opens with a code listing instead of markup: still HTML by its tags.
    fragment = first_listing_onwards(page)
    assert fragment[:1] not in b"<"
    assert sniff_non_html(fragment) is None


@pytest.mark.parametrize(
    "payload",
    [
        b"<p>Hi</p>",
        b"<!DOCTYPE html><title>x</title>",
        b"<html><body>ok</body></html>",
        b"Hello <b>world</b>, see <a href='/next'>the next page</a>.",
        b"Set <code>color: red;</code> in <code>p { }</code> to colour paragraphs.",
        b"Call <code>init()</code> first; then <code>var x = load();</code> works.",
        b"\xef\xbb\xbf  \r\n<!doctype html><p>BOM and blank lines first</p>",
        b"Plain prose served as HTML: no markup at all, but no code either. It stays a document.",
        "Unicode prose \u00e9\u00e8 with <em>one</em> tag".encode(),
        b"",
        b" \n\t ",
    ],
)
def test_short_pages_fragments_and_prose_are_not_flagged(payload):
    assert sniff_non_html(payload) is None


def test_text_in_front_of_a_page_with_a_large_inline_stylesheet_is_html():
    # A PHP warning printed before the page: the 16 KB head of inline CSS and script would
    # otherwise fill the whole prefix, but the page's skeleton follows the warning.
    page = data("git-setup-server-over-http.html")
    warning = b"Warning: session_start(): Cannot send session cookie in /var/www/index.php on line 3\n"
    assert sniff_non_html(warning + page) is None
    # From inside that stylesheet on, the prefix still holds `</style>` and the markup after it.
    inside_stylesheet = page[page.index(b"</style>") - 3000 :]
    assert inside_stylesheet[:1] != b"<"
    assert sniff_non_html(inside_stylesheet) is None


def test_leading_comments_are_skipped_before_markup_and_sources():
    assert sniff_non_html(b"/* generated */\n<!DOCTYPE html><p>page</p>") is None
    assert sniff_non_html(b"// built by tool\n" + data("jquery.min.js")) == JAVASCRIPT
    assert sniff_non_html(b'/* theme */\n@import url("basic.css");\n') == CSS


def test_one_evidence_is_not_enough():
    assert sniff_non_html(b".. note:: this line alone") is None  # one directive
    assert sniff_non_html(b"a { } and some prose afterwards that is much longer than it") is None
    assert sniff_non_html(b"[1] Smith, J. A study of things. 2020.") is None  # a bracket, not JSON


def test_verdict_depends_on_the_prefix_only():
    css = data("sphinx13.css")
    stretched = (css * 4)[:SNIFF_BYTES]
    assert sniff_non_html(stretched + b"<html><body>" * 100_000) == CSS
    prose = b"Once upon a time there was a page. " * (SNIFF_BYTES // 35 + 1)
    assert sniff_non_html(prose + css) is None


# ---------------------------------------------------------------------------------------------
# Through the WARC reader


@pytest.mark.parametrize(("name", "kind"), sorted(NOT_HTML.items()))
def test_warc_record_served_as_html_is_quarantined_non_html(tmp_path, name, kind):
    url = f"https://docs.example/_static/{name}"
    page_url = "https://docs.example/parsers.html"
    records = [
        response_record(url, data(name), content_type="text/html; charset=utf-8"),
        response_record(page_url, data("sphinx-parsers-source.html"), content_type="text/html; charset=utf-8"),
    ]
    offsets = write_warc(tmp_path / "crawl.warc.gz", records)

    items = read_warc(tmp_path / "crawl.warc.gz")

    quarantined = [i for i in items if isinstance(i, Quarantined)]
    assert [(q.reason, q.detail, q.url, q.source_offset) for q in quarantined] == [
        ("non_html", f"served as text/html but looks like {kind}", url, offsets[0])
    ]
    assert [d.url for d in items if isinstance(d, Document)] == [page_url]


@pytest.mark.parametrize(("name", "listing_line"), sorted(CODE_PAGES.items()))
def test_warc_pages_of_code_listings_stay_documents(tmp_path, name, listing_line):
    url = f"https://docs.example/{name}"
    write_warc(tmp_path / "crawl.warc.gz", [response_record(url, data(name), content_type="text/html")])

    items = read_warc(tmp_path / "crawl.warc.gz")

    assert [type(i) for i in items] == [Document]
    assert items[0].url == url
    assert listing_line in items[0].text


def test_warc_fragment_opening_with_code_stays_a_document(tmp_path):
    fragment = first_listing_onwards(data("sqlite-c3ref-module.html"))
    write_warc(tmp_path / "crawl.warc", [response_record("https://docs.example/f", fragment)])

    items = read_warc(tmp_path / "crawl.warc")

    assert [type(i) for i in items] == [Document]
    assert "xBestIndex" in items[0].text


def test_warc_record_without_content_type_is_sniffed_too(tmp_path):
    write_warc(tmp_path / "crawl.warc", [response_record("https://docs.example/a.css", data("graphviz.css"), content_type=None)])

    (item,) = read_warc(tmp_path / "crawl.warc")

    assert isinstance(item, Quarantined)
    assert (item.reason, item.detail) == ("non_html", "served without a content type but looks like css")


def test_warc_record_served_as_plain_text_is_not_sniffed(tmp_path):
    # text/plain records are taken as text as served: only what would go to the HTML extractor is
    # sniffed. A reStructuredText source declared as text is a text document.
    rst = data("field-lists.rst.txt")
    write_warc(tmp_path / "crawl.warc", [response_record("https://docs.example/f.txt", rst, content_type="text/plain")])

    (item,) = read_warc(tmp_path / "crawl.warc")

    assert isinstance(item, Document)
    assert ".. highlight:: rst" in item.text


def test_no_page_of_the_bundled_sample_snapshot_is_sniffed_as_non_html():
    html_payloads = 0
    for path in sorted(SAMPLE_SNAPSHOT.glob("*.warc.gz")):
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_type != "response" or record.http_headers.get_statuscode() != "200":
                    continue
                if not record.http_headers.get_header("Content-Type", "").startswith("text/html"):
                    continue
                payload = record.content_stream().read()
                html_payloads += 1
                assert sniff_non_html(payload) is None, record.rec_headers.get_header("WARC-Target-URI")
    assert html_payloads > 1000
