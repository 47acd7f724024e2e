"""Does a re-crawl bring back what an earlier snapshot had? Leak and precision of cross-snapshot dedup.

Builds two crawl snapshots from real HTML pages (Sphinx documentation of Django, Flask and
SQLAlchemy from Debian packages: not the bundled sample), where the second re-crawls a share of the
first the way successive crawls do:

- exact re-fetches under the same URL,
- the same page under a new URL (a moved or mirrored page),
- lightly edited pages (a changed "last updated" line, an added banner, a few words changed),
- plus genuinely new pages.

Then runs `crawlmix run` on both with default settings (the real graph, as a user runs it) and
reads the second snapshot's removals from `semantic_duplicates`:

- leak: the share of planted copies still in the second snapshot's pool (target <= 5%);
- precision: the share of removals that are planted copies (target >= 0.95). A removal of a page
  that was not planted is listed with its word-shingle Jaccard similarity to the page it was
  removed for, so a true near-duplicate already in the documentation set can be told from an error.

    .venv/bin/python benchmarks/cross_snapshot_dedup.py [--first 400] [--new 150] [--workdir DIR]

Needs a Debian bookworm host with apt sources (`apt-get download`), like scripts/build_sample_snapshot.py.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["python-django-doc", "python-flask-doc", "python-sqlalchemy-doc"]
HOST = "https://docs.recrawl-test.example"
MAX_PAGE_BYTES = 60_000


@dataclass
class Page:
    url: str
    body: bytes
    kind: str  # original | exact | new_url | edited | new
    source_url: str | None = None  # for planted copies: the first snapshot's URL they copy


def download_pages(workdir: Path) -> list[tuple[str, bytes]]:
    debs, root = workdir / "debs", workdir / "root"
    debs.mkdir(parents=True, exist_ok=True)
    if not any(debs.glob("*.deb")):
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True, capture_output=True)
    if not root.exists():
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    pages = []
    for path in sorted((root / "usr/share/doc").rglob("*.html")):
        if path.is_symlink() or path.stat().st_size > MAX_PAGE_BYTES or path.name in ("genindex.html", "search.html", "py-modindex.html"):
            continue
        relative = path.relative_to(root / "usr/share/doc").as_posix()
        pages.append((f"{HOST}/{relative}", path.read_bytes()))
    return pages


_BODY_OPEN = re.compile(rb"<body[^>]*>", re.IGNORECASE)
_WORD = re.compile(rb"\b([a-z]{6,})\b")


def light_edit(body: bytes, rng: random.Random) -> bytes:
    """A re-crawl's typical small change: a banner, a date line, or a few words swapped."""
    kind = rng.choice(["banner", "date", "words"])
    if kind == "banner":
        banner = b'<div class="admonition note"><p>This page moved to a new version of the documentation.</p></div>'
        match = _BODY_OPEN.search(body)
        return body[: match.end()] + banner + body[match.end():] if match else banner + body
    if kind == "date":
        footer = f"<p>Last updated on {rng.randint(1, 28)} November 2026.</p>".encode()
        return body.replace(b"</body>", footer + b"</body>") if b"</body>" in body else body + footer
    words = list({m.group(1) for m in _WORD.finditer(body)})
    rng.shuffle(words)
    for word in words[:3]:
        body = body.replace(word, word[::-1], 1)
    return body


def build_snapshots(pages: list[tuple[str, bytes]], n_first: int, n_new: int, seed: int) -> tuple[list[Page], list[Page]]:
    rng = random.Random(seed)
    chosen = rng.sample(pages, n_first + n_new)
    first = [Page(url, body, "original") for url, body in chosen[:n_first]]
    second: list[Page] = []
    recrawl = rng.sample(first, int(0.6 * n_first))
    n_exact, n_moved = int(0.4 * len(recrawl)), int(0.2 * len(recrawl))
    for i, page in enumerate(recrawl):
        if i < n_exact:
            second.append(Page(page.url, page.body, "exact", page.url))
        elif i < n_exact + n_moved:
            moved = page.url.replace(HOST, HOST + "/mirror", 1)
            second.append(Page(moved, page.body, "new_url", page.url))
        else:
            second.append(Page(page.url, light_edit(page.body, rng), "edited", page.url))
    second += [Page(url, body, "new") for url, body in chosen[n_first:]]
    rng.shuffle(second)
    return first, second


def write_warc(path: Path, pages: list[Page], moment: datetime) -> None:
    """One gzip member per record, the layout of real crawl files."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for page in pages:
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                               ("Content-Length", str(len(page.body)))], protocol="HTTP/1.1")
            record = writer.create_warc_record(page.url, "response", payload=io.BytesIO(page.body), http_headers=http,
                                               warc_headers_dict={"WARC-Date": moment.strftime("%Y-%m-%dT%H:%M:%SZ")})
            writer.write_record(record)


def shingles(text: str, k: int = 5) -> set[str]:
    words = text.split()
    return {" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y) if x | y else 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first", type=int, default=400, help="pages in the first snapshot")
    parser.add_argument("--new", type=int, default=150, help="genuinely new pages in the second snapshot")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".cache/crawlmix/recrawl-bench")
    parser.add_argument("--shards", type=int, default=4)
    args = parser.parse_args(argv)

    pages = download_pages(args.workdir)
    first, second = build_snapshots(pages, args.first, args.new, args.seed)
    run_dir = args.workdir / f"run-{args.first}-{args.new}-{args.seed}-{args.shards}"
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    snapshots = run_dir / "snapshots"
    write_warc(snapshots / "crawl-2026-10" / "crawl.warc.gz", first, datetime(2026, 10, 5, tzinfo=timezone.utc))
    (snapshots / "crawl-2026-10" / "_SUCCESS").touch()
    write_warc(snapshots / "crawl-2026-11" / "crawl.warc.gz", second, datetime(2026, 11, 5, tzinfo=timezone.utc))
    (snapshots / "crawl-2026-11" / "_SUCCESS").touch()

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWLMIX_", "DAGSTER_HOME"))}
    env.update(CRAWLMIX_HOME=str(run_dir / "home"), CRAWLMIX_SHARDS=str(args.shards),
               HF_HUB_OFFLINE="1", GX_ANALYTICS_ENABLED="false", DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    started = time.monotonic()
    # One run per snapshot, in crawl order, as two crawls land one after the other.
    for snapshot in ("crawl-2026-10", "crawl-2026-11"):
        proc = subprocess.run([sys.executable, "-m", "crawlmix.cli", "run", "--snapshots", str(snapshots),
                               "--snapshot", snapshot], env=env, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            print(f"crawlmix run failed for {snapshot} (exit {proc.returncode})")
            return 1
    elapsed = time.monotonic() - started
    report(run_dir / "home" / "storage", second, args, elapsed)
    return 0


def report(storage_root: Path, second: list[Page], args, elapsed: float) -> None:
    import pyarrow.parquet as pq

    docs = pq.read_table(sorted((storage_root / "raw_corpus" / "crawl-2026-11").glob("*.parquet"))).to_pandas()
    first_docs = pq.read_table(sorted((storage_root / "raw_corpus" / "crawl-2026-10").glob("*.parquet"))).to_pandas()
    removed = pq.read_table(storage_root / "semantic_duplicates" / "crawl-2026-11" / "all.parquet").to_pandas()
    kind_of = {p.url: p.kind for p in second}
    docs["kind"] = docs["url"].map(kind_of)
    docs["removed"] = docs["doc_id"].isin(set(removed["doc_id"]))
    planted = docs["kind"].isin(["exact", "new_url", "edited"])
    text_of = dict(zip(first_docs["doc_id"], first_docs["text"])) | dict(zip(docs["doc_id"], docs["text"]))

    print(f"second snapshot: {len(docs)} documents ({int(planted.sum())} planted copies, "
          f"{int((docs['kind'] == 'new').sum())} new pages); {args.shards} shards; both runs took {elapsed:.0f} s")
    print(f"{'kind':<10} {'docs':>6} {'removed':>8} {'left in pool':>13}")
    for kind in ("exact", "new_url", "edited", "new"):
        part = docs[docs["kind"] == kind]
        print(f"{kind:<10} {len(part):>6} {int(part['removed'].sum()):>8} {int((~part['removed']).sum()):>13}")
    leak = float((~docs.loc[planted, "removed"]).mean()) if planted.any() else 0.0
    n_removed = int(docs["removed"].sum())
    precision = float(docs.loc[docs["removed"], "kind"].isin(["exact", "new_url", "edited"]).mean()) if n_removed else 1.0
    by_method = removed.groupby("method").size().to_dict() if "method" in removed else {}
    print(f"removals by method: {by_method}")
    print(f"leak (planted copies left in the pool): {leak:.3f}   target <= 0.05")
    print(f"precision (removals that are planted copies): {precision:.3f}   target >= 0.95")
    unplanted = removed[removed["doc_id"].isin(set(docs.loc[docs["removed"] & ~planted, "doc_id"]))]
    for row in unplanted.itertuples():
        similarity = jaccard(text_of.get(row.doc_id, ""), text_of.get(row.kept_doc_id, ""))
        url = docs.loc[docs["doc_id"] == row.doc_id, "url"].iloc[0]
        print(f"  removed, not planted: {url} cos={row.similarity:.3f} shingle-jaccard={similarity:.2f} ({row.method})")


if __name__ == "__main__":
    sys.exit(main())
