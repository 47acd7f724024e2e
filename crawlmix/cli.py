"""`crawlmix`: run the curation graph from a shell, inspect what it made, open the UI."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from importlib import resources as package_files
from pathlib import Path

from crawlmix.settings import Settings, SettingsError

SAMPLE_SNAPSHOT = "sample-2026-11"
_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crawlmix", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the whole graph on the bundled sample snapshot")
    run = commands.add_parser("run", help="register and materialize every complete snapshot under a root")
    run.add_argument("--snapshots", required=True, help="snapshots root: a local folder or s3://bucket/prefix")
    run.add_argument("--snapshot", action="append", default=[], help="only this snapshot id (repeatable)")
    run.add_argument("--refit", action="store_true", help="refit the centroids even if a fitted tree exists")
    commands.add_parser("status", help="list snapshots, partitions and their latest materializations")
    ui = commands.add_parser("ui", help="open the Dagster UI (dagster dev) on this project")
    ui.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)

    for name, value in _OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    if args.command == "run":
        os.environ["CRAWLMIX_SNAPSHOTS"] = args.snapshots
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"crawlmix: invalid setting: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))

    if args.command == "demo":
        return _demo(settings)
    if args.command == "run":
        return _run(settings, args.snapshot, args.refit)
    if args.command == "status":
        return _status(settings)
    return _ui(settings, args.port)


def _demo(settings: Settings) -> int:
    from crawlmix.snapshots import snapshot_source_for

    if settings.snapshots_root.startswith("s3://"):
        print("crawlmix demo seeds the sample into a local snapshots root; unset CRAWLMIX_SNAPSHOTS", file=sys.stderr)
        return 2
    target = Path(settings.snapshots_root) / SAMPLE_SNAPSHOT
    source = snapshot_source_for(settings.snapshots_root)
    if not source.is_complete(SAMPLE_SNAPSHOT):
        _seed_sample(target)
        print(f"seeded the bundled sample snapshot into {target}")
    return _run(settings, [SAMPLE_SNAPSHOT])


def _seed_sample(target: Path) -> None:
    """Copy the bundled snapshot; the marker goes last, as the snapshot contract requires."""
    bundled = package_files.files("crawlmix") / "sample" / "snapshots" / SAMPLE_SNAPSHOT
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(bundled.iterdir(), key=lambda p: p.name):
        if item.name != "_SUCCESS" and item.is_file():
            with package_files.as_file(item) as path:
                shutil.copyfile(path, target / item.name)
    (target / "_SUCCESS").touch()


def _run(settings: Settings, only: list[str], refit: bool = False) -> int:
    from tqdm import tqdm

    from crawlmix.snapshots import validate_snapshot_id
    from curation_assets.definitions import build_resources
    from curation_assets.runner import instance_for, materialize_snapshots, stage_runs

    source = build_resources(settings)["snapshots"].get_source()
    complete, rejected = source.complete_snapshots()
    for reason in rejected:
        print(f"skipped: {reason}", file=sys.stderr)
    for snapshot_id in only:
        validate_snapshot_id(snapshot_id)
        if snapshot_id not in complete:
            print(f"crawlmix: snapshot {snapshot_id!r} is not a complete snapshot under {source.root} "
                  "(missing folder or _SUCCESS marker)", file=sys.stderr)
            return 2
    snapshot_ids = only or complete
    if not snapshot_ids:
        print(f"no complete snapshot (folder with _SUCCESS) under {source.root}")
        return 1
    instance = instance_for(settings)
    total = len(snapshot_ids) * stage_runs(settings)
    print(f"materializing {len(snapshot_ids)} snapshot(s) x {settings.shards} shard(s) from {source.root}")
    with tqdm(total=total, unit="run", file=sys.stderr, disable=None) as bar:
        def progress(outcome) -> None:
            bar.set_description(f"{outcome.job} {outcome.partition}".strip())
            bar.update(1)

        outcomes = materialize_snapshots(settings, instance, snapshot_ids, refit, progress)
    _print_outcomes(settings, outcomes)
    return 0 if outcomes and all(o.success for o in outcomes) else 1


def _print_outcomes(settings: Settings, outcomes) -> None:
    from crawlmix.warehouse import Warehouse
    from curation_assets import definitions as d

    print()
    print(f"{'snapshot/shard':<28} {'docs':>6} {'dups':>5} {'quar.':>5} {'vectors':>7} {'vec/s':>6} {'labels':>6}  checks")
    by_partition: dict[str, dict] = {}
    for o in outcomes:
        if o.job in (d.INGEST_JOB, d.LABEL_JOB):
            entry = by_partition.setdefault(o.partition, {"meta": {}, "passed": 0, "checks": 0, "ok": True})
            entry["meta"].update(o.materialized)
            entry["passed"] += sum(o.checks.values())
            entry["checks"] += len(o.checks)
            entry["ok"] &= o.success
    for partition, entry in by_partition.items():
        raw, vec, lab = (entry["meta"].get(a, {}) for a in ("raw_corpus", "embeddings", "cluster_labels"))
        print(f"{partition:<28} {raw.get('dagster/row_count', 0):>6} {raw.get('exact_duplicates_removed', 0):>5} "
              f"{raw.get('quarantined', 0):>5} {vec.get('dagster/row_count', 0):>7} {vec.get('docs_per_s', 0):>6} "
              f"{lab.get('dagster/row_count', 0):>6}  {entry['passed']}/{entry['checks']} {'ok' if entry['ok'] else 'FAILED'}")
    for o in outcomes:
        if o.error:
            print(f"FAILED {o.job} {o.partition}: {o.error[:600]}")
        for warning in o.warnings:
            print(f"warning {o.job} {o.partition}: {warning[:300]}")

    fits = [o for o in outcomes if o.job == d.FIT_JOB and o.success]
    if fits:
        meta = fits[-1].materialized["centroids"]
        print(f"\ncentroids {meta['centroid_version'][:12]}: levels {meta['ks']}, fit on {meta['sample_rows']} docs "
              f"in {meta['fit_seconds']} s")
        print(meta["top_level_clusters"])
    for o in outcomes:
        if o.job == d.DEDUP_JOB and o.success:
            meta = o.materialized["semantic_duplicates"]
            print(f"\nsemantic duplicates in {o.partition}: {meta['dagster/row_count']} of {meta['docs']} docs "
                  f"(eps {meta['eps']}, {100 * meta['removal_fraction']:.1f}%)")

    for o in outcomes:
        if o.job == d.MIX_JOB and o.success:
            meta = o.materialized["final_mixtures"]
            print(f"\nmixture {o.partition} ({meta['policy']}): {meta['achieved']} {meta['unit']} "
                  f"(target {meta['target']}), published version {meta['version']}")
            print(f"  data card: {meta['data_card']}")

    for o in outcomes:
        if o.job == d.REPORT_JOB:
            tests = f"{sum(o.checks.values())}/{len(o.checks)} dbt tests passed"
            print(f"\nreports: {len(o.materialized)} dbt models built in the warehouse, {tests}"
                  + ("" if o.success else f" (FAILED: {(o.error or '')[:300]})"))

    warehouse = Warehouse(settings.warehouse_url)
    snapshots = sorted({o.partition.split("/")[0] for o in outcomes if o.job != d.MIX_JOB and o.partition})
    reasons = warehouse.read_frame(
        "SELECT reason, SUM(n) AS n FROM quarantine_counts WHERE snapshot IN ("
        + ", ".join(f":s{i}" for i in range(len(snapshots)))
        + ") GROUP BY reason ORDER BY n DESC",
        {f"s{i}": s for i, s in enumerate(snapshots)},
    ) if snapshots else []
    if len(reasons):
        print("records removed at ingestion by reason: " + ", ".join(f"{r.reason}={int(r.n)}" for r in reasons.itertuples()))
    root = settings.storage_root
    print()
    print("outputs:")
    print(f"  documents    {root}/raw_corpus/<snapshot>/<shard>.parquet  (quarantine: {root}/quarantine/...)")
    print(f"  embeddings   {root}/embeddings/<snapshot>/<shard>.npy (+ .ids.parquet)")
    print(f"  centroids    {root}/centroids/global/current.json -> <version>.npz, <version>.names.json")
    print(f"  labels       {root}/cluster_labels/<snapshot>/<shard>.parquet")
    print(f"  duplicates   {root}/semantic_duplicates/<snapshot>/all.parquet")
    print(f"  quality      {root}/quality_scores/<snapshot>/<shard>.parquet")
    print(f"  mixtures     {root}/final_mixtures/<name>/current.json -> <version>.manifest.parquet, .docs-*.parquet, .card.md")
    print(f"  warehouse    {warehouse.safe_url}  (reports: cluster_summary, snapshot_drift, *_report)")
    print(f"  dagster home {os.environ['DAGSTER_HOME']}  (runs, materializations, check results)")
    print("open the UI:   crawlmix ui   (then http://127.0.0.1:3000)")


def _status(settings: Settings) -> int:
    from dagster import AssetKey

    from curation_assets.partitions import split_partition_key
    from curation_assets.runner import instance_for, materialized_partitions

    instance = instance_for(settings)
    snapshots = instance.get_dynamic_partitions("crawl_snapshots")
    if not snapshots:
        print("no snapshots registered yet (run `crawlmix demo` or `crawlmix run --snapshots ROOT`)")
        return 0
    done = {}
    for key in materialized_partitions(instance, "raw_corpus"):
        snapshot, shard = split_partition_key(key)
        done.setdefault(snapshot, set()).add(shard)
    latest = instance.get_latest_materialization_event(AssetKey("raw_corpus"))
    print(f"{'snapshot':<28} raw_corpus shards")
    for snapshot in snapshots:
        print(f"{snapshot:<28} {len(done.get(snapshot, ())):>4}/{settings.shards}")
    if latest is not None:
        from datetime import datetime, timezone

        when = datetime.fromtimestamp(latest.timestamp, tz=timezone.utc).isoformat(timespec="seconds")
        print(f"latest raw_corpus materialization: {when} (run {latest.run_id[:8]})")
    return 0


def _ui(settings: Settings, port: int) -> int:
    repo_root = Path(__file__).resolve().parent.parent
    workspace = repo_root / "workspace.yaml"
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    print(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={os.environ['DAGSTER_HOME']}); Ctrl-C stops it")
    return subprocess.call(
        [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
        cwd=repo_root,
    )


def entry_point() -> None:
    """Console-script entry. Every write is committed or atomically renamed by the time `main`
    returns, so the process ends without interpreter teardown, where DuckDB 2's native module would
    report objects Dagster still holds as "leaks" on stderr: noise a user cannot act on."""
    import multiprocessing.util

    code = main()
    # Release multiprocessing resources (semaphores of worker pools) as a normal exit would.
    multiprocessing.util._exit_function()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry_point()
