"""Two labelled text corpora from Debian bookworm, for clustering-quality benchmarks.

    python benchmarks/labelled_corpora.py --out DIR [--corpus short|pages|languages|all]
        [--per-label N] [--seed S]

    e.g. .venv/bin/python benchmarks/labelled_corpora.py --out /work/corpora/labelled --corpus all

short_descriptions.jsonl: Debian package descriptions (synopsis + ". " + long description, a
    paragraph per line). Package, Section and Description-md5 come from ``apt-cache dumpavail``;
    its Description field holds only the synopsis (apt keeps long descriptions in separate
    translation files, which this machine's apt config does not fetch), so the long descriptions
    come from bookworm's main/i18n/Translation-en.xz, checked against the sha256 in the local,
    apt-verified InRelease and joined on Description-md5. Label = Section, "contrib/" and
    "non-free/" prefixes removed, for topical sections only (no libs/python/perl/...). Dropped:
    -dbg/-dev/-doc/-data/-common packages (they repeat the main package's description),
    packages with no long description, and exact duplicate texts (the first package by name kept).
doc_pages.jsonl: HTML pages of Debian documentation packages (``apt-get download``, no
    dependencies), label = the package's topic (DOC_PACKAGES), main text by crawlmix's
    resiliparse extractor. Dropped: symlinks, pages not in English (<html lang=...>), index,
    search and texinfo index pages, whole manuals on one page, license texts, the skips listed
    in DOC_PACKAGES, texts under MIN_PAGE_CHARS, exact duplicate texts.
languages.jsonl: package descriptions translated by Debian's DDTP (bookworm's
    main/i18n/Translation-<lang>, sha256 checked as above) in LANGUAGES, label = the language code
    (pt_BR as pt, zh_CN as zh); entries identical to the English description are dropped. It is
    for language identification, not clustering (benchmarks/language_id.py).
Each label is sampled to at most --per-label documents (default 300 short, 150 pages) with a
per-label seeded RNG; records are {"doc_id", "label", "text", "source"} sorted by label, doc_id.
Downloads (and unpacked packages) are cached under DIR/debs and reused on reruns.
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import json
import lzma
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT_SECTIONS = (
    "admin", "database", "editors", "electronics", "fonts", "games", "graphics",
    "mail", "math", "net", "science", "sound", "text", "video", "web",
)
SHORT_MIN_PER_LABEL = 150  # sections left with fewer packages after filtering are dropped
BULLETS = ("* ", "- ", "+ ", "o ")
DERIVED_SUFFIXES = ("-dbg", "-dev", "-doc", "-data", "-common")
TRANSLATIONS_BASE = "http://deb.debian.org/debian/dists/bookworm/main/i18n"
# Languages with at least a few hundred translated descriptions in bookworm (DDTP).
LANGUAGES = ("en", "de", "fr", "it", "es", "pt_BR", "nl", "sv", "da", "fi", "pl", "cs", "sk", "hu", "ru", "uk",
             "ja", "ko", "zh_CN")
INRELEASE = Path("/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease")

# label -> (package, its directory of English HTML pages, pages to skip there: regex on the path)
DOC_PACKAGES = {
    "apache": ("apache2-doc", "usr/share/doc/apache2-doc/manual/en", ""),
    "debian-admin": ("debian-handbook", "usr/share/doc/debian-handbook/html/en-US", ""),
    "django": ("python-django-doc", "usr/share/doc/python-django-doc/html", r"^_modules/"),
    "gimp": ("gimp-help-en", "usr/share/gimp/2.0/help/en", ""),
    "git": ("git-doc", "usr/share/doc/git-doc", ""),
    "lilypond": ("lilypond-doc-html", "usr/share/doc/lilypond/html", r"^Documentation/internals/"),
    "maxima": ("maxima-doc", "usr/share/doc/maxima-doc/html", ""),
    "octave": ("octave-doc", "usr/share/doc/octave", ""),
    "postgresql": ("postgresql-doc-15", "usr/share/doc/postgresql-doc-15/html", ""),
    "python": ("python3.11-doc", "usr/share/doc/python3.11/html", ""),
}  # django's _modules: highlighted source code; lilypond's internals: generated property tables
HTML_SUFFIXES = (".html", ".htm", ".html.en")
SKIPPED_PAGE = re.compile(  # file name without suffix: indexes, one-page manuals, licenses
    r"^(index|index_toc|contents|search|genindex(-.*)?|(py-)?modindex|packageindex|bookindex"
    r"|.*-Index|gimp-help-index|lilypond-index"  # indexes (texinfo's Function-Index, ...)
    r"|.*-big-page|.*singlepage"  # a whole manual on one page, repeating the others
    r"|(?i:copying|licen[cs]e|gpl|fdl|gfdl(-.*)?|legal(notice)?|gnu-free-documentation-license))$"
)
HTML_LANG = re.compile(r"<html[^>]*\blang=[\"']?([A-Za-z-]+)", re.I)
MIN_PAGE_CHARS = 800


def read_stanzas(text: str) -> list[dict[str, str]]:
    """Deb822 stanzas as dicts; a field's continuation lines stay in its value, newline-joined."""
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            stanzas.append(fields)
    return stanzas


def description_text(description: str) -> str:
    """Synopsis + ". " + long description; " ." lines become paragraph breaks (newlines)."""
    synopsis, *body = description.split("\n")
    paragraphs, current = [], []
    for line in body:
        line = line.strip()
        if line == "." or line.startswith(BULLETS):  # a list item starts a line of its own too
            paragraphs.append(" ".join(current))
            current = []
        if line != ".":
            current.append(line)
    paragraphs.append(" ".join(current))
    long_text = "\n".join(p for p in paragraphs if p)
    return f"{synopsis.strip()}. {long_text}" if long_text else ""


def fetch_translations(cache: Path, language: str = "en") -> dict[str, str]:
    """Description-md5 -> full description in `language`, from bookworm's checked Translation-<lang>
    (xz for English, bz2 for the others, as the release publishes them)."""
    suffix = "xz" if language == "en" else "bz2"
    name = f"Translation-{language}.{suffix}"
    path = cache / name
    if not path.exists():
        urllib.request.urlretrieve(f"{TRANSLATIONS_BASE}/{name}", path.with_suffix(".part"))
        path.with_suffix(".part").rename(path)
    data = path.read_bytes()
    expected = re.search(rf"^ ([0-9a-f]{{64}}) +\d+ main/i18n/{re.escape(name)}$", INRELEASE.read_text(), re.M)
    if not expected or hashlib.sha256(data).hexdigest() != expected.group(1):
        raise SystemExit(f"{path} does not match the sha256 in {INRELEASE}; delete it and rerun")
    raw = lzma.decompress(data) if suffix == "xz" else bz2.decompress(data)
    stanzas = read_stanzas(raw.decode("utf-8"))
    return {s["Description-md5"]: s[f"Description-{language}"] for s in stanzas if f"Description-{language}" in s}


def language_candidates(cache: Path) -> dict[str, list[dict]]:
    """language code -> translated package descriptions (DDTP). An entry identical to the English
    description is not a translation and is dropped; pt_BR and pt are both "pt", zh_CN is "zh"."""
    english = fetch_translations(cache, "en")
    by_label: dict[str, list[dict]] = {}
    for language in LANGUAGES:
        label = language.split("_")[0]
        seen: set[str] = set()
        for md5, description in sorted(fetch_translations(cache, language).items()):
            text = description_text(description)
            untranslated = language != "en" and description == english.get(md5)
            if not text or untranslated or text in seen:
                continue
            seen.add(text)
            by_label.setdefault(label, []).append(
                {"doc_id": f"ddtp:{language}:{md5}", "label": label, "text": text, "source": f"Translation-{language}"})
    return by_label


def short_candidates(cache: Path) -> dict[str, list[dict]]:
    """label -> records for every usable package of the topical sections."""
    dump = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True)
    translations = fetch_translations(cache)
    by_label: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for pkg in sorted(read_stanzas(dump.stdout), key=lambda s: s.get("Package", "")):
        name = pkg.get("Package", "")
        label = re.sub(r"^(contrib|non-free)/", "", pkg.get("Section", ""))
        if label not in SHORT_SECTIONS or name.endswith(DERIVED_SUFFIXES):
            continue
        md5 = pkg.get("Description-md5", "")
        text = description_text(translations.get(md5) or pkg.get("Description", ""))
        if not text or text in seen:
            continue
        seen.add(text)
        by_label.setdefault(label, []).append(
            {"doc_id": f"deb:{name}", "label": label, "text": text, "source": name})
    for label in sorted(k for k, v in by_label.items() if len(v) < SHORT_MIN_PER_LABEL):
        print(f"section {label}: only {len(by_label.pop(label))} packages, left out")
    return by_label


def unpacked_package(package: str, cache: Path) -> Path:
    """The package's files, downloaded (no dependencies) and unpacked once into the cache."""
    tree = cache / package
    if tree.is_dir():
        return tree
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", "-q", package], cwd=cache, check=True)
        debs = sorted(cache.glob(f"{package}_*.deb"))
    partial = cache / f"{package}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(partial)], check=True)
    partial.rename(tree)
    return tree


def html_pages(root: Path, skipped: str) -> list[Path]:
    """Regular (non-symlink) HTML files under root, skipped and index-like pages left out."""
    pages = []
    for path in sorted(root.rglob("*")):
        stem = re.sub(r"\.(html?|html\.en)$", "", path.name)
        rel = path.relative_to(root).as_posix()
        if (path.name.endswith(HTML_SUFFIXES) and path.is_file() and not path.is_symlink()
                and not SKIPPED_PAGE.match(stem) and not (skipped and re.search(skipped, rel))):
            pages.append(path)
    return pages


def page_text(html: str) -> str:
    """The page's main text, or "" for a page not in English or a texinfo index ("Jump to:")."""
    # Imported here so that the short corpus needs nothing beyond the standard library.
    from crawlmix.ingest.extract import extract_main_text

    lang = HTML_LANG.search(html[:5000])
    if lang and not lang.group(1).lower().startswith("en"):
        return ""  # apache2-doc's en/ holds a few pages in Portuguese
    text = extract_main_text(html, "resiliparse").strip()
    return "" if "Jump to:" in text[:1000] else text


def page_candidates(cache: Path) -> dict[str, list[dict]]:
    """label -> records for every long enough, not duplicated page of the label's package."""
    by_label: dict[str, list[dict]] = {}
    seen: set[str] = set()
    for label, (package, subdir, skipped) in sorted(DOC_PACKAGES.items()):
        root = unpacked_package(package, cache) / subdir
        for path in html_pages(root, skipped):
            text = page_text(path.read_bytes().decode("utf-8", errors="replace"))
            if len(text) < MIN_PAGE_CHARS or text in seen:
                continue
            seen.add(text)
            rel = path.relative_to(root).as_posix()
            by_label.setdefault(label, []).append(
                {"doc_id": f"page:{label}/{rel}", "label": label, "text": text, "source": rel})
    return by_label


def sample(by_label: dict[str, list[dict]], per_label: int, seed: int) -> list[dict]:
    """At most per_label records per label (a seeded RNG per label), sorted by label, doc_id."""
    chosen = []
    for label, records in sorted(by_label.items()):
        records = sorted(records, key=lambda r: r["doc_id"])
        if len(records) > per_label:
            records = random.Random(f"{seed}:{label}").sample(records, per_label)
        chosen.extend(records)
    return sorted(chosen, key=lambda r: (r["label"], r["doc_id"]))


def write_jsonl(records: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def report(name: str, records: list[dict], candidates: dict[str, list[dict]]) -> None:
    print(f"\n{name}: {len(records)} documents, {len(candidates)} labels")
    print(f"  {'label':<14} {'kept':>5} {'usable':>6} {'median chars':>12}")
    for label in sorted(candidates):
        lengths = [len(r["text"]) for r in records if r["label"] == label]
        print(f"  {label:<14} {len(lengths):>5} {len(candidates[label]):>6} "
              f"{statistics.median(lengths):>12.0f}")
    print(f"  {'all':<14} {len(records):>5} {sum(map(len, candidates.values())):>6} "
          f"{statistics.median(len(r['text']) for r in records):>12.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--corpus", choices=("short", "pages", "languages", "all"), default="all")
    parser.add_argument("--per-label", type=int, help="default: 300 short, 150 pages")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cache = args.out / "debs"
    cache.mkdir(parents=True, exist_ok=True)
    corpora = {"short": ("short_descriptions", short_candidates, 300),
               "pages": ("doc_pages", page_candidates, 150),
               "languages": ("languages", language_candidates, 300)}
    for name, build, default_per_label in (
        corpora.values() if args.corpus == "all" else [corpora[args.corpus]]
    ):
        started = time.perf_counter()
        candidates = build(cache)
        records = sample(candidates, args.per_label or default_per_label, args.seed)
        write_jsonl(records, args.out / f"{name}.jsonl")
        report(name, records, candidates)
        print(f"  wrote {args.out / f'{name}.jsonl'} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
