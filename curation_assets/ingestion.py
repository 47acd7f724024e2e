"""Ingestion domain: the snapshot sensor, the `raw_corpus` asset and its Great Expectations gate."""

import time
from collections.abc import Sequence
from typing import Literal

import pandas as pd
import pyarrow as pa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Config,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    asset_check,
    sensor,
)
from pydantic import Field

from crawlmix.ingest import InputFileError, ReaderConfig, build_shard
from crawlmix.ingest.records import POLICY_REASONS
from crawlmix.settings import MAX_PARTITION_PAIRS
from crawlmix.snapshots import shard_input
from crawlmix.tables import read_table, table_file_metadata, write_table
from curation_assets import OWNERS
from curation_assets.gates import gate_result
from curation_assets.partitions import (
    crawl_snapshots,
    partition_key_for,
    split_partition_key,
)
from curation_assets.versions import config_hash
from resources import SnapshotsResource, StorageResource, WarehouseResource

RAW_CORPUS_CODE_VERSION = "raw_corpus-2"


class RawCorpusConfig(Config):
    """How input records become documents; changing any field changes the config hash."""

    text_field: str = Field(default="text", min_length=1, description="JSONL/Parquet field holding the document text")
    url_field: str = Field(default="url", min_length=1, description="JSONL/Parquet field holding the URL")
    extractor: Literal["resiliparse", "trafilatura"] = Field(default="resiliparse", description="HTML main-text extractor: resiliparse | trafilatura")
    max_record_bytes: int = Field(default=5_000_000, gt=0, description="raw payloads above this are quarantined (too_large)")
    max_text_chars: int = Field(default=1_000_000, gt=0, description="extracted texts above this are quarantined (too_large)")
    min_text_chars: int = Field(default=1, ge=0, description="extracted texts below this are quarantined (empty)")

    def reader_config(self) -> ReaderConfig:
        return ReaderConfig(
            text_field=self.text_field,
            url_field=self.url_field,
            extractor=self.extractor,
            max_record_bytes=self.max_record_bytes,
            max_text_chars=self.max_text_chars,
            min_text_chars=self.min_text_chars,
        )


class RawCorpusGateConfig(Config):
    max_quarantine_fraction: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="fail when more than this share of a shard's records is quarantined (exact duplicates and "
        "blocked URLs excluded: they are removed by policy, not bad input)",
    )
    min_records_for_fraction: int = Field(
        default=20,
        ge=0,
        description=(
            "the quarantine share is judged only on shards of at least this many records: one 404 among "
            "two records is noise, not a broken input"
        ),
    )
    max_text_chars: int = Field(default=1_000_000, gt=0, description="upper bound on a document's length")


def build_ingestion(partitions_def, shard_keys: Sequence[str], warehouse_pool: str | None = None):
    """The ingestion asset and its gate for a deployment's shard count."""

    @asset(
        partitions_def=partitions_def,
        pool=warehouse_pool,
        group_name="ingestion",
        kinds={"python", "parquet"},
        owners=OWNERS,
        code_version=RAW_CORPUS_CODE_VERSION,
        description=(
            "Extracted, normalized, exact-deduplicated documents of one snapshot shard, written as "
            "Parquet to <storage>/raw_corpus/<snapshot>/<shard>.parquet. Records that cannot become "
            "documents go to <storage>/quarantine/<snapshot>/<shard>.parquet with a reason."
        ),
    )
    def raw_corpus(
        context: AssetExecutionContext,
        config: RawCorpusConfig,
        snapshots: SnapshotsResource,
        storage: StorageResource,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        snapshot, shard = split_partition_key(context.partition_key)
        source = snapshots.get_source()
        listing = source.listing(snapshot)
        # Resolves only this shard's two cuts: a seek (ranged GET) and a small read each.
        plan = shard_input(listing.input_files, len(shard_keys), shard, source.open_input)
        n_files = len({r.name for r in plan.ranges})
        context.log.info(
            f"snapshot {snapshot} shard {shard}: {len(plan.ranges)} record ranges of {n_files} of "
            f"{len(listing.input_files)} input files, {plan.input_bytes} bytes"
        )
        if listing.ignored_files:
            context.log.warning(f"unsupported files ignored: {listing.ignored_files[:20]}")
        if plan.unsplittable_files:
            context.log.warning(
                f"files that cannot be split at record boundaries, read whole by one shard: {plan.unsplittable_files}"
            )

        reader_config = config.reader_config()
        blocklist = snapshots.get_url_blocklist()
        versions = {
            "code_version": RAW_CORPUS_CODE_VERSION,
            "config_hash": config_hash(reader_config, len(shard_keys)),
        }
        # which URL lists (by content) decided: a changed list is visible in every file it made
        lists = {name: digest[:16] for name, digest in sorted(blocklist.sources.items())} if blocklist else {}
        started = time.monotonic()
        try:
            result = build_shard(
                plan.ranges,
                source.open_input,
                snapshot,
                shard,
                reader_config,
                progress=_progress_logger(context, len(plan.ranges)),
                url_blocklist=blocklist,
            )
        except InputFileError as exc:
            raise RuntimeError(
                f"raw_corpus {snapshot}/{shard}: input file {exc.source_file} could not be read ({exc}); "
                "fix or remove the file, then re-materialize this partition"
            ) from exc
        stats = result.stats
        file_meta = {
            **versions,
            "url_blocklists": lists,
            "n_input_files": stats["n_input_files"],
            "n_ranges": stats["n_ranges"],
            "input_bytes": stats["input_bytes"],
            "n_records": stats["n_records"],
        }

        store = storage.get_storage()
        docs_key = store.key("raw_corpus", snapshot, shard, "parquet")
        quarantine_key = store.key("quarantine", snapshot, shard, "parquet")
        docs_written = write_table(store, docs_key, result.docs, {**file_meta, "asset": "raw_corpus"})
        quarantine_written = write_table(
            store, quarantine_key, result.quarantine, {**file_meta, "asset": "quarantine"}
        )
        elapsed = time.monotonic() - started

        quarantine_fraction = stats["n_quarantined"] / stats["n_records"] if stats["n_records"] else 0.0
        lock_retries = _record_stats(
            warehouse, snapshot, shard, stats, docs_written.bytes, quarantine_fraction, elapsed, versions
        )
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(store.uri(docs_key)),
                "quarantine_path": MetadataValue.path(store.uri(quarantine_key)),
                "dagster/row_count": stats["n_docs"],
                "bytes": docs_written.bytes,
                "sha256": docs_written.sha256,
                "quarantine_sha256": quarantine_written.sha256,
                "input_files": stats["n_input_files"],
                "input_ranges": stats["n_ranges"],
                "input_bytes": stats["input_bytes"],
                "unsplittable_files": MetadataValue.json(plan.unsplittable_files),
                "records": stats["n_records"],
                "exact_duplicates_removed": stats["n_exact_duplicates"],
                "blocked_urls_removed": stats["n_blocked_urls"],
                "url_blocklists": MetadataValue.json(lists),
                "quarantined": stats["n_quarantined"],
                "quarantine_fraction": round(quarantine_fraction, 6),
                "quarantine_by_reason": MetadataValue.json(dict(sorted(stats["quarantine_by_reason"].items()))),
                "docs_per_s": round(stats["n_docs"] / elapsed, 1) if elapsed > 0 else 0.0,
                "elapsed_s": round(elapsed, 3),
                "extractor": reader_config.extractor,
                # non-zero means writers contended for the warehouse (DuckDB without its pool)
                "warehouse_lock_retries": lock_retries,
                **versions,
            }
        )

    @asset_check(
        asset=raw_corpus,
        blocking=True,
        partitions_def=partitions_def,
        name="expectations",
        description=(
            "Great Expectations suite on the partition: doc_id unique and non-null, content hashes "
            "unique, text non-empty and within bounds, n_chars consistent with text, rows present "
            "when the shard read any record, quarantine fraction under the threshold."
        ),
    )
    def raw_corpus_expectations(
        context: AssetCheckExecutionContext,
        config: RawCorpusGateConfig,
        storage: StorageResource,
    ) -> AssetCheckResult:
        from crawlmix.expectations import run_suite

        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        docs_key = store.key("raw_corpus", snapshot, shard, "parquet")
        docs = read_table(store, docs_key, columns=["doc_id", "content_hash", "text", "n_chars"])
        meta = table_file_metadata(store, docs_key)
        n_records = int(meta.get("n_records", 0))
        quarantine = read_table(store, store.key("quarantine", snapshot, shard, "parquet"), columns=["reason"])
        n_quarantined = sum(1 for r in quarantine.column("reason").to_pylist() if r not in POLICY_REASONS)
        quarantine_fraction = n_quarantined / n_records if n_records else 0.0
        judged_fraction = quarantine_fraction if n_records >= config.min_records_for_fraction else 0.0

        frame = _gate_frame(docs, judged_fraction)
        outcome = run_suite(
            frame,
            "raw_corpus",
            lambda gxe: _raw_corpus_expectations(gxe, n_records, config),
        )
        return gate_result(
            outcome,
            rows=len(frame),
            quarantine_fraction=round(quarantine_fraction, 6),
            max_quarantine_fraction=config.max_quarantine_fraction,
            quarantine_fraction_judged=n_records >= config.min_records_for_fraction,
        )

    return [raw_corpus], [raw_corpus_expectations]


def build_snapshot_sensor(job, shard_keys: Sequence[str], snapshots_per_tick: int):
    """The sensor that turns newly completed snapshots into partitions and per-shard runs of `job`."""

    @sensor(
        name="crawl_snapshot_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Lists the snapshots root, registers complete snapshots (those with _SUCCESS) as "
            f"crawl_snapshots partitions, at most {snapshots_per_tick} per tick, and requests one run per shard."
        ),
    )
    def crawl_snapshot_sensor(context: SensorEvaluationContext, snapshots: SnapshotsResource):
        source = snapshots.get_source()
        complete, rejected = source.complete_snapshots()
        for reason in rejected:
            context.log.warning(f"skipping folder under {source.root}: {reason}")
        known = set(context.instance.get_dynamic_partitions(crawl_snapshots.name))
        room = max(0, MAX_PARTITION_PAIRS // len(shard_keys) - len(known))
        new = [s for s in complete if s not in known][: min(snapshots_per_tick, room)]
        if not new:
            if room == 0:
                context.log.error(
                    f"partition limit reached ({MAX_PARTITION_PAIRS} snapshot x shard pairs): "
                    "not registering more snapshots"
                )
            return SkipReason(f"no new complete snapshot under {source.root}")
        return SensorResult(
            run_requests=[
                RunRequest(run_key=f"{snap}/{shard}", partition_key=partition_key_for(snap, shard))
                for snap in new
                for shard in shard_keys
            ],
            dynamic_partitions_requests=[crawl_snapshots.build_add_request(new)],
        )

    return crawl_snapshot_sensor


def _raw_corpus_expectations(gxe, n_records: int, config: RawCorpusGateConfig) -> list:
    # Rows are due when the shard read a record (a document or a quarantined one: within a shard an
    # exact duplicate always follows its kept document). A range of a file can hold only records
    # that are no documents (WARC request or metadata records), and a shard can be empty; neither
    # must fail the gate.
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1 if n_records else 0),
        gxe.ExpectColumnValuesToNotBeNull(column="doc_id"),
        gxe.ExpectColumnValuesToBeUnique(column="doc_id"),
        gxe.ExpectColumnValuesToBeUnique(column="content_hash"),
        gxe.ExpectColumnValuesToNotBeNull(column="text_chars"),
        gxe.ExpectColumnValuesToBeBetween(column="text_chars", min_value=1, max_value=config.max_text_chars),
        gxe.ExpectColumnPairValuesToBeEqual(column_A="text_chars", column_B="n_chars"),
        gxe.ExpectColumnValuesToBeBetween(
            column="quarantine_fraction", min_value=0.0, max_value=config.max_quarantine_fraction
        ),
    ]


def _gate_frame(docs: pa.Table, quarantine_fraction: float) -> pd.DataFrame:
    """The columns the suite needs; text is reduced to its length so the frame stays small."""
    import pyarrow.compute as pc

    return pd.DataFrame(
        {
            "doc_id": docs.column("doc_id").to_pandas(),
            "content_hash": docs.column("content_hash").to_pandas(),
            "text_chars": pc.utf8_length(docs.column("text")).to_pandas(),
            "n_chars": docs.column("n_chars").to_pandas(),
            "quarantine_fraction": quarantine_fraction,
        }
    )


def _record_stats(warehouse, snapshot, shard, stats, output_bytes, quarantine_fraction, elapsed, versions) -> int:
    """Replace the shard's rows in snapshot_shard_stats and quarantine_counts; returns lock retries."""
    wh = warehouse.get_warehouse()
    partition = {"snapshot": snapshot, "shard": shard}
    wh.replace_partition(
        "snapshot_shard_stats",
        partition,
        [
            {
                **partition,
                "n_input_files": stats["n_input_files"],
                "n_records": stats["n_records"],
                "n_docs": stats["n_docs"],
                "n_exact_duplicates": stats["n_exact_duplicates"],
                "n_quarantined": stats["n_quarantined"],
                "input_bytes": stats["input_bytes"],
                "output_bytes": output_bytes,
                "quarantine_fraction": quarantine_fraction,
                "elapsed_s": elapsed,
                "config_hash": versions["config_hash"],
                "code_version": versions["code_version"],
                "materialized_at": pd.Timestamp.now(tz="UTC").to_pydatetime(),
            }
        ],
    )
    counts = dict(stats["quarantine_by_reason"])
    if stats["n_exact_duplicates"]:
        counts["exact_duplicate"] = stats["n_exact_duplicates"]
    wh.replace_partition(
        "quarantine_counts",
        partition,
        [{**partition, "reason": reason, "n": n} for reason, n in sorted(counts.items())],
    )
    return wh.lock_retries


def _progress_logger(context: AssetExecutionContext, n_ranges: int):
    last = [0.0]

    def report(n_records: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 10:
            last[0] = now
            context.log.info(f"{n_records} records read from {n_ranges} record ranges")

    return report
