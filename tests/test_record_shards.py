"""Shards as record ranges: planning cuts at record boundaries and reading byte ranges, on real files.

For every format and for 1, 3, 4, 7 and 16 shards: the shards' reads together are exactly a full
sequential read of each file (same records, same offsets, in order, none lost, none doubled); shards
carry byte loads within 10% of the mean wherever the files allow it; the plan depends only on the
bytes (not on listing order) and one shard planning alone, resolving only its own two cuts, agrees
with the whole plan. The S3 source plans and reads the same through ranged GETs on the moto server.
"""

from __future__ import annotations

import gzip
import random
import string
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawlmix.ingest import (
    Document,
    FileRange,
    InputFileError,
    Quarantined,
    ReaderConfig,
    RecordBoundaries,
    build_shard,
    read_records,
)
from crawlmix.snapshots import (
    SUCCESS_MARKER,
    InputFile,
    LocalSnapshotSource,
    S3SnapshotSource,
    plan_shards,
    shard_input,
)
from tests.ingest_fixtures import (
    conversion_record,
    html_response,
    metadata_record,
    request_record,
    warcinfo_record,
    write_jsonl,
    write_parquet,
    write_warc,
)

CONFIG = ReaderConfig()
SHARD_COUNTS = (1, 3, 4, 7, 16)
MAX_IMBALANCE = 0.10  # |shard bytes - mean| / mean, where the files allow it
FAKE_RECORD = b"\nWARC/1.0\r\nWARC-Type: conversion\r\nContent-Length: 5\r\n\r\nhello\r\n\r\n"


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(("crawl", "shard", "record", "range", "offset", "member")) for _ in range(rng.randint(low, high)))


def _warc_records(n: int, seed: int) -> list[bytes]:
    """A crawl-like mix: pages (more 404s than documents, which keeps extraction time down),
    requests and metadata records, of varied sizes."""
    rng = random.Random(seed)
    records = [warcinfo_record()]
    while len(records) < n:
        i = len(records)
        kind = i % 5
        url = f"https://site{seed}.example/{i}"
        if kind == 1:
            records.append(request_record(url))
        elif kind == 2:
            records.append(metadata_record(url))
        else:
            body = f"<html><body><h1>Page {i}</h1><p>{_words(rng, 5, 250)}</p></body></html>"
            records.append(html_response(url, body, status="200 OK" if kind == 0 else "404 Not Found"))
    return records


def _conversions(n: int, seed: int, fake_at: int | None = None) -> list[bytes]:
    rng = random.Random(seed)
    records = []
    for i in range(n):
        text = f"Document {i} of {seed}.\n{_words(rng, 5, 200)}".encode()
        if i == fake_at:  # a record quoted in a payload must not be taken for a record start
            text += FAKE_RECORD + b"more text after the quoted record\n"
        records.append(conversion_record(f"https://text{seed}.example/{i}", text))
    return records


def _jsonl_lines(n: int, seed: int) -> list:
    rng = random.Random(seed)
    lines: list = [{"text": f"Line {i}: {_words(rng, 3, 120)}", "url": f"https://j{seed}.example/{i}"} for i in range(n)]
    lines[7] = b"{not json\n"
    lines[11] = b"\n"
    return lines


def _parquet_columns(n: int, seed: int, random_letters: bool = False) -> dict[str, list]:
    """Rows of text (every 50th null: quarantined) and URLs; random letters do not compress, so
    row groups keep similar byte sizes."""
    rng = random.Random(seed)

    def text(i: int) -> str:
        if random_letters:
            return f"Row {i}: " + "".join(rng.choices(string.ascii_lowercase + " ", k=rng.randint(150, 350)))
        return f"Row {i}: {_words(rng, 20, 60)}"

    return {
        "text": [text(i) if i % 50 else None for i in range(n)],
        "url": [f"https://p{seed}.example/{i}" for i in range(n)],
    }


def _write_case(folder: Path, case: str) -> None:
    folder.mkdir(parents=True)
    if case == "warc-gz":
        write_warc(folder / "crawl.warc.gz", _warc_records(2000, seed=1))
    elif case == "warc":
        records = _warc_records(300, seed=2)
        records[150] = _conversions(1, seed=2, fake_at=0)[0]  # skipped by a WARC reader, but a boundary
        write_warc(folder / "crawl.warc", records)
    elif case == "wet":
        write_warc(folder / "text.wet", _conversions(400, seed=3, fake_at=200))
    elif case == "jsonl":
        write_jsonl(folder / "lines.jsonl", _jsonl_lines(2000, seed=4))
    elif case == "parquet-one-group":
        write_parquet(folder / "rows.parquet", _parquet_columns(300, seed=5), row_group_size=1000)
    elif case == "parquet-many-groups":
        # 250 row groups of ~4 KB. Without column statistics: Arrow writes hundreds of bytes of them
        # per row group into the footer, which for row groups this small would make the footer, bytes
        # of no row group, a large share of the file (real row groups are megabytes).
        table = pa.table(_parquet_columns(4000, seed=6, random_letters=True))
        pq.write_table(table, folder / "rows.parquet", row_group_size=16, write_statistics=False)
    elif case == "jsonl-gz":
        write_jsonl(folder / "lines.jsonl.gz", _jsonl_lines(500, seed=7))
    elif case == "warc-gzipped-whole":
        (folder / "crawl.warc.gz").write_bytes(gzip.compress(b"".join(_warc_records(60, seed=8)), mtime=0))
    elif case == "mix":  # one huge file and several tiny ones, of every kind, and an empty one
        (folder / "big").mkdir()
        write_warc(folder / "big" / "huge.warc.wet.gz", _conversions(600, seed=9))
        write_jsonl(folder / "a-tiny.jsonl", _jsonl_lines(12, seed=10)[:3])
        write_jsonl(folder / "b-tiny.jsonl.gz", _jsonl_lines(12, seed=11)[:3])
        write_parquet(folder / "c-tiny.parquet", _parquet_columns(3, seed=12))
        write_warc(folder / "d-tiny.warc", _warc_records(3, seed=13))
        (folder / "e-empty.jsonl").write_bytes(b"")
        write_warc(folder / "z-tiny.warc.gz", _warc_records(4, seed=14))
    else:
        raise ValueError(case)
    (folder / SUCCESS_MARKER).touch()


CASES = ("warc-gz", "warc", "wet", "jsonl", "parquet-one-group", "parquet-many-groups", "jsonl-gz",
         "warc-gzipped-whole", "mix")  # fmt: skip
BALANCED_CASES = ("warc-gz", "warc", "wet", "jsonl", "parquet-many-groups", "mix")
WHOLE_FILE_CASES = ("parquet-one-group", "jsonl-gz", "warc-gzipped-whole")  # one record or one stream


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> LocalSnapshotSource:
    root = tmp_path_factory.mktemp("snapshots")
    for case in CASES:
        _write_case(root / case, case)
    return LocalSnapshotSource(str(root))


def _key(item: Document | Quarantined) -> tuple:
    if isinstance(item, Document):
        return ("doc", item.source_offset, item.url, item.text)
    return ("quarantined", item.source_offset, item.url, item.reason)


def _read_range(open_input, r: FileRange) -> list[tuple]:
    with open_input(r.uri, r.start) as stream:
        end = None if r.reaches_file_end else r.end
        return [_key(item) for item in read_records(stream, r.uri, CONFIG, r.start, end)]


_FULL_READS: dict[tuple[str, str], list[tuple]] = {}


def _full_read(source: LocalSnapshotSource, f: InputFile) -> list[tuple]:
    """The whole file read sequentially from its first byte: the reference (cached, read once)."""
    if (source.root, f.uri) not in _FULL_READS:
        with open(f.uri, "rb") as stream:
            _FULL_READS[(source.root, f.uri)] = [_key(item) for item in read_records(stream, f.uri, CONFIG)]
    return _FULL_READS[(source.root, f.uri)]


def _imbalance(plan) -> float:
    loads = [shard.input_bytes for shard in plan.values()]
    mean = sum(loads) / len(loads)
    return max(abs(load - mean) for load in loads) / mean


def _ranges_by_file(plan) -> dict[str, list[FileRange]]:
    by_file = defaultdict(list)
    for shard in plan.values():  # shard order
        for r in shard.ranges:
            by_file[r.name].append(r)
    return by_file


# ---------------------------------------------------------------------------------------------
# The plan covers every byte once, and reading it gives every record once


@pytest.mark.parametrize("n_shards", SHARD_COUNTS)
@pytest.mark.parametrize("case", CASES)
def test_shard_reads_together_are_a_full_sequential_read(source, case, n_shards):
    files = source.listing(case).input_files

    plan = plan_shards(files, n_shards, source.open_input)

    assert list(plan) == [f"{k:03d}" for k in range(n_shards)]
    by_file = _ranges_by_file(plan)
    assert sorted(by_file) == sorted(f.name for f in files)
    for f in files:
        ranges = by_file[f.name]
        # Contiguous, in order, from the first byte to the last: no byte of the file unread or read twice.
        assert [r.start for r in ranges] == [0] + [r.end for r in ranges[:-1]]
        assert ranges[-1].end == f.size and all(r.file_size == f.size for r in ranges)
        assert all(r.n_bytes > 0 for r in ranges) or (f.size == 0 and len(ranges) == 1)
        pieces = [item for r in ranges for item in _read_range(source.open_input, r)]
        assert pieces == _full_read(source, f), f"{case}/{f.name} with {n_shards} shards"
    assert sum(shard.input_bytes for shard in plan.values()) == sum(f.size for f in files)


@pytest.mark.parametrize("case", BALANCED_CASES)
def test_shards_carry_bytes_within_ten_percent_of_the_mean(source, case):
    files = source.listing(case).input_files
    imbalance = {n: _imbalance(plan_shards(files, n, source.open_input)) for n in SHARD_COUNTS}

    assert max(imbalance.values()) <= MAX_IMBALANCE, imbalance


@pytest.mark.parametrize("case", WHOLE_FILE_CASES)
def test_a_file_that_cannot_be_cut_is_read_whole_by_one_shard(source, case):
    (f,) = source.listing(case).input_files

    plan = plan_shards([f], 4, source.open_input)

    holders = [shard for shard in plan.values() if shard.ranges]
    assert len(holders) == 1 and holders[0].ranges == [FileRange.whole(f.name, f.uri, f.size)]
    reported = {name for shard in plan.values() for name in shard.unsplittable_files}
    # One compressed stream is reported; one Parquet row group is just one record, always whole.
    assert reported == (set() if case == "parquet-one-group" else {f.name})


def test_the_mix_reports_only_the_stream_its_cuts_fell_into(source):
    files = source.listing("mix").input_files
    plan = plan_shards(files, 4, source.open_input)

    assert all(shard.unsplittable_files == [] for shard in plan.values())  # the cuts fall in the huge file
    assert len(_ranges_by_file(plan)["big/huge.warc.wet.gz"]) == 4


# ---------------------------------------------------------------------------------------------
# Determinism: bytes and n decide, listing order does not; each shard can plan alone


@pytest.mark.parametrize("case", ["warc-gz", "mix"])
def test_plan_is_stable_under_relisting_and_each_shard_plans_alone(source, case):
    files = source.listing(case).input_files
    shuffled = files[:]
    random.Random(3).shuffle(shuffled)
    opened = []

    @contextmanager
    def counting_open(uri, start):
        opened.append((uri, start))
        with source.open_input(uri, start) as stream:
            yield stream

    for n_shards in SHARD_COUNTS:
        plan = plan_shards(files, n_shards, source.open_input)
        assert plan_shards(shuffled, n_shards, source.open_input) == plan
        for key, expected in plan.items():
            opened.clear()
            assert shard_input(shuffled, n_shards, key, counting_open) == expected
            # The cut file's first gzip member probed once, then one short scan per cut.
            assert len(opened) <= 3, opened


def test_more_shards_than_records_gives_empty_shards_that_read_nothing(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    write_warc(folder / "three.warc.gz", [html_response(f"https://t.example/{i}", f"<p>Tiny page {i}</p>") for i in range(3)])
    (folder / SUCCESS_MARKER).touch()
    source = LocalSnapshotSource(str(tmp_path))
    files = source.listing("tiny").input_files

    plan = plan_shards(files, 16, source.open_input)

    assert sum(1 for shard in plan.values() if shard.ranges) == 3
    results = [build_shard(shard.ranges, source.open_input, "tiny", key, CONFIG) for key, shard in plan.items()]
    assert [r.stats["n_records"] for r in results if r.stats["n_ranges"] == 0] == [0] * 13
    assert sorted(r.stats["n_docs"] for r in results) == [0] * 13 + [1, 1, 1]


def test_an_empty_or_dangling_file_goes_to_exactly_one_shard(tmp_path):
    folder = tmp_path / "snap"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"text": f"line {i}"} for i in range(50)])
    (folder / "b-gone.jsonl").symlink_to(folder / "nowhere.jsonl")
    write_jsonl(folder / "c.jsonl", [{"text": f"more {i}"} for i in range(50)])
    (folder / "d-empty.jsonl").write_bytes(b"")
    (folder / SUCCESS_MARKER).touch()
    source = LocalSnapshotSource(str(tmp_path))
    files = source.listing("snap").input_files

    for n_shards in (1, 2, 5, 16):
        plan = plan_shards(files, n_shards, source.open_input)
        holders = {name: [key for key, s in plan.items() for r in s.ranges if r.name == name]
                   for name in ("b-gone.jsonl", "d-empty.jsonl")}  # fmt: skip
        assert all(len(keys) == 1 for keys in holders.values()), holders
        assert holders["d-empty.jsonl"] == [f"{n_shards - 1:03d}"]  # at the very end: the last shard
        with pytest.raises(InputFileError, match="b-gone.jsonl"):
            shard = plan[holders["b-gone.jsonl"][0]]
            build_shard(shard.ranges, source.open_input, "snap", shard.shard, CONFIG)


# ---------------------------------------------------------------------------------------------
# Shards built from ranges: the same documents and ids as one shard reading everything


def test_documents_and_ids_do_not_depend_on_the_shard_count(source):
    files = source.listing("mix").input_files

    def docs(n_shards: int) -> list[tuple]:
        plan = plan_shards(files, n_shards, source.open_input)
        rows = []
        for key, shard in plan.items():
            result = build_shard(shard.ranges, source.open_input, "mix", key, CONFIG)
            rows += [(d["doc_id"], d["source_file"], d["source_offset"], d["text"]) for d in result.docs.to_pylist()]
        return rows

    one = docs(1)
    assert len(one) > 600 and len({row[0] for row in one}) == len(one)
    assert docs(7) == one


# ---------------------------------------------------------------------------------------------
# Where files can be cut


def test_a_payload_quoting_a_record_is_not_a_cut(source):
    (f,) = source.listing("wet").input_files
    data = Path(f.uri).read_bytes()
    quoted = data.index(FAKE_RECORD) + 1  # the quoted version line, at a line start
    boundaries = RecordBoundaries(f.name, f.size, lambda offset: source.open_input(f.uri, offset))

    next_record = boundaries.at_or_after(quoted - 5)

    assert next_record > quoted and data[next_record - 1 : next_record + 9] == b"\nWARC/1.0\r"
    offsets = [item[1] for item in _full_read(source, f)]
    assert next_record in offsets and quoted not in offsets


def test_which_files_can_be_cut(source, tmp_path):
    def boundaries(case: str) -> RecordBoundaries:
        (f,) = source.listing(case).input_files
        return RecordBoundaries(f.name, f.size, lambda offset: source.open_input(f.uri, offset))

    assert boundaries("warc-gz").splittable()
    assert not boundaries("warc-gzipped-whole").splittable()
    one_group = boundaries("parquet-one-group")
    assert one_group.at_or_after(5) == one_group.size  # its only split point is its first row group

    def never_opened(offset):
        raise AssertionError("a compressed JSONL stream is known by its name")

    assert not RecordBoundaries("x.jsonl.gz", 10_000, never_opened).splittable()
    assert not RecordBoundaries("x.jsonl.zst", 10_000, never_opened).splittable()

    # A Parquet footer that cannot be read: the file stays whole (its one reader quarantines it).
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 100 + b"PAR1")
    assert not RecordBoundaries(broken.name, 108, lambda offset: _open_local(str(broken), offset)).splittable()


@pytest.mark.parametrize("statistics", [False, True], ids=["small footer", "footer over 64 KB"])
def test_parquet_split_points_are_row_group_starts_from_the_footer(tmp_path, statistics):
    path = tmp_path / "rows.parquet"
    table = pa.table(_parquet_columns(3000, seed=15, random_letters=True))
    pq.write_table(table, path, row_group_size=15, write_statistics=statistics)
    metadata = pq.read_metadata(path)
    starts = [min(metadata.row_group(g).column(c).dictionary_page_offset or metadata.row_group(g).column(c).data_page_offset
                  for c in range(2)) for g in range(metadata.num_row_groups)]  # fmt: skip
    assert (metadata.serialized_size > 64 * 1024) == statistics
    boundaries = RecordBoundaries(path.name, path.stat().st_size, lambda offset: _open_local(str(path), offset))

    assert [boundaries.at_or_after(start - 1) for start in starts[1:]] == starts[1:]
    assert [boundaries.at_or_after(start + 1) for start in starts[:-1]] == starts[1:]
    assert boundaries.at_or_after(starts[-1] + 1) == path.stat().st_size


@contextmanager
def _open_local(path: str, start: int):
    with open(path, "rb") as stream:
        stream.seek(start)
        yield stream


def test_parquet_range_after_the_first_byte_needs_a_seekable_input(source):
    (f,) = source.listing("parquet-many-groups").input_files
    plan = plan_shards([f], 2, source.open_input)
    second = plan["001"].ranges[0]

    class Unseekable:
        def __init__(self, stream):
            self._stream = stream

        def read(self, size=-1):
            return self._stream.read(size)

    with source.open_input(f.uri, second.start) as stream:
        with pytest.raises(InputFileError, match="needs a seekable input"):
            list(read_records(Unseekable(stream), f.uri, CONFIG, second.start, None))


def test_a_compressed_jsonl_stream_is_only_read_whole(source):
    (f,) = source.listing("jsonl-gz").input_files
    with source.open_input(f.uri, 0) as stream:
        with pytest.raises(ValueError, match="only be read whole"):
            list(read_records(stream, f.uri, CONFIG, 0, f.size // 2))


# ---------------------------------------------------------------------------------------------
# S3: ranged GETs on the moto server


S3_CASES = ("warc-gz", "wet", "parquet-many-groups", "jsonl-gz")  # cut by member, line scan, footer; whole


def test_s3_source_plans_and_reads_ranges_like_the_local_one(source, s3_client, s3_bucket):
    for case in S3_CASES:
        for path in sorted(Path(source.root, case).rglob("*")):
            if path.is_file() and path.name != SUCCESS_MARKER:
                s3_client.upload_file(str(path), s3_bucket, f"snaps/{case}/{path.relative_to(Path(source.root, case)).as_posix()}")
        s3_client.put_object(Bucket=s3_bucket, Key=f"snaps/{case}/{SUCCESS_MARKER}", Body=b"")
    s3 = S3SnapshotSource(f"s3://{s3_bucket}/snaps", s3_client)

    for case in S3_CASES:
        local_files = source.listing(case).input_files
        s3_files = s3.listing(case).input_files
        assert [(f.name, f.size) for f in s3_files] == [(f.name, f.size) for f in local_files]
        local_plan = plan_shards(local_files, 4, source.open_input)
        s3_plan = plan_shards(s3_files, 4, s3.open_input)
        assert _spans(s3_plan) == _spans(local_plan), case
        for local_file, s3_file in zip(local_files, s3_files):
            pieces = [item for r in _ranges_by_file(s3_plan)[s3_file.name] for item in _read_range(s3.open_input, r)]
            assert pieces == _full_read(source, local_file), f"{case}/{s3_file.name}"


def _spans(plan) -> dict:
    return {key: [(r.name, r.start, r.end) for r in shard.ranges] for key, shard in plan.items()}


def test_s3_input_opens_at_an_offset_and_seeks(s3_client, s3_bucket):
    data = bytes(range(256)) * 40
    s3_client.put_object(Bucket=s3_bucket, Key="snaps/s/f.jsonl", Body=data)
    s3_client.put_object(Bucket=s3_bucket, Key="snaps/s/empty.jsonl", Body=b"")
    s3 = S3SnapshotSource(f"s3://{s3_bucket}/snaps", s3_client)
    uri = f"s3://{s3_bucket}/snaps/s/f.jsonl"

    with s3.open_input(uri, 1000) as stream:
        assert stream.read(10) == data[1000:1010]
        assert stream.tell() == 1010
        stream.seek(-4, 2)
        assert stream.read() == data[-4:]
        stream.seek(5000)
        assert stream.read(3) == data[5000:5003]
        stream.seek(len(data))
        assert stream.read(10) == b""
    with s3.open_input(uri, len(data)) as stream:
        assert stream.read() == b""
    with s3.open_input(f"s3://{s3_bucket}/snaps/s/empty.jsonl") as stream:
        assert stream.read() == b""
