#!/usr/bin/env python3
"""Build crawlmix's bundled quality reference set from Debian documentation packages.

The reference set is the positive class of the embedding quality classifier
(``crawlmix.quality.QualityClassifier``): a few hundred passages of well-edited English prose.
They come from the plain-text manuals of two Debian 12 (bookworm) packages that are *not* part of
the sample crawl (crawlmix/sample/SOURCES.md):

* ``gnu-standards``: GNU Coding Standards and Information for Maintainers of GNU Software
  (GFDL-1.3+, no Invariant Sections, no Front-Cover or Back-Cover Texts);
* ``debian-policy``: the Debian Policy Manual (GPL-2+).

Processing: the text files are split into blocks at blank lines; headings (a line underlined with
``=``, ``-``, ``*`` ...) start sections; code examples (blocks indented 3+ spaces throughout),
tables of contents, texinfo menus, footnote markers and the licence/index appendices are dropped, texinfo
cross-references ``*Note X::`` become ``see X``;
each paragraph is reflowed onto one line (bullet items become ``- item`` lines), like text
extracted from a web page. Paragraphs are packed into passages of a seeded random target length in
[150, 600] words (hard cap 1,000; passages under 100 words are dropped); a heading only ends a
passage that already has 100 words, otherwise it becomes a line of it.

Output (nothing else is touched):

    crawlmix/sample/reference/reference.parquet   (id, text, package, version, source_file,
                                                   section, licence, n_words; zstd)
    crawlmix/sample/reference/SOURCES.md
    crawlmix/sample/reference/LICENSES/<package>.copyright

Needs a Debian bookworm host with apt sources (``apt-get download``, ``dpkg-deb``); versions are
pinned so a rebuild is byte-identical (pass --any-version when Debian replaces a pin).

    .venv/bin/python scripts/build_reference_set.py
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "crawlmix" / "sample" / "reference"
SEED = 20261123
MIN_WORDS, MAX_WORDS = 100, 1000
TARGET_RANGE = (150, 600)


@dataclass(frozen=True)
class Source:
    package: str
    version: str
    files: tuple[str, ...]  # paths inside the package (gzipped plain text)
    licence: str
    title: str


SOURCES = (
    Source("gnu-standards", "2022.03.23-0.1",
           ("usr/share/doc/gnu-standards/standards.text.gz",
            "usr/share/doc/gnu-standards/maintain.text.gz"),
           "GFDL-1.3+ (no Invariant Sections, no Front-Cover Texts, no Back-Cover Texts)",
           "GNU Coding Standards; Information for Maintainers of GNU Software"),
    Source("debian-policy", "4.6.2.0",
           ("usr/share/doc/debian-policy/policy.txt.gz",),
           "GPL-2+", "Debian Policy Manual"),
)

_UNDERLINE = re.compile(r"^\s*([=\-*^~.#\"+])\1{2,}\s*$")
_TOC_LINE = re.compile(r"^\s*(?:[*-]\s+)?(?:\d+|[A-Z])(?:\.\d+)*\.?\s+\S")
_FOOTNOTE_REF = re.compile(r"\s*\[\d+\]")
_TEXINFO_XREF = re.compile(r"\*([Nn])ote\s+([^:]+?)::")
_BULLET = re.compile(r"^\s{0,2}[*-]\s+")
_STOP_SECTION = re.compile(r"GNU Free Documentation License|^Index$|^Footnotes$", re.I)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def parse_items(text: str) -> list[tuple[str, str]]:
    """('heading', title) and ('para', reflowed paragraph) items, in order."""
    lines = text.replace("\t", "        ").splitlines()
    blocks: list[list[str]] = []
    cur: list[str] = []
    for ln in lines:
        if ln.strip():
            cur.append(ln.rstrip())
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)

    items: list[tuple[str, str]] = []
    for block in blocks:
        # Headings: "Title" followed by an underline (possibly with an overline).
        body = [ln for ln in block if not _UNDERLINE.match(ln)]
        if len(block) >= 2 and _UNDERLINE.match(block[-1]) and len(body) == 1:
            title = body[0].strip()
            if _STOP_SECTION.search(re.sub(r"^[\dA-Z.]+\s+", "", title)):
                break  # licence / index / footnote appendices come last
            items.append(("heading", re.sub(r"^(?:\d+|[A-Z])(?:\.\d+)*\.?\s+", "", title)))
            continue
        if not body:
            continue
        if all(_indent(ln) >= 3 for ln in body) and not (
                _indent(body[0]) == 3 and len(body) > 1 and all(_indent(ln) == 0
                                                                  for ln in body[1:])):
            continue  # code example / literal block / nested table
        if sum(bool(_TOC_LINE.match(ln)) for ln in body) > len(body) / 2:
            continue  # table of contents
        if any("::" in ln and ln.lstrip().startswith("* ") for ln in body):
            continue  # texinfo menu
        if "----------" in body[0]:
            continue
        # Reflow; split bullet lists into items.
        paras: list[list[str]] = []
        for ln in body:
            if _BULLET.match(ln) or not paras:
                paras.append([ln])
            else:
                paras[-1].append(ln)
        for p in paras:
            s = " ".join(x.strip() for x in p)
            is_bullet = bool(_BULLET.match(p[0]))
            s = _BULLET.sub("", s) if is_bullet else s
            s = _FOOTNOTE_REF.sub("", s)
            s = _TEXINFO_XREF.sub(lambda m: ("See " if m.group(1) == "N" else "see ")
                                  + m.group(2), s)
            s = re.sub(r"\s+", " ", s).strip()
            if not s:
                continue
            alpha = sum(c.isalpha() for c in s) / len(s)
            if alpha < 0.6:
                continue
            items.append(("para", f"- {s}" if is_bullet else s))
    return items


def chunk(items: list[tuple[str, str]], rng: random.Random) -> list[tuple[str, str]]:
    """(section title, passage text) pairs."""
    out: list[tuple[str, str]] = []
    cur: list[str] = []
    words = 0
    section = ""
    cur_section = ""
    target = rng.randint(*TARGET_RANGE)

    def emit() -> None:
        nonlocal cur, words, target
        if words >= MIN_WORDS:
            out.append((cur_section, "\n".join(cur)))
        cur, words = [], 0
        target = rng.randint(*TARGET_RANGE)

    for kind, s in items:
        n = len(s.split())
        if kind == "heading":
            section = s
            if words >= MIN_WORDS:
                emit()
            if not cur:
                cur_section = section
            cur.append(s)
            words += n
            continue
        if words + n > MAX_WORDS:
            emit()
            if n > MAX_WORDS:
                continue
        if not cur:
            cur_section = section
        cur.append(s)
        words += n
        if words >= target:
            emit()
    emit()
    return out


def fetch(src: Source, workdir: Path, any_version: bool) -> tuple[Path, str]:
    spec = src.package if any_version else f"{src.package}={src.version}"
    subprocess.run(["apt-get", "download", spec], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)
    debs = sorted(workdir.glob(f"{src.package}_*.deb"))
    if not debs:
        raise SystemExit(f"apt-get download {spec} produced no .deb")
    version = subprocess.run(["dpkg-deb", "-f", str(debs[-1]), "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    root = workdir / src.package
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    return root, version


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--any-version", action="store_true",
                    help="take the candidate version instead of the pinned one")
    args = ap.parse_args(argv)
    rng = random.Random(SEED)
    rows: list[dict] = []
    used: list[tuple[Source, str, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lic_dir = args.out / "LICENSES"
        lic_dir.mkdir(parents=True, exist_ok=True)
        for src in SOURCES:
            root, version = fetch(src, work, args.any_version)
            shutil.copyfile(root / "usr/share/doc" / src.package / "copyright",
                            lic_dir / f"{src.package}.copyright")
            n_before = len(rows)
            for rel in src.files:
                text = gzip.decompress((root / rel).read_bytes()).decode("utf-8")
                for i, (section, passage) in enumerate(chunk(parse_items(text), rng)):
                    name = Path(rel).name
                    rows.append({
                        "id": f"{src.package}/{name}#{i:04d}",
                        "text": passage,
                        "package": src.package,
                        "version": version,
                        "source_file": "/" + rel,
                        "section": section,
                        "licence": src.licence,
                        "n_words": len(passage.split()),
                    })
            used.append((src, version, len(rows) - n_before))
    table = pa.Table.from_pylist(rows)
    out_file = args.out / "reference.parquet"
    pq.write_table(table, out_file, compression="zstd")
    _write_sources(args.out / "SOURCES.md", used, rows)
    size = out_file.stat().st_size
    print(f"wrote {len(rows)} passages ({sum(r['n_words'] for r in rows)} words) to {out_file} "
          f"({size} bytes)")
    for src, version, n in used:
        print(f"  {src.package} {version}: {n}")
    return 0


def _write_sources(path: Path, used, rows) -> None:
    words = [r["n_words"] for r in rows]
    lines = [
        "# Quality reference set: sources and licences",
        "",
        "`reference.parquet` holds the positive examples of the embedding quality classifier "
        "(`crawlmix.quality.QualityClassifier`): passages of edited English technical prose. "
        "It is built by `scripts/build_reference_set.py` (`.venv/bin/python "
        "scripts/build_reference_set.py`) from the plain-text manuals shipped in these Debian 12 "
        "(bookworm) packages, none of which is part of the sample crawl (`../SOURCES.md`):",
        "",
        "| Package | Version | Document | Licence | Passages |",
        "|---|---|---|---|---:|",
    ]
    for src, version, n in used:
        files = ", ".join(f"`/{f}`" for f in src.files)
        lines.append(f"| `{src.package}` | {version} | {src.title} ({files}) | {src.licence} "
                     f"| {n} |")
    lines += [
        "",
        f"Total: {len(rows)} passages, {sum(words)} words ({min(words)}-{max(words)} words "
        "each). Columns: `id`, `text`, `package`, `version`, `source_file`, `section`, "
        "`licence`, `n_words`.",
        "",
        "The passages are excerpts, modified only by reflowing: paragraphs are joined onto one "
        "line each, bullet items are written as `- item` lines, footnote markers (`[1]`) are "
        "removed, texinfo cross-references (`*Note X::`) read `see X`, and code examples, tables of contents, menus and the licence and index "
        "appendices are left out. Each package's copyright file is in "
        "`LICENSES/<package>.copyright`; the full GFDL-1.3 and GPL-2 texts are in "
        "`../LICENSES/GFDL-1.3.txt` and `../LICENSES/GPL-2.txt`.",
        "",
        "Licences: the GNU Coding Standards and the GNU maintainers' information are "
        "Copyright (C) Free Software Foundation, Inc., distributed under the GNU Free "
        "Documentation License, Version 1.3 or any later version, with no Invariant Sections, "
        "no Front-Cover Texts and no Back-Cover Texts. The Debian Policy Manual is Copyright "
        "(C) its authors (see `LICENSES/debian-policy.copyright`), distributed under the GNU "
        "General Public License, version 2 or (at your option) any later version. This "
        "derived data set is distributed under the same terms, per source package. As the "
        "Policy copyright file notes, the GPL applied to a document asks for its source: the "
        "corresponding source is the Debian source packages of the versions above "
        "(`apt-get source debian-policy=4.6.2.0`, `apt-get source gnu-standards`) together with "
        "`scripts/build_reference_set.py`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
