"""The quality step over stored shards: signals, the snapshot's classifier, the final score, aggregates.

No Dagster here. The embedding classifier is fit once per snapshot (reference set against a seeded
sample of that snapshot's embeddings) and stored, so every shard of a snapshot is scored by the
same model and scores are comparable across its shards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from crawlmix.clustering_steps import draw_fit_sample
from crawlmix.quality import (
    HeuristicThresholds,
    QualityClassifier,
    all_rule_columns,
    combine_quality,
    heuristic_signals,
    identify_languages,
    load_reference_texts,
)
from crawlmix.storage import Storage
from crawlmix.tables import (
    CorruptFileError,
    checked_write,
    open_npy,
    read_bytes_verified,
    read_table,
    sha256_of,
    write_bytes_checked,
)

FAMILY_COLUMNS = ["pass_gopher", "pass_c4", "pass_fineweb", "pass_all"]


def file_digest(path: str) -> str:
    return sha256_of(path)[0][:16]


def reference_vectors(store: Storage, model, reference_path: str) -> np.ndarray:
    """Embeddings of the reference set, cached in storage per (reference file, embedding version).

    The cache is verified like any intermediate; a damaged (or unchecksummed) copy is recomputed
    and replaced, since it is derived only from the reference file and the model."""
    from crawlmix.embed import embed_texts

    key = store.key("quality_reference", "global", f"{file_digest(reference_path)}-{model.embedding_version}", "npy")
    if store.exists(key):
        try:
            with open_npy(store, key) as cached:
                return np.array(cached)
        except CorruptFileError:
            pass
    vectors = embed_texts(model, load_reference_texts(reference_path))
    with checked_write(store, key) as pending, open(pending.path, "wb") as handle:
        np.save(handle, vectors)
    return vectors


# QualityClassifier.fit's floor: a logistic regression needs at least two crawl documents to
# contrast with the reference set.
MIN_CRAWL_DOCUMENTS = 2


def snapshot_classifier(
    store: Storage, model, snapshot: str, shards: Sequence[str], reference_path: str, seed: int, max_negatives: int = 20_000
) -> QualityClassifier | None:
    """The snapshot's classifier: loaded when an earlier shard already fit it, else fit and stored.

    None when the whole snapshot has fewer than MIN_CRAWL_DOCUMENTS embedded documents: there is
    nothing to contrast the reference set with, so its shards are scored by the heuristics alone
    (every shard of the snapshot sees the same count, so they all agree).
    A stored classifier whose bytes fail their checksum is refit (seeded, so the same model) and replaced."""
    name = f"{file_digest(reference_path)}-{model.embedding_version}-{seed}"
    key = store.key("quality_classifier", snapshot, name, "json")
    if store.exists(key):
        try:
            return QualityClassifier.from_dict(json.loads(read_bytes_verified(store, key)))
        except CorruptFileError:
            pass
    crawl = draw_fit_sample(store, [(snapshot, s) for s in shards], max_negatives, seed).vectors
    if len(crawl) < MIN_CRAWL_DOCUMENTS:
        return None
    positives = reference_vectors(store, model, reference_path)
    classifier = QualityClassifier().fit(positives, crawl, seed=seed)
    write_bytes_checked(store, key, json.dumps(classifier.to_dict(), sort_keys=True).encode())
    return classifier


def score_shard(
    texts: Sequence[str],
    vectors: np.ndarray | None,
    classifier: QualityClassifier | None,
    thresholds: HeuristicThresholds,
) -> pd.DataFrame:
    languages, language_scores = identify_languages(texts)
    signals = heuristic_signals(texts, thresholds, languages)
    signals.insert(0, "language", languages)
    signals.insert(1, "language_score", language_scores)
    probability = classifier.predict(vectors) if classifier is not None and vectors is not None else None
    signals["classifier_prob"] = probability if probability is not None else np.nan
    signals["quality"] = combine_quality(signals, probability)
    return signals


def duplicate_ids(store: Storage, snapshot: str) -> set[str]:
    table = read_table(store, store.key("semantic_duplicates", snapshot, "all", "parquet"), columns=["doc_id"])
    return set(table.column("doc_id").to_pylist())


def quality_by_cluster(scores: pd.DataFrame, levels: int) -> tuple[list[dict], list[dict]]:
    """Per cluster at every level: quality distribution and pass rates, and each rule's removal share."""
    by_cluster, impact = [], []
    rules = all_rule_columns() + FAMILY_COLUMNS
    for level in range(1, levels + 1):
        for cluster, group in scores.groupby(f"cluster_l{level}"):
            q = group["quality"].to_numpy()
            by_cluster.append({
                "level": level, "cluster_id": int(cluster), "n": len(group),
                "mean_quality": float(q.mean()), "p10": float(np.quantile(q, 0.1)),
                "p50": float(np.quantile(q, 0.5)), "p90": float(np.quantile(q, 0.9)),
                **{f"{c}_rate": float(group[c].mean()) for c in FAMILY_COLUMNS},
            })
            for rule in rules:
                impact.append({
                    "level": level, "cluster_id": int(cluster), "rule": rule.removeprefix("pass_"),
                    "n": len(group), "removed": int((~group[rule]).sum()),
                })
    return by_cluster, impact


def language_by_cluster(scores: pd.DataFrame, levels: int) -> list[dict]:
    """Documents per language in each cluster at every level, with their mean language score."""
    rows = []
    for level in range(1, levels + 1):
        grouped = scores.groupby([f"cluster_l{level}", "language"])["language_score"]
        for (cluster, language), group in grouped:
            rows.append({"level": level, "cluster_id": int(cluster), "language": str(language),
                         "n": len(group), "mean_language_score": float(group.mean())})
    return rows


def scores_table(doc_ids: Sequence[str], scores: pd.DataFrame, duplicates: set[str]) -> pa.Table:
    frame = scores.copy()
    frame.insert(0, "doc_id", list(doc_ids))
    frame["is_semantic_duplicate"] = [d in duplicates for d in doc_ids]
    return pa.Table.from_pandas(frame, preserve_index=False)


def bundled_reference_path() -> str:
    from crawlmix.quality import REFERENCE_SET_PATH

    return str(Path(REFERENCE_SET_PATH))
