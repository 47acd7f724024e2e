"""Mixtures domain: `final_mixtures` (one partition per named spec), its gate, and `mixture_publication`."""

import json

import numpy as np
import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
    asset_check,
)

from crawlmix import plots
from crawlmix.centroid_store import load_current
from crawlmix.mixture import (
    build_mixture,
    duplicate_groups,
    evaluator_from_options,
    plan_search,
    validate_against_corpus,
)
from crawlmix.mixture_steps import (
    achieved_error,
    build_pool,
    exact_token_counts,
    mark_contamination,
    publish,
    read_duplicate_edges,
    write_mixture,
)
from crawlmix.mixture.tokens import resolve_tokenizer
from crawlmix.quality import REFERENCE_SET_PATH, load_reference_texts
from crawlmix.storage import stored_shards
from crawlmix.tables import read_bytes_verified, read_table, table_file_metadata
from curation_assets import OWNERS
from curation_assets.gates import gate_result
from curation_assets.partitions import crawl_snapshots
from resources import EmbedderResource, StorageResource, WarehouseResource

MIXTURES_CODE_VERSION = "final_mixtures-2"


def build_mixtures(specs, warehouse_pool: str | None = None):
    """Assets for the named mixture specs (validated when the code location loads)."""
    by_name = {spec.name: spec for spec in specs}
    mixtures_def = StaticPartitionsDefinition(sorted(by_name))
    everything = AllPartitionMapping()

    @asset(
        partitions_def=mixtures_def,
        pool=warehouse_pool,
        deps=[AssetDep(a, partition_mapping=everything) for a in ("quality_scores", "cluster_labels", "raw_corpus")]
        + [AssetDep("centroids")],
        group_name="mixtures",
        kinds={"parquet", "markdown"},
        owners=OWNERS,
        code_version=MIXTURES_CODE_VERSION,
        description=(
            "One curated mixture per named spec (partition = mixture name): a manifest (doc id, snapshot, "
            "shard, cluster path, quality, repeats), the documents with text as sharded Parquet (and "
            "JSONL.gz on request), and a Markdown data card, under <storage>/final_mixtures/<name>/<version>.*. "
            "Published by `mixture_publication` only after the gate passes."
        ),
    )
    def final_mixtures(
        context: AssetExecutionContext,
        embedder: EmbedderResource,
        storage: StorageResource,
        warehouse: WarehouseResource,
    ) -> MaterializeResult:
        spec = by_name[context.partition_key]
        store = storage.get_storage()
        centroids = load_current(store)
        registered = list(context.instance.get_dynamic_partitions(crawl_snapshots.name))
        validate_against_corpus(
            spec, set(registered), [set(range(k)) for k in centroids.tree.config.ks], centroids.keywords, centroids.names
        )
        snapshots = registered if spec.scope == "all" else list(spec.scope)
        pool = build_pool(store, stored_shards(store, "quality_scores", snapshots, "parquet"), centroids)
        if spec.tokenizer:
            pool = exact_token_counts(store, pool, resolve_tokenizer(spec.tokenizer))
        pool, decontamination = mark_contamination(store, pool, spec)
        evaluator = None
        if spec.policy == "search":
            evaluator = _search_evaluator(store, spec, pool, centroids)
        search_rows = []

        def record_candidate(candidate) -> None:
            search_rows.append(candidate)

        result = build_mixture(
            pool, spec, centroids.tree.parents, centroids.names, centroids.keywords,
            evaluator=evaluator, on_candidate=record_candidate,
        )
        model = embedder.get_model().versions()
        provenance = {
            "model_id": model["model_id"], "weights_hash": model["weights_hash"],
            "embedding_version": model["embedding_version"], "policy": spec.policy,
            "target": result.target, "unit": result.unit, "achieved": result.achieved,
            "min_quality": spec.filters.min_quality, "drop_semantic_duplicates": spec.filters.drop_semantic_duplicates,
            "max_repeats": int(spec.options.get("max_repeats", 1)),
            "size": spec.size.describe(),
            "weights": {str(k): v for k, v in result.weights.items()},
        }
        if spec.policy == "search":
            provenance["max_share"] = result.details["max_share"]
        written = write_mixture(store, spec, result, centroids, provenance, decontamination)
        wh = warehouse.get_warehouse()
        built_at = pd.Timestamp.now(tz="UTC").to_pydatetime()
        wh.replace_partition("mixture_composition", {"mixture": spec.name, "version": written.version}, [
            {"mixture": spec.name, "version": written.version, "centroid_version": centroids.version,
             "cluster_id": int(r.cluster_id), "name": r.name, "docs": int(r.docs), "tokens": int(r.tokens),
             "share": float(r.share), "built_at": built_at}
            for r in written.composition.itertuples()
        ])
        if search_rows:
            wh.replace_partition("mixture_search", {"mixture": spec.name, "version": written.version}, [
                {"mixture": spec.name, "version": written.version, "candidate": i, "round": int(c.round),
                 "weights": json.dumps([float(w) for w in c.weights]), "score": float(c.score),
                 "predicted": None if c.predicted is None or not np.isfinite(c.predicted) else float(c.predicted)}
                for i, c in enumerate(search_rows)
            ])
        return MaterializeResult(
            metadata={
                "version": written.version,
                "manifest": MetadataValue.path(store.uri(written.manifest_key)),
                "data_card": MetadataValue.path(store.uri(written.card_key)),
                "documents": MetadataValue.json([store.uri(k) for k in written.doc_keys]),
                "dagster/row_count": len(result.selection),
                "target": result.target,
                "achieved": result.achieved,
                "unit": result.unit,
                "policy": spec.policy,
                "filtered_out": MetadataValue.json(result.filtered_out),
                "pii_redacted": MetadataValue.json(written.pii_redacted),
                "decontamination": MetadataValue.json(decontamination),
                "tokenizer": spec.tokenizer or "approximate (characters / 4)",
                "training_exports": MetadataValue.json(
                    {name: {k: v for k, v in info.items() if k != "keys"} for name, info in written.exports.items()}),
                "composition": MetadataValue.md(_composition_md(written.composition)),
                "composition_plot": MetadataValue.md(plots.png_markdown(plots.mixture_composition_png(
                    dict(zip(written.composition["cluster_id"].astype(int).tolist(), written.composition["share"].tolist())),
                    plots.group_shares(pool[f"cluster_l{centroids.tree.levels}"], pool["n_tokens"]),
                    centroids.names[centroids.tree.levels - 1],
                    title=f"{spec.name}: mixture vs scored pool, by top-level cluster",
                ), f"composition of {spec.name}")),
                "centroid_version": centroids.version,
                "search_candidates": len(search_rows),
                "code_version": MIXTURES_CODE_VERSION,
            }
        )

    @asset_check(
        asset=final_mixtures,
        blocking=True,
        partitions_def=mixtures_def,
        name="expectations",
        description=(
            "Size on target (+/- 1%), weights sum to 1, no document beyond its repeat cap, none under the "
            "quality floor, no exact copy and (when the spec drops them) no removed semantic duplicate "
            "included, at most one document per duplicate group (copies across snapshots included), doc ids "
            "unique, a cut document used in part only and selected once, every document labelled with the "
            "current centroid version."
        ),
    )
    def final_mixtures_expectations(context: AssetCheckExecutionContext, storage: StorageResource) -> AssetCheckResult:
        from crawlmix.expectations import run_suite

        spec = by_name[context.partition_key]
        store = storage.get_storage()
        version = _latest_version(store, spec.name)
        key = f"final_mixtures/{spec.name}/{version}.manifest.parquet"
        manifest = read_table(store, key).to_pandas()
        meta = table_file_metadata(store, key)
        current = load_current(store).version
        # Every manifest doc was scored, and scoring needed its snapshot's semantic_duplicates; the
        # groups are recomputed from those files here, not taken from the builder.
        edges = read_duplicate_edges(store, sorted(set(manifest["snapshot"])))
        group, method = duplicate_groups(manifest["doc_id"].tolist(), edges)
        removed = pd.notna(method)
        tokens_used = manifest["n_tokens_used"] if "n_tokens_used" in manifest.columns else manifest["n_tokens"]
        per_copy = manifest["repeats"] if meta["unit"] == "documents" else manifest["repeats"] * tokens_used
        achieved = int(per_copy.sum())
        weights_total = sum(meta.get("weights", {}).values())
        frame = manifest.assign(
            size_error=achieved_error(meta["target"], achieved),
            weights_total=round(weights_total, 6),
            duplicate_group=group,
            is_exact_copy=method == "exact",
            is_removed_duplicate=removed if spec.filters.drop_semantic_duplicates else False,
            # a cut document keeps 1..n_tokens of its tokens and is selected once
            cut_ok=(tokens_used >= 1) & (tokens_used <= manifest["n_tokens"])
            & ((tokens_used == manifest["n_tokens"]) | (manifest["repeats"] == 1)),
        )
        outcome = run_suite(frame, "final_mixtures", lambda gxe: [
            gxe.ExpectColumnValuesToBeBetween(column="size_error", max_value=0.01),
            gxe.ExpectColumnValuesToBeBetween(column="weights_total", min_value=0.999, max_value=1.001),
            gxe.ExpectColumnValuesToBeBetween(column="repeats", min_value=1, max_value=meta["max_repeats"]),
            gxe.ExpectColumnValuesToBeBetween(column="quality", min_value=spec.filters.min_quality),
            gxe.ExpectColumnValuesToBeInSet(column="is_exact_copy", value_set=[False]),
            gxe.ExpectColumnValuesToBeInSet(column="is_removed_duplicate", value_set=[False]),
            gxe.ExpectColumnValuesToBeUnique(column="duplicate_group"),
            gxe.ExpectColumnValuesToBeInSet(column="cut_ok", value_set=[True]),
            gxe.ExpectColumnValuesToBeInSet(column="centroid_version", value_set=[current]),
            gxe.ExpectColumnValuesToBeUnique(column="doc_id"),
        ])
        return gate_result(
            outcome,
            version=version,
            achieved=achieved,
            target=meta["target"],
            size_error=round(achieved_error(meta["target"], achieved), 6),
        )

    @asset(
        partitions_def=mixtures_def,
        deps=["final_mixtures"],
        group_name="mixtures",
        kinds={"json"},
        owners=OWNERS,
        description=(
            "Moves the mixture's <storage>/final_mixtures/<name>/current.json to the version just built. "
            "Runs only after final_mixtures' blocking gate passed, so a mixture that breaks it is never published."
        ),
    )
    def mixture_publication(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
        name = context.partition_key
        store = storage.get_storage()
        version = _latest_version(store, name)
        card = f"final_mixtures/{name}/{version}.card.md"
        pointer = publish(store, name, version, card)
        return MaterializeResult(metadata={
            "version": version,
            "current": MetadataValue.path(store.uri(pointer)),
            "data_card": MetadataValue.path(store.uri(card)),
        })

    return [final_mixtures, mixture_publication], [final_mixtures_expectations]


def _latest_version(store, name: str) -> str:
    """The version the last final_mixtures run wrote (newest manifest by its `built` order)."""
    pointer = f"final_mixtures/{name}/latest.json"
    if not store.exists(pointer):
        raise FileNotFoundError(f"mixture {name} has not been built: materialize final_mixtures[{name}]")
    return json.loads(read_bytes_verified(store, pointer))["version"]


def _search_evaluator(store, spec, pool: pd.DataFrame, centroids):
    """The spec's evaluator; the built-in n-gram proxy trains on pool texts and targets the reference
    set, with its token budget scaled to what the pool's evaluation samples hold (`plan_search`)."""
    texts: dict[str, str] = {}
    for (snapshot, shard), _ in pool.groupby(["snapshot", "shard"]):
        raw = read_table(store, store.key("raw_corpus", snapshot, shard, "parquet"), columns=["doc_id", "text"])
        texts.update(zip(raw.column("doc_id").to_pylist(), raw.column("text").to_pylist()))
    options = dict(spec.options.get("evaluator") or {"type": "ngram"})
    target = None
    if options.get("type", "ngram") == "ngram":
        target = load_reference_texts(options.get("target", str(REFERENCE_SET_PATH)))
        plan = plan_search(pool, spec, centroids.keywords, centroids.names)
        options["token_budget"] = plan.token_budget
    return evaluator_from_options(options, texts=texts, target_texts=target, seed=spec.seed)


def _composition_md(comp: pd.DataFrame) -> str:
    lines = ["| cluster | name | docs | share of docs | tokens | share of tokens | |",
             "| ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in comp.itertuples():
        lines.append(f"| {int(r.cluster_id)} | {r.name} | {int(r.docs)} | {100 * r.doc_share:.1f}% | {int(r.tokens)} | "
                     f"{100 * r.share:.1f}% | {'█' * round(30 * r.share)} |")
    return "\n".join(lines)
