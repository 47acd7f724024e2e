#!/usr/bin/env python3
"""Build crawlmix's bundled sample snapshot from Debian documentation packages.

The snapshot is a small, realistic-looking web crawl: about 1,200 HTML pages
taken verbatim from the HTML manuals shipped in Debian 12 (bookworm) packages,
served from a synthetic host under the reserved ``.example`` TLD and written as
gzipped WARC/1.0 files (one gzip member per record, ``warcinfo`` first, a
``request`` record before every ``response``). Like a real crawl it also holds
a little junk (404s, redirects, images, exact duplicates, non-UTF-8 pages, one
page with a lying charset header); the script prints what it planted.

Output (everything else under crawlmix/sample/ is left alone):

    crawlmix/sample/snapshots/sample-2026-11/crawl-0000{0..7}.warc.gz
    crawlmix/sample/snapshots/sample-2026-11/_SUCCESS      (written last)
    crawlmix/sample/SOURCES.md                            (provenance)
    crawlmix/sample/LICENSES/<package>.copyright, <licence>.txt

Needs a Debian bookworm host with apt sources (``apt-get download`` and
``dpkg-deb``) and warcio. Package versions are pinned so a rebuild gives
byte-identical files; when Debian replaces a pinned version, update the pin
(or pass --any-version and commit the new result).

    .venv/bin/python scripts/build_sample_snapshot.py
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "crawlmix" / "sample"
SNAPSHOT_NAME = "sample-2026-11"
SNAPSHOT_DIR = SAMPLE_DIR / "snapshots" / SNAPSHOT_NAME
LICENSES_DIR = SAMPLE_DIR / "LICENSES"
SOURCES_MD = SAMPLE_DIR / "SOURCES.md"
REBUILD_COMMAND = ".venv/bin/python scripts/build_sample_snapshot.py"

SEED = 20261102
WARC_FILE_COUNT = 8
HOST = "docs.debian-mirror.example"  # .example is reserved (RFC 2606)
SERVER_IP = "192.0.2.17"  # TEST-NET-1 (RFC 5737)
CRAWL_START = datetime(2026, 11, 2, 3, 0, 0, tzinfo=timezone.utc)
# Sampled pages above this size are skipped to keep the bundle a few MB;
# packages taken whole are exempt.
MAX_SAMPLED_PAGE_BYTES = 32_000
USER_AGENT = "crawlmix-sample-bot/1.0 (+https://crawler.example/bot.html)"
COMMON_LICENSES = Path("/usr/share/common-licenses")


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    topic: str
    licence: str  # licence of the HTML we use, summarised from the copyright file
    full_licence_texts: tuple[str, ...] = ()  # names in /usr/share/common-licenses


@dataclass(frozen=True)
class PageSource:
    """A set of HTML files inside one extracted package."""

    package: str
    doc_root: str  # directory inside the package; URLs are relative to it
    pattern: str  # glob below doc_root
    quota: int | None  # None: take every page
    exclude: str = ""  # regex matched against the path relative to doc_root
    note: str = ""


PACKAGES = [
    DebPackage("python3.11-doc", "3.11.2-6+deb12u9", "Python language and standard library",
               "PSF-2.0 (Python Software Foundation License v2; copyright file also carries the "
               "historical BeOpen/CNRI/CWI licences)"),
    DebPackage("postgresql-doc-15", "15.20-0+deb12u1", "PostgreSQL database",
               "PostgreSQL (permissive, BSD/MIT-like)"),
    DebPackage("sqlite3-doc", "3.40.1-2+deb12u2", "SQLite database", "public-domain"),
    DebPackage("git-doc", "1:2.39.5-0+deb12u3", "Git version control", "GPL-2", ("GPL-2",)),
    DebPackage("apache2-doc", "2.4.71-1~deb12u1", "Apache HTTP Server administration",
               "Apache-2.0", ("Apache-2.0",)),
    DebPackage("octave-doc", "7.3.0-2", "GNU Octave numerical computing", "GPL-3+", ("GPL-3",)),
    DebPackage("lilypond-doc-html", "2.24.1-2", "LilyPond music engraving",
               "GFDL-1.3+ (no Invariant Sections, no Front-Cover or Back-Cover Texts)",
               ("GFDL-1.3",)),
    DebPackage("debian-handbook", "11.20220922", "Debian system administration",
               "GPL-2+ or CC-BY-SA-3.0", ("GPL-2",)),
    DebPackage("debian-reference-en", "2.100", "Debian system administration", "GPL-2+",
               ("GPL-2",)),
    DebPackage("developers-reference", "12.18", "Debian packaging and project procedures",
               "GPL-2+ (labelled GPL-2; text says version 2 or any later)", ("GPL-2",)),
    DebPackage("maint-guide", "1.2.53", "Debian packaging", "GPL-2+ (CSS: MIT)", ("GPL-2",)),
]

PAGE_SOURCES = [
    PageSource("python3.11-doc", "usr/share/doc/python3.11/html", "**/*.html", 130),
    PageSource("postgresql-doc-15", "usr/share/doc/postgresql-doc-15/html", "*.html", 260),
    PageSource("sqlite3-doc", "usr/share/doc/sqlite3", "**/*.html", 170),
    PageSource("git-doc", "usr/share/doc/git-doc", "**/*.html", 75),
    PageSource("apache2-doc", "usr/share/doc/apache2-doc", "manual/en/**/*.html", 115),
    # XREF*.html are texinfo anchor stubs (one meta-refresh line each) and
    # would otherwise be four out of five sampled Octave pages.
    PageSource("octave-doc", "usr/share/doc/octave", "octave.html/*.html", 160,
               exclude=r"/XREF[^/]*$"),
    # internals/ is generated property tables with little prose.
    PageSource("lilypond-doc-html", "usr/share/doc/lilypond/html", "Documentation/**/*.html", 100,
               exclude=r"^Documentation/internals/"),
    PageSource("debian-handbook", "usr/share/doc/debian-handbook/html", "en-US/*.html", 110),
    PageSource("debian-handbook", "usr/share/doc/debian-handbook/html", "*/*.html", 24,
               exclude=r"^en-US/", note="pages from its translations (non-English)"),
    PageSource("debian-reference-en", "usr/share/debian-reference", "*.en.html", None),
    PageSource("developers-reference", "usr/share/developers-reference", "*.html", None),
    PageSource("maint-guide", "usr/share/doc/maint-guide/html", "*.en.html", None),
]

# Images come from the same doc roots the pages do, so their URLs fit in.
IMAGE_SOURCES = [
    PageSource("python3.11-doc", "usr/share/doc/python3.11/html", "_images/*.png", 1),
    PageSource("octave-doc", "usr/share/doc/octave", "octave.html/*.png", 1),
]
IMAGE_SIZE_RANGE = (1_000, 20_000)

CP1252_ONLY_CHARS = "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u20ac"


@dataclass(frozen=True)
class Fetch:
    """One HTTP exchange as the crawler saw it."""

    url: str
    body: bytes
    content_type: str
    package: str
    status: str = "200 OK"
    last_modified: datetime | None = None
    location: str | None = None


@dataclass(frozen=True)
class Plant:
    kind: str
    url: str
    detail: str


# --------------------------------------------------------------------------
# Getting the packages


def download_packages(workdir: Path, any_version: bool) -> dict[str, tuple[Path, str]]:
    """Download and extract every package; return name -> (extracted root, version)."""
    debs_dir = workdir / "debs"
    debs_dir.mkdir()
    # apt drops privileges to _apt when run as root and needs to write here.
    workdir.chmod(0o755)
    debs_dir.chmod(0o777)
    specs = [p.name if any_version else f"{p.name}={p.version}" for p in PACKAGES]
    result = subprocess.run(["apt-get", "download", *specs], cwd=debs_dir,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"apt-get download failed:\n{result.stderr}\n"
                 "A pinned version may have left the archive: update PACKAGES "
                 "or rerun with --any-version (then commit the new result).")
    extracted = {}
    for package in PACKAGES:
        (deb,) = debs_dir.glob(f"{package.name}_*.deb")
        version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True,
                                 capture_output=True, text=True).stdout.strip()
        root = workdir / "root" / package.name
        root.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        extracted[package.name] = (root, version)
    return extracted


# --------------------------------------------------------------------------
# Choosing pages


def matching_files(source: PageSource, package_root: Path) -> list[tuple[str, Path]]:
    """(path relative to doc_root, file) for regular files, sorted by relative path."""
    doc_root = package_root / source.doc_root
    exclude = re.compile(source.exclude) if source.exclude else None
    found = []
    for path in doc_root.glob(source.pattern):
        relative = path.relative_to(doc_root).as_posix()
        # Symlinks are other packages' files or aliases of pages we already have.
        if path.is_symlink() or not path.is_file():
            continue
        if exclude and exclude.search(relative):
            continue
        found.append((relative, path))
    return sorted(found)


def sample_files(source: PageSource, package_root: Path, max_bytes: int | None
                 ) -> list[tuple[str, Path]]:
    candidates = matching_files(source, package_root)
    if source.quota is None:
        return candidates
    if max_bytes is not None:
        candidates = [(rel, path) for rel, path in candidates if path.stat().st_size <= max_bytes]
    rng = random.Random(f"{SEED}:select:{source.package}:{source.pattern}")
    chosen = rng.sample(candidates, min(source.quota, len(candidates)))
    return sorted(chosen)


def page_url(package: str, relative: str) -> str:
    return f"https://{HOST}/{package}/{relative}"


def file_mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(int(path.stat().st_mtime), tz=timezone.utc)


def html_content_type(body: bytes) -> str:
    body.decode("utf-8")  # every source page is UTF-8 (or ASCII); fail loudly if not
    return "text/html; charset=utf-8"


def collect_pages(extracted: dict[str, tuple[Path, str]]) -> tuple[list[Fetch], Counter]:
    pages, per_source = [], Counter()
    for source in PAGE_SOURCES:
        root, _ = extracted[source.package]
        for relative, path in sample_files(source, root, MAX_SAMPLED_PAGE_BYTES):
            body = path.read_bytes()
            pages.append(Fetch(url=page_url(source.package, relative), body=body,
                               content_type=html_content_type(body), package=source.package,
                               last_modified=file_mtime(path)))
            per_source[(source.package, source.note)] += 1
    return pages, per_source


# --------------------------------------------------------------------------
# Planting junk


def apache_error_page(title: str, message: str, port: int) -> bytes:
    heading = title.split(" ", 1)[1]
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n'
        f"<html><head>\n<title>{title}</title>\n</head><body>\n"
        f"<h1>{heading}</h1>\n<p>{message}</p>\n<hr>\n"
        f"<address>Apache Server at {HOST} Port {port}</address>\n"
        "</body></html>\n"
    ).encode("ascii")


def not_found_fetches(pages: list[Fetch], rng: random.Random) -> tuple[list[Fetch], list[Plant]]:
    # Dead links a crawler picks up: renamed pages, stale extensions, guessed index pages.
    mangles = [
        ("renamed page", lambda url: url.removesuffix(".html") + "-old.html"),
        ("stale extension", lambda url: url.removesuffix(".html") + ".htm"),
        ("guessed index", lambda url: url.rsplit("/", 1)[0] + "/index.php"),
        ("moved section", lambda url: url.rsplit("/", 1)[0] + "/draft/" + url.rsplit("/", 1)[1]),
    ]
    fetches, plants = [], []
    for (reason, mangle), page in zip(mangles, rng.sample(pages, len(mangles)), strict=True):
        url = mangle(page.url)
        body = apache_error_page("404 Not Found",
                                 "The requested URL was not found on this server.", 443)
        # Apache labels its own error pages iso-8859-1; the bytes are ASCII either way.
        fetches.append(Fetch(url=url, body=body, content_type="text/html; charset=iso-8859-1",
                             package=page.package, status="404 Not Found"))
        plants.append(Plant("http-404", url, reason))
    return fetches, plants


def redirect_fetches(pages: list[Fetch], rng: random.Random) -> tuple[list[Fetch], list[Plant]]:
    variants = [
        ("http to https", lambda url: url.replace("https://", "http://", 1), 80),
        ("http to https", lambda url: url.replace("https://", "http://", 1), 80),
        ("extensionless to .html", lambda url: url.removesuffix(".html"), 443),
    ]
    fetches, plants = [], []
    targets = rng.sample(pages, len(variants))
    for (reason, source_url_of, port), target in zip(variants, targets, strict=True):
        url = source_url_of(target.url)
        body = apache_error_page(
            "301 Moved Permanently", f'The document has moved <a href="{target.url}">here</a>.',
            port)
        fetches.append(Fetch(url=url, body=body, content_type="text/html; charset=iso-8859-1",
                             package=target.package, status="301 Moved Permanently",
                             location=target.url))
        plants.append(Plant("http-301", url, f"{reason} -> {target.url}"))
    return fetches, plants


def image_fetches(extracted: dict[str, tuple[Path, str]]) -> tuple[list[Fetch], list[Plant]]:
    fetches, plants = [], []
    low, high = IMAGE_SIZE_RANGE
    for source in IMAGE_SOURCES:
        root, _ = extracted[source.package]
        pool = [(rel, path) for rel, path in matching_files(source, root)
                if low <= path.stat().st_size <= high]
        rng = random.Random(f"{SEED}:image:{source.package}")
        for relative, path in sorted(rng.sample(pool, source.quota)):
            url = page_url(source.package, relative)
            fetches.append(Fetch(url=url, body=path.read_bytes(), content_type="image/png",
                                 package=source.package, last_modified=file_mtime(path)))
            plants.append(Plant("image/png", url, f"{path.stat().st_size} bytes"))
    return fetches, plants


def duplicate_fetches(pages: list[Fetch], rng: random.Random) -> tuple[list[Fetch], list[Plant]]:
    # The same bytes reached through tracking and print-view query strings.
    suffixes = ["?utm_source=newsletter&utm_medium=email", "?print=1", "?lang=en"]
    fetches, plants = [], []
    for suffix, original in zip(suffixes, rng.sample(pages, len(suffixes)), strict=True):
        duplicate = replace(original, url=original.url + suffix)
        fetches.append(duplicate)
        plants.append(Plant("exact-duplicate", duplicate.url, f"same bytes as {original.url}"))
    return fetches, plants


def relabel_charset(text: str, label: str) -> str:
    """Point the page's own <meta>/XML charset declarations at ``label``."""
    text = re.sub(r"(charset\s*=\s*[\"']?)utf-8", rf"\g<1>{label}", text, flags=re.IGNORECASE)
    return re.sub(r"(<\?xml[^>]*encoding\s*=\s*[\"'])utf-8", rf"\g<1>{label}", text,
                  flags=re.IGNORECASE)


def fits_charset(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def has_non_ascii_letter(text: str) -> bool:
    # A lone no-break space would make the re-encoding invisible to anyone reading the text.
    return any(not ch.isascii() and ch.isalpha() for ch in text)


def has_cp1252_only_char(text: str) -> bool:
    return any(ch in text for ch in CP1252_ONLY_CHARS)


def reencode_pages(pages: list[Fetch], rng: random.Random) -> tuple[dict[str, Fetch], list[Plant]]:
    """Re-serve a few pages in legacy charsets; returns url -> replacement fetch."""
    wanted = [
        # (kind, python codec, declared label, extra requirement on the text)
        ("charset-iso-8859-1", "latin-1", "iso-8859-1", has_non_ascii_letter),
        ("charset-windows-1252", "cp1252", "windows-1252", has_cp1252_only_char),
        ("wrong-charset-header", "cp1252", None, has_non_ascii_letter),
    ]
    replacements, plants = {}, []
    candidates = rng.sample(pages, len(pages))
    for kind, codec, label, requirement in wanted:
        for page in candidates:
            if page.url in replacements:
                continue
            text = page.body.decode("utf-8")
            if not (fits_charset(text, codec) and requirement(text)):
                continue
            if label is None:
                # Server re-encoded the file but still says UTF-8 in header and <meta>.
                new = replace(page, body=text.encode(codec))
                detail = "Content-Type says utf-8, body bytes are cp1252"
            else:
                new = replace(page, body=relabel_charset(text, label).encode(codec),
                              content_type=f"text/html; charset={label}")
                detail = f"body re-encoded to {label}; header and `<meta>` match"
            replacements[page.url] = new
            plants.append(Plant(kind, page.url, detail))
            break
        else:
            sys.exit(f"no page can be re-encoded for {kind}")
    return replacements, plants


def plant_junk(pages: list[Fetch], extracted: dict[str, tuple[Path, str]]
               ) -> tuple[list[Fetch], list[Plant]]:
    """Return the full list of fetches (pages with junk mixed in) and what was planted."""
    rng = random.Random(f"{SEED}:junk")
    replacements, plants = reencode_pages(pages, rng)
    untouched = [page for page in pages if page.url not in replacements]
    fetches = [replacements.get(page.url, page) for page in pages]
    for extra, extra_plants in (not_found_fetches(untouched, rng),
                                redirect_fetches(untouched, rng),
                                duplicate_fetches(untouched, rng),
                                image_fetches(extracted)):
        fetches += extra
        plants += extra_plants
    return fetches, plants


# --------------------------------------------------------------------------
# Writing WARCs


class RecordIds:
    def __init__(self, seed: str):
        self.rng = random.Random(seed)

    def next(self) -> str:
        return f"<urn:uuid:{uuid.UUID(int=self.rng.getrandbits(128), version=4)}>"


def warc_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def warcinfo_record(writer: WARCWriter, filename: str, record_id: str, moment: datetime):
    fields = {
        "software": "crawlmix scripts/build_sample_snapshot.py",
        "format": "WARC File Format 1.0",
        "conformsTo": "http://bibnum.bnf.fr/WARC/WARC_ISO_28500_version1_latestdraft.pdf",
        "isPartOf": SNAPSHOT_NAME,
        "description": "Synthetic sample crawl of Debian documentation; see "
                       "crawlmix/sample/SOURCES.md",
        "robots": "classic",
        "http-header-user-agent": USER_AGENT,
    }
    payload = "".join(f"{name}: {value}\r\n" for name, value in fields.items()).encode()
    headers = {"WARC-Type": "warcinfo", "WARC-Date": warc_date(moment),
               "WARC-Filename": filename, "WARC-Record-ID": record_id}
    return writer.create_warc_record("", "warcinfo", payload=io.BytesIO(payload),
                                     length=len(payload), warc_headers_dict=headers)


def request_record(writer: WARCWriter, fetch: Fetch, ids: dict[str, str], moment: datetime):
    host, _, path = fetch.url.partition("://")[2].partition("/")
    http_headers = StatusAndHeaders(f"GET /{path} HTTP/1.1", [
        ("Host", host),
        ("User-Agent", USER_AGENT),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Accept-Encoding", "identity"),
        ("Connection", "close"),
    ], is_http_request=True)
    headers = {"WARC-Type": "request", "WARC-Date": warc_date(moment),
               "WARC-Record-ID": ids["request"], "WARC-Target-URI": fetch.url,
               "WARC-Concurrent-To": ids["response"], "WARC-IP-Address": SERVER_IP,
               "WARC-Warcinfo-ID": ids["warcinfo"]}
    return writer.create_warc_record(fetch.url, "request", http_headers=http_headers,
                                     warc_headers_dict=headers)


def response_record(writer: WARCWriter, fetch: Fetch, ids: dict[str, str], moment: datetime):
    header_list = [("Date", format_datetime(moment, usegmt=True)), ("Server", "Apache")]
    if fetch.last_modified is not None:
        header_list.append(("Last-Modified", format_datetime(fetch.last_modified, usegmt=True)))
    if fetch.location is not None:
        header_list.append(("Location", fetch.location))
    header_list += [("Content-Length", str(len(fetch.body))),
                    ("Content-Type", fetch.content_type),
                    ("Connection", "close")]
    http_headers = StatusAndHeaders(fetch.status, header_list, protocol="HTTP/1.1")
    headers = {"WARC-Type": "response", "WARC-Date": warc_date(moment),
               "WARC-Record-ID": ids["response"], "WARC-Target-URI": fetch.url,
               "WARC-IP-Address": SERVER_IP, "WARC-Warcinfo-ID": ids["warcinfo"]}
    return writer.create_warc_record(fetch.url, "response", payload=io.BytesIO(fetch.body),
                                     length=len(fetch.body), http_headers=http_headers,
                                     warc_headers_dict=headers)


def write_warc_file(path: Path, fetches: list[Fetch], shard: int) -> None:
    record_ids = RecordIds(f"{SEED}:ids:{shard}")
    clock = random.Random(f"{SEED}:clock:{shard}")
    # Shards were "written by parallel crawler threads", so they overlap in time.
    moment = CRAWL_START + timedelta(minutes=7 * shard)
    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True, warc_version="1.0")
        warcinfo_id = record_ids.next()
        writer.write_record(warcinfo_record(writer, path.name, warcinfo_id, moment))
        for fetch in fetches:
            moment += timedelta(seconds=clock.randint(1, 6))
            ids = {"warcinfo": warcinfo_id, "request": record_ids.next(),
                   "response": record_ids.next()}
            writer.write_record(request_record(writer, fetch, ids, moment))
            writer.write_record(response_record(writer, fetch, ids, moment))


def shard(fetches: list[Fetch], count: int) -> list[list[Fetch]]:
    # Crawl order interleaves sites and sections, so shuffle before splitting.
    ordered = sorted(fetches, key=lambda fetch: fetch.url)
    random.Random(f"{SEED}:order").shuffle(ordered)
    size, extra = divmod(len(ordered), count)
    shards, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        shards.append(ordered[start:end])
        start = end
    return shards


def warc_paths() -> list[Path]:
    return [SNAPSHOT_DIR / f"crawl-{index:05d}.warc.gz" for index in range(WARC_FILE_COUNT)]


def clear_snapshot_dir() -> None:
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    # _SUCCESS goes first so a half-rebuilt folder never looks complete.
    (SNAPSHOT_DIR / "_SUCCESS").unlink(missing_ok=True)
    for old in SNAPSHOT_DIR.glob("*.warc.gz"):
        old.unlink()


# --------------------------------------------------------------------------
# Provenance


def copy_licences(extracted: dict[str, tuple[Path, str]]) -> None:
    if LICENSES_DIR.exists():
        shutil.rmtree(LICENSES_DIR)
    LICENSES_DIR.mkdir(parents=True)
    for package in PACKAGES:
        root, _ = extracted[package.name]
        shutil.copyfile(root / f"usr/share/doc/{package.name}/copyright",
                        LICENSES_DIR / f"{package.name}.copyright")
    # The GPL and GFDL ask that recipients get the full licence text; the
    # copyright files only point at /usr/share/common-licenses.
    for name in sorted({text for package in PACKAGES for text in package.full_licence_texts}):
        shutil.copyfile(COMMON_LICENSES / name, LICENSES_DIR / f"{name}.txt")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sources_markdown(versions: dict[str, str], per_source: Counter, plants: list[Plant],
                     file_summary: list[tuple[str, int, str]]) -> str:
    pages_per_package = Counter()
    for (package, _), count in per_source.items():
        pages_per_package[package] += count
    lines = [
        "# Sample snapshot: sources and licences",
        "",
        f"`snapshots/{SNAPSHOT_NAME}/` is a synthetic web crawl built by "
        "`scripts/build_sample_snapshot.py` from HTML documentation shipped in Debian 12 "
        "(bookworm) packages. Page bodies are the packages' files byte for byte, except the "
        "re-encoded pages listed under *Planted junk*. URLs are synthetic, on the reserved "
        f"host `{HOST}` (`https://{HOST}/<package>/<path inside the package's doc directory>`); "
        f"the server address `{SERVER_IP}` is a documentation address (RFC 5737); "
        "HTTP and WARC dates are invented (November 2026). `Last-Modified` is the file's "
        "time stamp in the package.",
        "",
        "Each package's copyright file is copied to `LICENSES/<package>.copyright`; the full "
        "texts of the GPL, GFDL and Apache licences they refer to are in `LICENSES/*.txt`.",
        "",
        "## Packages",
        "",
        "| Package | Version | Topic | Licence of the HTML | Pages |",
        "|---|---|---|---|---:|",
    ]
    for package in PACKAGES:
        lines.append(f"| `{package.name}` | {versions[package.name]} | {package.topic} | "
                     f"{package.licence} | {pages_per_package[package.name]} |")
    lines += ["", f"Total HTML pages: {sum(pages_per_package.values())}.", ""]
    for (package, note), count in sorted(per_source.items()):
        if note:
            lines.append(f"`{package}` includes {count} {note}.")
    lines += [
        "",
        "Sampling: for each package the script lists the HTML files under its doc directory "
        f"(sorted), drops files over {MAX_SAMPLED_PAGE_BYTES:,} bytes, and draws a seeded "
        f"random sample (seed {SEED}). `debian-reference-en`, `developers-reference` and "
        "`maint-guide` are taken whole, whatever the size. Excluded on purpose: Octave's "
        "`XREF*.html` anchor stubs and LilyPond's generated `internals/` reference.",
        "",
        "## Planted junk",
        "",
        "Like a real crawl, the snapshot contains some records a curation pipeline has to "
        "drop or repair:",
        "",
        "| Kind | URL | Detail |",
        "|---|---|---|",
    ]
    lines += [f"| {plant.kind} | `{plant.url}` | {plant.detail} |" for plant in plants]
    lines += [
        "",
        "## Files",
        "",
        "| File | Bytes | SHA-256 |",
        "|---|---:|---|",
    ]
    lines += [f"| `{name}` | {size:,} | `{digest}` |" for name, size, digest in file_summary]
    lines += [
        "",
        "`_SUCCESS` (empty) is written after all WARC files.",
        "",
        "## Rebuilding",
        "",
        "On a Debian 12 host with bookworm (and bookworm-security) apt sources, from the "
        "repository root:",
        "",
        "```sh",
        REBUILD_COMMAND,
        "```",
        "",
        "The script downloads the pinned package versions with `apt-get download`, extracts "
        "them with `dpkg-deb -x` into a temporary directory, and rewrites the WARC files, "
        "`_SUCCESS`, this file and `LICENSES/`. With the same package versions, warcio and "
        "zlib the output is byte-identical. If Debian has replaced a pinned version, update "
        "`PACKAGES` in the script (or pass `--any-version`) and commit the new output.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Verification


def count_gzip_members(path: Path) -> int:
    data, members = path.read_bytes(), 0
    while data:
        decompressor = zlib.decompressobj(wbits=31)
        decompressor.decompress(data)
        if not decompressor.eof:
            raise ValueError(f"{path.name}: truncated gzip member")
        data = decompressor.unused_data
        members += 1
    return members


def declared_charset(content_type: str) -> str | None:
    match = re.search(r"charset=([\w-]+)", content_type)
    return match.group(1) if match else None


def verify_snapshot() -> Counter:
    """Read every record back; fail on structural problems, count the rest."""
    totals = Counter()
    for path in warc_paths():
        records = 0
        with path.open("rb") as stream:
            for position, record in enumerate(ArchiveIterator(stream, check_digests="raise")):
                records += 1
                if position == 0 and record.rec_type != "warcinfo":
                    raise ValueError(f"{path.name}: first record is {record.rec_type}")
                totals[f"records:{record.rec_type}"] += 1
                body = record.content_stream().read()
                if record.rec_type != "response":
                    continue
                status = record.http_headers.get_statuscode()
                content_type = record.http_headers.get_header("Content-Type")
                totals[f"status:{status}"] += 1
                totals[f"type:{content_type.split(';')[0]}"] += 1
                if int(record.http_headers.get_header("Content-Length")) != len(body):
                    raise ValueError(f"{path.name}: Content-Length mismatch for "
                                     f"{record.rec_headers.get_header('WARC-Target-URI')}")
                charset = declared_charset(content_type)
                if charset:
                    try:
                        body.decode(charset)
                    except UnicodeDecodeError:
                        totals["body does not decode as declared charset"] += 1
        if count_gzip_members(path) != records:
            raise ValueError(f"{path.name}: gzip members != records")
        totals["files"] += 1
    if not (SNAPSHOT_DIR / "_SUCCESS").exists():
        raise ValueError("_SUCCESS missing")
    unexpected = {p.name for p in SNAPSHOT_DIR.iterdir()} - {p.name for p in warc_paths()} - {
        "_SUCCESS"}
    if unexpected:
        raise ValueError(f"unexpected files in snapshot folder: {sorted(unexpected)}")
    return totals


def print_summary(totals: Counter, plants: list[Plant] | None) -> None:
    if plants is not None:
        print(f"planted {len(plants)} junk items:")
        for plant in plants:
            print(f"  {plant.kind:22} {plant.url}  ({plant.detail})")
    total_bytes = sum(path.stat().st_size for path in warc_paths())
    print(f"snapshot {SNAPSHOT_DIR.relative_to(REPO_ROOT)}: {total_bytes:,} bytes")
    for key in sorted(totals):
        print(f"  {key:45} {totals[key]}")
    for path in warc_paths():
        print(f"  {sha256(path)}  {path.name}")


# --------------------------------------------------------------------------


def build(any_version: bool) -> list[Plant]:
    with tempfile.TemporaryDirectory(prefix="crawlmix-sample-") as tmp:
        extracted = download_packages(Path(tmp), any_version)
        versions = {name: version for name, (_, version) in extracted.items()}
        pages, per_source = collect_pages(extracted)
        fetches, plants = plant_junk(pages, extracted)

        clear_snapshot_dir()
        shards = shard(fetches, WARC_FILE_COUNT)
        for index, (path, shard_fetches) in enumerate(zip(warc_paths(), shards, strict=True)):
            write_warc_file(path, shard_fetches, index)

        copy_licences(extracted)
        file_summary = [(path.name, path.stat().st_size, sha256(path)) for path in warc_paths()]
        SOURCES_MD.write_text(sources_markdown(versions, per_source, plants, file_summary))
        (SNAPSHOT_DIR / "_SUCCESS").touch()
    return plants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--any-version", action="store_true",
                        help="download the current candidate versions instead of the pins")
    parser.add_argument("--verify-only", action="store_true",
                        help="only read back the existing snapshot and print the summary")
    args = parser.parse_args()
    plants = None if args.verify_only else build(args.any_version)
    print_summary(verify_snapshot(), plants)


if __name__ == "__main__":
    main()
