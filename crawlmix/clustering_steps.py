"""The clustering steps over stored shards: fit on a bounded sample, label a shard, dedup a snapshot.

No Dagster here: each function takes a `Storage` and plain arguments, so it runs the same under
Dagster, in a script or in a test. Vectors are read through memory maps, a shard or a group of
clusters at a time, so memory is bounded by the sample size and the largest cluster, never by a
whole snapshot.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from crawlmix.centroid_store import CentroidTree
from crawlmix.cluster import (
    HierarchicalConfig,
    HierarchicalKMeans,
    NamingConfig,
    TermCounter,
    assign_paths,
    closest_per_cluster,
    cluster_names,
    ctfidf_keywords_by_level,
    fit_hierarchical_kmeans,
    semdedup_all_scores,
)
from crawlmix.storage import Storage
from crawlmix.tables import open_npy, read_table

ShardRef = tuple[str, str]  # (snapshot, shard)


@dataclass
class FitSample:
    vectors: np.ndarray  # (n, dim) float32
    refs: list[ShardRef]  # which shard each block of rows came from
    rows: list[np.ndarray]  # row indices within each shard, aligned with refs
    total_rows: int  # rows available across the scope


def auto_ks(n: int, docs_per_leaf: int = 40, branching: int = 5, top_min: int = 8, top_max: int = 12) -> list[int]:
    """Level sizes for n distinct points when the user gives none: about 40 points per leaf, each
    level 5x smaller, and a top level of 8-12 clusters, the number of domains a person reads at a
    glance. A corpus too small for that still gets a tree: two leaves (one for a single point),
    so every cluster can hold a point and the fit never asks for more clusters than points."""
    if n < 1:
        raise ValueError("no points to cluster")
    ks = [max(min(2, n), min(20_000, n // docs_per_leaf))]
    while ks[-1] > top_max:
        ks.append(max(top_min, ks[-1] // branching))
    return ks


def default_resampling_steps(ks: Sequence[int], min_sample: int = 10) -> list[int]:
    """Vo et al. refine each level above the first by resampling the ``n_t // (2 k_t)`` items
    closest to each centroid. With a handful of items per cluster (auto levels shrink 5x, so 2 per
    cluster) that re-fit is noise: on labelled Debian descriptions it moved the largest top cluster
    from 24-37% to 27-36% and lowered top-level NMI by 0.04. So a level is resampled (10 steps) only
    when at least ``min_sample`` items per cluster would be kept; level 1 never (costliest, gains least)."""
    return [0] + [10 if below // (2 * k) >= min_sample else 0 for below, k in zip(ks, ks[1:])]


def embeddings_rows(store: Storage, ref: ShardRef) -> int:
    # Verified too: a corrupt header would skew the sample even if no row of the shard is drawn.
    with open_npy(store, store.key("embeddings", ref[0], ref[1], "npy")) as vectors:
        return int(vectors.shape[0])


def draw_fit_sample(store: Storage, shards: Sequence[ShardRef], sample_size: int, seed: int) -> FitSample:
    """A uniform sample without replacement over all rows of `shards`, seeded and order-independent."""
    shards = sorted(shards)
    counts = np.array([embeddings_rows(store, ref) for ref in shards], dtype=np.int64)
    total = int(counts.sum())
    take = min(sample_size, total)
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=take, replace=False)) if take else np.empty(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    blocks, refs, rows = [], [], []
    for i, ref in enumerate(shards):
        lo, hi = np.searchsorted(chosen, [offsets[i], offsets[i + 1]])
        local = chosen[lo:hi] - offsets[i]
        if not len(local):
            continue
        with open_npy(store, store.key("embeddings", ref[0], ref[1], "npy")) as vectors:
            blocks.append(np.asarray(vectors[local], dtype=np.float32))
        refs.append(ref)
        rows.append(local)
    dim = blocks[0].shape[1] if blocks else 0
    vectors = np.concatenate(blocks) if blocks else np.empty((0, dim), np.float32)
    return FitSample(vectors=vectors, refs=refs, rows=rows, total_rows=total)


def distinct_rows(vectors: np.ndarray) -> int:
    """How many different rows (byte-exact) `vectors` holds; a 128-bit digest per row keeps the
    memory small for a sample of 100,000 rows."""
    rows = np.ascontiguousarray(vectors)
    return len({hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows})


def sample_documents(store: Storage, sample: FitSample) -> pa.Table:
    """doc_id, url and text of the sampled rows, in sample order."""
    parts = []
    for ref, rows in zip(sample.refs, sample.rows):
        table = read_table(store, store.key("raw_corpus", ref[0], ref[1], "parquet"), columns=["doc_id", "url", "text"])
        parts.append(table.take(pa.array(rows)))
    if not parts:
        return pa.table({"doc_id": pa.array([], pa.string()), "url": pa.array([], pa.string()),
                         "text": pa.array([], pa.string())})
    return pa.concat_tables(parts)


def tree_config(
    vectors: np.ndarray,
    *,
    ks: Sequence[int] | None,
    n_iter: int,
    resampling_steps: Sequence[int] | int | None,
    seed: int,
    upper_weights: str = "sqrt",
) -> HierarchicalConfig:
    """The fit's settings, defaults filled in from the data."""
    n = vectors.shape[0]
    # Identical vectors (the same page under two URLs) can fill only one cluster: sizing the levels
    # by distinct vectors keeps a tiny or repetitive sample from leaving clusters empty.
    level_ks = list(ks) if ks else auto_ks(distinct_rows(vectors))
    if level_ks[0] > n:
        raise ValueError(f"level-1 k={level_ks[0]} exceeds the {n} sampled documents; lower k or widen the scope")
    if resampling_steps is None:
        resampling_steps = default_resampling_steps(level_ks)
    return HierarchicalConfig(ks=tuple(level_ks), n_iter=n_iter, resampling_steps=resampling_steps,
                              spherical=True, seed=seed, upper_weights=upper_weights)


@dataclass
class NamedTree:
    tree: HierarchicalKMeans
    names: list[dict[int, str]]
    keywords: list[dict[int, list[tuple[str, float]]]]
    representatives: list[dict[int, list[dict]]]


def fit_named_tree(
    vectors: np.ndarray,
    documents: pa.Table,
    config: HierarchicalConfig,
    *,
    device: str = "cpu",
    top_keywords: int = 10,
    naming: NamingConfig | None = None,
    per_cluster: int = 3,
) -> NamedTree:
    """Fit the tree on `vectors` and name every cluster from the words of its member documents
    (`documents`: doc_id, url, text, row-aligned with `vectors`)."""
    tree = fit_hierarchical_kmeans(vectors, config, device=device)
    texts = documents.column("text").to_pylist()
    counter = TermCounter().add(tree.paths[:, 0].tolist(), texts)
    keywords = ctfidf_keywords_by_level(counter, tree.parents, top_keywords, naming)
    names = [cluster_names(level) for level in keywords]
    for level, k in enumerate(tree.config.ks):  # clusters with no word kept still get a name
        for cluster in range(k):
            names[level].setdefault(cluster, f"{cluster}_unnamed")
            keywords[level].setdefault(cluster, [])
    return NamedTree(tree, names, keywords, representatives(vectors, tree, documents, per_cluster))


def representatives(
    vectors: np.ndarray, tree: HierarchicalKMeans, documents: pa.Table, per_cluster: int = 3
) -> list[dict[int, list[dict]]]:
    """Per level, per cluster: the member documents closest to the cluster's centroid, so a person
    can check a name against text."""
    doc_ids = documents.column("doc_id").to_pylist()
    urls = documents.column("url").to_pylist()
    texts = documents.column("text").to_pylist()
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out: list[dict[int, list[dict]]] = []
    for level in range(tree.levels):
        members = tree.paths[:, level]
        centroids = np.asarray(tree.centroids[level], dtype=np.float32)
        distance = 1.0 - np.einsum("ij,ij->i", unit, centroids[members])
        chosen = closest_per_cluster(members, distance, per_cluster)
        by_cluster: dict[int, list[dict]] = {}
        for i in sorted(chosen.tolist(), key=lambda i: (members[i], distance[i], i)):
            by_cluster.setdefault(int(members[i]), []).append({
                "doc_id": doc_ids[i],
                "url": urls[i],
                "distance": round(float(distance[i]), 4),
                "snippet": _snippet(texts[i]),
            })
        out.append(by_cluster)
    return out


def _snippet(text: str | None, limit: int = 200) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def fit_centroid_tree(
    store: Storage,
    shards: Sequence[ShardRef],
    *,
    ks: Sequence[int] | None,
    sample_size: int,
    n_iter: int,
    resampling_steps: Sequence[int] | int | None,
    seed: int,
    upper_weights: str = "sqrt",
    device: str = "cpu",
    top_keywords: int = 10,
) -> CentroidTree:
    started = time.monotonic()
    sample = draw_fit_sample(store, shards, sample_size, seed)
    n = sample.vectors.shape[0]
    if n == 0:
        raise ValueError(
            f"no embedded documents in the {len(shards)} shards in scope (all empty): nothing to fit centroids on"
        )
    config = tree_config(sample.vectors, ks=ks, n_iter=n_iter, resampling_steps=resampling_steps, seed=seed,
                         upper_weights=upper_weights)
    named = fit_named_tree(sample.vectors, sample_documents(store, sample), config, device=device,
                           top_keywords=top_keywords)
    tree = named.tree
    return CentroidTree(
        tree=tree,
        version=tree.version,
        names=named.names,
        keywords=named.keywords,
        representatives=named.representatives,
        fit_mean_distance=float(np.mean(tree.leaf_distances)),
        fit_info={
            "sample_rows": int(n),
            "scope_rows": sample.total_rows,
            "shards": len(shards),
            "ks": list(tree.config.ks),
            "fit_seconds": round(time.monotonic() - started, 3),
        },
    )


def label_vectors(vectors: np.ndarray, centroids: CentroidTree, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(paths (n, levels), leaf cosine distance) against the current tree; streams in blocks."""
    if vectors.shape[0] == 0:
        return np.empty((0, centroids.tree.levels), np.int64), np.empty(0, np.float32)
    return assign_paths(vectors, centroids.tree, device=device)


def labels_table(doc_ids: Sequence[str], paths: np.ndarray, distances: np.ndarray, version: str) -> pa.Table:
    columns = {"doc_id": pa.array(doc_ids, pa.string())}
    for level in range(paths.shape[1]):
        columns[f"cluster_l{level + 1}"] = pa.array(paths[:, level], pa.int32())
    columns["leaf_distance"] = pa.array(distances, pa.float32())
    columns["centroid_version"] = pa.array([version] * len(doc_ids), pa.string())
    return pa.table(columns)


def semantic_duplicates(
    store: Storage,
    snapshot: str,
    refs: Sequence[ShardRef],
    eps: float,
    order: str,
    seed: int,
    device: str = "cpu",
    exclude: frozenset[str] | set[str] = frozenset(),
) -> tuple[pa.Table, dict]:
    """SemDeDup of `snapshot`: its docs grouped by leaf cluster across all shards in `refs`.

    Documents in `exclude` (already removed as exact copies, or removed in an earlier snapshot) take
    no part: they are neither removed again nor kept in place of another document.

    `refs` may include shards of earlier snapshots (scope `with_earlier`): their documents are placed
    first in every cluster, so a new document that repeats one already in an earlier snapshot is
    removed in favour of it, and earlier snapshots' documents are never removed here. Only
    (shard, row, leaf, distance) of every doc is held in memory; vectors are gathered a group of
    clusters at a time from the shards' memory maps.
    """
    if order == "random" and any(ref[0] != snapshot for ref in refs):
        raise ValueError("scope with_earlier needs order hard or easy, so earlier snapshots can come first")
    leaf_parts, dist_parts, ref_parts, row_parts, ids_by_ref = [], [], [], [], []
    for index, (ref_snapshot, shard) in enumerate(refs):
        labels = read_table(store, store.key("cluster_labels", ref_snapshot, shard, "parquet"),
                            columns=["doc_id", "cluster_l1", "leaf_distance"])
        ids = labels.column("doc_id").to_pylist()
        ids_by_ref.append(ids)
        rows = np.flatnonzero([doc not in exclude for doc in ids]) if exclude else np.arange(len(ids))
        distance = labels.column("leaf_distance").to_numpy().astype(np.float32)[rows]
        if ref_snapshot != snapshot:
            # cosine distances lie in [0, 2]: shifting by 4 orders every earlier doc first
            distance = distance + (4.0 if order == "hard" else -4.0)
        leaf_parts.append(labels.column("cluster_l1").to_numpy()[rows])
        dist_parts.append(distance)
        ref_parts.append(np.full(len(rows), index, np.int32))
        row_parts.append(rows.astype(np.int64))
    leaves = np.concatenate(leaf_parts) if leaf_parts else np.empty(0, np.int32)
    dists = np.concatenate(dist_parts) if dist_parts else np.empty(0, np.float32)
    ref_of = np.concatenate(ref_parts) if ref_parts else np.empty(0, np.int32)
    row_of = np.concatenate(row_parts) if row_parts else np.empty(0, np.int64)
    in_target = np.array([refs[i][0] == snapshot for i in range(len(refs))], dtype=bool)

    removed_rows = []
    order_by_cluster = np.argsort(leaves, kind="stable")
    boundaries = np.flatnonzero(np.r_[True, leaves[order_by_cluster][1:] != leaves[order_by_cluster][:-1]]) if len(leaves) else []
    groups = np.split(order_by_cluster, boundaries[1:]) if len(leaves) else []
    with _shard_vectors(store, refs) as maps:
        for members in _batches(groups, max_rows=65_536):
            block = _gather(maps, ref_of[members], row_of[members])
            scores = semdedup_all_scores(leaves[members], block, dists[members], order=order, seed=seed, device=device)
            keep, duplicate_of, similarity = scores.resolve(eps)
            for local in np.flatnonzero(~keep):
                doc, kept = members[local], members[duplicate_of[local]]
                if not in_target[ref_of[doc]]:
                    continue
                (doc_snapshot, doc_shard), (kept_snapshot, kept_shard) = refs[ref_of[doc]], refs[ref_of[kept]]
                removed_rows.append((
                    ids_by_ref[ref_of[doc]][row_of[doc]], doc_snapshot, doc_shard,
                    ids_by_ref[ref_of[kept]][row_of[kept]], kept_snapshot, kept_shard,
                    float(similarity[local]), int(leaves[doc]),
                ))
    columns = ["doc_id", "snapshot", "shard", "kept_doc_id", "kept_snapshot", "kept_shard", "similarity", "cluster"]
    types = [pa.string()] * 6 + [pa.float32(), pa.int32()]
    table = pa.table({c: pa.array([r[i] for r in removed_rows], t) for i, (c, t) in enumerate(zip(columns, types))})
    n_docs = int(in_target[ref_of].sum()) if len(ref_of) else 0
    stats = {
        "docs": n_docs,
        "compared_with": int(len(leaves) - n_docs),
        "removed": len(removed_rows),
        "removal_fraction": len(removed_rows) / n_docs if n_docs else 0.0,
        "clusters": len(groups),
    }
    return table, stats


DUPLICATES_SCHEMA = pa.schema([
    pa.field("doc_id", pa.string()),
    pa.field("snapshot", pa.string()),
    pa.field("shard", pa.string()),
    pa.field("kept_doc_id", pa.string()),
    pa.field("kept_snapshot", pa.string()),
    pa.field("kept_shard", pa.string()),
    pa.field("similarity", pa.float32()),
    pa.field("cluster", pa.int32()),
    pa.field("method", pa.string()),  # exact (same content hash) | semantic (SemDeDup)
])


def combine_duplicates(exact: pd.DataFrame, semantic: pa.Table, leaf_of: dict[str, int]) -> pa.Table:
    """One table of a snapshot's removed documents: exact copies first, then SemDeDup's removals.

    An exact copy whose kept document SemDeDup then removed is pointed at the document that one was
    removed for, so every `kept_doc_id` names a document that survives (mixtures treat a removed
    document and the one it points at as one).
    """
    sem = semantic.to_pandas()
    redirect = sem.set_index("doc_id")[["kept_doc_id", "kept_snapshot", "kept_shard", "similarity"]]
    exact = exact.copy()
    exact["similarity"] = np.float32(1.0)
    moved = exact["kept_doc_id"].isin(redirect.index)
    if moved.any():
        target = redirect.loc[exact.loc[moved, "kept_doc_id"]]
        for column in ("kept_doc_id", "kept_snapshot", "kept_shard", "similarity"):
            exact.loc[moved, column] = target[column].to_numpy()
    exact["cluster"] = [leaf_of.get(doc, -1) for doc in exact["doc_id"]]
    exact["method"] = "exact"
    sem["method"] = "semantic"
    frame = pd.concat([exact, sem], ignore_index=True)[DUPLICATES_SCHEMA.names]
    frame["similarity"] = frame["similarity"].astype(np.float32)
    frame["cluster"] = frame["cluster"].astype(np.int32)
    return pa.Table.from_pandas(frame, schema=DUPLICATES_SCHEMA, preserve_index=False)


def _batches(groups: list[np.ndarray], max_rows: int):
    """Consecutive clusters packed into batches of at most max_rows (a bigger cluster goes alone)."""
    batch, size = [], 0
    for members in groups:
        if batch and size + len(members) > max_rows:
            yield np.concatenate(batch)
            batch, size = [], 0
        batch.append(members)
        size += len(members)
    if batch:
        yield np.concatenate(batch)


@contextmanager
def _shard_vectors(store: Storage, refs: Sequence[ShardRef]):
    """Verified memory maps of the shards' embeddings, open for the duration of the block."""
    with ExitStack() as stack:
        yield [stack.enter_context(open_npy(store, store.key("embeddings", snap, shard, "npy"))) for snap, shard in refs]


def _gather(maps: list[np.ndarray], shard_index: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.empty((len(rows), maps[0].shape[1] if maps else 0), np.float32)
    for s in np.unique(shard_index):
        where = np.flatnonzero(shard_index == s)
        order = np.argsort(rows[where])  # sorted reads are sequential on the memory map
        out[where[order]] = maps[int(s)][rows[where][order]]
    return out


def drift_ratio(mean_distance: float, fit_mean_distance: float) -> float:
    return mean_distance / fit_mean_distance if fit_mean_distance > 0 else math.inf
