"""quality_scores, final_mixtures and publication through real Dagster on a small real corpus."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, define_asset_job

from crawlmix.storage import LocalStorage
from crawlmix.tables import record_checksum, sha256_of
from crawlmix.warehouse import Warehouse
from curation_assets import definitions as d
from curation_assets.partitions import crawl_snapshots, partition_key_for
from tests.dagster_harness import make_snapshot, settings_for

MIXTURES = """
mixtures:
  - name: small-balanced
    scope: [snap-a]
    filters: {min_quality: 0.0, drop_semantic_duplicates: true}
    size: {documents: 3}  # the template pages are near-duplicates: one per leaf survives SemDeDup
    policy: balanced
    seed: 1
  - name: small-weighted
    scope: all
    filters: {min_quality: 0.0, drop_semantic_duplicates: false}
    size: {documents: 12}
    policy: weighted
    options: {level: top, temperature: 1.0, max_repeats: 2}
    seed: 1
  - name: small-search
    scope: all
    filters: {min_quality: 0.0, drop_semantic_duplicates: false}
    size: {documents: 10}
    policy: search
    options: {scale: 0.1, pool_size: 2000, eval_sample_documents: 10, max_repeats: 10, evaluator: {type: ngram, token_budget: 5000}}
    seed: 1
    formats: [parquet, jsonl.gz]
"""


def _run(defs, instance, job, partition_key=None, run_config=None):
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=partition_key, raise_on_error=False, run_config=run_config
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    (root / "mixtures.yaml").write_text(MIXTURES)
    settings = settings_for(root / "home", shards=2, CRAWLMIX_DEVICE="cpu", CRAWLMIX_MIXTURES=str(root / "mixtures.yaml"))
    make_snapshot(root / "home" / "snapshots", "snap-a", n_files=4)
    defs = d.build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(crawl_snapshots.name, ["snap-a"])
    keys = [partition_key_for("snap-a", s) for s in settings.shard_keys]
    fit = {"ops": {"centroids": {"config": {"ks": [4, 2]}}}}
    runs = [_run(defs, instance, d.INGEST_JOB, k) for k in keys]
    runs.append(_run(defs, instance, d.FIT_JOB, run_config=fit))
    runs += [_run(defs, instance, d.LABEL_JOB, k) for k in keys]
    runs.append(_run(defs, instance, d.DEDUP_JOB, "snap-a"))
    runs += [_run(defs, instance, d.SCORE_JOB, k) for k in keys]
    mixes = {name: _run(defs, instance, d.MIX_JOB, name) for name in ("small-balanced", "small-weighted", "small-search")}
    yield settings, defs, instance, runs, mixes
    instance.dispose()


def test_quality_scores_are_in_range_aligned_and_aggregated(world):
    settings, _, instance, runs, _ = world
    assert all(r.success for r in runs)
    for shard in settings.shard_keys:
        scores = pq.read_table(settings.home / "storage" / "quality_scores" / "snap-a" / f"{shard}.parquet").to_pandas()
        raw = pq.read_table(settings.home / "storage" / "raw_corpus" / "snap-a" / f"{shard}.parquet", columns=["doc_id"])
        assert list(scores["doc_id"]) == raw.column("doc_id").to_pylist()
        assert scores["quality"].between(0, 1).all() and scores["classifier_prob"].notna().all()
        assert {"pass_gopher", "pass_c4", "pass_fineweb", "is_semantic_duplicate"} <= set(scores.columns)
    meta = instance.get_latest_materialization_event(AssetKey("quality_scores")).asset_materialization.metadata
    assert "fit on" in meta["classifier"].value
    warehouse = Warehouse(settings.warehouse_url)
    assert warehouse.count("quality_by_cluster") > 0
    impact = warehouse.read_frame("SELECT rule, SUM(removed) AS removed, SUM(n) AS n FROM filter_impact WHERE level = 1 GROUP BY rule")
    assert set(impact["n"]) == {20}


@pytest.mark.parametrize("name, target", [("small-balanced", 3), ("small-weighted", 12), ("small-search", 10)])
def test_each_policy_builds_gates_and_publishes_its_mixture(world, name, target):
    settings, _, _, _, mixes = world
    result = mixes[name]
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    folder = settings.home / "storage" / "final_mixtures" / name
    current = json.loads((folder / "current.json").read_text())
    manifest = pq.read_table(folder / f"{current['version']}.manifest.parquet").to_pandas()
    assert int(manifest["repeats"].sum()) == target
    docs = pq.read_table(folder / f"{current['version']}.docs-00000.parquet").to_pandas()
    assert docs["text"].str.len().min() > 0
    card = (folder / f"{current['version']}.card.md").read_text()
    assert "## Composition by top-level cluster" in card and "centroids:" in card and "embedding model:" in card
    composition = Warehouse(settings.warehouse_url).read_frame(
        "SELECT SUM(share) AS s FROM mixture_composition WHERE mixture = :m AND version = :v", {"m": name, "v": current["version"]}
    )
    assert abs(float(composition["s"][0]) - 1.0) < 1e-6


def test_search_records_every_candidate(world):
    settings, _, _, _, mixes = world
    assert (settings.home / "storage" / "final_mixtures" / "small-search").glob("*.jsonl.gz")
    rows = Warehouse(settings.warehouse_url).read_frame("SELECT COUNT(*) AS n FROM mixture_search WHERE mixture = 'small-search'")
    assert int(rows["n"][0]) >= 6


def test_gate_blocks_publication_of_a_mixture_with_a_below_floor_document(world):
    settings, defs, instance, _, _ = world
    folder = settings.home / "storage" / "final_mixtures" / "small-balanced"
    published = json.loads((folder / "current.json").read_text())["version"]
    manifest_path = folder / f"{published}.manifest.parquet"
    table = pq.read_table(manifest_path)
    frame = table.to_pandas()
    frame.loc[0, "quality"] = -0.5  # planted: below the spec's floor of 0.0
    import pyarrow as pa

    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(table.schema.metadata), manifest_path)
    # Planted by a (buggy) writer, so checksummed like any output: the gate, not verification, must catch it.
    record_checksum(LocalStorage(settings.storage_root), f"final_mixtures/small-balanced/{published}.manifest.parquet", *sha256_of(str(manifest_path)))
    (folder / "current.json").write_text(json.dumps({"mixture": "small-balanced", "version": "previous"}))

    job = define_asset_job(
        "gate_then_publish",
        selection=AssetSelection.checks_for_assets("final_mixtures") | AssetSelection.assets("mixture_publication"),
        partitions_def=defs.resolve_assets_def("final_mixtures").partitions_def,
    )
    gated = Definitions.merge(defs, Definitions(jobs=[job]))
    result = _run(gated, instance, "gate_then_publish", "small-balanced")
    assert not result.success
    evaluation = next(e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
    assert not evaluation.passed and "quality" in evaluation.description
    assert json.loads((folder / "current.json").read_text())["version"] == "previous"


def test_quality_thresholds_are_overridable_by_name_and_unknown_names_rejected():
    from curation_assets.quality import QualityConfig

    assert QualityConfig(thresholds={"min_words": 30}).heuristic_thresholds().min_words == 30
    with pytest.raises(ValueError, match="unknown names \\['min_wordz'\\]"):
        QualityConfig(thresholds={"min_wordz": 30}).heuristic_thresholds()
