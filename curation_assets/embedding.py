"""Embedding domain: the `embeddings` asset (GPU pool) and its Great Expectations gate."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from crawlmix.tables import (
    CorruptFileError,
    checked_write,
    open_npy,
    open_verified,
    read_table,
)
from curation_assets import OWNERS
from curation_assets.gates import combined, gate_result, table_facts
from curation_assets.partitions import split_partition_key
from resources import EmbedderResource, StorageResource

EMBEDDINGS_CODE_VERSION = "embeddings-1"

# Placement hints for multi-machine deployments: the Kubernetes executor/launcher reads
# dagster-k8s/config, ECS reads ecs/task_overrides; both ask for one GPU for this step.
GPU_OP_TAGS = {
    "dagster-k8s/config": {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}}
    },
    "ecs/task_overrides": json.dumps(
        {"containerOverrides": [{"name": "run", "resourceRequirements": [{"type": "GPU", "value": "1"}]}]}
    ),
    "crawlmix/resources": "gpu",
}


class EmbeddingsGateConfig(Config):
    norm_tolerance: float = Field(default=1e-2, ge=0.0, description="unit vectors: |norm - 1| at most this")
    min_total_variance: float = Field(
        default=1e-4,
        ge=0.0,
        description=(
            "smallest total variance (sum of per-dimension variances, 1 - |mean vector|^2 for unit "
            "vectors) accepted; collapsed embeddings approach 0, a real corpus sits around 0.5-0.9"
        ),
    )


def embedding_keys(store, snapshot: str, shard: str) -> tuple[str, str]:
    return store.key("embeddings", snapshot, shard, "npy"), store.key("embeddings", snapshot, shard, "ids.parquet")


def build_embedding(partitions_def):
    @asset(
        partitions_def=partitions_def,
        deps=["raw_corpus"],
        pool="gpu",
        op_tags=GPU_OP_TAGS,
        group_name="embedding",
        kinds={"pytorch", "numpy"},
        owners=OWNERS,
        code_version=EMBEDDINGS_CODE_VERSION,
        description=(
            "float16 unit-norm sentence embeddings of a shard's documents, row-aligned with raw_corpus: "
            "<storage>/embeddings/<snapshot>/<shard>.npy (memory-mappable) and <shard>.ids.parquet. "
            "Resumable: the shard is embedded in chunks, each written atomically, and a rerun skips "
            "finished chunks. Runs in the `gpu` pool."
        ),
    )
    def embeddings(
        context: AssetExecutionContext, embedder: EmbedderResource, storage: StorageResource
    ) -> MaterializeResult:
        from crawlmix.embed import embed_parquet_resumable

        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        raw_key = store.key("raw_corpus", snapshot, shard, "parquet")
        npy_key, ids_key = embedding_keys(store, snapshot, shard)
        model = embedder.get_model()
        for note in model.notes:
            context.log.warning(note)
        work_dir = Path(embedder.work_root) / "embeddings" / snapshot / shard

        def log_chunk(info: dict) -> None:
            context.log.info(
                f"chunk {info['chunk'] + 1}/{info['chunks']}: {info['rows']} rows "
                f"({'computed' if info['computed'] else 'reused from an earlier attempt'})"
            )

        started = time.monotonic()
        # The handle whose bytes matched raw_corpus's checksum is the one the texts are read from.
        with open_verified(store, raw_key) as raw_handle:
            try:
                with checked_write(store, npy_key) as npy_out, checked_write(store, ids_key) as ids_out:
                    stats = embed_parquet_resumable(
                        model, raw_handle, str(work_dir), npy_out.path, ids_out.path,
                        chunk_rows=embedder.chunk_rows, on_chunk=log_chunk,
                    )
            except (OSError, ValueError) as exc:
                if "parquet" in str(exc).lower() or "arrow" in type(exc).__module__:
                    raise CorruptFileError(
                        f"cannot read {store.uri(raw_key)} ({exc}); re-materialize the upstream "
                        f"`raw_corpus` partition {snapshot}/{shard}."
                    ) from exc
                raise
        elapsed = time.monotonic() - started
        versions = model.versions()
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(store.uri(npy_key)),
                "ids_path": MetadataValue.path(store.uri(ids_key)),
                "dagster/row_count": stats["rows"],
                "dim": versions["dim"],
                "bytes": npy_out.written.bytes,
                "sha256": npy_out.written.sha256,
                "ids_sha256": ids_out.written.sha256,
                "docs_per_s": round(stats["rows"] / elapsed, 1) if elapsed > 0 else 0.0,
                "elapsed_s": round(elapsed, 3),
                "chunks_computed": stats["chunks_computed"],
                "chunks_reused": stats["chunks_reused"],
                "code_version": EMBEDDINGS_CODE_VERSION,
                **{k: v for k, v in versions.items() if k != "dim"},
            }
        )

    @asset_check(
        asset=embeddings,
        blocking=True,
        partitions_def=partitions_def,
        name="expectations",
        description=(
            "Great Expectations suite: one vector per raw_corpus document with ids in the same order, "
            "the model's dimension, all finite, norms within 1 +/- tolerance, not degenerate "
            "(total variance above a floor, not all rows identical). A shard without documents passes "
            "with a (0, dim) array and no ids."
        ),
    )
    def embeddings_expectations(
        context: AssetCheckExecutionContext,
        config: EmbeddingsGateConfig,
        embedder: EmbedderResource,
        storage: StorageResource,
    ) -> AssetCheckResult:
        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        npy_key, ids_key = embedding_keys(store, snapshot, shard)
        raw_ids = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["doc_id"])
        ids = read_table(store, ids_key, columns=["doc_id"])
        expected_dim = embedder.get_model().dim
        with open_npy(store, npy_key) as vectors:
            outcome, summary = judge_embeddings(
                vectors, ids.column("doc_id").to_pylist(), raw_ids.column("doc_id").to_pylist(), expected_dim, config
            )
        return gate_result(outcome, **summary, expected_dim=expected_dim)

    return [embeddings], [embeddings_expectations]


def judge_embeddings(
    vectors: np.ndarray, doc_ids: list[str], raw_doc_ids: list[str], expected_dim: int, config: EmbeddingsGateConfig
):
    """The gate's Great Expectations verdict on a shard's vectors and ids against its raw_corpus ids:
    (outcome, summary for the check metadata)."""
    from crawlmix.expectations import run_suite

    rows, facts, summary = _gate_frames(vectors, doc_ids, raw_doc_ids)
    outcome = combined(
        run_suite(facts, "embeddings_shape", lambda gxe: shape_expectations(gxe, len(raw_doc_ids), expected_dim, config)),
        run_suite(rows, "embeddings_rows", lambda gxe: row_expectations(gxe, config)),
    )
    return outcome, summary


def shape_expectations(gxe, n_raw: int, expected_dim: int, config: EmbeddingsGateConfig) -> list:
    """On the shard's one row of facts (`table_facts`): judged even for a shard without documents,
    whose vectors must still be (0, dim) with no ids, and failing when documents lack vectors."""
    return [
        gxe.ExpectColumnValuesToBeInSet(column="n_vectors", value_set=[n_raw]),
        gxe.ExpectColumnValuesToBeInSet(column="n_ids", value_set=[n_raw]),
        gxe.ExpectColumnValuesToBeInSet(column="dim", value_set=[expected_dim]),
        gxe.ExpectColumnValuesToBeBetween(column="total_variance", min_value=config.min_total_variance),
        gxe.ExpectColumnValuesToBeInSet(column="all_rows_identical", value_set=[False]),
    ]


def row_expectations(gxe, config: EmbeddingsGateConfig) -> list:
    """On one row per vector (padded to the longer of vectors, ids and documents)."""
    return [
        gxe.ExpectColumnPairValuesToBeEqual(column_A="doc_id", column_B="raw_doc_id"),
        gxe.ExpectColumnValuesToBeInSet(column="is_finite", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(
            column="norm", min_value=1 - config.norm_tolerance, max_value=1 + config.norm_tolerance
        ),
    ]


def _gate_frames(vectors: np.ndarray, doc_ids: list[str], raw_doc_ids: list[str], block: int = 65536):
    """(per-row frame, one-row facts frame, summary for metadata), computed in blocks so a large
    shard never sits in memory as float32."""
    n = vectors.shape[0] if vectors.ndim == 2 else 0
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    norms = np.empty(n, dtype=np.float64)
    finite = np.empty(n, dtype=bool)
    first: np.ndarray | None = None
    any_row_differs = False
    total = np.zeros(dim, dtype=np.float64)
    total_sq = np.zeros(dim, dtype=np.float64)
    for start in range(0, n, block):
        rows = np.asarray(vectors[start : start + block], dtype=np.float64)
        finite[start : start + len(rows)] = np.isfinite(rows).all(axis=1)
        norms[start : start + len(rows)] = np.linalg.norm(rows, axis=1)
        exact = np.ascontiguousarray(vectors[start : start + block]).view(np.uint8).reshape(len(rows), -1)
        first = exact[0].copy() if first is None else first
        any_row_differs = any_row_differs or bool((exact != first).any())
        safe = np.where(np.isfinite(rows), rows, 0.0)
        total += safe.sum(axis=0)
        total_sq += (safe * safe).sum(axis=0)
    mean = total / max(n, 1)
    variance = total_sq / max(n, 1) - mean * mean
    total_variance = float(variance.sum()) if dim and n > 1 else 0.0
    length = max(n, len(doc_ids), len(raw_doc_ids))
    rows_frame = pd.DataFrame(
        {
            "doc_id": _padded(doc_ids, length),
            "raw_doc_id": _padded(raw_doc_ids, length),
            "is_finite": _padded(list(finite), length, False),
            "norm": _padded(list(np.nan_to_num(norms, nan=-1.0)), length, -1.0),
        }
    )
    facts = table_facts(
        n_vectors=n,
        n_ids=len(doc_ids),
        dim=dim,
        # Fewer than two vectors have no spread to judge; their other facts are still judged.
        total_variance=total_variance if n > 1 else 1.0,
        # Every vector byte-identical means collapsed embeddings, once there are two to compare.
        all_rows_identical=n > 1 and not any_row_differs,
    )
    summary = {
        "rows": n,
        "dim": dim,
        "non_finite_rows": int((~finite).sum()),
        "norm_min": float(np.nanmin(norms)) if n else 0.0,
        "norm_max": float(np.nanmax(norms)) if n else 0.0,
        "total_variance": total_variance,
    }
    return rows_frame, facts, summary


def _padded(values: list, length: int, fill=None) -> list:
    """Columns of unequal length (a row-count mismatch) padded so the suite reports the mismatch."""
    return values + [fill] * (length - len(values))
