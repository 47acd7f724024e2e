"""Resumable shard embedding: atomic chunks, SIGKILL + rerun gives identical bytes, bounded reads."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawlmix.embed import (
    EmbedderSpec,
    ParquetTextSource,
    embed_parquet_resumable,
    embed_shard_resumable,
    embed_texts,
    load_model,
)
from tests.test_embed_model import make_texts

pytest.importorskip("onnxruntime")

SPEC = dict(device="cpu", cpu_backend="onnx", threads=2)
ROWS = 60
CHUNK = 12  # 5 chunks; the parquet has row groups of 20, so chunks straddle row groups


@pytest.fixture(scope="module")
def model():
    return load_model(EmbedderSpec(**SPEC))


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    path = tmp_path_factory.mktemp("raw") / "shard-0.parquet"
    texts = make_texts(ROWS, seed=7)
    table = pa.table({"doc_id": [f"d{i:04d}" for i in range(ROWS)], "text": texts})
    pq.write_table(table, path, row_group_size=20)
    return str(path), texts


def _listing(folder):
    return sorted(os.listdir(folder))


def test_uninterrupted_run(model, shard, tmp_path):
    path, texts = shard
    out = tmp_path / "out"
    stats = embed_parquet_resumable(model, path, str(tmp_path / "work"), str(out / "e.npy"), str(out / "e.ids.parquet"), chunk_rows=CHUNK)
    assert stats["rows"] == ROWS and stats["chunks"] == 5 and stats["chunks_computed"] == 5 and stats["chunks_reused"] == 0
    assert stats["max_rows_read"] <= 2 * 20  # never more than the row groups overlapping one chunk
    vectors = np.load(out / "e.npy")
    assert vectors.dtype == np.float16 and vectors.shape == (ROWS, 384)
    ids = pq.read_table(out / "e.ids.parquet")
    assert ids.column_names == ["doc_id"] and ids.column(0).to_pylist() == [f"d{i:04d}" for i in range(ROWS)]
    assert not (tmp_path / "work").exists()
    assert _listing(out) == ["e.ids.parquet", "e.npy"]  # no temporary files left behind
    # row-aligned with the texts: same as embedding those texts chunk by chunk
    expected = np.concatenate([embed_texts(model, texts[i : i + CHUNK]) for i in range(0, ROWS, CHUNK)])
    assert expected.tobytes() == vectors.tobytes()


_CHILD = textwrap.dedent(
    """
    import os, signal, sys, json
    from crawlmix.embed import EmbedderSpec, load_model, embed_parquet_resumable
    path, work, npy, ids, kill_after = sys.argv[1:6]
    kill_after = int(kill_after)
    model = load_model(EmbedderSpec(**json.loads(sys.argv[6])))
    def on_chunk(info):
        if kill_after and info["computed_so_far"] >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    stats = embed_parquet_resumable(model, path, work, npy, ids, chunk_rows=int(sys.argv[7]), on_chunk=on_chunk)
    print(json.dumps({k: stats[k] for k in ("chunks_reused", "chunks_computed")}))
    """
)


def _child(args, kill_after):
    import json

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", _CHILD, *args, str(kill_after), json.dumps(SPEC), str(CHUNK)],
        capture_output=True, text=True, env=env, timeout=300,
    )


def test_sigkill_then_rerun_gives_identical_bytes(model, shard, tmp_path):
    path, _ = shard
    clean = tmp_path / "clean"
    embed_parquet_resumable(model, path, str(clean / "work"), str(clean / "e.npy"), str(clean / "e.ids.parquet"), chunk_rows=CHUNK)

    crash = tmp_path / "crash"
    args = [path, str(crash / "work"), str(crash / "e.npy"), str(crash / "e.ids.parquet")]
    killed = _child(args, kill_after=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (crash / "e.npy").exists()
    chunks = [n for n in _listing(crash / "work") if n.startswith("chunk-")]
    assert chunks == ["chunk-000000.npy", "chunk-000000.npy.sha256", "chunk-000001.npy", "chunk-000001.npy.sha256"]

    resumed = _child(args, kill_after=0)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert '"chunks_reused": 2' in resumed.stdout and '"chunks_computed": 3' in resumed.stdout
    assert (crash / "e.npy").read_bytes() == (clean / "e.npy").read_bytes()
    assert (crash / "e.ids.parquet").read_bytes() == (clean / "e.ids.parquet").read_bytes()
    assert _listing(crash) == ["e.ids.parquet", "e.npy"]


def test_corrupt_and_foreign_chunks_are_recomputed(model, shard, tmp_path):
    path, _ = shard
    work = tmp_path / "work"
    out = tmp_path / "out"
    calls = []

    def stop_after_two(info):
        calls.append(info["chunk"])
        if info["computed_so_far"] == 2:
            raise KeyboardInterrupt  # simulate an interruption after two chunks

    with pytest.raises(KeyboardInterrupt):
        embed_parquet_resumable(model, path, str(work), str(out / "e.npy"), str(out / "i.parquet"), chunk_rows=CHUNK, on_chunk=stop_after_two)
    good = (work / "chunk-000000.npy").read_bytes()
    (work / "chunk-000001.npy").write_bytes(good[: len(good) // 2])  # truncated file
    seen = []
    stats = embed_parquet_resumable(model, path, str(work), str(out / "e.npy"), str(out / "i.parquet"), chunk_rows=CHUNK, on_chunk=seen.append)
    assert stats["chunks_reused"] == 1 and stats["chunks_computed"] == 4
    assert [(c["chunk"], c["computed"]) for c in seen] == [(0, False), (1, True), (2, True), (3, True), (4, True)]

    # chunks left by a different job (other chunk size) are never reused
    with pytest.raises(KeyboardInterrupt):
        calls.clear()
        embed_parquet_resumable(model, path, str(work), str(out / "e.npy"), str(out / "i.parquet"), chunk_rows=CHUNK, on_chunk=stop_after_two)
    stats = embed_parquet_resumable(model, path, str(work), str(out / "x.npy"), str(out / "x.parquet"), chunk_rows=24)
    assert stats["chunks_reused"] == 0 and stats["chunks"] == 3
    assert np.load(out / "x.npy").shape == (ROWS, 384)


def test_reads_are_chunk_sized(model, tmp_path):
    texts = make_texts(50, seed=1)
    requests = []

    def read(start, stop):
        requests.append((start, stop))
        return texts[start:stop]

    ids = [f"id{i}" for i in range(50)]
    stats = embed_shard_resumable(model, read, 50, ids, str(tmp_path / "w"), str(tmp_path / "e.npy"), str(tmp_path / "i.parquet"), chunk_rows=12)
    assert requests == [(0, 12), (12, 24), (24, 36), (36, 48), (48, 50)]
    assert stats["chunks"] == 5 and np.load(tmp_path / "e.npy").shape == (50, 384)


def test_parquet_source_reads_only_overlapping_row_groups(shard):
    path, texts = shard
    source = ParquetTextSource(path)
    assert source.n_rows == ROWS
    assert source.read_texts(35, 45) == texts[35:45]  # row groups 1 and 2 of 20 rows
    assert source.row_groups_read == 2 and source.max_rows_read == 40
    assert source.read_texts(50, 60) == texts[50:60]
    assert source.row_groups_read == 3
    with pytest.raises(IndexError):
        source.read_texts(50, 61)


def test_bad_inputs(model, tmp_path):
    with pytest.raises(ValueError, match="row-aligned"):
        embed_shard_resumable(model, lambda a, b: ["x"] * (b - a), 3, ["a", "b"], str(tmp_path / "w"), str(tmp_path / "e.npy"), str(tmp_path / "i.parquet"))
    stats = embed_shard_resumable(model, lambda a, b: [], 0, [], str(tmp_path / "w"), str(tmp_path / "e.npy"), str(tmp_path / "i.parquet"))
    assert stats["rows"] == 0 and np.load(tmp_path / "e.npy").shape == (0, 384)
