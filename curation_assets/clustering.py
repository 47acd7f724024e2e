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
from crawlmix.centroid_store import CentroidTree, load_current, save_tree
from crawlmix.clustering_steps import (
    combine_duplicates,
    drift_ratio,
    fit_centroid_tree,
    label_vectors,
    labels_table,
)
from crawlmix.clustering_steps import (
    semantic_duplicates as find_semantic_duplicates,
)
from crawlmix.content_index import find_exact_duplicates, write_index
from crawlmix.expectations import SuiteOutcome
from crawlmix.quality_steps import duplicate_ids
from crawlmix.storage import stored_shards
from crawlmix.tables import open_npy, read_table, table_file_metadata, write_table
from curation_assets import OWNERS
from curation_assets.embedding import GPU_OP_TAGS, embedding_keys
from curation_assets.gates import aligned_with, combined, gate_result, table_facts
from curation_assets.partitions import (
    SNAPSHOT_DIM,
    crawl_snapshots,
    split_partition_key,
)
from resources import EmbedderResource, StorageResource, WarehouseResource

CENTROIDS_CODE_VERSION = "centroids-2"
LABELS_CODE_VERSION = "cluster_labels-1"
SEMDEDUP_CODE_VERSION = "semantic_duplicates-3"


class CentroidsConfig(Config):
    snapshots: list[str] = Field(default=[], description="snapshots to sample from; empty = all registered")
    ks: list[int] = Field(
        default=[], description="clusters per level, leaves first (e.g. [1000, 100, 10]); empty = about 40 docs per leaf, 5x fewer per level up"
    )
    sample_size: int = Field(default=100_000, gt=0, description="most documents the fit samples (uniform across the scope)")
    n_iter: int = Field(default=20, ge=1, description="Lloyd iterations per fit")
    resampling_steps: list[int] = Field(
        default=[],
        description="per level; empty = 0 at level 1, 10 above where at least 10 items per cluster are resampled",
    )
    upper_weights: Literal["sqrt", "sizes", "uniform"] = Field(
        default="sqrt",
        description="upper levels cluster the centroids below weighted by the square root of their documents (sqrt), "
        "by their documents (sizes) or one vote each (uniform, Vo et al.)",
    )
    seed: int = Field(default=0, ge=0)


class LabelDriftConfig(Config):
    max_drift_ratio: float = Field(
        default=1.25,
        gt=0.0,
        description="warn when a shard's mean distance to its leaf centroid exceeds the fit sample's by this factor",
    )


class SemanticDuplicatesConfig(Config):
    scope: Literal["snapshot", "with_earlier"] = Field(
        default="with_earlier",
        description=(
            "with_earlier: also against every snapshot registered before it (a re-crawl does not bring "
            "back what an earlier snapshot had) | snapshot: within this snapshot only. Exact copies are "
            "removed against earlier snapshots either way"
        ),
    )
    eps: float = Field(
        default=0.05,
        ge=0.0,
        le=2.0,
        description=(
            "remove a doc whose cosine to an earlier doc of its cluster exceeds 1 - eps. 0.05: on a two-snapshot "
            "re-crawl of real documentation pages (benchmarks/cross_snapshot_dedup.py) 1.3% of planted copies "
            "leak and 95.5% of removals are planted copies; 0.1 leaks none but removes templated pages "
            "(release notes of different versions) too, precision 0.92"
        ),
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
            resampling_steps=config.resampling_steps or None, upper_weights=config.upper_weights, seed=config.seed,
            device=device,
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
                "top_level_clusters": MetadataValue.md(_cluster_table_md(
                    fitted.names[top], tree.sizes[top], fitted.keywords[top], fitted.representatives[top])),
                "largest_leaf_clusters": MetadataValue.md(_cluster_table_md(
                    fitted.names[0], tree.sizes[0], fitted.keywords[0], fitted.representatives[0], limit=20)),
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
                "top_level_clusters": MetadataValue.md(_cluster_table_md(
                    current.names[top], top_sizes, current.keywords[top],
                    current.representatives[top] if current.representatives else {})),
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
        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        current = load_current(store)
        labels_key = store.key("cluster_labels", snapshot, shard, "parquet")
        labels = read_table(store, labels_key).to_pandas()
        file_version = table_file_metadata(store, labels_key).get("centroid_version")
        _, ids_key = embedding_keys(store, snapshot, shard)
        embedded = read_table(store, ids_key, columns=["doc_id"]).column("doc_id").to_pylist()
        outcome = judge_labels(labels, file_version, embedded, current)
        return gate_result(
            outcome,
            rows=len(labels),
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
        earlier = registered[: registered.index(snapshot)]
        scope = [snapshot] if config.scope == "snapshot" else [*earlier, snapshot]
        refs = [(snap, shard) for snap in scope for shard in shard_keys]
        missing = [f"{a}/{b}" for a, b in refs if not store.exists(store.key("cluster_labels", a, b, "parquet"))]
        if missing:
            raise ValueError(f"shards {missing} have no cluster_labels yet; label every shard in scope first")
        stale = [f"{a}/{b}" for a, b in refs if table_file_metadata(store, store.key("cluster_labels", a, b, "parquet")).get("centroid_version") != current.version]
        if stale:
            raise ValueError(f"shards {stale} were labelled with other centroids; re-materialize their cluster_labels")

        # Exact copies first, by content hash, against every earlier snapshot whatever the semantic
        # scope: a re-crawled page is a copy even when SemDeDup only looks inside the snapshot.
        exact = find_exact_duplicates(store, snapshot, shard_keys, earlier)
        removed_earlier = {doc for snap in scope if snap != snapshot for doc in duplicate_ids(store, snap)}
        semantic, stats = find_semantic_duplicates(
            store, snapshot, refs, config.eps, config.order, config.seed,
            device=embedder.get_model().device, exclude=set(exact.removed["doc_id"]) | removed_earlier,
        )
        table = combine_duplicates(exact.removed, semantic, _leaf_of(store, snapshot, shard_keys))
        provenance = {"centroid_version": current.version, "code_version": SEMDEDUP_CODE_VERSION}
        key = store.key("semantic_duplicates", snapshot, "all", "parquet")
        written = write_table(store, key, table, {
            "asset": "semantic_duplicates", "centroid_version": current.version, "eps": config.eps,
            "order": config.order, "scope": scope, "n_docs": exact.n_docs, "code_version": SEMDEDUP_CODE_VERSION,
        })
        n_indexed = write_index(store, snapshot, exact, provenance)
        n_removed = table.num_rows
        removal_fraction = n_removed / exact.n_docs if exact.n_docs else 0.0
        warehouse.get_warehouse().replace_partition("semantic_dedup_stats", {"snapshot": snapshot}, [{
            "snapshot": snapshot, "centroid_version": current.version, "eps": config.eps,
            "n_docs": exact.n_docs, "n_removed": n_removed, "removal_fraction": removal_fraction,
            "n_exact_removed": len(exact.removed),
        }])
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(store.uri(key)),
                "dagster/row_count": n_removed,
                "docs": exact.n_docs,
                "removal_fraction": round(removal_fraction, 6),
                "exact_copies_within_snapshot": exact.n_within_snapshot,
                "exact_copies_of_earlier_snapshots": exact.n_against_earlier,
                "semantic_duplicates": stats["removed"],
                "content_hashes_indexed": n_indexed,
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
        description="No document both kept and removed; every removed document belongs to the snapshot and points at a kept document in scope or an earlier snapshot; each removal says whether it is an exact or a semantic copy; removal fraction reported.",
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
        # exact copies may point into an earlier snapshot even when SemDeDup's scope is the snapshot
        for snap in sorted(set(scope) | set(removed["kept_snapshot"])):
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
            gxe.ExpectColumnValuesToBeInSet(column="method", value_set=["exact", "semantic"]),
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


def judge_labels(labels: pd.DataFrame, file_version: str | None, embedded: list[str], current: CentroidTree) -> SuiteOutcome:
    """The cluster_labels gate's verdict on a shard's labels (and the centroid version its file
    records) against the shard's embedded ids and the current tree.

    Counts and the file's version are one row of facts, judged even for a shard without documents;
    the per-document expectations run on the labels padded to the embedded ids, so labels missing
    for documents that were embedded fail."""
    from crawlmix.expectations import run_suite

    tree = current.tree
    level_columns = [f"cluster_l{t + 1}" for t in range(tree.levels)]
    paths = labels[level_columns].to_numpy(dtype=np.int64) if len(labels) else np.empty((0, tree.levels), np.int64)
    consistent = np.ones(len(labels), dtype=bool)
    for t in range(tree.levels - 1):
        in_range = (paths[:, t] >= 0) & (paths[:, t] < tree.config.ks[t])
        parent = np.where(in_range, tree.parents[t][np.clip(paths[:, t], 0, tree.config.ks[t] - 1)], -1)
        consistent &= in_range & (parent == paths[:, t + 1])
    frame = aligned_with(labels, embedded, "embedded_doc_id")
    frame["path_consistent"] = list(consistent) + [False] * (len(frame) - len(labels))
    facts = table_facts(n_labels=len(labels), file_centroid_version=str(file_version))

    def per_document(gxe):
        suite = [
            gxe.ExpectColumnPairValuesToBeEqual(column_A="doc_id", column_B="embedded_doc_id"),
            gxe.ExpectColumnValuesToBeInSet(column="centroid_version", value_set=[current.version]),
            gxe.ExpectColumnValuesToBeInSet(column="path_consistent", value_set=[True]),
            gxe.ExpectColumnValuesToNotBeNull(column="leaf_distance"),
        ]
        for t, column in enumerate(level_columns):
            suite.append(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=tree.config.ks[t] - 1))
        return suite

    return combined(
        run_suite(facts, "cluster_labels_shape", lambda gxe: [
            gxe.ExpectColumnValuesToBeInSet(column="n_labels", value_set=[len(embedded)]),
            gxe.ExpectColumnValuesToBeInSet(column="file_centroid_version", value_set=[current.version]),
        ]),
        run_suite(frame, "cluster_labels_rows", per_document),
    )


def _cluster_table_md(names: dict, sizes, keywords: dict, representatives: dict, limit: int = 50) -> str:
    """Clusters by size with their names, keywords and the fit-sample document closest to the
    centroid, so a reader can check a name against text."""
    sizes = dict(sizes) if isinstance(sizes, dict) else dict(enumerate(np.asarray(sizes).tolist()))
    lines = ["| cluster | name | docs | keywords | closest document |", "| ---: | --- | ---: | --- | --- |"]
    for cluster, n in sorted(sizes.items(), key=lambda kv: -kv[1])[:limit]:
        words = ", ".join(w for w, _ in keywords.get(cluster, [])[:6])
        closest = (representatives.get(cluster) or [{}])[0]
        text = _md_cell(closest.get("snippet", "")[:120])
        source = _md_cell(closest.get("url") or closest.get("doc_id") or "")
        shown = f"{text} ({source})" if source else text
        lines.append(f"| {cluster} | {names.get(cluster, '')} | {n} | {words} | {shown} |")
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _leaf_of(store, snapshot: str, shard_keys) -> dict[str, int]:
    leaf = {}
    for shard in shard_keys:
        labels = read_table(store, store.key("cluster_labels", snapshot, shard, "parquet"), columns=["doc_id", "cluster_l1"])
        leaf.update(zip(labels.column("doc_id").to_pylist(), labels.column("cluster_l1").to_pylist()))
    return leaf
