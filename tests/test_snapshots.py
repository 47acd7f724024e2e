import random

import pytest

from crawlmix.snapshots import (
    InputFile,
    LocalSnapshotSource,
    SnapshotError,
    assign_shards,
    validate_snapshot_id,
)


@pytest.mark.parametrize("good", ["CC-MAIN-2024-10", "snap_1", "2026.11.23", "a"])
def test_valid_snapshot_ids(good):
    assert validate_snapshot_id(good) == good


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a\\b", "../etc", "a..b", ".hidden", "sp ace", "x" * 129, "é"])
def test_invalid_snapshot_ids_are_rejected(bad):
    with pytest.raises(SnapshotError, match="invalid snapshot id"):
        validate_snapshot_id(bad)


def _files(n, seed=0):
    rng = random.Random(seed)
    return [InputFile(name=f"part-{i:05d}.warc.gz", size=rng.randint(1, 10_000), uri=f"/x/{i}") for i in range(n)]


def test_shard_assignment_is_stable_under_relisting():
    files = _files(37)
    shuffled = files[:]
    random.Random(1).shuffle(shuffled)
    assert assign_shards(files, 5) == assign_shards(shuffled, 5)


def test_shard_assignment_covers_every_file_once_and_balances_bytes():
    files = _files(200)
    shards = assign_shards(files, 8)
    assigned = [f for group in shards.values() for f in group]
    assert sorted(assigned, key=lambda f: f.name) == sorted(files, key=lambda f: f.name)
    loads = [sum(f.size for f in group) for group in shards.values()]
    assert max(loads) - min(loads) <= max(f.size for f in files)


def test_more_shards_than_files_leaves_empty_shards():
    shards = assign_shards(_files(2), 4)
    assert sorted(len(g) for g in shards.values()) == [0, 0, 1, 1]


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
