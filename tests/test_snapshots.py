import random

import pytest

from crawlmix.snapshots import (
    InputFile,
    LocalSnapshotSource,
    SnapshotError,
    plan_shards,
    shard_input,
    validate_snapshot_id,
)


@pytest.mark.parametrize("good", ["CC-MAIN-2024-10", "snap_1", "2026.11.23", "a"])
def test_valid_snapshot_ids(good):
    assert validate_snapshot_id(good) == good


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a\\b", "../etc", "a..b", ".hidden", "sp ace", "x" * 129, "é"])
def test_invalid_snapshot_ids_are_rejected(bad):
    with pytest.raises(SnapshotError, match="invalid snapshot id"):
        validate_snapshot_id(bad)


def _snapshot(tmp_path, n_files: int, seed: int = 0) -> tuple[LocalSnapshotSource, list[InputFile]]:
    """A snapshot of JSONL files of random sizes (1 to 400 lines)."""
    rng = random.Random(seed)
    folder = tmp_path / "snap"
    folder.mkdir()
    for i in range(n_files):
        lines = [f'{{"text": "file {i} line {j}"}}\n' for j in range(rng.randint(1, 400))]
        (folder / f"part-{i:05d}.jsonl").write_text("".join(lines))
    (folder / "_SUCCESS").touch()
    source = LocalSnapshotSource(str(tmp_path))
    return source, source.listing("snap").input_files


def test_shard_plan_is_stable_under_relisting(tmp_path):
    source, files = _snapshot(tmp_path, 37)
    shuffled = files[:]
    random.Random(1).shuffle(shuffled)

    plan = plan_shards(files, 5, source.open_input)

    assert plan_shards(shuffled, 5, source.open_input) == plan
    assert {key: shard_input(shuffled, 5, key, source.open_input) for key in plan} == plan


def test_shard_plan_covers_every_byte_once_and_balances_bytes(tmp_path):
    source, files = _snapshot(tmp_path, 200)

    plan = plan_shards(files, 8, source.open_input)

    ranges = sorted((r for shard in plan.values() for r in shard.ranges), key=lambda r: (r.name, r.start))
    covered: dict[str, int] = {}
    for r in ranges:
        assert r.start == covered.get(r.name, 0)  # each range starts where the file's previous one ended
        covered[r.name] = r.end
    assert covered == {f.name: f.size for f in files}
    loads = [shard.input_bytes for shard in plan.values()]
    mean = sum(f.size for f in files) / 8
    assert max(abs(load - mean) for load in loads) <= 0.1 * mean


def test_more_shards_than_records_leaves_empty_shards(tmp_path):
    folder = tmp_path / "snap"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"text": "one"}\n')
    (folder / "b.jsonl").write_text('{"text": "two"}\n')
    source = LocalSnapshotSource(str(tmp_path))

    plan = plan_shards(source.listing("snap").input_files, 4, source.open_input)

    assert sorted(len(shard.ranges) for shard in plan.values()) == [0, 0, 1, 1]


def test_unknown_shard_and_bad_shard_counts_are_rejected(tmp_path):
    source, files = _snapshot(tmp_path, 2)
    with pytest.raises(ValueError, match="unknown shard '004'"):
        shard_input(files, 4, "004", source.open_input)
    with pytest.raises(ValueError, match="at least 1"):
        plan_shards(files, 0, source.open_input)


def test_local_source_lists_complete_snapshots_and_supported_files(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "a.warc.gz").write_bytes(b"x")
    (tmp_path / "done" / "sub").mkdir()
    (tmp_path / "done" / "sub" / "b.jsonl").write_bytes(b"{}")
    (tmp_path / "done" / "notes.txt").write_text("hi")
    (tmp_path / "done" / "_SUCCESS").touch()
    (tmp_path / "in-progress").mkdir()
    (tmp_path / "in-progress" / "c.warc.gz").write_bytes(b"x")
    (tmp_path / "bad name").mkdir()
    (tmp_path / "bad name" / "_SUCCESS").touch()

    source = LocalSnapshotSource(str(tmp_path))
    complete, rejected = source.complete_snapshots()
    assert complete == ["done"]
    assert len(rejected) == 1 and "bad name" in rejected[0]
    listing = source.listing("done")
    assert [f.name for f in listing.input_files] == ["a.warc.gz", "sub/b.jsonl"]
    assert listing.ignored_files == ["notes.txt"]
    with source.open_input(listing.input_files[0].uri) as handle:
        assert handle.read() == b"x"
    with source.open_input(listing.input_files[1].uri, 1) as handle:
        assert handle.read() == b"}"
