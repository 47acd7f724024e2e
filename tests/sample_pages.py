"""The bundled sample crawl's documents, read with crawlmix's own reader: real text for tests."""

from __future__ import annotations

from pathlib import Path

from crawlmix.ingest.readers import read_records
from crawlmix.ingest.records import Document, ReaderConfig

SAMPLE_FILES = sorted((Path(__file__).resolve().parents[1] / "crawlmix" / "sample" / "snapshots").glob("*/*.warc.gz"))


def sample_documents(files: int | None = None) -> list[Document]:
    """The documents of the first ``files`` WARC files of the sample (all of them by default)."""
    documents = []
    for path in SAMPLE_FILES[:files]:
        with open(path, "rb") as handle:
            documents += [r for r in read_records(handle, str(path), ReaderConfig()) if isinstance(r, Document)]
    return documents
