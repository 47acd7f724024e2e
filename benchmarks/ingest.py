"""Ingestion throughput and text quality: resiliparse vs trafilatura on the same WARC files.

    python benchmarks/ingest.py [--input DIR_OR_FILES ...] [--repeat N]

Default input: the bundled sample snapshot (crawlmix/sample/**/*.warc.gz); without it, a synthetic
crawl of realistic news pages. Runs build_shard (read, decode, extract, normalize, dedup) in this
single process and thread; rates are per core (per CPU-second, which other load on the machine
does not inflate the way it does wall time). Also times WARC container parsing alone with the
crawlmix parser, warcio and FastWARC.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from crawlmix.ingest import EXTRACTORS, FileRange, ReaderConfig, build_shard  # noqa: E402
from crawlmix.ingest.readers import _warc_events  # noqa: E402

SAMPLE_ROOT = REPO_ROOT / "crawlmix" / "sample"
WARC_SUFFIXES = (".warc", ".warc.gz")
SYNTHETIC_PAGES = 1500
SYNTHETIC_FILES = 3

# Lines that are navigation, legal or sharing chrome rather than content.
BOILERPLATE_LINE = re.compile(
    r"copyright|©|all rights reserved|privacy policy|terms of (use|service)|cookies?\b|skip to (main )?content"
    r"|back to top|share on|subscribe|log ?in\b|sign ?in\b|advertisement"
    r"|^\W*(home|next|previous|prev|up|top|contents|index|menu|search|navigation)\b.{0,40}$",
    re.IGNORECASE,
)


@dataclass
class Run:
    extractor: str
    wall_s: float
    cpu_s: float
    input_bytes: int
    n_docs: int
    n_quarantined: int
    n_exact_duplicates: int
    texts: dict[str, str]  # url -> text


@contextmanager
def open_local(name: str, start: int = 0):
    with open(name, "rb") as stream:
        stream.seek(start)
        yield stream


def whole_files(paths: list[str]) -> list[FileRange]:
    return [FileRange.whole(Path(p).name, p, os.path.getsize(p)) for p in paths]


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="crawlmix-bench-") as scratch:
        files, truth = resolve_inputs(args.input, Path(scratch))
        print_header(files)
        warm_up(files[0])
        runs = [best_run(files, extractor, args.repeat) for extractor in EXTRACTORS]
        print_throughput(runs)
        print_quality(runs, truth)
        print_container_parsing([f for f in files if f.endswith(WARC_SUFFIXES)], args.repeat)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", help="WARC files or folders holding them (default: the bundled sample)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per extractor; the fastest (CPU time) counts")
    return parser.parse_args()


def resolve_inputs(inputs: list[str] | None, scratch: Path) -> tuple[list[str], dict[str, list[str]]]:
    """(input files, ground truth url -> article paragraphs; empty unless the input is synthetic)."""
    if inputs:
        files = [str(f) for entry in inputs for f in warc_files(Path(entry))]
        if not files:
            sys.exit(f"no {' or '.join(WARC_SUFFIXES)} files in {inputs}")
        return files, {}
    sample = warc_files(SAMPLE_ROOT) if SAMPLE_ROOT.exists() else []
    if sample:
        return [str(f) for f in sample], {}
    return write_synthetic_crawl(scratch)


def warc_files(entry: Path) -> list[Path]:
    if entry.is_file():
        return [entry]
    return sorted(p for p in entry.rglob("*") if p.name.endswith(WARC_SUFFIXES))


def write_synthetic_crawl(folder: Path) -> tuple[list[str], dict[str, list[str]]]:
    from tests.ingest_fixtures import (
        html_response,
        metadata_record,
        request_record,
        synthetic_pages,
        warcinfo_record,
        write_warc,
    )

    print(f"no sample snapshot under {SAMPLE_ROOT}: generating {SYNTHETIC_PAGES} synthetic pages")
    pages = synthetic_pages(SYNTHETIC_PAGES)
    per_file = -(-len(pages) // SYNTHETIC_FILES)
    files = []
    for i in range(SYNTHETIC_FILES):
        records = [warcinfo_record()]
        for url, html, _ in pages[i * per_file : (i + 1) * per_file]:
            records += [request_record(url), html_response(url, html), metadata_record(url)]
        path = folder / f"synthetic-{i:05d}.warc.gz"
        write_warc(path, records)
        files.append(str(path))
    return files, {url: paragraphs for url, _, paragraphs in pages}


def print_header(files: list[str]) -> None:
    size = sum(os.path.getsize(f) for f in files)
    print(f"input: {len(files)} files, {size / 1e6:.2f} MB compressed ({Path(files[0]).parent})")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores visible; "
          "single process, single thread: all rates are per core")
    print()


def warm_up(path: str) -> None:
    """One untimed pass: first calls pay for lazy imports and initialization (~0.5 s in pyarrow)."""
    for extractor in EXTRACTORS:
        build_shard(whole_files([path]), open_local, "bench", "0", ReaderConfig(extractor=extractor))


def best_run(files: list[str], extractor: str, repeat: int) -> Run:
    return min((timed_run(files, extractor) for _ in range(max(repeat, 1))), key=lambda run: run.cpu_s)


def timed_run(files: list[str], extractor: str) -> Run:
    wall, cpu = time.perf_counter(), time.process_time()
    result = build_shard(whole_files(files), open_local, "bench", "0", ReaderConfig(extractor=extractor))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stats = result.stats
    urls, texts = result.docs.column("url").to_pylist(), result.docs.column("text").to_pylist()
    return Run(
        extractor=extractor,
        wall_s=wall,
        cpu_s=cpu,
        input_bytes=stats["input_bytes"],
        n_docs=stats["n_docs"],
        n_quarantined=stats["n_quarantined"],
        n_exact_duplicates=stats["n_exact_duplicates"],
        texts=dict(zip(urls, texts)),
    )


def print_throughput(runs: list[Run]) -> None:
    print("Throughput per core (build_shard end to end: read, decode, extract, normalize, dedup;")
    print("MB = compressed input; rates per CPU-second)")
    print(f"  {'extractor':12s} {'wall s':>8s} {'cpu s':>8s} {'MB/s':>8s} {'docs/s':>8s} "
          f"{'docs':>6s} {'quarant.':>8s} {'dups':>5s}")
    for run in runs:
        print(
            f"  {run.extractor:12s} {run.wall_s:8.2f} {run.cpu_s:8.2f} {run.input_bytes / 1e6 / run.cpu_s:8.2f} "
            f"{run.n_docs / run.cpu_s:8.1f} {run.n_docs:6d} {run.n_quarantined:8d} {run.n_exact_duplicates:5d}"
        )
    by_name = {run.extractor: run for run in runs}
    ratio = by_name["trafilatura"].cpu_s / by_name["resiliparse"].cpu_s
    print(f"  resiliparse/trafilatura speed ratio: {ratio:.1f}x")
    print()


def print_quality(runs: list[Run], truth: dict[str, list[str]]) -> None:
    print("Text quality")
    print(f"  {'extractor':12s} {'mean chars':>10s} {'median':>8s} {'boilerplate lines':>18s} {'docs with any':>14s}"
          + (f" {'article recall':>15s}" if truth else ""))
    for run in runs:
        texts = list(run.texts.values())
        lines = [line.strip() for text in texts for line in text.split("\n") if line.strip()]
        boilerplate = sum(1 for line in lines if BOILERPLATE_LINE.search(line))
        with_any = sum(1 for text in texts if any(BOILERPLATE_LINE.search(line) for line in text.split("\n")))
        lengths = [len(text) for text in texts]
        row = (
            f"  {run.extractor:12s} {statistics.fmean(lengths):10.0f} {statistics.median(lengths):8.0f} "
            f"{boilerplate / max(len(lines), 1):17.1%} {with_any / max(len(texts), 1):14.1%}"
        )
        if truth:
            row += f" {article_recall(run.texts, truth):15.1%}"
        print(row)
    print_agreement(*runs)
    print()


def article_recall(texts: dict[str, str], truth: dict[str, list[str]]) -> float:
    """Share of the true article paragraphs found verbatim in the extracted text."""
    found = total = 0
    for url, paragraphs in truth.items():
        text = texts.get(url, "")
        found += sum(1 for p in paragraphs if p in text)
        total += len(paragraphs)
    return found / max(total, 1)


def print_agreement(first: Run, second: Run) -> None:
    both = first.texts.keys() & second.texts.keys()
    overlaps = [word_overlap(first.texts[u], second.texts[u]) for u in both]
    print(f"  kept by {first.extractor} only: {len(first.texts.keys() - second.texts.keys())}, "
          f"by {second.extractor} only: {len(second.texts.keys() - first.texts.keys())}; "
          f"word-set overlap (Jaccard) on pages kept by both: mean {statistics.fmean(overlaps or [0]):.2f}")


def word_overlap(a: str, b: str) -> float:
    words_a, words_b = set(a.split()), set(b.split())
    return len(words_a & words_b) / max(len(words_a | words_b), 1)


def print_container_parsing(files: list[str], repeat: int) -> None:
    """Record iteration alone (no HTTP parsing, decoding or extraction), reading every block."""
    if not files:
        return
    size = sum(os.path.getsize(f) for f in files)
    print("WARC container parsing only (all record types, blocks read)")
    parsers = (("crawlmix", crawlmix_records), ("warcio", warcio_records), ("fastwarc", fastwarc_records))
    for name, count_records in parsers:
        best = float("inf")
        for _ in range(max(repeat, 1)):
            started = time.perf_counter()
            n_records = sum(count_records(f) for f in files)
            best = min(best, time.perf_counter() - started)
        print(f"  {name:10s} {n_records:7d} records {best:6.2f} s {size / 1e6 / best:8.1f} MB/s")


def crawlmix_records(path: str) -> int:
    with open(path, "rb") as stream:
        return sum(1 for _ in _warc_events(stream, ReaderConfig().max_record_bytes))


def warcio_records(path: str) -> int:
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as stream:
        return sum(1 for record in ArchiveIterator(stream) if record.content_stream().read() is not None)


def fastwarc_records(path: str) -> int:
    from fastwarc.warc import ArchiveIterator

    with open(path, "rb") as stream:
        return sum(1 for record in ArchiveIterator(stream, parse_http=False) if record.reader.read() is not None)


if __name__ == "__main__":
    main()
