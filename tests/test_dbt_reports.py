"""dbt report models on a real warehouse (DuckDB file and PostgreSQL), run through Dagster.

A small warehouse is written through crawlmix.warehouse.Warehouse for two snapshots, then the
dbt assets are materialized with dagster.materialize (dbt build: models + tests as asset checks).
"""

import os
from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, materialize

from crawlmix.warehouse import Warehouse
from curation_assets import reports

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

V = "cv1"
# Top level 2: clusters 0 and 1; leaves (level 1): 0,1 under 0 and 2,3 under 1.
# Snapshot s1: top shares 0.6 / 0.4; s2: 0.3 / 0.7 (a planted drift of -0.3 / +0.3).
TOP_DOCS = {"s1": {0: 60, 1: 40}, "s2": {0: 30, 1: 70}}
LEAF_PARENT = {0: 0, 1: 0, 2: 1, 3: 1}
SHARDS = ("0", "1")


@pytest.fixture(scope="module", autouse=True)
def manifest():
    """Prepare the manifest (as `python -m curation_assets.reports prepare` does) unless it is newer
    than every project file already."""
    path = reports.dbt_project().manifest_path
    sources = [f for f in reports.DBT_PROJECT_DIR.rglob("*")
               if f.is_file() and not {"target", "logs"} & set(f.relative_to(reports.DBT_PROJECT_DIR).parts)]
    if not path.exists() or path.stat().st_mtime < max(f.stat().st_mtime for f in sources):
        reports.prepare_manifest()


def _seed(url: str) -> None:
    wh = Warehouse(url)
    wh.ensure_tables()
    rows = [
        {"centroid_version": V, "level": 2, "cluster_id": c, "parent_id": None, "fit_size": 50,
         "name": f"top-{c}", "keywords": "[]"}
        for c in (0, 1)
    ] + [
        {"centroid_version": V, "level": 1, "cluster_id": c, "parent_id": p, "fit_size": 25,
         "name": f"leaf-{c}", "keywords": '["a"]'}
        for c, p in LEAF_PARENT.items()
    ]
    wh.replace_partition("clusters", {"centroid_version": V}, rows)
    now = datetime.now(timezone.utc)
    for snap, top in TOP_DOCS.items():
        for shard in SHARDS:
            sizes, quality, impact, languages = [], [], [], []
            for top_id, docs in top.items():
                half = docs // 2  # split across the two shards
                sizes.append(dict(snapshot=snap, shard=shard, centroid_version=V, level=2,
                                  cluster_id=top_id, n=half, mean_distance=0.5))
                for leaf in [leaf for leaf, p in LEAF_PARENT.items() if p == top_id]:
                    sizes.append(dict(snapshot=snap, shard=shard, centroid_version=V, level=1,
                                      cluster_id=leaf, n=half // 2, mean_distance=0.4))
                # shard 0: n=10, quality 0.2; shard 1: n=30, quality 0.6 -> weighted mean 0.5
                n, mq = (10, 0.2) if shard == "0" else (30, 0.6)
                quality.append(dict(snapshot=snap, shard=shard, centroid_version=V, level=2,
                                    cluster_id=top_id, n=n, mean_quality=mq, p10=0.1, p50=mq, p90=0.9,
                                    pass_gopher_rate=mq, pass_c4_rate=mq, pass_fineweb_rate=mq,
                                    pass_all_rate=mq))
                impact.append(dict(snapshot=snap, shard=shard, centroid_version=V, level=2,
                                   cluster_id=top_id, rule="gopher", n=n, removed=n // 2))
                # every shard: per top cluster 8 English and 2 German documents; one leaf each
                for level, cluster in ((2, top_id), (1, 2 * top_id)):
                    languages += [dict(snapshot=snap, shard=shard, centroid_version=V, level=level, cluster_id=cluster,
                                       language=lang, n=n_lang, mean_language_score=score)
                                  for lang, n_lang, score in (("en", 8, 0.9), ("de", 2, 0.6))]
            part = {"snapshot": snap, "shard": shard}
            wh.replace_partition("cluster_shard_sizes", part, sizes)
            wh.replace_partition("quality_by_cluster", part, quality)
            wh.replace_partition("filter_impact", part, impact)
            wh.replace_partition("language_by_cluster", part, languages)
            wh.replace_partition("snapshot_shard_stats", part, [dict(
                snapshot=snap, shard=shard, n_input_files=1, n_records=10, n_docs=10,
                n_exact_duplicates=0, n_quarantined=0, input_bytes=1, output_bytes=1,
                quarantine_fraction=0.0, materialized_at=now)])
    # The version built last wins although its id sorts first; one from before `built_at` ranks last.
    built = {"z-old": now - timedelta(days=7), "b-new": now, "y-unknown": None}
    for version, docs in (("z-old", (5, 5)), ("b-new", (30, 10)), ("y-unknown", (1, 1))):
        wh.replace_partition("mixture_composition", {"mixture": "balanced", "version": version}, [
            dict(mixture="balanced", version=version, cluster_id=c, centroid_version=V,
                 name=f"top-{c}", docs=d, tokens=d * 100, share=d / sum(docs), built_at=built[version])
            for c, d in zip((0, 1), docs)])


def _run_and_check(url: str) -> None:
    _seed(url)
    assets, _ = reports.build_reports(url)
    result = materialize(assets, resources={"dbt": reports.dbt_resource(url)})
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) >= 40
    failed = [c.check_name for c in checks if not c.passed]
    assert not failed, failed
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    for name in ("cluster_summary", "snapshot_drift", "quality_by_cluster_report",
                 "filter_impact_report", "language_report", "mixture_composition_report"):
        assert AssetKey(name) in materialized

    wh = Warehouse(url)
    summary = wh.read_frame("select * from cluster_summary")
    assert len(summary) == 6 * 2  # 6 clusters x 2 snapshots
    top_s2 = summary[(summary.level == 2) & (summary.snapshot == "s2")].set_index("cluster_id")
    assert top_s2.loc[1, "docs"] == 70 and top_s2.loc[1, "snapshot_share"] == pytest.approx(0.7)
    assert top_s2.loc[1, "total_docs"] == 110 and top_s2.loc[1, "overall_share"] == pytest.approx(0.55)
    assert top_s2.loc[0, "name"] == "top-0"

    drift = wh.read_frame("select * from snapshot_drift order by cluster_id").set_index("cluster_id")
    assert len(drift) == 2 and set(drift.snapshot) == {"s2"} and set(drift.previous_snapshot) == {"s1"}
    assert drift.loc[1, "share_change"] == pytest.approx(0.3)
    assert drift.loc[0, "share_change"] == pytest.approx(-0.3)
    assert (drift.level == 2).all()

    quality = wh.read_frame("select * from quality_by_cluster_report")
    assert len(quality) == 4 and (quality.n == 40).all()
    assert quality.mean_quality.tolist() == pytest.approx([0.5] * 4)

    impact = wh.read_frame("select * from filter_impact_report")
    assert len(impact) == 4 and (impact.removed == 20).all()
    assert impact.removed_fraction.tolist() == pytest.approx([0.5] * 4)

    languages = wh.read_frame("select * from language_report where level = 2 order by snapshot, cluster_id, language")
    assert len(languages) == 2 * 2 * 2  # snapshots x top clusters x languages
    german = languages[languages.language == "de"]
    assert (german.docs == 4).all() and german.cluster_share.tolist() == pytest.approx([0.2] * 4)
    assert german.snapshot_share.tolist() == pytest.approx([0.2] * 4)
    assert german.mean_language_score.tolist() == pytest.approx([0.6] * 4) and set(german.name) == {"top-0", "top-1"}

    mix = wh.read_frame("select * from mixture_composition_report order by cluster_id")
    assert mix.version.tolist() == ["b-new", "b-new"] and mix.docs.tolist() == [30, 10]
    assert mix.built_at.notna().all()


def test_reports_on_duckdb(duckdb_url):
    _run_and_check(duckdb_url)


def test_reports_on_postgres(postgres_url):
    _run_and_check(postgres_url)


def test_dbt_env_for_urls():
    env = reports.dbt_env_for_url("postgresql+psycopg2://u:s3cret@db.example:6543/wh")
    assert env["DBT_TARGET"] == "postgres" and env["CRAWLMIX_PG_PASSWORD"] == "s3cret"
    assert (env["CRAWLMIX_PG_HOST"], env["CRAWLMIX_PG_PORT"], env["CRAWLMIX_PG_DBNAME"]) == (
        "db.example", "6543", "wh")
    assert reports.dbt_env_for_url("duckdb:////tmp/w.duckdb")["CRAWLMIX_DUCKDB_PATH"] == "/tmp/w.duckdb"
    assert reports.dbt_resource("duckdb:////tmp/w.duckdb").target == "duckdb"
    with pytest.raises(ValueError):
        reports.dbt_env_for_url("sqlite:///x.db")


def test_reports_lineage_and_checks():
    (dbt_defs,), extra = reports.build_reports()
    assert extra == []
    deps = {key.path[-1]: {d.asset_key for d in spec.deps} for key, spec in dbt_defs.specs_by_key.items()}
    assert AssetKey("cluster_labels") in deps["cluster_summary"]
    assert AssetKey("centroids") in deps["cluster_summary"]
    assert AssetKey("cluster_summary") in deps["snapshot_drift"]
    assert AssetKey("quality_scores") in deps["quality_by_cluster_report"]
    assert AssetKey("quality_scores") in deps["filter_impact_report"]
    assert AssetKey("quality_scores") in deps["language_report"]
    assert AssetKey("final_mixtures") in deps["mixture_composition_report"]
    assert {spec.group_name for spec in dbt_defs.specs_by_key.values()} == {"reports"}
    assert {c.asset_key.path[-1] for c in dbt_defs.check_specs} >= set(deps)


def test_missing_manifest_names_prepare_command(tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        (project / name).write_text((reports.DBT_PROJECT_DIR / name).read_text())
    with pytest.raises(FileNotFoundError, match="curation_assets.reports prepare"):
        reports.build_reports(project_dir=project)
