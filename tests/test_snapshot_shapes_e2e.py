"""The whole graph on snapshots of different shapes, as `crawlmix run --snapshots ROOT` runs it.

Five snapshots under one snapshots root, built from real page text (the bundled sample's pages,
extracted once and cut into short documents so embedding stays fast; each snapshot gets its own
documents): one 2,000-record `.warc.gz` with one gzip member per record (the real crawl layout),
one plain JSONL file, one Parquet file in a single row group, one in many row groups, and one
snapshot of fewer records than shards. `materialize_snapshots` (the machinery behind `crawlmix
run`) takes them through every stage with 4 shards: raw_corpus, embeddings, centroids,
cluster_labels, semantic_duplicates, quality_scores, final_mixtures and mixture_publication of
every mixture in the default mixture file, then the reports. A snapshot of fewer records than
shards has empty shards, and each of those must be materialized, gated and scored like any other.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import AssetKey

from crawlmix.ingest import decode_html_bytes, extract_main_text
from crawlmix.settings import Settings
from curation_assets import definitions as d
from curation_assets.partitions import partition_key_for
from tests.dagster_harness import settings_for, write_warc

pytestmark = pytest.mark.e2e

SHARDS = 4
SAMPLE = Path(__file__).resolve().parents[1] / "crawlmix" / "sample" / "snapshots" / "sample-2026-11"
WORDS_PER_DOC = 60  # about 500 characters: short documents keep CPU embedding quick
MAX_DOC_CHARS = 1200  # a single very long line would make one document far larger than the rest

# snapshot id -> (how its records are stored, how many records)
CASES = {
    "warc-gz": ("warc.gz", 2000),
    "jsonl": ("jsonl", 200),
    "parquet-one-group": ("parquet-one-group", 200),
    "parquet-many-groups": ("parquet-many-groups", 200),
    "fewer-than-shards": ("jsonl", 3),
}
# A Parquet file of one row group is one piece: one shard reads it whole, the others are empty.
SPLIT_CASES = [c for c in CASES if CASES[c][1] >= SHARDS and c != "parquet-one-group"]
PER_SHARD_ASSETS = ("raw_corpus", "embeddings", "cluster_labels", "quality_scores")
PER_SHARD_JOBS = (d.INGEST_JOB, d.LABEL_JOB, d.SCORE_JOB)


def sample_documents() -> list[tuple[str, str]]:
    """(url, text) documents of real page text: each sample page's main text, extracted once, cut
    at line ends into pieces of at least WORDS_PER_DOC words; exact repeats dropped."""
    from warcio.archiveiterator import ArchiveIterator

    documents, seen = [], set()
    for path in sorted(SAMPLE.glob("*.warc.gz")):
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle):
                if record.rec_type != "response" or record.http_headers.get_statuscode() != "200":
                    continue
                if "html" not in (record.http_headers.get_header("Content-Type") or ""):
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI")
                page, _ = decode_html_bytes(record.content_stream().read(), None)
                lines, words, part = [], 0, 0
                for line in extract_main_text(page, "resiliparse").splitlines():
                    if not line.strip():
                        continue
                    lines.append(line.strip())
                    words += len(line.split())
                    if words >= WORDS_PER_DOC:
                        text = "\n".join(lines)
                        if text not in seen and len(text) <= MAX_DOC_CHARS:
                            seen.add(text)
                            documents.append((f"{url}#part-{part}", text))
                            part += 1
                        lines, words = [], 0
    return documents


def _page(title: str, text: str) -> bytes:
    paragraphs = "\n".join(f"<p>{html.escape(line)}</p>" for line in text.splitlines())
    return (f"<html><head><title>{html.escape(title)}</title></head><body><main>"
            f"<h1>{html.escape(title)}</h1>\n{paragraphs}\n</main></body></html>").encode("utf-8")


def write_snapshot(root: Path, snapshot: str, layout: str, documents: list[tuple[str, str]]) -> None:
    folder = root / snapshot
    folder.mkdir(parents=True)
    if layout == "warc.gz":  # WARCWriter(gzip=True): one gzip member per record
        write_warc(folder / "crawl.warc.gz", [
            (url, 200, "text/html; charset=utf-8", _page(url.rsplit("/", 1)[-1], text)) for url, text in documents
        ])
    elif layout == "jsonl":
        with open(folder / "records.jsonl", "w", encoding="utf-8") as out:
            for url, text in documents:
                out.write(json.dumps({"url": url, "text": text}) + "\n")
    else:
        table = pa.table({"url": [u for u, _ in documents], "text": [t for _, t in documents]})
        # Twenty groups of 10 rows, without per-group statistics: with groups this small
        # Arrow's statistics make the footer a fifth of the file, and no row-group cut balances that.
        group_rows = len(documents) if layout == "parquet-one-group" else 10
        pq.write_table(table, folder / "records.parquet", row_group_size=group_rows, write_statistics=False)
        assert pq.read_metadata(folder / "records.parquet").num_row_groups == -(-len(documents) // group_rows)
    (folder / "_SUCCESS").touch()  # last, as the snapshot contract requires


@pytest.fixture(scope="module")
def shaped_run(tmp_path_factory):
    """Every case's snapshot under one root, taken through the whole graph in one `crawlmix run`."""
    from curation_assets.runner import instance_for, materialize_snapshots

    home = tmp_path_factory.mktemp("shapes") / "home"
    documents = iter(sample_documents())
    for snapshot, (layout, n_records) in CASES.items():
        write_snapshot(home / "snapshots", snapshot, layout, [next(documents) for _ in range(n_records)])
    settings = settings_for(home, shards=SHARDS, CRAWLMIX_DEVICE="cpu")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DAGSTER_HOME", str(settings.dagster_home))  # the instance a user's run would use
        instance = instance_for(settings)
        started = time.monotonic()
        outcomes = materialize_snapshots(settings, instance, list(CASES))
        elapsed = time.monotonic() - started
        yield settings, instance, outcomes, elapsed
        _print_timings(instance, outcomes, elapsed)
        instance.dispose()


def _run_seconds(instance, run_id: str) -> float:
    stats = instance.get_run_stats(run_id)
    return (stats.end_time or 0.0) - (stats.start_time or 0.0)


def _print_timings(instance, outcomes, elapsed: float) -> None:
    """Seconds per case and stage (summed over its runs), and of the runs shared by every case."""
    by_case: dict[str, dict[str, float]] = {snapshot: {} for snapshot in CASES}
    shared: dict[str, float] = {}
    for outcome in outcomes:
        snapshot = outcome.partition.split("/")[0]
        # centroids fit, mixtures and reports are one run for every snapshot
        stages = by_case[snapshot] if snapshot in by_case else shared
        stages[outcome.job] = stages.get(outcome.job, 0.0) + _run_seconds(instance, outcome.run_id)
    print(f"\nwhole graph on {len(CASES)} snapshots x {SHARDS} shards: {elapsed:.0f} s")
    for snapshot, stages in [*by_case.items(), ("shared", shared)]:
        records = f"{CASES[snapshot][1]:>5} records" if snapshot in CASES else " " * 13
        detail = ", ".join(f"{job} {seconds:.0f}" for job, seconds in stages.items())
        print(f"  {snapshot:<20} {records} {sum(stages.values()):6.0f} s  ({detail})")


def _outcomes(outcomes, job: str, partition: str):
    return [o for o in outcomes if o.job == job and o.partition == partition]


def _records(settings: Settings, snapshot: str) -> list[int]:
    """Records each shard read (documents, quarantined records and exact duplicates together)."""
    folder = settings.home / "storage" / "raw_corpus" / snapshot
    counts = []
    for shard in settings.shard_keys:
        provenance = json.loads(pq.read_schema(folder / f"{shard}.parquet").metadata[b"crawlmix"])
        counts.append(int(provenance["n_records"]))
    return counts


def _rows(settings: Settings, asset: str, snapshot: str) -> list[int]:
    folder = settings.home / "storage" / asset / snapshot
    return [pq.read_metadata(folder / f"{shard}.parquet").num_rows for shard in settings.shard_keys]


def test_every_run_of_the_graph_succeeds(shaped_run):
    _, _, outcomes, _ = shaped_run
    failed = [f"{o.job} {o.partition}: {o.error}" for o in outcomes if not o.success]
    assert not failed, failed
    assert {o.job for o in outcomes} >= {d.INGEST_JOB, d.FIT_JOB, d.LABEL_JOB, d.DEDUP_JOB, d.SCORE_JOB, d.MIX_JOB}


@pytest.mark.parametrize("snapshot", list(CASES))
def test_every_shard_is_materialized_with_passing_checks(shaped_run, snapshot):
    settings, instance, outcomes, _ = shaped_run
    for shard in settings.shard_keys:
        key = partition_key_for(snapshot, shard)
        for asset in PER_SHARD_ASSETS:
            assert key in instance.get_materialized_partitions(AssetKey(asset)), (asset, key)
        for job in PER_SHARD_JOBS:
            runs = _outcomes(outcomes, job, f"{snapshot}/{shard}")
            assert len(runs) == 1 and runs[0].success, (job, shard, runs and runs[0].error)
            assert runs[0].checks and all(runs[0].checks.values()), (job, shard, runs[0].checks)
    dedup = _outcomes(outcomes, d.DEDUP_JOB, snapshot)
    assert len(dedup) == 1 and dedup[0].success and all(dedup[0].checks.values())


@pytest.mark.parametrize("snapshot", list(CASES))
def test_every_document_is_embedded_labelled_and_scored(shaped_run, snapshot):
    settings, _, _, _ = shaped_run
    import numpy as np

    documents = _rows(settings, "raw_corpus", snapshot)
    assert sum(_records(settings, snapshot)) == CASES[snapshot][1]
    assert 0 < sum(documents) <= CASES[snapshot][1]
    assert _rows(settings, "cluster_labels", snapshot) == documents
    assert _rows(settings, "quality_scores", snapshot) == documents
    for shard, n in zip(settings.shard_keys, documents):
        vectors = np.load(settings.home / "storage" / "embeddings" / snapshot / f"{shard}.npy", mmap_mode="r")
        assert vectors.shape == (n, 384)


@pytest.mark.parametrize("snapshot", SPLIT_CASES)
def test_a_single_file_is_split_into_balanced_shards(shaped_run, snapshot):
    """Needs record-range sharding (a shard is a set of record ranges of the snapshot's files)."""
    settings, _, _, _ = shaped_run
    records = _records(settings, snapshot)
    mean = sum(records) / len(records)
    assert min(records) > 0, records
    assert max(abs(n - mean) for n in records) <= 0.25 * mean, records


def test_a_parquet_file_of_one_row_group_is_read_whole_by_one_shard(shaped_run):
    settings, _, _, _ = shaped_run
    assert sorted(_records(settings, "parquet-one-group")) == [0, 0, 0, CASES["parquet-one-group"][1]]


def test_a_snapshot_of_fewer_records_than_shards_leaves_empty_shards_that_pass_everywhere(shaped_run):
    settings, _, outcomes, _ = shaped_run
    records = _records(settings, "fewer-than-shards")
    assert sum(records) == 3 and 0 in records
    empty = [shard for shard, n in zip(settings.shard_keys, records) if n == 0]
    for shard in empty:
        scored = _outcomes(outcomes, d.SCORE_JOB, f"fewer-than-shards/{shard}")[0]
        assert scored.materialized["quality_scores"]["dagster/row_count"] == 0
        assert scored.checks["quality_scores:expectations"]


def test_every_mixture_of_the_default_file_is_published(shaped_run):
    settings, _, outcomes, _ = shaped_run
    names = [m["name"] for m in yaml.safe_load(Path(settings.mixtures_file).read_text())["mixtures"]]
    assert names
    for name in names:
        built = _outcomes(outcomes, d.MIX_JOB, name)
        assert len(built) == 1 and built[0].success, (name, built and built[0].error)
        current = settings.home / "storage" / "final_mixtures" / name / "current.json"
        assert current.exists(), name
        version = json.loads(current.read_text())["version"]
        assert (current.parent / f"{version}.manifest.parquet").exists()
