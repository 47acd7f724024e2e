"""The embeddings asset and its gate, through real Dagster, the real bundled model, on CPU."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, asset, define_asset_job

from crawlmix.storage import LocalStorage
from crawlmix.tables import record_checksum, sha256_of
from curation_assets.definitions import MAIN_JOB, build_definitions
from curation_assets.partitions import snapshot_shard_partitions
from tests.dagster_harness import make_snapshot, run_partition, settings_for


@pytest.fixture()
def small_home(tmp_path):
    settings = settings_for(tmp_path / "home", shards=1, CRAWLMIX_DEVICE="cpu")
    make_snapshot(tmp_path / "home" / "snapshots", "snap-a", n_files=2)
    return settings


def _check_evaluations(result):
    return {
        e.event_specific_data.asset_key.to_user_string(): e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_embeddings_are_unit_float16_rows_aligned_with_raw_corpus(small_home):
    defs = build_definitions(small_home)
    with DagsterInstance.ephemeral() as instance:
        result = run_partition(defs, instance, "snap-a", "000", MAIN_JOB)
        assert result.success
        checks = _check_evaluations(result)
        assert checks["raw_corpus"].passed and checks["embeddings"].passed
        materialization = instance.get_latest_materialization_event(AssetKey("embeddings")).asset_materialization
        meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["dim"] == 384 and meta["device"] == "cpu"
    assert meta["model_id"] and len(meta["weights_hash"]) >= 16 and meta["docs_per_s"] > 0

    storage = small_home.home / "storage"
    vectors = np.load(storage / "embeddings" / "snap-a" / "000.npy")
    ids = pq.read_table(storage / "embeddings" / "snap-a" / "000.ids.parquet").column("doc_id").to_pylist()
    raw = pq.read_table(storage / "raw_corpus" / "snap-a" / "000.parquet", columns=["doc_id"]).column("doc_id").to_pylist()
    assert vectors.dtype == np.float16 and vectors.shape == (len(raw), 384)
    assert ids == raw
    np.testing.assert_allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1.0, atol=1e-2)
    leftovers = [p for p in storage.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []


def test_asking_for_a_missing_gpu_fails_at_setup_with_a_clear_message(tmp_path):
    settings = settings_for(tmp_path / "home", shards=1, CRAWLMIX_DEVICE="cuda:1")
    make_snapshot(tmp_path / "home" / "snapshots", "snap-a", n_files=1)
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        result = run_partition(defs, instance, "snap-a", "000", MAIN_JOB, assets=["embeddings"])
        assert not result.success
        init_failure = next(e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE")
        message = init_failure.event_specific_data.error.message
        assert "DeviceError" in message and "'cuda:1'" in message and "Use device='cpu'" in message


def _with_consumer(settings):
    partitions_def = snapshot_shard_partitions(settings.shard_keys)

    @asset(partitions_def=partitions_def, deps=["embeddings"])
    def vector_consumer() -> None:
        raise AssertionError("must not run after a failed blocking check")

    from dagster import AssetSelection

    job = define_asset_job(
        "check_then_consume",
        selection=AssetSelection.checks_for_assets("embeddings") | AssetSelection.assets(vector_consumer),
        partitions_def=partitions_def,
    )
    return Definitions.merge(build_definitions(settings), Definitions(assets=[vector_consumer], jobs=[job]))


@pytest.mark.parametrize("damage", ["nan_row", "missing_row"])
def test_gate_fails_on_planted_damage_and_blocks_downstream(small_home, damage):
    defs = _with_consumer(small_home)
    npy = small_home.home / "storage" / "embeddings" / "snap-a" / "000.npy"
    with DagsterInstance.ephemeral() as instance:
        assert run_partition(defs, instance, "snap-a", "000", MAIN_JOB).success
        vectors = np.load(npy)
        if damage == "nan_row":
            vectors[1, 5] = np.nan
        else:
            vectors = vectors[:-1]
        np.save(npy, vectors)
        # A writer that produced bad vectors records their checksum too: this is the gate's case, not
        # a damaged file's (tests/test_corrupt_intermediates.py covers those).
        record_checksum(LocalStorage(small_home.storage_root), "embeddings/snap-a/000.npy", *sha256_of(str(npy)))

        result = run_partition(defs, instance, "snap-a", "000", "check_then_consume")
        assert not result.success
        evaluation = _check_evaluations(result)["embeddings"]
        assert not evaluation.passed
        expected = "is_finite" if damage == "nan_row" else "n_vectors"
        assert expected in evaluation.description
        assert instance.get_latest_materialization_event(AssetKey("vector_consumer")) is None


def test_gate_judges_an_empty_shard_by_its_shape():
    """The gate's suites on their own (no Dagster): no vectors pass for a shard without documents,
    and fail for one whose documents exist, or when the empty array has the wrong width."""
    from curation_assets.embedding import EmbeddingsGateConfig, judge_embeddings

    config = EmbeddingsGateConfig()
    empty = np.zeros((0, 384), np.float16)
    passed, summary = judge_embeddings(empty, [], [], 384, config)
    assert passed.success and summary["rows"] == 0
    # the shape suite and the per-row suite, reported as one
    assert passed.statistics["evaluated_expectations"] == passed.statistics["successful_expectations"] == 8
    missing, _ = judge_embeddings(empty, [], ["doc-1", "doc-2"], 384, config)
    assert not missing.success and "n_vectors" in missing.describe_failures()
    narrow, _ = judge_embeddings(np.zeros((0, 0), np.float16), [], [], 384, config)
    assert not narrow.success and "dim" in narrow.describe_failures()
    one = np.zeros((1, 384), np.float16)
    one[0, 0] = 1.0
    assert judge_embeddings(one, ["doc-1"], ["doc-1"], 384, config)[0].success  # one vector: no spread to judge
    collapsed, _ = judge_embeddings(np.repeat(one, 3, axis=0), ["a", "b", "c"], ["a", "b", "c"], 384, config)
    assert not collapsed.success and "all_rows_identical" in collapsed.describe_failures()


def test_a_shard_without_records_embeds_to_zero_rows_and_passes_its_gates(tmp_path):
    from tests.dagster_harness import html_page, write_warc

    settings = settings_for(tmp_path / "home", shards=4, CRAWLMIX_DEVICE="cpu")
    folder = tmp_path / "home" / "snapshots" / "one-page"
    folder.mkdir(parents=True)
    write_warc(folder / "part.warc.gz", [("https://docs.example.org/only.html", 200, "text/html",
                                          html_page("The only page", "Some words about rivers. " * 10))])
    (folder / "_SUCCESS").touch()
    defs = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        result = run_partition(defs, instance, "one-page", "003", MAIN_JOB)  # one record: shard 003 has none
        assert result.success
        checks = _check_evaluations(result)
        assert checks["raw_corpus"].passed and checks["embeddings"].passed
    storage = settings.home / "storage"
    assert pq.read_metadata(storage / "raw_corpus" / "one-page" / "003.parquet").num_rows == 0
    assert np.load(storage / "embeddings" / "one-page" / "003.npy").shape == (0, 384)
    assert pq.read_table(storage / "embeddings" / "one-page" / "003.ids.parquet").num_rows == 0
