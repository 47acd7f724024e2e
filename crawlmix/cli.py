"""`crawlmix`: run the curation graph from a shell, inspect what it made, open the UI."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources as package_files
from pathlib import Path
from typing import TextIO

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
    demo = commands.add_parser("demo", help="run the whole graph on the bundled sample snapshot")
    run = commands.add_parser("run", help="register and materialize every complete snapshot under a root")
    run.add_argument("--snapshots", required=True, help="snapshots root: a local folder or s3://bucket/prefix")
    run.add_argument("--snapshot", action="append", default=[], help="only this snapshot id (repeatable)")
    run.add_argument("--refit", action="store_true", help="refit the centroids even if a fitted tree exists")
    for command in (demo, run):
        command.add_argument(
            "-v", "--verbose", action="store_true",
            help="stream the Great Expectations, dbt and Dagster output to the terminal (by default it "
            "goes to the Dagster run logs and a log file, and the terminal shows one line per stage)",
        )
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

    if args.command in ("demo", "run"):
        with _terminal(args.command, args.verbose) as term:
            if args.command == "demo":
                return _demo(settings, term)
            return _run(settings, term, args.snapshot, args.refit, f"crawlmix run --snapshots {args.snapshots}")
    if args.command == "status":
        return _status(settings)
    return _ui(settings, args.port)


@dataclass
class Terminal:
    """Where the user's lines go. Quiet (the default), the process's own stdout and stderr lead to a
    log file, so whatever libraries print (Great Expectations, dbt through dagster-dbt, Dagster's
    console logger, warnings) lands there and in each run's compute logs, which Dagster captures
    from the same descriptors; `out` and `err` are copies of the terminal taken before."""

    out: TextIO
    err: TextIO
    verbose: bool
    log_path: Path | None = None

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    def warn(self, line: str) -> None:
        print(line, file=self.err, flush=True)


_KEPT_CLI_LOGS = 20


@contextlib.contextmanager
def _terminal(command: str, verbose: bool) -> Iterator[Terminal]:
    # Libraries that log through `logging` without a handler of their own (Great Expectations'
    # context set-up, for one) would otherwise say nothing below WARNING, anywhere. Their lines go
    # where stderr goes: the terminal when verbose, else the log file and the runs' compute logs.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # Except GE's API-docs registry, which at import reports each of ~200 functions it does not
    # document: nothing about the run.
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    if verbose:
        yield Terminal(sys.stdout, sys.stderr, verbose=True)
        return
    folder = Path(os.environ["DAGSTER_HOME"]) / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("crawlmix-*.log"), key=lambda path: path.stat().st_mtime)[:-_KEPT_CLI_LOGS]:
        old.unlink(missing_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    log_path = folder / f"crawlmix-{command}-{stamp}-{os.getpid()}.log"
    sys.stdout.flush()
    sys.stderr.flush()
    terminal_out, terminal_err = os.dup(1), os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    out = os.fdopen(terminal_out, "w", buffering=1, encoding=sys.stdout.encoding, errors="replace")
    err = os.fdopen(terminal_err, "w", buffering=1, encoding=sys.stderr.encoding, errors="replace")
    try:
        yield Terminal(out, err, verbose=False, log_path=log_path)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        out.flush()
        err.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        out.close()
        err.close()


def _demo(settings: Settings, term: Terminal) -> int:
    from crawlmix.snapshots import snapshot_source_for

    if settings.snapshots_root.startswith("s3://"):
        term.warn("crawlmix demo seeds the sample into a local snapshots root; unset CRAWLMIX_SNAPSHOTS")
        return 2
    target = Path(settings.snapshots_root) / SAMPLE_SNAPSHOT
    source = snapshot_source_for(settings.snapshots_root)
    if not source.is_complete(SAMPLE_SNAPSHOT):
        _seed_sample(target)
        term.say(f"seeded the bundled sample snapshot into {target}")
    return _run(settings, term, [SAMPLE_SNAPSHOT], rerun="crawlmix demo")


def _seed_sample(target: Path) -> None:
    """Copy the bundled snapshot; the marker goes last, as the snapshot contract requires."""
    bundled = package_files.files("crawlmix") / "sample" / "snapshots" / SAMPLE_SNAPSHOT
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(bundled.iterdir(), key=lambda p: p.name):
        if item.name != "_SUCCESS" and item.is_file():
            with package_files.as_file(item) as path:
                shutil.copyfile(path, target / item.name)
    (target / "_SUCCESS").touch()


def _run(settings: Settings, term: Terminal, only: list[str], refit: bool = False, rerun: str = "crawlmix run") -> int:
    from crawlmix.snapshots import validate_snapshot_id
    from curation_assets.definitions import build_resources
    from curation_assets.runner import instance_for, materialize_snapshots

    resources = build_resources(settings)
    source = resources["snapshots"].get_source()
    complete, rejected = source.complete_snapshots()
    for reason in rejected:
        term.warn(f"skipped: {reason}")
    for snapshot_id in only:
        validate_snapshot_id(snapshot_id)
        if snapshot_id not in complete:
            term.warn(f"crawlmix: snapshot {snapshot_id!r} is not a complete snapshot under {source.root} "
                      "(missing folder or _SUCCESS marker)")
            return 2
    snapshot_ids = only or complete
    if not snapshot_ids:
        term.say(f"no complete snapshot (folder with _SUCCESS) under {source.root}")
        return 1
    instance = instance_for(settings)
    term.say(f"materializing {len(snapshot_ids)} snapshot(s) x {settings.shards} shard(s) from {source.root}")
    progress = StageProgress(term)
    # Dagster's console logger at INFO either way: quiet, its lines fill the command's log file.
    outcomes = materialize_snapshots(settings, instance, snapshot_ids, refit, progress, log_level="INFO")
    store = resources["storage"].get_storage()
    problems = _problems(settings, store, snapshot_ids, outcomes, rerun)
    _print_results(settings, term, outcomes)
    _print_outputs(settings, term, store, snapshot_ids, outcomes)
    for line in problems:
        term.say(line)
    if term.log_path:
        term.say(f"log of this command (Great Expectations, dbt, Dagster): {term.log_path}")
    return 0 if outcomes and not problems else 1


# What each stage (a job of curation_assets.definitions, named here because importing that module
# builds the Definitions) makes, in the order its progress lines print: (asset, unit of a run,
# metadata field counting the documents it handled).
_STAGE_ASSETS = {
    "crawl_pipeline": [("raw_corpus", "shards", "dagster/row_count"), ("embeddings", "shards", "dagster/row_count")],
    "fit_centroids": [("centroids", "fit", "sample_rows")],
    "label_shards": [("cluster_labels", "shards", "dagster/row_count")],
    "semantic_dedup": [("semantic_duplicates", "snapshots", "docs")],
    "score_shards": [("quality_scores", "shards", "dagster/row_count")],
    "build_mixture": [("final_mixtures", "mixtures", "dagster/row_count")],
}


class StageProgress:
    """One line per stage once it is done (a live bar while it runs, on a terminal, unless verbose)."""

    def __init__(self, term: Terminal):
        self.term = term
        self.bar = None
        self.outcomes: list = []
        self.planned = 0

    def stage_started(self, job: str, planned_runs: int) -> None:
        from tqdm import tqdm

        self.outcomes, self.planned = [], planned_runs
        live = self.term.err.isatty() and not self.term.verbose
        self.bar = tqdm(total=planned_runs, desc=job, unit="run", file=self.term.err, leave=False, disable=not live)

    def run_finished(self, outcome) -> None:
        self.outcomes.append(outcome)
        self.bar.set_postfix_str(outcome.partition, refresh=False)
        self.bar.update(1)

    def stage_finished(self, job: str) -> None:
        self.bar.close()
        for line in stage_lines(job, self.planned, self.outcomes):
            self.term.say(line)


def stage_lines(job: str, planned: int, outcomes: list) -> list[str]:
    if job == "build_reports":
        models = sum(len(o.materialized) for o in outcomes)
        tests = sum(len(o.checks) for o in outcomes)
        passed = sum(sum(o.checks.values()) for o in outcomes)
        seconds = sum(o.seconds for o in outcomes)
        status = "ok" if outcomes and all(o.success for o in outcomes) else "FAILED"
        return [f"{'dbt reports':<20} {models:>9} models   {f'{passed}/{tests}':>9} tests {'':>16} {seconds:>7.1f} s  {status}"]
    lines = []
    for asset, unit, docs_field in _STAGE_ASSETS[job]:
        states = [_asset_state(o, asset) for o in outcomes]
        states += ["not run"] * (planned - len(states))
        docs = sum(int(o.materialized[asset].get(docs_field, 0)) for o in outcomes if asset in o.materialized)
        seconds = sum(o.asset_seconds.get(asset, 0.0) for o in outcomes)
        rate = "-" if seconds <= 0 else f"{docs / seconds:.1f}" if docs < 10 * seconds else f"{docs / seconds:,.0f}"
        done = states.count("ok")
        status = "ok" if done == planned else ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states) if s != "ok")
        extra = ""
        if job == "build_mixture":
            extra = f"  ({sum('mixture_publication' in o.materialized for o in outcomes)} published)"
        lines.append(f"{asset:<20} {f'{done}/{planned}':>9} {unit:<9} {docs:>9,} docs {rate:>9} docs/s "
                     f"{seconds:>7.1f} s  {status}{extra}")
    return lines


def _asset_state(outcome, asset: str) -> str:
    if any(c.check.startswith(f"{asset}:") for c in outcome.failed_checks):
        return "gate failed"
    if asset in outcome.materialized:
        return "ok"
    if any(e.step == asset for e in outcome.step_errors):
        return "failed"
    return "skipped"


def _print_results(settings: Settings, term: Terminal, outcomes) -> None:
    from crawlmix.warehouse import Warehouse
    from curation_assets import definitions as d

    say = term.say
    say()
    say(f"{'snapshot/shard':<28} {'docs':>6} {'dups':>5} {'quar.':>5} {'vectors':>7} {'vec/s':>6} {'labels':>6}  checks")
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
        say(f"{partition:<28} {raw.get('dagster/row_count', 0):>6} {raw.get('exact_duplicates_removed', 0):>5} "
            f"{raw.get('quarantined', 0):>5} {vec.get('dagster/row_count', 0):>7} {vec.get('docs_per_s', 0):>6} "
            f"{lab.get('dagster/row_count', 0):>6}  {entry['passed']}/{entry['checks']} {'ok' if entry['ok'] else 'FAILED'}")
    for o in outcomes:
        for warning in o.warnings:
            say(f"warning {o.job} {o.partition}: {warning[:300]}")

    fits = [o for o in outcomes if o.job == d.FIT_JOB and o.success]
    if fits:
        meta = fits[-1].materialized["centroids"]
        say(f"\ncentroids {meta['centroid_version'][:12]}: levels {meta['ks']}, fit on {meta['sample_rows']} docs "
            f"in {meta['fit_seconds']} s")
        say(meta["top_level_clusters"])
    for o in outcomes:
        if o.job == d.DEDUP_JOB and o.success:
            meta = o.materialized["semantic_duplicates"]
            say(f"\nsemantic duplicates in {o.partition}: {meta['dagster/row_count']} of {meta['docs']} docs "
                f"(eps {meta['eps']}, {100 * meta['removal_fraction']:.1f}%)")

    for o in outcomes:
        if o.job == d.MIX_JOB and o.success:
            meta = o.materialized["final_mixtures"]
            say(f"\nmixture {o.partition} ({meta['policy']}): {meta['achieved']} {meta['unit']} "
                f"(target {meta['target']}), published version {meta['version']}")
            say(_mixture_removals(meta))
            say(f"  data card: {meta['data_card']}")

    for o in outcomes:
        if o.job == d.REPORT_JOB:
            tests = f"{sum(o.checks.values())}/{len(o.checks)} dbt tests passed"
            say(f"\nreports: {len(o.materialized)} dbt models built in the warehouse, {tests}"
                + ("" if o.success else " (FAILED: see below)"))

    warehouse = Warehouse(settings.warehouse_url)
    snapshots = sorted({o.partition.split("/")[0] for o in outcomes if o.job != d.MIX_JOB and o.partition})
    try:
        reasons = warehouse.read_frame(
            "SELECT reason, SUM(n) AS n FROM quarantine_counts WHERE snapshot IN ("
            + ", ".join(f":s{i}" for i in range(len(snapshots)))
            + ") GROUP BY reason ORDER BY n DESC",
            {f"s{i}": s for i, s in enumerate(snapshots)},
        ) if snapshots else []
    except Exception:  # unreachable, or never written: the runs that failed on it are reported below
        say(f"records removed at ingestion: not readable from the warehouse {warehouse.safe_url}")
        reasons = []
    finally:
        warehouse.dispose()
    if len(reasons):
        say("records removed at ingestion by reason: " + ", ".join(f"{r.reason}={int(r.n)}" for r in reasons.itertuples()))


# Per-shard outputs, in the order the outputs block lists them: (label, asset folder, extension).
_SHARD_OUTPUTS = [
    ("documents", "raw_corpus", "parquet"),
    ("quarantine", "quarantine", "parquet"),
    ("embeddings", "embeddings", "npy"),
    ("labels", "cluster_labels", "parquet"),
    ("quality", "quality_scores", "parquet"),
]


def _print_outputs(settings: Settings, term: Terminal, store, snapshot_ids: list[str], outcomes) -> None:
    """What exists in storage now, each path looked up before it is printed; outputs this run did
    not make (or made but did not pass their gate) say so."""
    import json

    from crawlmix.centroid_store import current_key
    from crawlmix.mixture import load_mixture_specs
    from crawlmix.mixture_steps import current_pointer_key
    from crawlmix.warehouse import Warehouse
    from curation_assets import definitions as d

    say = term.say
    say()
    say("outputs:")
    gate_failed = {(c.check.split(":")[0], o.partition) for o in outcomes for c in o.failed_checks}
    for label, asset, ext in _SHARD_OUTPUTS:
        for snapshot in snapshot_ids:
            keys = set(store.list_keys(f"{asset}/{snapshot}"))
            present = [s for s in settings.shard_keys if store.key(asset, snapshot, s, ext) in keys]
            if not present:
                continue
            missing = [s for s in settings.shard_keys if s not in present]
            note = f"{len(present)}/{len(settings.shard_keys)} shards"
            if missing:
                note += f", missing {_some(missing)}"
            failed = [s for s in present if (asset, f"{snapshot}/{s}") in gate_failed]
            if failed:
                note += f", gate FAILED on {_some(failed)}"
            extra = " (+ <shard>.ids.parquet)" if asset == "embeddings" else ""
            say(f"  {label:<12} {store.uri(f'{asset}/{snapshot}')}/<shard>.{ext}{extra}  [{note}]")
    pointer = json.loads(store.read_bytes(current_key(store))) if store.exists(current_key(store)) else None
    if pointer and store.exists(pointer["tree"]):
        refit = any(o.job == d.FIT_JOB and o.success for o in outcomes)
        say(f"  {'centroids':<12} {store.uri(current_key(store))} -> {store.uri(pointer['tree'])}"
            f"{'' if refit else '  (fit by an earlier run)'}")
    for snapshot in snapshot_ids:
        key = f"semantic_duplicates/{snapshot}/all.parquet"
        if store.exists(key):
            say(f"  {'duplicates':<12} {store.uri(key)}")
    built = {o.partition: o for o in outcomes if o.job == d.MIX_JOB}
    for spec in load_mixture_specs(settings.mixtures_file):
        pointer_key = current_pointer_key(spec.name)
        published = json.loads(store.read_bytes(pointer_key)) if store.exists(pointer_key) else None
        if published and not store.exists(published["card"]):
            published = None
        outcome = built.get(spec.name)
        if outcome is not None and outcome.success and published:
            say(f"  {'mixture':<12} {spec.name}: published version {published['version']}, card {store.uri(published['card'])}")
            continue
        why = "not built in this run" if outcome is None else "FAILED in this run: NOT published"
        if published:
            say(f"  {'mixture':<12} {spec.name}: {why}; still published: version {published['version']}, "
                f"card {store.uri(published['card'])}")
        else:
            say(f"  {'mixture':<12} {spec.name}: {why}; no published version")
    warehouse = Warehouse(settings.warehouse_url)
    duckdb_file = settings.warehouse_url.split(":///", 1)[1] if settings.warehouse_url.startswith("duckdb:///") else None
    if duckdb_file is None or Path(duckdb_file).exists():
        reports = any(o.job == d.REPORT_JOB and o.success for o in outcomes)
        say(f"  {'warehouse':<12} {warehouse.safe_url}"
            + ("  (reports: cluster_summary, snapshot_drift, *_report)" if reports else "  (reports not rebuilt in this run)"))
    say(f"  {'dagster home':<12} {os.environ['DAGSTER_HOME']}  (runs, materializations, check results, run logs)")
    say("open the UI:   crawlmix ui   (then http://127.0.0.1:3000)")


def _mixture_removals(meta: dict) -> str:
    """One line: what each filter removed, the evaluation sets matched and the PII redacted."""
    removed = {k: v for k, v in (meta.get("filtered_out") or {}).items() if v}
    line = "  removed: " + (", ".join(f"{k.replace('_', ' ')} {v}" for k, v in removed.items()) or "nothing")
    sets = [f"{r['name']} {r['documents']}" for r in meta.get("decontamination") or []]
    if sets:
        line += f"; documents matching evaluation sets: {', '.join(sets)}"
    pii = {k: v for k, v in (meta.get("pii_redacted") or {}).items() if k != "documents"}
    line += "; PII redacted: " + (", ".join(f"{v} {k.replace('_', ' ')}" for k, v in pii.items()) or "none")
    return line


def _some(names: list[str], shown: int = 6) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _problems(settings: Settings, store, snapshot_ids: list[str], outcomes, rerun: str) -> list[str]:
    """For each failed step or blocking check: where, what it observed, and how to fix and re-run;
    then the stages that never ran because of them. Empty when everything passed."""
    from curation_assets import definitions as d

    lines: list[str] = []
    snapshot_jobs = (d.INGEST_JOB, d.LABEL_JOB, d.DEDUP_JOB, d.SCORE_JOB)
    for o in outcomes:
        if o.success:
            continue
        if o.job in snapshot_jobs:
            where, again = f"partition {o.partition}", f"{rerun} --snapshot {o.partition.split('/')[0]}"
            if rerun == "crawlmix demo":
                again = rerun
        elif o.job == d.MIX_JOB:
            where, again = f"mixture {o.partition}", rerun
        elif o.job == d.FIT_JOB and rerun.startswith("crawlmix run"):
            where, again = o.job, f"{rerun} --refit"
        else:
            where, again = o.job, rerun
        skipped = f"  not executed because of it: {', '.join(o.skipped_steps)}" if o.skipped_steps else None
        for check in o.failed_checks:
            asset = check.check.split(":")[0]
            lines.append(f"FAILED check {check.check} on {where} (blocking; run {o.run_id[:8]})")
            lines.append(f"  observed: {_first_line(check.observed, 400)}")
            if check.failed_expectations:
                lines.append(f"  failing expectations: {', '.join(dict.fromkeys(check.failed_expectations))}")
            if check.checks_for:
                lines.append(f"  the check: {_first_line(check.checks_for, 300)}")
            if skipped:
                lines.append(skipped)
            lines.append(f"  fix: {_fix_hint(settings, store, o, asset)}then re-run: {again}")
        for error in o.step_errors:
            lines.append(f"FAILED step {error.step} on {where} (error; run {o.run_id[:8]})")
            lines.append(f"  error: {_first_line(error.message, 400)}")
            if skipped:
                lines.append(skipped)
            lines.append(f"  fix: {_fix_hint(settings, store, o, error.step)}then re-run: {again}")
        if not o.failed_checks and not o.step_errors:
            lines.append(f"FAILED run {o.job} on {where} (run {o.run_id[:8]}): see its logs in the UI")
    ran = {(o.job, o.partition.split("/")[0]) for o in outcomes if o.job in snapshot_jobs}
    for snapshot in snapshot_ids:
        not_run = [job for job in snapshot_jobs if (job, snapshot) not in ran]
        if not_run and (d.INGEST_JOB, snapshot) in ran:
            lines.append(f"not run for snapshot {snapshot}: {', '.join(not_run)} (an earlier stage failed)")
    jobs = {o.job for o in outcomes}
    if lines and d.MIX_JOB not in jobs:
        lines.append(f"not run: {d.MIX_JOB}, {d.REPORT_JOB} (no snapshot came through scoring)")
    if lines:
        failed = sum(not o.success for o in outcomes)
        lines.insert(0, "")
        lines.append(f"{failed} run(s) FAILED; each run's full log is in the UI (crawlmix ui, Runs) "
                     f"or under {os.environ['DAGSTER_HOME']}/storage/<run id>/compute_logs")
    return lines


def _fix_hint(settings: Settings, store, outcome, asset: str) -> str:
    from curation_assets import definitions as d

    if outcome.job == d.MIX_JOB:
        return f"edit mixture {outcome.partition!r} in {settings.mixtures_file} (the error says what cannot be met), "
    if asset == "raw_corpus" and "/" in outcome.partition:
        snapshot, shard = outcome.partition.split("/", 1)
        key = store.key("quarantine", snapshot, shard, "parquet")
        if store.exists(key):
            return f"the records set aside and why are in {store.uri(key)}; fix the snapshot's input files, "
        return "fix the snapshot's input files, "
    if outcome.job == d.REPORT_JOB:
        return "the dbt output is in the run's log; "
    return "fix the cause above, "


def _first_line(text: str, limit: int) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


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
