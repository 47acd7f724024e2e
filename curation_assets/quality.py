"""Quality domain: `quality_scores` per shard (heuristics + embedding classifier + final score) and its gates."""

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
from crawlmix.expectations import SuiteOutcome
from crawlmix.quality import HeuristicThresholds, all_rule_columns
from crawlmix.quality_steps import (
    FAMILY_COLUMNS,
    MIN_CRAWL_DOCUMENTS,
    bundled_reference_path,
    duplicate_ids,
    file_digest,
    language_by_cluster,
    quality_by_cluster,
    score_shard,
    scores_table,
    snapshot_classifier,
)
from crawlmix.tables import open_npy, read_table, write_table
from curation_assets import OWNERS
from curation_assets.embedding import embedding_keys
from curation_assets.gates import aligned_with, combined, gate_result, table_facts
from curation_assets.partitions import SNAPSHOT_DIM, split_partition_key
from resources import EmbedderResource, StorageResource, WarehouseResource

QUALITY_CODE_VERSION = "quality_scores-2"


class QualityConfig(Config):
    reference_path: str = Field(
        default="bundled",
        min_length=1,
        description="good-document reference set for the classifier (Parquet/JSONL with `text`); "
        "`bundled` = the shipped set, `none` = skip the classifier signal",
    )
    seed: int = Field(default=0, ge=0)
    thresholds: dict[str, float] = Field(
        default={},
        description="overrides of the heuristic thresholds by name (see HeuristicThresholds in "
        "crawlmix/quality/heuristics.py for every name, its default and its source), e.g. {min_words: 30}",
    )

    def heuristic_thresholds(self) -> HeuristicThresholds:
        from dataclasses import fields, replace

        defaults = HeuristicThresholds()
        # Numeric thresholds only: pattern lists and n-gram tables are code-level settings.
        known = {f.name for f in fields(HeuristicThresholds) if isinstance(getattr(defaults, f.name), (int, float))}
        unknown = sorted(set(self.thresholds) - known)
        if unknown:
            raise ValueError(f"quality_scores config thresholds: unknown names {unknown}; known: {sorted(known)}")
        return replace(defaults, **{k: type(getattr(defaults, k))(v) for k, v in self.thresholds.items()})


class FilterImpactConfig(Config):
    max_rule_removal: float = Field(default=0.5, ge=0.0, le=1.0, description="warn when one rule alone fails more than this share of the shard")


def build_quality(partitions_def, shard_keys, warehouse_pool: str | None = None):
    @asset(
        partitions_def=partitions_def,
        pool=warehouse_pool,
        deps=[
            "raw_corpus", "embeddings", "cluster_labels",
            AssetDep("semantic_duplicates", partition_mapping=MultiToSingleDimensionPartitionMapping(partition_dimension_name=SNAPSHOT_DIM)),
        ],
        group_name="quality",
        kinds={"scikitlearn", "parquet"},
        owners=OWNERS,
        code_version=QUALITY_CODE_VERSION,
        description=(
            "Per document: its language and the identifier's confidence (fastText lid.176), "
            "Gopher/C4/FineWeb heuristic signals with a pass flag per rule and per family (a rule not "
            "made for the document's language passes it), "
            "the embedding classifier's probability of looking like the reference set, the final "
            "`quality` in [0, 1] (formula in crawlmix/quality/score.py) and `is_semantic_duplicate`. "
            "Quality, languages and each rule's removal share per cluster go to the warehouse."
        ),
    )
    def quality_scores(
        context: AssetExecutionContext,
        config: QualityConfig,
        embedder: EmbedderResource,
        storage: StorageResource,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        raw = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["doc_id", "text"])
        labels = read_table(store, store.key("cluster_labels", snapshot, shard, "parquet")).to_pandas()
        reference = bundled_reference_path() if config.reference_path == "bundled" else config.reference_path
        classifier, classifier_note = None, "skipped: no reference set configured (reference_path: none)"
        if reference != "none":
            classifier = snapshot_classifier(
                store, embedder.get_model(), snapshot, list(shard_keys), reference, config.seed
            )
            classifier_note = (
                f"fit on {reference} (sha256 {file_digest(reference)})" if classifier is not None else
                f"skipped: {snapshot} has fewer than {MIN_CRAWL_DOCUMENTS} embedded documents to contrast "
                "with the reference set; quality is the heuristic score alone"
            )
        npy_key, _ = embedding_keys(store, snapshot, shard)
        with open_npy(store, npy_key) as vectors:
            scores = score_shard(raw.column("text").to_pylist(), vectors, classifier, config.heuristic_thresholds())
        doc_ids = raw.column("doc_id").to_pylist()
        table = scores_table(doc_ids, scores, duplicate_ids(store, snapshot))
        key = store.key("quality_scores", snapshot, shard, "parquet")
        written = write_table(store, key, table, {
            "asset": "quality_scores", "code_version": QUALITY_CODE_VERSION,
            "classifier": classifier.version if classifier else None,
        })

        level_columns = [c for c in labels.columns if c.startswith("cluster_l")]
        joined = pd.concat([scores.reset_index(drop=True), labels[level_columns].reset_index(drop=True)], axis=1)
        by_cluster, impact = quality_by_cluster(joined, len(level_columns))
        languages = language_by_cluster(joined, len(level_columns))
        partition = {"snapshot": snapshot, "shard": shard}
        version = labels["centroid_version"].iloc[0] if len(labels) else ""
        wh = warehouse.get_warehouse()
        wh.replace_partition("quality_by_cluster", partition, [{**partition, "centroid_version": version, **r} for r in by_cluster])
        wh.replace_partition("filter_impact", partition, [{**partition, "centroid_version": version, **r} for r in impact])
        wh.replace_partition("language_by_cluster", partition,
                             [{**partition, "centroid_version": version, **r} for r in languages])

        pass_rates = {c: round(float(scores[c].mean()), 4) for c in FAMILY_COLUMNS} if len(scores) else {}
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(store.uri(key)),
                "dagster/row_count": len(doc_ids),
                "sha256": written.sha256,
                "mean_quality": round(float(scores["quality"].mean()), 4) if len(scores) else 0.0,
                "pass_rates": MetadataValue.json(pass_rates),
                "languages": MetadataValue.json(scores["language"].value_counts().head(20).to_dict()),
                "semantic_duplicates": int(table.column("is_semantic_duplicate").to_numpy().sum()),
                "classifier": classifier_note,
                "classifier_version": classifier.version if classifier else "none",
                "classifier_held_out_auc": (classifier.metadata.get("held_out_auc") or 0.0) if classifier else 0.0,
                "quality_histogram": MetadataValue.md(_histogram_md(scores["quality"].to_numpy())),
                "quality_plot": MetadataValue.md(plots.png_markdown(plots.quality_histogram_png(
                    scores["quality"].to_numpy(), scores["pass_all"].to_numpy(),
                    scores["classifier_prob"].to_numpy() if classifier else None,
                ), f"quality scores in {snapshot}/{shard}")),
                "code_version": QUALITY_CODE_VERSION,
            }
        )

    @asset_check(
        asset=quality_scores,
        blocking=True,
        partitions_def=partitions_def,
        name="expectations",
        description="Scores and language scores in [0, 1], no nulls, one row per raw_corpus document in the same order; pass rates reported.",
    )
    def quality_scores_expectations(context: AssetCheckExecutionContext, storage: StorageResource) -> AssetCheckResult:
        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        scores = read_table(store, store.key("quality_scores", snapshot, shard, "parquet")).to_pandas()
        raw_ids = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["doc_id"]).column("doc_id").to_pylist()
        return gate_result(
            judge_scores(scores, raw_ids),
            rows=len(scores),
            pass_rates=MetadataValue.json({c: round(float(scores[c].mean()), 4) for c in FAMILY_COLUMNS} if len(scores) else {}),
        )

    @asset_check(
        asset=quality_scores,
        blocking=False,
        partitions_def=partitions_def,
        name="filter_impact",
        description="Warns (does not block) when a single rule fails more than the configured share of the shard.",
    )
    def quality_filter_impact(
        context: AssetCheckExecutionContext, config: FilterImpactConfig, storage: StorageResource
    ) -> AssetCheckResult:
        snapshot, shard = split_partition_key(context.partition_key)
        store = storage.get_storage()
        scores = read_table(store, store.key("quality_scores", snapshot, shard, "parquet"), columns=all_rule_columns()).to_pandas()
        removal = {c.removeprefix("pass_"): round(float(1 - scores[c].mean()), 4) for c in all_rule_columns()} if len(scores) else {}
        heavy = {rule: share for rule, share in removal.items() if share > config.max_rule_removal}
        return AssetCheckResult(
            passed=not heavy,
            severity=AssetCheckSeverity.WARN,
            description=None if not heavy else f"rules removing more than {config.max_rule_removal:.0%}: {heavy}",
            metadata={"removal_share_by_rule": MetadataValue.json(removal), "max_rule_removal": config.max_rule_removal},
        )

    return [quality_scores], [quality_scores_expectations, quality_filter_impact]


def judge_scores(scores: pd.DataFrame, raw_ids: list[str]) -> SuiteOutcome:
    """The quality_scores gate's verdict on a shard's scores against its raw_corpus ids.

    The row count is a fact judged even for a shard without documents; the per-document
    expectations run on the scores padded to the raw ids, so documents left unscored fail."""
    from crawlmix.expectations import run_suite

    frame = aligned_with(scores, raw_ids, "raw_doc_id")
    return combined(
        run_suite(table_facts(n_scores=len(scores)), "quality_scores_shape", lambda gxe: [
            gxe.ExpectColumnValuesToBeInSet(column="n_scores", value_set=[len(raw_ids)]),
        ]),
        run_suite(frame, "quality_scores_rows", lambda gxe: [
            gxe.ExpectColumnPairValuesToBeEqual(column_A="doc_id", column_B="raw_doc_id"),
            gxe.ExpectColumnValuesToNotBeNull(column="quality"),
            gxe.ExpectColumnValuesToBeBetween(column="quality", min_value=0.0, max_value=1.0),
            gxe.ExpectColumnValuesToNotBeNull(column="is_semantic_duplicate"),
            gxe.ExpectColumnValuesToNotBeNull(column="language"),
            gxe.ExpectColumnValuesToBeBetween(column="language_score", min_value=0.0, max_value=1.0),
            *[gxe.ExpectColumnValuesToNotBeNull(column=c) for c in FAMILY_COLUMNS],
        ]),
    )


def _histogram_md(values: np.ndarray, bins: int = 10) -> str:
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    peak = max(int(counts.max()), 1) if len(counts) else 1
    lines = ["| quality | docs | |", "| --- | ---: | --- |"]
    for count, lo, hi in zip(counts, edges[:-1], edges[1:]):
        lines.append(f"| {lo:.1f}-{hi:.1f} | {int(count)} | {'█' * round(20 * int(count) / peak)} |")
    return "\n".join(lines)
