"""What the readers produce: documents, quarantined records, and the settings that shape them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Document:
    url: str | None
    text: str  # extracted, already normalized text
    source_file: str  # the name given to the reader (a path or s3:// uri string)
    # Byte offset of the record in the (compressed) file for WARC/WET; 0-based line index for JSONL;
    # 0-based row index for Parquet.
    source_offset: int
    fetch_time: str | None = None  # WARC-Date if known, ISO string
    charset: str | None = None  # the encoding actually used to decode


class QuarantineReason(str, Enum):
    """Why a record did not become a document; the values are stored in the quarantine file."""

    EMPTY = "empty"
    BINARY = "binary"
    NON_HTML = "non_html"
    HTTP_STATUS = "http_status"
    UNDECODABLE = "undecodable"
    TOO_LARGE = "too_large"
    TRUNCATED = "truncated"
    TRUNCATED_GZIP = "truncated_gzip"
    MALFORMED_JSON = "malformed_json"
    MALFORMED_RECORD = "malformed_record"
    CORRUPT_FILE = "corrupt_file"  # Parquet: the file or a row group is unreadable; the detail names the rows lost
    EXACT_DUPLICATE = "exact_duplicate"


@dataclass(frozen=True)
class Quarantined:
    source_file: str
    source_offset: int
    url: str | None
    reason: str  # a QuarantineReason value
    detail: str  # human-readable specifics, e.g. "HTTP 404", "declared 5120 bytes, got 812"


@dataclass(frozen=True)
class ReaderConfig:
    text_field: str = "text"  # JSONL / Parquet field holding the text
    url_field: str = "url"
    id_field: str | None = None  # accepted for configs that name one; doc_id is always computed
    max_record_bytes: int = 5_000_000  # raw payload cap -> TOO_LARGE
    max_text_chars: int = 1_000_000  # extracted text cap -> TOO_LARGE
    min_text_chars: int = 1  # shorter -> EMPTY
    extractor: str = "resiliparse"  # "resiliparse" | "trafilatura"


class InputFileError(Exception):
    """An input file that cannot be read at all: the whole partition must fail."""

    def __init__(self, source_file: str, cause: str):
        super().__init__(f"{source_file}: {cause}")
        self.source_file = source_file
        self.cause = cause
