"""quality_scores, final_mixtures and publication through real Dagster on a small real corpus."""

from __future__ import annotations

import json
import math

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
    size: {documents: 12, at_most_fraction: 1.5}  # near-duplicates collapse to one per group: few left
    policy: weighted
    options: {level: top, temperature: 1.0, max_repeats: 2}
    seed: 1
  - name: small-search
    scope: all
    filters: {min_quality: 0.0, drop_semantic_duplicates: false}
    size: {documents: 10}
    policy: search
    # two top-level clusters: at the default max_share the only mixture allowed is the even split (one
    # candidate); lifting the cap lets this toy corpus exercise the search rounds
    options: {scale: 0.1, pool_size: 2000, eval_sample_documents: 10, max_repeats: 10, max_share: 1.0,
              evaluator: {type: ngram, token_budget: 5000}}
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
        assert (scores["language"] == "en").all() and scores["language_score"].between(0.5, 1).all()
    meta = instance.get_latest_materialization_event(AssetKey("quality_scores")).asset_materialization.metadata
    assert "fit on" in meta["classifier"].value and set(meta["languages"].value) == {"en"}
    warehouse = Warehouse(settings.warehouse_url)
    assert warehouse.count("quality_by_cluster") > 0
    languages = warehouse.read_frame("SELECT language, SUM(n) AS n FROM language_by_cluster WHERE level = 1 GROUP BY language")
    assert languages.set_index("language")["n"].to_dict() == {"en": 20}  # every document once, at level 1
    impact = warehouse.read_frame("SELECT rule, SUM(removed) AS removed, SUM(n) AS n FROM filter_impact WHERE level = 1 GROUP BY rule")
    assert set(impact["n"]) == {20}


@pytest.mark.parametrize("name, target", [("small-balanced", 3), ("small-weighted", None), ("small-search", 10)])
def test_each_policy_builds_gates_and_publishes_its_mixture(world, name, target):
    settings, _, _, _, mixes = world
    result = mixes[name]
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    folder = settings.home / "storage" / "final_mixtures" / name
    current = json.loads((folder / "current.json").read_text())
    manifest_path = folder / f"{current['version']}.manifest.parquet"
    manifest = pq.read_table(manifest_path).to_pandas()
    recorded = json.loads(pq.read_schema(manifest_path).metadata[b"crawlmix"])
    if target is None:  # relative size: 12 documents, at most 1.5x the filtered pool (one per duplicate group)
        removed = pq.read_table(settings.home / "storage" / "semantic_duplicates" / "snap-a" / "all.parquet").num_rows
        groups = 20 - removed
        target = min(12, math.floor(1.5 * groups + 0.5))  # half up, as sizes resolve
        assert recorded["target"] == target and manifest["repeats"].max() == 2
    assert int(manifest["repeats"].sum()) == target == recorded["target"]
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
    folder = settings.home / "storage" / "final_mixtures" / "small-search"
    version = json.loads((folder / "current.json").read_text())["version"]
    jsonl = sorted(folder.glob(f"{version}.docs-*.jsonl.gz"))
    assert len(jsonl) == 1, jsonl
    import gzip

    records = [json.loads(line) for line in gzip.decompress(jsonl[0].read_bytes()).decode().splitlines()]
    manifest = pq.read_table(folder / f"{version}.manifest.parquet").to_pandas()
    assert sorted(r["doc_id"] for r in records) == sorted(manifest["doc_id"]) and all(r["text"] for r in records)
    rows = Warehouse(settings.warehouse_url).read_frame("SELECT COUNT(*) AS n FROM mixture_search WHERE mixture = 'small-search'")
    assert int(rows["n"][0]) >= 6


def _plant_then_gate(settings, defs, instance, name, plant):
    """Rewrite the mixture's latest manifest with `plant(frame)` (checksummed, as a buggy writer would
    leave it), reset `current`, run the gate then publication; returns (run result, folder)."""
    import pyarrow as pa

    folder = settings.home / "storage" / "final_mixtures" / name
    published = json.loads((folder / "current.json").read_text())["version"]
    manifest_path = folder / f"{published}.manifest.parquet"
    table = pq.read_table(manifest_path)
    frame = plant(table.to_pandas())
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(table.schema.metadata), manifest_path)
    # Planted by a (buggy) writer, so checksummed like any output: the gate, not verification, must catch it.
    record_checksum(LocalStorage(settings.storage_root), f"final_mixtures/{name}/{published}.manifest.parquet", *sha256_of(str(manifest_path)))
    (folder / "current.json").write_text(json.dumps({"mixture": name, "version": "previous"}))

    job = define_asset_job(
        "gate_then_publish",
        selection=AssetSelection.checks_for_assets("final_mixtures") | AssetSelection.assets("mixture_publication"),
        partitions_def=defs.resolve_assets_def("final_mixtures").partitions_def,
    )
    gated = Definitions.merge(defs, Definitions(jobs=[job]))
    return _run(gated, instance, "gate_then_publish", name), folder


def _failed_gate(result):
    assert not result.success
    evaluation = next(e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
    assert not evaluation.passed
    return evaluation.description


def test_gate_blocks_publication_of_a_mixture_with_a_below_floor_document(world):
    settings, defs, instance, _, _ = world

    def below_floor(frame):
        frame.loc[0, "quality"] = -0.5  # planted: below the spec's floor of 0.0
        return frame

    result, folder = _plant_then_gate(settings, defs, instance, "small-balanced", below_floor)
    assert "quality" in _failed_gate(result)
    assert json.loads((folder / "current.json").read_text())["version"] == "previous"


def test_gate_blocks_two_copies_of_one_document(world):
    """small-weighted keeps semantic duplicates, one per duplicate group: a manifest row swapped for
    a removed copy of another selected document breaks that, and the gate (which recomputes the
    groups from the dedup file) stops publication."""
    settings, defs, instance, _, _ = world
    dedup = pq.read_table(settings.home / "storage" / "semantic_duplicates" / "snap-a" / "all.parquet").to_pandas()
    if "method" in dedup.columns:  # prefer a near copy, so only the group rule is broken
        dedup = dedup.sort_values("method", ascending=False, kind="stable")

    def swap_in_a_copy(frame):
        copies = dedup[dedup["kept_doc_id"].isin(frame["doc_id"])]
        assert len(copies), "the sample's near-duplicate pages give every selected group a removed member"
        copy = copies.iloc[0]
        other = frame.index[frame["doc_id"] != copy["kept_doc_id"]][0]
        frame.loc[other, ["doc_id", "snapshot", "shard"]] = [copy["doc_id"], copy["snapshot"], copy["shard"]]
        return frame

    result, folder = _plant_then_gate(settings, defs, instance, "small-weighted", swap_in_a_copy)
    assert "duplicate_group" in _failed_gate(result)
    assert json.loads((folder / "current.json").read_text())["version"] == "previous"


def test_quality_thresholds_are_overridable_by_name_and_unknown_names_rejected():
    from curation_assets.quality import QualityConfig

    assert QualityConfig(thresholds={"min_words": 30}).heuristic_thresholds().min_words == 30
    with pytest.raises(ValueError, match="unknown names \\['min_wordz'\\]"):
        QualityConfig(thresholds={"min_wordz": 30}).heuristic_thresholds()


def test_scores_gate_passes_an_empty_shard_and_fails_documents_left_unscored():
    """The gate's suites on their own (no Dagster): zero scores pass for a shard with no documents
    and fail for a shard whose documents exist."""
    import numpy as np

    from crawlmix.quality import HeuristicThresholds
    from crawlmix.quality_steps import score_shard, scores_table
    from curation_assets.quality import judge_scores

    empty = scores_table([], score_shard([], np.zeros((0, 384), np.float16), None, HeuristicThresholds()), set()).to_pandas()
    assert judge_scores(empty, []).success
    unscored = judge_scores(empty, ["doc-1", "doc-2"])
    assert not unscored.success and "n_scores" in unscored.describe_failures()
    one = scores_table(["doc-1"], score_shard(["A plain sentence of text."], None, None, HeuristicThresholds()), set()).to_pandas()
    assert judge_scores(one, ["doc-1"]).success and not judge_scores(one, ["doc-2"]).success
    broken = one.assign(language_score=1.5)
    assert not judge_scores(broken, ["doc-1"]).success and "language_score" in judge_scores(broken, ["doc-1"]).describe_failures()
