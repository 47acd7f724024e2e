"""What the readers produce: documents, quarantined records, and the settings that shape them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Document:
    url: str | None
    text: str  # extracted, already normalized text
    source_file: str  # the name given to the reader (a path or s3:// uri string)
    # Where the record sits in its file, unique per record: WARC/WET, the record's byte offset (in a
    # .gz file its gzip member's offset, plus the record's index in the member when one member holds
    # several); JSONL, the byte offset of the line's start in the decompressed file; Parquet, the
    # 0-based row index.
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
    BLOCKED_URL = "blocked_url"  # on a URL blocklist the user named; the detail names the list and entry


# Records removed by policy rather than for being bad input: they do not count towards the share of
# a shard's records that the raw_corpus gate judges.
POLICY_REASONS = frozenset({QuarantineReason.EXACT_DUPLICATE.value, QuarantineReason.BLOCKED_URL.value})


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


@dataclass(frozen=True)
class FileRange:
    """Part of one input file that one shard reads: the records whose split offset lies in
    [start, end). A record's split offset is where a reader can start to reach it: a WARC/WET
    record's byte offset (its gzip member's in a .gz file), a JSONL line's start, a Parquet row
    group's first byte. Files that cannot be split are only ever whole: [0, file_size)."""

    name: str  # path relative to the snapshot folder, '/'-separated: part of every doc id
    uri: str  # what the shard opens, and what its records give as source_file
    start: int
    end: int
    file_size: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end <= self.file_size:
            raise ValueError(
                f"{self.name}: byte range [{self.start}, {self.end}) does not fit a file of {self.file_size} bytes"
            )

    @classmethod
    def whole(cls, name: str, uri: str, file_size: int) -> FileRange:
        return cls(name, uri, 0, file_size, file_size)

    @property
    def n_bytes(self) -> int:
        return self.end - self.start

    @property
    def reaches_file_end(self) -> bool:
        """Read to the end of the file: compressed JSONL offsets run past the compressed size."""
        return self.end >= self.file_size
