"""Clustering domain: `centroids` (global tree), `cluster_labels` per shard, `semantic_duplicates` per snapshot."""

import json
from typing import Literal

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetDep,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
    asset_check,
)
from pydantic import Field

from crawlmix import plots
from crawlmix.centroid_store import load_current, save_tree
from crawlmix.clustering_steps import (
    drift_ratio,
    fit_centroid_tree,
    label_vectors,
    labels_table,
)
from crawlmix.clustering_steps import (
    semantic_duplicates as find_semantic_duplicates,
)
from crawlmix.storage import stored_shards
from crawlmix.tables import open_npy, read_table, table_file_metadata, write_table
from curation_assets import OWNERS
from curation_assets.embedding import GPU_OP_TAGS, embedding_keys
from curation_assets.gates import aligned_with, gate_result
from curation_assets.partitions import (
    SNAPSHOT_DIM,
    crawl_snapshots,
    split_partition_key,
)
from resources import EmbedderResource, StorageResource, WarehouseResource

CENTROIDS_CODE_VERSION = "centroids-1"
LABELS_CODE_VERSION = "cluster_labels-1"
SEMDEDUP_CODE_VERSION = "semantic_duplicates-1"


class CentroidsConfig(Config):
    snapshots: list[str] = Field(default=[], description="snapshots to sample from; empty = all registered")
    ks: list[int] = Field(
        default=[], description="clusters per level, leaves first (e.g. [1000, 100, 10]); empty = about 40 docs per leaf, 5x fewer per level up"
    )
    sample_size: int = Field(default=100_000, gt=0, description="most documents the fit samples (uniform across the scope)")
    n_iter: int = Field(default=20, ge=1, description="Lloyd iterations per fit")
    resampling_steps: list[int] = Field(default=[], description="per level; empty = 0 at level 1, 10 above (Vo et al.)")
    seed: int = Field(default=0, ge=0)


class LabelDriftConfig(Config):
    max_drift_ratio: float = Field(
        default=1.25,
        gt=0.0,
        description="warn when a shard's mean distance to its leaf centroid exceeds the fit sample's by this factor",
    )


class SemanticDuplicatesConfig(Config):
    scope: Literal["snapshot", "with_earlier"] = Field(
        default="snapshot",
        description="snapshot: within this snapshot only | with_earlier: also against every snapshot registered before it",
    )
    eps: float = Field(
        default=0.1,
        ge=0.0,
        le=2.0,
        description="remove a doc whose cosine to an earlier doc of its cluster exceeds 1 - eps; 0.1 had precision 1.00, recall 0.86 on planted near-duplicates (benchmarks/cluster.py)",
    )
    order: Literal["hard", "easy", "random"] = Field(default="hard", description="hard (farthest from centroid first, kept first) | easy | random")
    seed: int = Field(default=0, ge=0)


def build_clustering(partitions_def, shard_keys, warehouse_pool: str | None = None):
    @asset(
        deps=[AssetDep("embeddings")],
        pool="gpu",
        op_tags=GPU_OP_TAGS,
        group_name="clustering",
        kinds={"faiss", "numpy"},
        owners=OWNERS,
        code_version=CENTROIDS_CODE_VERSION,
        description=(
            "Hierarchical k-means tree (Vo et al. 2024) fit on a bounded uniform sample of embeddings "
            "across the chosen snapshots, with c-TF-IDF keywords and a name for every cluster at every "
            "level. Versioned by content hash; <storage>/centroids/global/current.json points at the "
            "version that labelling uses. A refit is deliberate (job fit_centroids) and makes labels stale."
        ),
    )
    def centroids(
        context: AssetExecutionContext,
        config: CentroidsConfig,
        embedder: EmbedderResource,
        storage: StorageResource,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        store = storage.get_storage()
        snapshots = config.snapshots or list(context.instance.get_dynamic_partitions(crawl_snapshots.name))
        shards = stored_shards(store, "embeddings", snapshots, "npy")
        if not shards:
            raise ValueError(f"no embeddings found for snapshots {snapshots}: materialize `embeddings` first")
        device = embedder.get_model().device
        fitted = fit_centroid_tree(
            store, shards, ks=config.ks or None, sample_size=config.sample_size, n_iter=config.n_iter,
            resampling_steps=config.resampling_steps or None, seed=config.seed, device=device,
        )
        paths = save_tree(store, fitted)
        tree = fitted.tree
        rows = []
        for level, k in enumerate(tree.config.ks):
            parents = tree.parents[level] if level < len(tree.parents) else None
            for cluster in range(k):
                rows.append({
                    "centroid_version": fitted.version,
                    "level": level + 1,
                    "cluster_id": cluster,
                    "parent_id": int(parents[cluster]) if parents is not None else None,
                    "fit_size": int(tree.sizes[level][cluster]),
                    "name": fitted.names[level][cluster],
                    "keywords": json.dumps([w for w, _ in fitted.keywords[level][cluster]]),
                })
        warehouse.get_warehouse().replace_partition("clusters", {"centroid_version": fitted.version}, rows)
        top = tree.levels - 1
        return MaterializeResult(
            metadata={
                "centroid_version": fitted.version,
                "path": MetadataValue.path(paths["tree"]),
                "current": MetadataValue.path(paths["current"]),
                "ks": MetadataValue.json(list(tree.config.ks)),
                "sample_rows": fitted.fit_info["sample_rows"],
                "scope_rows": fitted.fit_info["scope_rows"],
                "snapshots": MetadataValue.json(snapshots),
                "fit_seconds": fitted.fit_info["fit_seconds"],
                "fit_mean_distance": round(fitted.fit_mean_distance, 6),
                "device": device,
                "top_level_clusters": MetadataValue.md(_cluster_table_md(fitted.names[top], tree.sizes[top], fitted.keywords[top])),
                "largest_leaf_clusters": MetadataValue.md(_cluster_table_md(fitted.names[0], tree.sizes[0], fitted.keywords[0], limit=20)),
                "cluster_sizes": MetadataValue.md(plots.png_markdown(plots.cluster_sizes_png(
                    tree.sizes[0], tree.sizes[top], fitted.names[top],
                    title=f"fit sample of {fitted.fit_info['sample_rows']} documents",
                ), "cluster sizes of the fit sample")),
                "centroid_map": MetadataValue.md(plots.png_markdown(plots.centroid_projection_png(
                    tree.centroids[0], tree.leaf_ancestors()[:, top], fitted.names[top], tree.sizes[0],
                ), "leaf centroids projected on two principal components")),
                "code_version": CENTROIDS_CODE_VERSION,
            }
        )

    @asset_check(
        asset=centroids,
        blocking=True,
        name="expectations",
        description="No empty cluster at any level, centroids finite and unit norm, every child has exactly one valid parent.",
    )
    def centroids_expectations(context: AssetCheckExecutionContext, storage: StorageResource) -> AssetCheckResult:
        from crawlmix.expectations import run_suite

        current = load_current(storage.get_storage())
        tree = current.tree
        frames = []
        for level, k in enumerate(tree.config.ks):
            c = np.asarray(tree.centroids[level], dtype=np.float64)
            parents = tree.parents[level] if level < len(tree.parents) else np.zeros(k, np.int64)
            upper = tree.config.ks[level + 1] if level + 1 < tree.levels else 1
            children = np.bincount(tree.parents[level - 1], minlength=k) if level > 0 else np.ones(k, np.int64)
            frames.append(pd.DataFrame({
                "level": level + 1,
                "size": tree.sizes[level],
                "is_finite": np.isfinite(c).all(axis=1),
                "norm": np.nan_to_num(np.linalg.norm(c, axis=1), nan=-1.0),
                "parent_in_range": (parents >= 0) & (parents < upper),
                "children": children,
            }))
        frame = pd.concat(frames, ignore_index=True)
        outcome = run_suite(frame, "centroids", lambda gxe: [
            gxe.ExpectColumnValuesToBeBetween(column="size", min_value=1),
            gxe.ExpectColumnValuesToBeInSet(column="is_finite", value_set=[True]),
            gxe.ExpectColumnValuesToBeBetween(column="norm", min_value=0.99, max_value=1.01),
            gxe.ExpectColumnValuesToBeInSet(column="parent_in_range", value_set=[True]),
            gxe.ExpectColumnValuesToBeBetween(column="children", min_value=1),
        ])
        return gate_result(
            outcome,
            centroid_version=current.version,
            sizes_per_level=MetadataValue.json([s.tolist()[:200] for s in tree.sizes]),
        )

    @asset(
        partitions_def=partitions_def,
        pool=warehouse_pool,
        deps=["embeddings", "centroids"],
        group_name="clustering",
        kinds={"numpy", "parquet"},
        owners=OWNERS,
        code_version=LABELS_CODE_VERSION,
        description=(
            "Each document's path of cluster ids (leaf first), its cosine distance to its leaf centroid, "
            "and the centroid version used: <storage>/cluster_labels/<snapshot>/<shard>.parquet. Cluster "
            "sizes per shard go to the warehouse table cluster_shard_sizes."
        ),
    )
    def cluster_labels(
        context: AssetExecutionContext, embedder: EmbedderResource, storage: StorageResource, warehouse: WarehouseResource
    ) -> MaterializeResult:
        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        current = load_current(store)
        npy_key, ids_key = embedding_keys(store, snapshot, shard)
        doc_ids = read_table(store, ids_key, columns=["doc_id"]).column("doc_id").to_pylist()
        with open_npy(store, npy_key) as vectors:
            paths, distances = label_vectors(vectors, current, device=embedder.get_model().device)
        table = labels_table(doc_ids, paths, distances, current.version)
        key = store.key("cluster_labels", snapshot, shard, "parquet")
        written = write_table(store, key, table, {
            "asset": "cluster_labels", "centroid_version": current.version, "code_version": LABELS_CODE_VERSION,
        })
        sizes = []
        for level in range(paths.shape[1]):
            ids, counts = np.unique(paths[:, level], return_counts=True)
            for cluster, n in zip(ids.tolist(), counts.tolist()):
                in_cluster = paths[:, level] == cluster
                sizes.append({
                    "snapshot": snapshot, "shard": shard, "centroid_version": current.version,
                    "level": level + 1, "cluster_id": cluster, "n": n,
                    "mean_distance": float(distances[in_cluster].mean()) if level == 0 else None,
                })
        warehouse.get_warehouse().replace_partition("cluster_shard_sizes", {"snapshot": snapshot, "shard": shard}, sizes)
        mean_distance = float(distances.mean()) if len(distances) else 0.0
        top = paths.shape[1] - 1
        top_ids, top_counts = np.unique(paths[:, top], return_counts=True) if len(paths) else ([], [])
        top_sizes = dict(zip(np.asarray(top_ids).tolist(), np.asarray(top_counts).tolist()))
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(store.uri(key)),
                "dagster/row_count": len(doc_ids),
                "sha256": written.sha256,
                "centroid_version": current.version,
                "mean_leaf_distance": round(mean_distance, 6),
                "drift_ratio": round(drift_ratio(mean_distance, current.fit_mean_distance), 4),
                "top_level_clusters": MetadataValue.md(_cluster_table_md(current.names[top], top_sizes, current.keywords[top])),
                "cluster_sizes": MetadataValue.md(plots.png_markdown(plots.cluster_sizes_png(
                    np.unique(paths[:, 0], return_counts=True)[1],
                    top_sizes,
                    current.names[top], title=f"{snapshot} / shard {shard}",
                ), f"cluster sizes in {snapshot}/{shard}")),
                "code_version": LABELS_CODE_VERSION,
            }
        )

    @asset_check(
        asset=cluster_labels,
        blocking=True,
        partitions_def=partitions_def,
        name="expectations",
        description="Every embedded document labelled, in order; every cluster id valid for the current centroid version and consistent with the tree.",
    )
    def cluster_labels_expectations(context: AssetCheckExecutionContext, storage: StorageResource) -> AssetCheckResult:
        from crawlmix.expectations import run_suite

        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        current = load_current(store)
        tree = current.tree
        labels = read_table(store, store.key("cluster_labels", snapshot, shard, "parquet")).to_pandas()
        _, ids_key = embedding_keys(store, snapshot, shard)
        embedded = read_table(store, ids_key, columns=["doc_id"]).column("doc_id").to_pylist()
        level_columns = [f"cluster_l{t + 1}" for t in range(tree.levels)]
        paths = labels[level_columns].to_numpy(dtype=np.int64) if len(labels) else np.empty((0, tree.levels), np.int64)
        consistent = np.ones(len(labels), dtype=bool)
        for t in range(tree.levels - 1):
            in_range = (paths[:, t] >= 0) & (paths[:, t] < tree.config.ks[t])
            parent = np.where(in_range, tree.parents[t][np.clip(paths[:, t], 0, tree.config.ks[t] - 1)], -1)
            consistent &= in_range & (parent == paths[:, t + 1])
        frame = aligned_with(labels, embedded, "embedded_doc_id")
        frame["path_consistent"] = list(consistent) + [False] * (len(frame) - len(labels))
        frame["n_labels"] = len(labels)

        def expectations(gxe):
            suite = [
                gxe.ExpectColumnValuesToBeInSet(column="n_labels", value_set=[len(embedded)]),
                gxe.ExpectColumnPairValuesToBeEqual(column_A="doc_id", column_B="embedded_doc_id"),
                gxe.ExpectColumnValuesToBeInSet(column="centroid_version", value_set=[current.version]),
                gxe.ExpectColumnValuesToBeInSet(column="path_consistent", value_set=[True]),
                gxe.ExpectColumnValuesToNotBeNull(column="leaf_distance"),
            ]
            for t, column in enumerate(level_columns):
                suite.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=tree.config.ks[t] - 1))
            return suite

        outcome = run_suite(frame, "cluster_labels", expectations)
        return gate_result(
            outcome,
            rows=len(frame),
            centroid_version=current.version,
        )

    @asset_check(
        asset=cluster_labels,
        blocking=False,
        partitions_def=partitions_def,
        name="centroid_drift",
        description="Warns (does not block) when the shard sits farther from its centroids than the fit sample did: the centroids may be stale for this snapshot.",
    )
    def cluster_labels_drift(
        context: AssetCheckExecutionContext, config: LabelDriftConfig, storage: StorageResource
    ) -> AssetCheckResult:
        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        current = load_current(store)
        labels = read_table(store, store.key("cluster_labels", snapshot, shard, "parquet"), columns=["leaf_distance"])
        mean_distance = float(np.mean(labels.column("leaf_distance").to_numpy())) if labels.num_rows else 0.0
        ratio = drift_ratio(mean_distance, current.fit_mean_distance)
        return AssetCheckResult(
            passed=ratio <= config.max_drift_ratio,
            severity=AssetCheckSeverity.WARN,
            description=None if ratio <= config.max_drift_ratio else (
                f"mean leaf distance {mean_distance:.4f} is {ratio:.2f}x the fit sample's "
                f"{current.fit_mean_distance:.4f}: consider refitting centroids (job fit_centroids)"
            ),
            metadata={
                "mean_leaf_distance": round(mean_distance, 6),
                "fit_mean_distance": round(current.fit_mean_distance, 6),
                "drift_ratio": round(ratio, 4),
                "max_drift_ratio": config.max_drift_ratio,
            },
        )

    @asset(
        partitions_def=crawl_snapshots,
        pool=warehouse_pool,
        deps=[
            AssetDep("cluster_labels", partition_mapping=MultiToSingleDimensionPartitionMapping(partition_dimension_name=SNAPSHOT_DIM)),
            AssetDep("embeddings", partition_mapping=MultiToSingleDimensionPartitionMapping(partition_dimension_name=SNAPSHOT_DIM)),
        ],
        group_name="clustering",
        kinds={"numpy", "parquet"},
        owners=OWNERS,
        code_version=SEMDEDUP_CODE_VERSION,
        description=(
            "SemDeDup over one snapshot: within each leaf cluster (across all its shards), documents in "
            "order of distance to the centroid; one whose cosine to an earlier one exceeds 1 - eps is "
            "removed. <storage>/semantic_duplicates/<snapshot>/all.parquet lists each removed doc, the kept "
            "doc it duplicates, the similarity and the cluster."
        ),
    )
    def semantic_duplicates(
        context: AssetExecutionContext,
        config: SemanticDuplicatesConfig,
        embedder: EmbedderResource,
        storage: StorageResource,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        snapshot = context.partition_key
        store = storage.get_storage()
        current = load_current(store)
        if config.scope not in ("snapshot", "with_earlier"):
            raise ValueError(f"scope must be snapshot or with_earlier, got {config.scope!r}")
        registered = list(context.instance.get_dynamic_partitions(crawl_snapshots.name))
        scope = [snapshot] if config.scope == "snapshot" else registered[: registered.index(snapshot) + 1]
        refs = [(snap, shard) for snap in scope for shard in shard_keys]
        missing = [f"{a}/{b}" for a, b in refs if not store.exists(store.key("cluster_labels", a, b, "parquet"))]
        if missing:
            raise ValueError(f"shards {missing} have no cluster_labels yet; label every shard in scope first")
        stale = [f"{a}/{b}" for a, b in refs if table_file_metadata(store, store.key("cluster_labels", a, b, "parquet")).get("centroid_version") != current.version]
        if stale:
            raise ValueError(f"shards {stale} were labelled with other centroids; re-materialize their cluster_labels")
        table, stats = find_semantic_duplicates(
            store, snapshot, refs, config.eps, config.order, config.seed, device=embedder.get_model().device
        )
        key = store.key("semantic_duplicates", snapshot, "all", "parquet")
        written = write_table(store, key, table, {
            "asset": "semantic_duplicates", "centroid_version": current.version, "eps": config.eps,
            "order": config.order, "scope": scope, "n_docs": stats["docs"], "code_version": SEMDEDUP_CODE_VERSION,
        })
        warehouse.get_warehouse().replace_partition("semantic_dedup_stats", {"snapshot": snapshot}, [{
            "snapshot": snapshot, "centroid_version": current.version, "eps": config.eps,
            "n_docs": stats["docs"], "n_removed": stats["removed"], "removal_fraction": stats["removal_fraction"],
        }])
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(store.uri(key)),
                "dagster/row_count": stats["removed"],
                "docs": stats["docs"],
                "removal_fraction": round(stats["removal_fraction"], 6),
                "eps": config.eps,
                "order": config.order,
                "scope": MetadataValue.json(scope),
                "compared_with_earlier_docs": stats["compared_with"],
                "sha256": written.sha256,
                "centroid_version": current.version,
                "code_version": SEMDEDUP_CODE_VERSION,
            }
        )

    @asset_check(
        asset=semantic_duplicates,
        blocking=True,
        partitions_def=crawl_snapshots,
        name="expectations",
        description="No document both kept and removed; every removed document belongs to the snapshot and points at a kept document in scope; removal fraction reported.",
    )
    def semantic_duplicates_expectations(context: AssetCheckExecutionContext, storage: StorageResource) -> AssetCheckResult:
        from crawlmix.expectations import run_suite

        snapshot = context.partition_key
        store = storage.get_storage()
        key = store.key("semantic_duplicates", snapshot, "all", "parquet")
        removed = read_table(store, key).to_pandas()
        n_docs = int(table_file_metadata(store, key).get("n_docs", 0))
        scope = table_file_metadata(store, key).get("scope", [snapshot])
        scope_ids = set()
        for snap in scope:
            for s in shard_keys:
                labels_key = store.key("cluster_labels", snap, s, "parquet")
                if store.exists(labels_key):
                    scope_ids.update(read_table(store, labels_key, columns=["doc_id"]).column("doc_id").to_pylist())
        removed_ids = set(removed["doc_id"])
        frame = removed.assign(
            kept_is_removed=removed["kept_doc_id"].isin(removed_ids),
            kept_in_scope=removed["kept_doc_id"].isin(scope_ids),
            removed_in_snapshot=removed["snapshot"] == snapshot,
        )
        outcome = run_suite(frame, "semantic_duplicates", lambda gxe: [
            gxe.ExpectColumnValuesToBeUnique(column="doc_id"),
            gxe.ExpectColumnValuesToBeInSet(column="kept_is_removed", value_set=[False]),
            gxe.ExpectColumnValuesToBeInSet(column="kept_in_scope", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="removed_in_snapshot", value_set=[True]),
            gxe.ExpectColumnValuesToBeBetween(column="similarity", min_value=-1.0, max_value=1.0001),
        ])
        return gate_result(
            outcome,
            removed=len(frame),
            docs=n_docs,
            removal_fraction=round(len(frame) / n_docs, 6) if n_docs else 0.0,
        )

    return (
        [centroids, cluster_labels, semantic_duplicates],
        [centroids_expectations, cluster_labels_expectations, cluster_labels_drift, semantic_duplicates_expectations],
    )


def _cluster_table_md(names: dict, sizes, keywords: dict, limit: int = 50) -> str:
    sizes = dict(sizes) if isinstance(sizes, dict) else dict(enumerate(np.asarray(sizes).tolist()))
    lines = ["| cluster | name | docs | keywords |", "| ---: | --- | ---: | --- |"]
    for cluster, n in sorted(sizes.items(), key=lambda kv: -kv[1])[:limit]:
        words = ", ".join(w for w, _ in keywords.get(cluster, [])[:6])
        lines.append(f"| {cluster} | {names.get(cluster, '')} | {n} | {words} |")
    return "\n".join(lines)
