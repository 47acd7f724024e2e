"""Contract tests for crawlmix.storage (local folder and S3 via a real moto server) and StorageResource."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from dagster_aws.s3 import S3Resource

from crawlmix.storage import (
    KeyNotFoundError,
    LocalStorage,
    S3Storage,
    Storage,
    StorageError,
    parse_s3_uri,
    storage_for,
    validate_key_part,
)
from resources import StorageResource

S3_PREFIX = "pre/fix"


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(str(tmp_path / "root"))
    client = request.getfixturevalue("s3_client")
    bucket = request.getfixturevalue("s3_bucket")
    return S3Storage(bucket, S3_PREFIX, client)


def raw_listing(storage: Storage) -> list[str]:
    """Everything physically under the root, hidden files included (paths relative to the root)."""
    if isinstance(storage, LocalStorage):
        out = []
        for dirpath, _dirs, files in os.walk(storage.root):
            for name in files:
                out.append(os.path.relpath(os.path.join(dirpath, name), storage.root))
        return sorted(out)
    assert isinstance(storage, S3Storage)
    resp = storage.client.list_objects_v2(Bucket=storage.bucket)
    return sorted(o["Key"][len(S3_PREFIX) + 1 :] for o in resp.get("Contents", []))


# ------------------------------------------------------------------------------------------------
# Contract, both backends
# ------------------------------------------------------------------------------------------------


def test_round_trip(storage: Storage):
    key = storage.key("raw_corpus", "CC-MAIN-2024-10", "0003", "bin")
    data = bytes(range(256)) * 100
    assert not storage.exists(key)
    storage.write_bytes(key, data)
    assert storage.exists(key)
    assert storage.read_bytes(key) == data
    assert storage.size(key) == len(data)
    with storage.open_read(key) as fh:
        fh.seek(256 * 10)
        assert fh.read(3) == bytes([0, 1, 2])
        fh.seek(0)
        assert fh.read() == data
    with storage.local_copy(key) as path:
        assert os.path.isfile(path)
        assert Path(path).read_bytes() == data
        assert path.endswith(".bin")


def test_layout(storage: Storage):
    key = storage.key("raw_corpus", "CC-MAIN-2024-10", "0003", "parquet")
    assert key == "raw_corpus/CC-MAIN-2024-10/0003.parquet"
    storage.write_bytes(key, b"x")
    assert raw_listing(storage) == [key]
    if isinstance(storage, LocalStorage):
        assert storage.uri(key) == os.path.join(storage.root, "raw_corpus", "CC-MAIN-2024-10", "0003.parquet")
        assert os.path.isfile(storage.uri(key))
    else:
        assert storage.root == f"s3://{storage.bucket}/{S3_PREFIX}"
        assert storage.uri(key) == f"s3://{storage.bucket}/{S3_PREFIX}/{key}"
        storage.client.head_object(Bucket=storage.bucket, Key=f"{S3_PREFIX}/{key}")


def test_atomic_write_path_works_with_file_writers(storage: Storage):
    arr = np.arange(1000, dtype=np.float16).reshape(100, 10)
    key = storage.key("embeddings", "snap", "0000", "npy")
    with storage.atomic_write_path(key) as tmp:
        np.save(tmp, arr)  # np.save appends .npy unless the name already ends with it
    with storage.local_copy(key) as path:
        loaded = np.load(path, mmap_mode="r")
        assert loaded.dtype == np.float16
        assert np.array_equal(loaded, arr)

    df = pd.DataFrame({"id": ["a", "b"], "n": [1, 2]})
    pkey = storage.key("raw_corpus", "snap", "0000", "parquet")
    with storage.atomic_write_path(pkey) as tmp:
        df.to_parquet(tmp)
    with storage.open_read(pkey) as fh:
        assert pd.read_parquet(fh).equals(df)
    assert storage.list_keys("") == [key, pkey]
    assert raw_listing(storage) == [key, pkey]


def test_overwrite_replaces(storage: Storage):
    key = storage.key("a", "s", "0", "txt")
    storage.write_bytes(key, b"first version, longer")
    storage.write_bytes(key, b"second")
    assert storage.read_bytes(key) == b"second"
    assert storage.size(key) == 6
    with storage.atomic_write_path(key) as tmp:
        Path(tmp).write_bytes(b"third")
    assert storage.read_bytes(key) == b"third"
    assert storage.list_keys("a") == [key]
    assert raw_listing(storage) == [key]


def test_exception_inside_atomic_write_keeps_previous(storage: Storage):
    key = storage.key("a", "s", "0", "txt")
    storage.write_bytes(key, b"previous")
    seen_tmp = []
    with pytest.raises(RuntimeError, match="boom"):
        with storage.atomic_write_path(key) as tmp:
            seen_tmp.append(tmp)
            with open(tmp, "wb") as fh:
                fh.write(b"partial new cont")
            raise RuntimeError("boom")
    assert storage.read_bytes(key) == b"previous"
    assert storage.list_keys("") == [key]
    assert raw_listing(storage) == [key]
    assert not os.path.exists(seen_tmp[0])


def test_exception_on_new_key_leaves_nothing(storage: Storage):
    key = storage.key("a", "s", "1", "txt")
    with pytest.raises(ValueError):
        with storage.atomic_write_path(key) as tmp:
            Path(tmp).write_bytes(b"half")
            raise ValueError("bad data")
    assert not storage.exists(key)
    assert storage.list_keys("") == []
    assert raw_listing(storage) == []


def test_nothing_written_is_an_error(storage: Storage):
    key = storage.key("a", "s", "2", "txt")
    with pytest.raises(StorageError, match="nothing was written"):
        with storage.atomic_write_path(key):
            pass
    assert not storage.exists(key)
    assert raw_listing(storage) == []


def test_temp_file_is_hidden_and_keeps_extension(storage: Storage):
    key = storage.key("embeddings", "s", "0007", "npy")
    with storage.atomic_write_path(key) as tmp:
        name = os.path.basename(tmp)
        assert name.endswith(".npy")
        if isinstance(storage, LocalStorage):
            assert name.startswith(".0007.npy.tmp-")
            assert os.path.dirname(tmp) == os.path.dirname(storage.uri(key))
        Path(tmp).write_bytes(b"x")
        assert storage.list_keys("") == []
        assert not storage.exists(key)
    assert storage.list_keys("") == [key]


def test_list_keys_prefix_is_folder_like_and_sorted(storage: Storage):
    keys = [
        storage.key("raw_corpus", "s10", "0000", "parquet"),
        storage.key("raw_corpus", "s1", "0001", "parquet"),
        storage.key("raw_corpus", "s1", "0000", "parquet"),
        storage.key("embeddings", "s1", "0000", "npy"),
    ]
    for k in keys:
        storage.write_bytes(k, k.encode())
    assert storage.list_keys("raw_corpus/s1") == [
        "raw_corpus/s1/0000.parquet",
        "raw_corpus/s1/0001.parquet",
    ]
    assert storage.list_keys("raw_corpus/s1/") == storage.list_keys("raw_corpus/s1")
    assert storage.list_keys("raw_corpus") == sorted(k for k in keys if k.startswith("raw_corpus/"))
    assert storage.list_keys("") == sorted(keys)
    assert storage.list_keys("missing") == []
    with pytest.raises(ValueError):
        storage.list_keys("../x")


def test_delete(storage: Storage):
    key = storage.key("a", "s", "0", "txt")
    storage.delete(key)  # missing is fine
    storage.write_bytes(key, b"x")
    storage.delete(key)
    assert not storage.exists(key)
    assert storage.list_keys("") == []


def test_missing_key_errors(storage: Storage):
    key = storage.key("a", "s", "9", "txt")
    with pytest.raises(KeyNotFoundError):
        storage.read_bytes(key)
    with pytest.raises(FileNotFoundError):
        storage.size(key)
    with pytest.raises(FileNotFoundError):
        with storage.open_read(key):
            pass
    with pytest.raises(FileNotFoundError):
        with storage.local_copy(key):
            pass


@pytest.mark.parametrize(
    "bad", ["..", ".", "", "a/b", "/abs", "a\\b", ".hidden", "sp ace", "x:y", "é", None]
)
def test_key_parts_are_validated(storage: Storage, bad):
    with pytest.raises(ValueError, match="snapshot"):
        storage.key("raw_corpus", bad, "0000", "parquet")
    with pytest.raises(ValueError, match="shard"):
        storage.key("raw_corpus", "s", bad, "parquet")


@pytest.mark.parametrize(
    "bad_key", ["../x.bin", "/etc/passwd", "a//b.bin", "a/./b.bin", "a/../../b.bin", "", "a/", "C:/x"]
)
def test_raw_keys_are_validated(storage: Storage, bad_key):
    with pytest.raises(ValueError):
        storage.write_bytes(bad_key, b"x")
    with pytest.raises(ValueError):
        storage.read_bytes(bad_key)
    with pytest.raises(ValueError):
        storage.exists(bad_key)
    with pytest.raises(ValueError):
        storage.delete(bad_key)
    assert raw_listing(storage) == []


def test_validate_key_part_names_what():
    assert validate_key_part("CC-MAIN-2024-10", "snapshot") == "CC-MAIN-2024-10"
    assert validate_key_part("shard_0001.v2", "shard") == "shard_0001.v2"
    with pytest.raises(ValueError, match="my thing"):
        validate_key_part("..", "my thing")
    with pytest.raises(ValueError, match="ext"):
        validate_key_part("a" * 300, "ext")


# ------------------------------------------------------------------------------------------------
# Local specifics
# ------------------------------------------------------------------------------------------------


def test_local_root_is_created_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    st = LocalStorage("relative/root")
    assert st.root == str((tmp_path / "relative" / "root").resolve())
    assert os.path.isdir(st.root)


def test_local_symlink_escape_is_rejected(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"secret")
    st = LocalStorage(str(tmp_path / "root"))
    os.symlink(outside, os.path.join(st.root, "link"))
    os.makedirs(os.path.join(st.root, "a", "s"))
    os.symlink(outside / "secret.bin", os.path.join(st.root, "a", "s", "0.bin"))

    with pytest.raises(StorageError, match="outside"):
        st.write_bytes("link/x.bin", b"x")
    with pytest.raises(StorageError, match="outside"):
        st.read_bytes("link/secret.bin")
    with pytest.raises(StorageError, match="outside"):
        st.exists("a/s/0.bin")
    with pytest.raises(StorageError, match="outside"):
        with st.atomic_write_path(st.key("link", "s", "0", "bin")):
            pass
    with pytest.raises(StorageError, match="outside"):
        st.list_keys("link")
    assert st.list_keys("") == []
    assert sorted(os.listdir(outside)) == ["secret.bin"]
    assert (outside / "secret.bin").read_bytes() == b"secret"


def test_local_root_through_a_symlink_is_fine(tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "alias")
    st = LocalStorage(str(tmp_path / "alias"))
    st.write_bytes("a/s/0.txt", b"ok")
    assert (real / "a" / "s" / "0.txt").read_bytes() == b"ok"


def test_concurrent_reader_never_sees_partial_file(tmp_path: Path):
    st = LocalStorage(str(tmp_path / "root"))
    key = st.key("raw_corpus", "snap", "0000", "bin")
    chunk = 1 << 20
    n_chunks = 48
    old = b"A" * (chunk * 8)
    new_chunks = [bytes([i % 251]) * chunk for i in range(n_chunks)]
    new_digest = hashlib.sha256(b"".join(new_chunks)).hexdigest()
    old_digest = hashlib.sha256(old).hexdigest()
    st.write_bytes(key, old)

    stop = threading.Event()
    problems: list[str] = []
    reads = {"old": 0, "new": 0}

    def reader():
        while not stop.is_set():
            try:
                data = st.read_bytes(key)
            except FileNotFoundError:
                problems.append("key vanished during the write")
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest == old_digest:
                reads["old"] += 1
            elif digest == new_digest:
                reads["new"] += 1
            else:
                problems.append(f"partial read of {len(data)} bytes")
            listed = st.list_keys("raw_corpus")
            if listed != [key]:
                problems.append(f"list_keys showed {listed}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with st.atomic_write_path(key) as tmp:
            with open(tmp, "wb") as fh:
                for c in new_chunks:
                    fh.write(c)
                    fh.flush()
                    time.sleep(0.002)
        # let the reader see the committed file (on a loaded machine one read of the old 8 MiB
        # version can take longer than any fixed pause)
        deadline = time.monotonic() + 30
        while reads["new"] == 0 and not problems and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not problems, problems[:5]
    assert reads["old"] > 0 and reads["new"] > 0, reads
    assert hashlib.sha256(st.read_bytes(key)).hexdigest() == new_digest


# ------------------------------------------------------------------------------------------------
# S3 specifics
# ------------------------------------------------------------------------------------------------


def test_s3_large_file_multipart_round_trip(s3_client, s3_bucket):
    st = S3Storage(s3_bucket, "big", s3_client)
    key = st.key("embeddings", "snap", "0000", "npy")
    arr = np.random.default_rng(0).standard_normal((9 * 1024 * 1024 // 2,)).astype(np.float16)
    with st.atomic_write_path(key) as tmp:
        np.save(tmp, arr)
    assert st.size(key) > 8 * 1024 * 1024  # above boto3's multipart threshold
    with st.local_copy(key) as path:
        assert np.array_equal(np.load(path), arr)
    assert st.list_keys("embeddings") == [key]


def test_s3_without_prefix(s3_client, s3_bucket):
    st = S3Storage(s3_bucket, "", s3_client)
    assert st.root == f"s3://{s3_bucket}"
    st.write_bytes("a/s/0.txt", b"x")
    assert st.list_keys("") == ["a/s/0.txt"]
    assert st.uri("a/s/0.txt") == f"s3://{s3_bucket}/a/s/0.txt"


def test_parse_s3_uri():
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert parse_s3_uri("s3://bucket/") == ("bucket", "")
    assert parse_s3_uri("s3://my-bucket.data/a/b/") == ("my-bucket.data", "a/b")
    for bad in ["bucket/a", "s3:/bucket", "s3://", "s3:///a", "s3://Bad_Bucket/a", "s3://b/a//c", "s3://bk/../x", "gs://b/a"]:
        with pytest.raises(ValueError, match="S3|s3"):
            parse_s3_uri(bad)


def test_storage_for(tmp_path: Path, s3_client, s3_bucket):
    local = storage_for(str(tmp_path / "st"))
    assert isinstance(local, LocalStorage) and local.root == str((tmp_path / "st").resolve())
    calls = []

    def factory():
        calls.append(1)
        return s3_client

    s3 = storage_for(f"s3://{s3_bucket}/x/y/", factory)
    assert isinstance(s3, S3Storage) and s3.root == f"s3://{s3_bucket}/x/y" and calls == [1]
    s3.write_bytes("a/b/c.txt", b"1")
    assert s3_client.get_object(Bucket=s3_bucket, Key="x/y/a/b/c.txt")["Body"].read() == b"1"
    with pytest.raises(ValueError, match="factory"):
        storage_for(f"s3://{s3_bucket}/x")
    with pytest.raises(ValueError, match="unsupported"):
        storage_for("gs://bucket/x")
    with pytest.raises(ValueError):
        storage_for("")


# ------------------------------------------------------------------------------------------------
# StorageResource
# ------------------------------------------------------------------------------------------------


def test_storage_resource_direct_local(tmp_path: Path):
    res = StorageResource(root=str(tmp_path / "root"))
    st = res.get_storage()
    assert isinstance(st, LocalStorage)
    assert res.get_storage() is st
    assert res.s3.endpoint_url is None


def test_storage_resource_direct_s3(moto_server, s3_bucket, aws_credentials):
    res = StorageResource(
        root=f"s3://{s3_bucket}/pfx", s3=S3Resource(endpoint_url=moto_server, region_name="us-east-1")
    )
    st = res.get_storage()
    assert isinstance(st, S3Storage) and res.get_storage() is st
    st.write_bytes("a/s/0.txt", b"hello")
    assert st.read_bytes("a/s/0.txt") == b"hello"


def _materialize_with_storage(storage_resource):
    @dg.asset
    def shard_file(storage: StorageResource) -> dg.MaterializeResult:
        st = storage.get_storage()
        key = st.key("test_asset", "snap-1", "0000", "txt")
        with st.atomic_write_path(key) as tmp:
            Path(tmp).write_text("payload")
        return dg.MaterializeResult(
            metadata={"path": dg.MetadataValue.path(st.uri(key)), "bytes": st.size(key)}
        )

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([shard_file], resources={"storage": storage_resource}, instance=instance)
    return result, instance


def test_storage_resource_materialize_local(tmp_path: Path):
    result, _ = _materialize_with_storage(StorageResource(root=str(tmp_path / "root")))
    assert result.success
    mat = result.asset_materializations_for_node("shard_file")[0]
    path = mat.metadata["path"].value
    assert path == str((tmp_path / "root" / "test_asset" / "snap-1" / "0000.txt").resolve())
    assert Path(path).read_text() == "payload"
    assert mat.metadata["bytes"].value == 7


def test_storage_resource_materialize_s3_env_config(
    moto_server, s3_client, s3_bucket, aws_credentials, monkeypatch: pytest.MonkeyPatch
):
    secret = "super-secret-value-4242"
    monkeypatch.setenv("CRAWLMIX_TEST_S3_ENDPOINT", moto_server)
    monkeypatch.setenv("CRAWLMIX_TEST_S3_ROOT", f"s3://{s3_bucket}/prod")
    monkeypatch.setenv("CRAWLMIX_TEST_AWS_SECRET", secret)
    res = StorageResource(
        root=dg.EnvVar("CRAWLMIX_TEST_S3_ROOT"),
        s3=S3Resource(
            endpoint_url=dg.EnvVar("CRAWLMIX_TEST_S3_ENDPOINT"),
            region_name="us-east-1",
            aws_access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=dg.EnvVar("CRAWLMIX_TEST_AWS_SECRET"),
        ),
    )
    result, instance = _materialize_with_storage(res)
    assert result.success
    mat = result.asset_materializations_for_node("shard_file")[0]
    assert mat.metadata["path"].value == f"s3://{s3_bucket}/prod/test_asset/snap-1/0000.txt"
    body = s3_client.get_object(Bucket=s3_bucket, Key="prod/test_asset/snap-1/0000.txt")["Body"]
    assert body.read() == b"payload"
    # The secret travels as an env var reference, never as a value in the run or its events.
    assert secret not in repr(result.dagster_run.run_config)
    records = instance.all_logs(result.run_id)
    assert records and all(secret not in repr(r) for r in records)


# ------------------------------------------------------------------------------------------------
# Orphaned temporary files: swept when old and unlocked, never while a writer lives
# ------------------------------------------------------------------------------------------------

HOUR = 3600.0

# A writer in its own process: opens an atomic write, writes part of the file, prints the temporary
# path, then commits when its stdin closes (or dies when it is killed).
_WRITER = """
import sys
from crawlmix.storage import LocalStorage
store = LocalStorage(sys.argv[1])
with store.atomic_write_path(sys.argv[2]) as tmp:
    with open(tmp, "wb") as handle:
        handle.write(b"partial")
        handle.flush()
        print(tmp, flush=True)
        sys.stdin.read()
        handle.write(b" and the rest")
"""


def _start_writer(root: str, key: str):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, root, key],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
    )
    tmp = proc.stdout.readline().strip()
    assert tmp and os.path.exists(tmp), "the writer did not start its write"
    return proc, tmp


def _age(path: str, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _orphan(folder: Path, name: str, age_s: float) -> Path:
    """A temporary file as a killed writer leaves it: hidden temp name, nobody holding it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"half a parquet file")
    _age(str(path), age_s)
    return path


def test_sweep_removes_an_old_orphan_and_keeps_a_fresh_one(tmp_path: Path):
    st = LocalStorage(str(tmp_path / "root"))
    st.write_bytes("raw_corpus/snap/000.parquet", b"committed")
    _age(st.uri("raw_corpus/snap/000.parquet"), 10 * HOUR)  # old, but committed: never touched
    folder = Path(st.root) / "raw_corpus" / "snap"
    old = _orphan(folder, ".000.parquet.tmp-0123456789abcdef.parquet", 2 * HOUR)
    # the embedding chunk store's own temporary name, derived from ours
    nested = _orphan(folder, "..001.npy.tmp-fedcba9876543210.npy.tmp-4242-1a2b3c4d", 2 * HOUR)
    fresh = _orphan(folder, ".002.parquet.tmp-00112233aabbccdd.parquet", 60)
    elsewhere = _orphan(Path(st.root) / "raw_corpus" / "other", ".000.parquet.tmp-0a0a0a0a0a0a0a0a.parquet", 2 * HOUR)

    removed = st.sweep_orphaned_temp_files("raw_corpus/snap")

    assert removed == sorted([f"raw_corpus/snap/{old.name}", f"raw_corpus/snap/{nested.name}"])
    assert not old.exists() and not nested.exists()
    assert fresh.exists(), "a temporary file younger than the threshold was removed"
    assert elsewhere.exists(), "the sweep reached outside its prefix"
    assert st.read_bytes("raw_corpus/snap/000.parquet") == b"committed"
    # the threshold is the caller's to choose
    assert st.sweep_orphaned_temp_files("raw_corpus/snap", older_than_s=30) == [f"raw_corpus/snap/{fresh.name}"]
    assert LocalStorage(str(tmp_path / "root"), orphan_age_s=30).sweep_orphaned_temp_files("raw_corpus") == [
        f"raw_corpus/other/{elsewhere.name}"
    ]
    with pytest.raises(ValueError, match="older_than_s"):
        st.sweep_orphaned_temp_files("raw_corpus", older_than_s=0)


def test_sweep_never_removes_a_live_writers_file_even_when_old(tmp_path: Path):
    st = LocalStorage(str(tmp_path / "root"))
    key = "embeddings/snap/000.npy"
    proc, tmp = _start_writer(st.root, key)
    try:
        _age(tmp, 5 * HOUR)  # a writer that has held its file for hours (an embedding step does)
        assert st.sweep_orphaned_temp_files("embeddings", older_than_s=1) == []
        assert os.path.exists(tmp)
        # in this process too: a write still open here is as alive as one in another process
        with st.atomic_write_path("embeddings/snap/001.npy") as own:
            _age(own, 5 * HOUR)
            assert st.sweep_orphaned_temp_files("embeddings", older_than_s=1) == []
            Path(own).write_bytes(b"mine")
    finally:
        proc.communicate(timeout=30)  # stdin closed: the writer finishes and commits
    assert proc.returncode == 0
    assert st.read_bytes(key) == b"partial and the rest"
    assert st.read_bytes("embeddings/snap/001.npy") == b"mine"
    assert [p for p in raw_listing(st) if ".tmp-" in p] == []


def test_a_killed_writers_leftover_is_swept_when_its_partition_is_written_again(tmp_path: Path):
    import signal

    import pyarrow as pa

    from crawlmix.tables import read_table, write_table

    st = LocalStorage(str(tmp_path / "root"))
    key = "raw_corpus/snap/000.parquet"
    proc, tmp = _start_writer(st.root, key)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdin.close()
    proc.stdout.close()
    assert os.path.exists(tmp) and not st.exists(key), "the kill should leave the temporary file behind"
    assert st.list_keys("") == []  # hidden from readers meanwhile

    table = pa.table({"doc_id": ["a", "b"]})
    write_table(st, key, table, {"asset": "raw_corpus"})  # a rerun within the hour: left alone
    assert os.path.exists(tmp)

    _age(tmp, 2 * HOUR)
    write_table(st, key, table, {"asset": "raw_corpus"})  # the rerun an hour later sweeps it
    assert not os.path.exists(tmp)
    assert raw_listing(st) == [key, key + ".sha256"]
    assert read_table(st, key).column("doc_id").to_pylist() == ["a", "b"]


def test_empty_content_is_written_by_write_bytes(storage: Storage):
    key = storage.key("a", "s", "3", "txt")
    storage.write_bytes(key, b"")
    assert storage.exists(key) and storage.read_bytes(key) == b""
    assert raw_listing(storage) == [key]


def test_s3_writes_leave_nothing_in_the_bucket_and_stale_staging_folders_are_swept(
    s3_client, s3_bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-tmp"))
    (tmp_path / "system-tmp").mkdir()
    st = S3Storage(s3_bucket, S3_PREFIX, s3_client)
    stale = tmp_path / "system-tmp" / "crawlmix-s3-deadbeef"  # a killed writer's staging folder
    stale.mkdir()
    (stale / "000.parquet").write_bytes(b"x" * 1000)
    _age(str(stale / "000.parquet"), 2 * HOUR)
    _age(str(stale), 2 * HOUR)
    unrelated = tmp_path / "system-tmp" / "someone-else"
    unrelated.mkdir()
    _age(str(unrelated), 2 * HOUR)

    key = st.key("raw_corpus", "snap", "000", "parquet")
    with st.atomic_write_path(key) as tmp:
        Path(tmp).write_bytes(b"payload")
        live = Path(tmp).parent
        _age(tmp, 2 * HOUR)
        _age(str(live), 2 * HOUR)
        assert st.sweep_orphaned_temp_files("raw_corpus/snap") == [str(stale)]
        assert live.exists(), "the live writer's staging folder was removed"
    assert not live.exists() and not stale.exists() and unrelated.exists()
    assert raw_listing(st) == [key]  # nothing else reached the bucket
    assert st.sweep_orphaned_temp_files("raw_corpus/snap") == []


def test_storage_resource_outside_a_run_resolves_its_env_vars(
    moto_server, s3_bucket, aws_credentials, monkeypatch: pytest.MonkeyPatch
):
    # `crawlmix run` asks the Definitions' storage resource for its storage between runs, where
    # Dagster has not resolved the EnvVar endpoint and region (as it does for a run).
    monkeypatch.setenv("CRAWLMIX_TEST_S3_ENDPOINT", moto_server)
    res = StorageResource(
        root=f"s3://{s3_bucket}/pfx",
        s3=S3Resource(endpoint_url=dg.EnvVar("CRAWLMIX_TEST_S3_ENDPOINT"), region_name=dg.EnvVar("AWS_REGION")),
    )
    st = res.get_storage()
    st.write_bytes("a/s/0.txt", b"outside a run")
    assert st.read_bytes("a/s/0.txt") == b"outside a run"
    assert st.client.meta.region_name == "us-east-1"
