"""build_shard end to end: every format, input order, exact dedup, stable ids, unreadable inputs.
Record ranges smaller than a file are covered in test_record_shards.py."""

from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest

from crawlmix.ingest import (
    DOCS_SCHEMA,
    QUARANTINE_SCHEMA,
    FileRange,
    InputFileError,
    ReaderConfig,
    build_shard,
    content_hash,
    make_doc_id,
)
from tests.ingest_fixtures import (
    ARTICLE_PARAGRAPHS,
    NonSeekable,
    conversion_record,
    corrupt_bytes,
    html_response,
    realistic_html,
    request_record,
    warcinfo_record,
    write_jsonl,
    write_parquet,
    write_warc,
)

CONFIG = ReaderConfig()


def page(i: int) -> str:
    return realistic_html(f"Story {i}", [f"Story {i} begins here. {p}" for p in ARTICLE_PARAGRAPHS])


@contextmanager
def open_local(name: str, start: int):
    with open(name, "rb") as stream:
        stream.seek(start)
        yield stream


@contextmanager
def open_like_s3(name: str, start: int):
    yield NonSeekable(Path(name).read_bytes()[start:])


def whole_files(files) -> list[FileRange]:
    """Each file as one range, named by its base name as in a snapshot folder."""
    return [FileRange.whole(Path(f).name, str(f), Path(f).stat().st_size if Path(f).exists() else 0) for f in files]


def build(files, config: ReaderConfig = CONFIG, open_input=open_local, **kwargs):
    return build_shard(whole_files(files), open_input, "CC-MAIN-2024-10", "00003", config, **kwargs)


@pytest.fixture()
def one_of_each(tmp_path) -> list[Path]:
    """Six files, one per format, each with two documents, one bad record and one copy of a page
    that also occurs in another file."""
    shared = "This exact text appears in two files of the shard."
    warc_gz = tmp_path / "a.warc.gz"
    write_warc(
        warc_gz,
        [
            warcinfo_record(),
            request_record("https://w/1"),
            html_response("https://w/1", page(1)),
            html_response("https://w/404", page(9), status="404 Not Found"),
            html_response("https://w/2", page(2)),
        ],
    )
    warc = tmp_path / "b.warc"
    write_warc(warc, [html_response("https://v/3", page(3)), html_response("https://v/1-copy", page(1))])
    wet = tmp_path / "c.warc.wet.gz"
    conversions = [conversion_record("https://t/1", "Plain text one."), conversion_record("https://t/2", shared)]
    write_warc(wet, [warcinfo_record(), *conversions])
    jsonl_gz = tmp_path / "d.jsonl.gz"
    write_jsonl(
        jsonl_gz, [{"text": "JSON one.", "url": "https://j/1"}, b"{oops\n", {"text": shared, "url": "https://j/2"}]
    )
    jsonl_zst = tmp_path / "e.jsonl.zst"
    write_jsonl(jsonl_zst, [{"text": "Zstd one."}, {"text": "Zstd two."}])
    parquet = tmp_path / "f.parquet"
    write_parquet(
        parquet,
        {"text": ["Parquet one.", None, "Parquet two."], "url": ["https://p/1", "https://p/2", "https://p/3"]},
    )
    return [warc_gz, warc, wet, jsonl_gz, jsonl_zst, parquet]


@pytest.mark.parametrize("open_input", [open_local, open_like_s3])
def test_every_format_end_to_end(one_of_each, open_input):
    progress_calls = []

    result = build(one_of_each, open_input=open_input, progress=progress_calls.append)

    docs, quarantine, stats = result.docs, result.quarantine, result.stats
    assert docs.schema == DOCS_SCHEMA and quarantine.schema == QUARANTINE_SCHEMA
    assert docs.column("url").to_pylist() == [
        "https://w/1",
        "https://w/2",
        "https://v/3",
        "https://t/1",
        "https://t/2",
        "https://j/1",
        None,
        None,
        "https://p/1",
        "https://p/3",
    ]
    assert set(docs.column("snapshot").to_pylist()) == {"CC-MAIN-2024-10"}
    assert set(docs.column("shard").to_pylist()) == {"00003"}
    assert docs.column("source_file").to_pylist()[:3] == [str(one_of_each[0])] * 2 + [str(one_of_each[1])]
    texts = docs.column("text").to_pylist()
    assert docs.column("n_chars").to_pylist() == [len(t) for t in texts]
    assert docs.column("content_hash").to_pylist() == [content_hash(t) for t in texts]
    assert docs.column("fetch_time").null_count == 5  # JSONL and Parquet carry no fetch time
    assert len(set(docs.column("doc_id").to_pylist())) == 10

    reasons = quarantine.column("reason").to_pylist()
    assert sorted(reasons) == [
        "exact_duplicate",
        "exact_duplicate",
        "http_status",
        "malformed_json",
        "malformed_record",
    ]
    assert stats == {
        "n_input_files": 6,
        "n_ranges": 6,
        "n_records": 15,
        "n_docs": 10,
        "n_exact_duplicates": 2,
        "n_quarantined": 3,
        "n_blocked_urls": 0,
        "quarantine_by_reason": {"http_status": 1, "malformed_json": 1, "malformed_record": 1},
        "input_bytes": sum(f.stat().st_size for f in one_of_each),
        "elapsed_s": stats["elapsed_s"],
    }
    assert progress_calls[-1] == 15


def test_exact_duplicates_point_at_the_kept_document(one_of_each):
    result = build(one_of_each)

    docs = result.docs.to_pylist()
    duplicates = [row for row in result.quarantine.to_pylist() if row["reason"] == "exact_duplicate"]
    kept_by_id = {d["doc_id"]: d for d in docs}
    assert [(d["url"], kept_by_id[d["detail"]]["url"]) for d in duplicates] == [
        ("https://v/1-copy", "https://w/1"),
        ("https://j/2", "https://t/2"),
    ]
    assert duplicates[0]["source_file"] == str(one_of_each[1])


def test_doc_ids_are_stable_and_name_snapshot_file_and_offset(one_of_each):
    first = build(one_of_each).docs.column("doc_id").to_pylist()
    second = build(one_of_each).docs.column("doc_id").to_pylist()

    assert first == second
    docs = build(one_of_each).docs.to_pylist()
    # The file's name inside the snapshot, not its absolute location: a snapshot moved to another
    # root (or to S3) keeps its doc ids.
    assert all(
        d["doc_id"] == make_doc_id("CC-MAIN-2024-10", Path(d["source_file"]).name, d["source_offset"]) for d in docs
    )


def test_same_text_different_url_is_still_an_exact_duplicate(tmp_path):
    path = tmp_path / "d.jsonl"
    write_jsonl(path, [{"text": "Same words.", "url": "https://a/1"}, {"text": "Same words.  ", "url": "https://b/2"}])

    result = build([path])

    assert result.stats["n_docs"] == 1 and result.stats["n_exact_duplicates"] == 1
    assert result.quarantine.column("url").to_pylist() == ["https://b/2"]


def test_corrupt_member_loses_only_its_record(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    offsets = write_warc(path, [html_response(f"https://w/{i}", page(i)) for i in range(6)])
    corrupt_bytes(path, offsets[3] + 50, 30)

    result = build([path], open_input=open_like_s3)

    assert result.docs.column("url").to_pylist() == [f"https://w/{i}" for i in (0, 1, 2, 4, 5)]
    assert result.quarantine.to_pylist() == [
        {
            "snapshot": "CC-MAIN-2024-10",
            "shard": "00003",
            "source_file": str(path),
            "source_offset": offsets[3],
            "url": None,
            "reason": "truncated_gzip",
            "detail": result.quarantine.column("detail")[0].as_py(),
        }
    ]
    assert result.stats["quarantine_by_reason"] == {"truncated_gzip": 1}


def test_missing_input_file_names_it(tmp_path, one_of_each):
    missing = tmp_path / "gone.warc.gz"

    with pytest.raises(InputFileError) as failure:
        build([one_of_each[0], missing])

    assert failure.value.source_file == str(missing)
    assert str(missing) in str(failure.value)


def test_any_failure_to_open_is_an_input_file_error():
    @contextmanager
    def denied(name, start):
        raise PermissionError(13, "Access Denied")
        yield

    with pytest.raises(InputFileError, match=r"s3://bucket/x\.jsonl\.gz: PermissionError"):
        build_shard([FileRange.whole("x.jsonl.gz", "s3://bucket/x.jsonl.gz", 10)], denied, "s", "0", CONFIG)


def test_stream_failing_mid_read_is_an_input_file_error(tmp_path):
    path = tmp_path / "crawl.warc.gz"
    write_warc(path, [html_response(f"https://w/{i}", page(i)) for i in range(20)])

    class ResetMidway(io.RawIOBase):
        def __init__(self):
            self._data = io.BytesIO(path.read_bytes())

        def read(self, size=-1):
            if self._data.tell() > 5000:
                raise ConnectionResetError("connection reset by peer")
            return self._data.read(min(size, 4096) if size > 0 else 4096)

    @contextmanager
    def flaky(name, start):
        yield ResetMidway()

    with pytest.raises(InputFileError, match="connection reset"):
        build([path], open_input=flaky)


def test_empty_shard_has_typed_empty_tables():
    result = build_shard([], open_local, "s", "0", CONFIG)

    assert result.docs.num_rows == 0 and result.docs.schema == DOCS_SCHEMA
    assert result.quarantine.num_rows == 0 and result.quarantine.schema == QUARANTINE_SCHEMA
    assert result.stats["n_records"] == 0


def test_lone_surrogates_from_json_do_not_break_the_table(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = [b'{"text": "broken \\ud800 surrogate", "url": "https://a/\\udc00"}\n', b'{"url": "https://b/\\ud800"}\n']
    write_jsonl(path, lines)

    result = build([path])

    assert result.docs.column("text").to_pylist() == ["broken  surrogate"]
    assert result.docs.column("url").to_pylist() == ["https://a/\ufffd"]
    assert result.quarantine.column("url").to_pylist() == ["https://b/\ufffd"]
    pa.Table.from_pylist(result.docs.to_pylist(), schema=DOCS_SCHEMA)


@pytest.mark.parametrize("extractor", ["resiliparse", "trafilatura"])
def test_both_extractors_through_build_shard(tmp_path, extractor):
    path = tmp_path / "x.warc.gz"
    write_warc(path, [html_response("https://w/1", page(1))])

    result = build([path], ReaderConfig(extractor=extractor))

    (text,) = result.docs.column("text").to_pylist()
    assert ARTICLE_PARAGRAPHS[0] in text and "Copyright" not in text
