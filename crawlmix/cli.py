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
        return _run(settings, args.snapshot)
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


def _run(settings: Settings, only: list[str]) -> int:
    from tqdm import tqdm

    from crawlmix.snapshots import validate_snapshot_id
    from curation_assets.definitions import build_resources
    from curation_assets.runner import instance_for, materialize_snapshots

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
    total = len(snapshot_ids) * settings.shards
    print(f"materializing {len(snapshot_ids)} snapshot(s) x {settings.shards} shard(s) from {source.root}")
    with tqdm(total=total, unit="partition", file=sys.stderr, disable=None) as bar:
        outcomes = materialize_snapshots(settings, instance, snapshot_ids, lambda _: bar.update(1))
    _print_outcomes(settings, outcomes)
    return 0 if all(o.success for o in outcomes) else 1


def _print_outcomes(settings: Settings, outcomes) -> None:
    from crawlmix.warehouse import Warehouse

    print()
    print(f"{'snapshot':<24} {'shard':<6} {'docs':>7} {'dups':>6} {'quarant.':>8}  checks  status")
    totals = {"docs": 0, "dups": 0, "quarantined": 0}
    for o in outcomes:
        meta = o.materialized.get("raw_corpus", {})
        docs, dups, quarantined = (meta.get(k, 0) for k in ("dagster/row_count", "exact_duplicates_removed", "quarantined"))
        totals["docs"] += docs
        totals["dups"] += dups
        totals["quarantined"] += quarantined
        checks = "pass" if o.checks and all(o.checks.values()) else ("FAIL" if o.checks else "-")
        print(f"{o.snapshot:<24} {o.shard:<6} {docs:>7} {dups:>6} {quarantined:>8}  {checks:<6}  "
              f"{'ok' if o.success else 'FAILED'}")
        if o.error:
            print(f"    error: {o.error[:500]}")
    print(f"{'total':<31} {totals['docs']:>7} {totals['dups']:>6} {totals['quarantined']:>8}")

    warehouse = Warehouse(settings.warehouse_url)
    snapshots = sorted({o.snapshot for o in outcomes})
    reasons = warehouse.read_frame(
        "SELECT reason, SUM(n) AS n FROM quarantine_counts WHERE snapshot IN ("
        + ", ".join(f":s{i}" for i in range(len(snapshots)))
        + ") GROUP BY reason ORDER BY n DESC",
        {f"s{i}": s for i, s in enumerate(snapshots)},
    )
    if len(reasons):
        print("removed records by reason: " + ", ".join(f"{r.reason}={int(r.n)}" for r in reasons.itertuples()))
    print()
    print("outputs:")
    print(f"  documents    {settings.storage_root}/raw_corpus/<snapshot>/<shard>.parquet")
    print(f"  quarantine   {settings.storage_root}/quarantine/<snapshot>/<shard>.parquet")
    print(f"  warehouse    {warehouse.safe_url}  (tables snapshot_shard_stats, quarantine_counts)")
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


if __name__ == "__main__":
    sys.exit(main())
