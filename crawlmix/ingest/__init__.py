"""Ingestion library: crawl files (WARC, WET, JSONL, Parquet) to normalized, deduplicated documents.

Pure Python, no Dagster: the `raw_corpus` asset calls `build_shard` on the record ranges that
`crawlmix.snapshots` plans with `RecordBoundaries`.
"""

from crawlmix.ingest.boundaries import RecordBoundaries
from crawlmix.ingest.extract import EXTRACTORS, extract_main_text
from crawlmix.ingest.readers import SUPPORTED_SUFFIXES, detect_format, is_supported, read_records, splittable_by_name
from crawlmix.ingest.records import (
    Document,
    FileRange,
    InputFileError,
    Quarantined,
    QuarantineReason,
    ReaderConfig,
)
from crawlmix.ingest.shard import DOCS_SCHEMA, QUARANTINE_SCHEMA, ShardResult, build_shard
from crawlmix.ingest.text import (
    UndecodableError,
    content_hash,
    count_words,
    decode_html_bytes,
    decode_text_bytes,
    make_doc_id,
    normalize_text,
)

__all__ = [
    "DOCS_SCHEMA",
    "EXTRACTORS",
    "QUARANTINE_SCHEMA",
    "SUPPORTED_SUFFIXES",
    "Document",
    "FileRange",
    "InputFileError",
    "Quarantined",
    "QuarantineReason",
    "ReaderConfig",
    "RecordBoundaries",
    "ShardResult",
    "UndecodableError",
    "build_shard",
    "content_hash",
    "count_words",
    "decode_html_bytes",
    "decode_text_bytes",
    "detect_format",
    "extract_main_text",
    "is_supported",
    "make_doc_id",
    "normalize_text",
    "read_records",
    "splittable_by_name",
]
