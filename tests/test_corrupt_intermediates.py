"""Corrupt intermediates: a truncated or bit-flipped upstream file fails the downstream step with an
error naming the file and the fix, writes nothing downstream, and re-materializing the upstream heals it.

The pipeline runs for real (Dagster definitions, bundled model on CPU) on a one-shard snapshot; each
case damages one stored file in place, the way a bad disk or a half-copied file would, and runs the
step that consumes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from dagster import DagsterInstance

from crawlmix.storage import LocalStorage, S3Storage
from crawlmix.tables import (
    CHECKSUM_SUFFIX,
    CorruptFileError,
    open_npy,
    read_bytes_verified,
    read_table,
    table_file_metadata,
    write_bytes_checked,
    write_table,
)
from curation_assets import definitions as d
from curation_assets.partitions import crawl_snapshots, partition_key_for
from tests.dagster_harness import make_snapshot, settings_for

SNAPSHOT, SHARD = "snap-a", "000"
FIT = {"ops": {"centroids": {"config": {"ks": [3, 2], "seed": 3}}}}
# The reference-set classifier costs ~40 s of CPU embedding and reads no intermediate the heuristics
# path does not: scoring runs without it here.
SCORE = {"ops": {"quality_scores": {"config": {"reference_path": "none"}}}}
MIXTURES = """
mixtures:
  - name: tiny
    scope: [snap-a]
    filters: {min_quality: 0.0, drop_semantic_duplicates: false}
    size: {documents: 4}
    policy: weighted
    options: {level: top, temperature: 1.0, max_repeats: 2}
    seed: 1
"""
DAMAGES = ["truncate", "flip_middle", "flip_edge"]


def _run(world, job, partition_key=None, run_config=None):
    defs, instance = world["defs"], world["instance"]
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config=run_config
    )


def _shard_run(world, job, run_config=None):
    return _run(world, job, partition_key_for(SNAPSHOT, SHARD), run_config)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")
    (root / "mixtures.yaml").write_text(MIXTURES)
    settings = settings_for(root / "home", shards=1, CRAWLMIX_DEVICE="cpu", CRAWLMIX_MIXTURES=str(root / "mixtures.yaml"))
    make_snapshot(root / "home" / "snapshots", SNAPSHOT, n_files=2)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(crawl_snapshots.name, [SNAPSHOT])
    world = {"settings": settings, "defs": d.build_definitions(settings), "instance": instance,
             "storage": Path(settings.storage_root)}
    runs = [
        _shard_run(world, d.INGEST_JOB),
        _run(world, d.FIT_JOB, run_config=FIT),
        _shard_run(world, d.LABEL_JOB),
        _run(world, d.DEDUP_JOB, SNAPSHOT),
        _shard_run(world, d.SCORE_JOB, SCORE),
        _run(world, d.MIX_JOB, "tiny"),
    ]
    assert all(r.success for r in runs), [r.job_def.name for r in runs if not r.success]
    yield world
    instance.dispose()


def _file(world, asset: str, ext: str) -> Path:
    return world["storage"] / asset / SNAPSHOT / f"{SHARD}.{ext}"


def _centroid_tree(world) -> Path:
    pointer = json.loads((world["storage"] / "centroids" / "global" / "current.json").read_text())
    return world["storage"] / pointer["tree"]


def _damage(path: Path, how: str) -> None:
    """Damage in place: truncate to half, or flip one bit mid-file or in the format's own header/footer."""
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[: len(data) // 2]
    else:
        if how == "flip_middle":
            at = len(data) // 2
        elif path.suffix == ".parquet":
            at = len(data) - 12  # inside the Parquet footer (thrift file metadata), before its length + magic
        else:
            at = 20  # inside the .npy / .npz header
        data[at] ^= 0x10
    path.write_bytes(bytes(data))


def _fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under `folder` (temporary files included)."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*")) if p.is_file()
    } if folder.exists() else {}


def _failure_text(result) -> str:
    """Every message and cause of the run's step failures, flattened."""
    texts = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.event_specific_data.error
        while error is not None:
            texts.append(f"{error.cls_name}: {error.message}")
            error = error.cause or error.context
    return "\n".join(texts)


# (upstream file, job that runs the consuming step, the consumer's output folder, the upstream asset's job)
CASES = {
    "raw_corpus": (lambda w: _file(w, "raw_corpus", "parquet"), d.INGEST_JOB, "embeddings"),
    "embeddings_npy": (lambda w: _file(w, "embeddings", "npy"), d.LABEL_JOB, "cluster_labels"),
    "embeddings_ids": (lambda w: _file(w, "embeddings", "ids.parquet"), d.LABEL_JOB, "cluster_labels"),
    "centroid_tree": (_centroid_tree, d.LABEL_JOB, "cluster_labels"),
    "cluster_labels": (lambda w: _file(w, "cluster_labels", "parquet"), d.SCORE_JOB, "quality_scores"),
    "quality_scores": (lambda w: _file(w, "quality_scores", "parquet"), d.MIX_JOB, "final_mixtures"),
}


def _run_consumer(world, job: str, damaged: str):
    if job == d.MIX_JOB:
        return _run(world, job, "tiny")
    if job == d.INGEST_JOB:
        # raw_corpus itself would rewrite the damaged file: run only its consumer.
        defs, instance = world["defs"], world["instance"]
        from dagster import AssetKey

        return defs.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=partition_key_for(SNAPSHOT, SHARD), raise_on_error=False,
            asset_selection=[AssetKey("embeddings")],
        )
    return _shard_run(world, job, SCORE if job == d.SCORE_JOB else None)


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("upstream", list(CASES))
def test_damaged_upstream_fails_the_consumer_naming_file_and_fix_and_writes_nothing(world, upstream, how):
    locate, job, output_asset = CASES[upstream]
    path = locate(world)
    original = path.read_bytes()
    output_folder = world["storage"] / output_asset
    before = _fingerprint(output_folder)
    _damage(path, how)
    try:
        result = _run_consumer(world, job, upstream)
        assert not result.success
        text = _failure_text(result)
        assert "CorruptFileError" in text, text[-2000:]
        assert str(path) in text and "re-materialize" in text
        expected = "truncated" if how == "truncate" else "does not match"
        assert expected in text
        assert _fingerprint(output_folder) == before  # nothing written, replaced or left behind
    finally:
        path.write_bytes(original)


def test_rematerializing_the_damaged_upstream_heals_every_consumer(world):
    """Damage each upstream, re-materialize it through Dagster, and its consumer succeeds again."""
    chain = [
        ("raw_corpus", lambda: _shard_run(world, d.INGEST_JOB), d.INGEST_JOB),
        ("embeddings_npy", lambda: _shard_run(world, d.INGEST_JOB), d.LABEL_JOB),
        ("centroid_tree", lambda: _run(world, d.FIT_JOB, run_config=FIT), d.LABEL_JOB),
        ("cluster_labels", lambda: _shard_run(world, d.LABEL_JOB), d.SCORE_JOB),
        ("quality_scores", lambda: _shard_run(world, d.SCORE_JOB, SCORE), d.MIX_JOB),
    ]
    for upstream, rematerialize, consumer_job in chain:
        locate, _, _ = CASES[upstream]
        path = locate(world)
        _damage(path, "flip_middle")  # that the consumer now fails is the parametrized test above
        assert rematerialize().success, upstream
        assert _run_consumer(world, consumer_job, upstream).success, upstream


def test_a_file_without_its_checksum_is_refused_with_the_fix(world):
    labels = _file(world, "cluster_labels", "parquet")
    sidecar = Path(str(labels) + CHECKSUM_SUFFIX)
    saved = sidecar.read_bytes()
    sidecar.unlink()
    try:
        store = LocalStorage(str(world["storage"]))
        with pytest.raises(CorruptFileError) as raised:
            read_table(store, f"cluster_labels/{SNAPSHOT}/{SHARD}.parquet")
        message = str(raised.value)
        assert str(labels) in message and "checksum file" in message and "missing" in message
        assert f"re-materialize the upstream `cluster_labels` partition snapshot={SNAPSHOT}, shard={SHARD}" in message
    finally:
        sidecar.write_bytes(saved)


def test_checksums_are_recorded_in_dagster_metadata_and_match_the_sidecars(world):
    from dagster import AssetKey

    instance = world["instance"]
    for asset, ext in (("raw_corpus", "parquet"), ("embeddings", "npy"), ("cluster_labels", "parquet"), ("quality_scores", "parquet")):
        meta = instance.get_latest_materialization_event(AssetKey(asset)).asset_materialization.metadata
        path = _file(world, asset, ext)
        sidecar = json.loads(Path(str(path) + CHECKSUM_SUFFIX).read_text())
        assert meta["sha256"].value == sidecar["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert sidecar["bytes"] == path.stat().st_size


def test_sidecars_round_trip_on_s3(s3_client, s3_bucket):
    store = S3Storage(s3_bucket, "pipeline", s3_client)
    table_key = "cluster_labels/snap-s3/000.parquet"
    written = write_table(store, table_key, pa.table({"doc_id": ["a", "b", "c"], "x": [1, 2, 3]}), {"asset": "cluster_labels"})
    sidecar = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=f"pipeline/{table_key}{CHECKSUM_SUFFIX}")["Body"].read())
    assert sidecar == {"sha256": written.sha256, "bytes": written.bytes}
    assert read_table(store, table_key).column("doc_id").to_pylist() == ["a", "b", "c"]
    assert table_file_metadata(store, table_key) == {"asset": "cluster_labels"}

    npy_key = "embeddings/snap-s3/000.npy"
    vectors = np.random.default_rng(7).standard_normal((5, 4)).astype(np.float16)
    from crawlmix.tables import checked_write

    with checked_write(store, npy_key) as pending:
        np.save(pending.path, vectors)
    with open_npy(store, npy_key) as mapped:
        np.testing.assert_array_equal(np.asarray(mapped), vectors)
    write_bytes_checked(store, "centroids/global/current.json", b'{"version": "v"}')
    assert read_bytes_verified(store, "centroids/global/current.json") == b'{"version": "v"}'

    # One bit flipped in the stored object (a new PUT of the damaged bytes, as a faulty copy would do).
    raw = bytearray(s3_client.get_object(Bucket=s3_bucket, Key=f"pipeline/{npy_key}")["Body"].read())
    raw[len(raw) // 2] ^= 1
    s3_client.put_object(Bucket=s3_bucket, Key=f"pipeline/{npy_key}", Body=bytes(raw))
    with pytest.raises(CorruptFileError) as raised, open_npy(store, npy_key):
        pass
    message = str(raised.value)
    assert f"s3://{s3_bucket}/pipeline/{npy_key}" in message and "does not match" in message
    assert "re-materialize the upstream `embeddings` partition snapshot=snap-s3, shard=000" in message

    s3_client.delete_object(Bucket=s3_bucket, Key=f"pipeline/{table_key}{CHECKSUM_SUFFIX}")
    with pytest.raises(CorruptFileError, match="checksum file .* is missing"):
        read_table(store, table_key)


def test_a_bit_flipped_embedding_chunk_is_recomputed_not_reused(world, tmp_path):
    """The resumable embedder's own intermediates: a chunk whose size and header are intact but whose
    data changed on disk since it was written is recomputed, so the assembled file is still exact."""
    from crawlmix.embed import embed_parquet_resumable
    from crawlmix.embed.model import EmbedderSpec, load_model

    model = load_model(EmbedderSpec(device="cpu"))
    raw = str(_file(world, "raw_corpus", "parquet"))
    clean = embed_parquet_resumable(model, raw, str(tmp_path / "w0"), str(tmp_path / "clean.npy"), str(tmp_path / "clean.ids"), chunk_rows=3)

    def stop_after_two(info):
        if info["computed_so_far"] == 2:
            raise KeyboardInterrupt

    work = tmp_path / "w1"
    with pytest.raises(KeyboardInterrupt):
        embed_parquet_resumable(model, raw, str(work), str(tmp_path / "e.npy"), str(tmp_path / "e.ids"), chunk_rows=3, on_chunk=stop_after_two)
    chunk = work / "chunk-000000.npy"
    data = bytearray(chunk.read_bytes())
    data[-5] ^= 0x04  # in the vectors, past the header: shape, dtype and size all still match
    chunk.write_bytes(bytes(data))
    seen = []
    stats = embed_parquet_resumable(model, raw, str(work), str(tmp_path / "e.npy"), str(tmp_path / "e.ids"), chunk_rows=3, on_chunk=seen.append)
    assert stats["chunks_reused"] == 1 and (0, True) in [(c["chunk"], c["computed"]) for c in seen]
    assert (tmp_path / "e.npy").read_bytes() == (tmp_path / "clean.npy").read_bytes()
    assert clean["rows"] == stats["rows"] > 6
