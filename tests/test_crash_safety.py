"""Crash safety: SIGKILL real materializations at seeded random moments, rerun, compare.

One tiny world (one snapshot, one shard, ten documents) is built through the real Definitions with a
persistent SQLite DagsterInstance and a DuckDB warehouse file, exactly as `crawlmix run` does. Its
outputs are the reference: an uninterrupted run's files (bytes) and warehouse rows. Then, for
`raw_corpus`, `embeddings`, `cluster_labels` and `final_mixtures` (with its gate and publication),
a worker process runs the asset partition and is SIGKILLed (its whole process group) after a delay
drawn by `random.Random(seed)` inside the asset step's measured duration (reading inputs, writing
temporary files, renames, the warehouse transaction, the pointer writes), or, in the "watch" phase,
the moment the test sees the partition's commit begin (a temporary file holding bytes, or a file
renamed into place): a timer cannot hit a window of milliseconds reliably. Before each kill the
partition is either left in place ("replace": re-materializing over a complete partition) or wiped
("fresh": a first materialization), also by the seeded generator.

Right after each kill, before anything else runs: every file a reader can see (`Storage.list_keys`)
is byte-identical to the reference (a reader sees the old complete file or nothing, never a partial
one), pointers never name files that are not there yet, and each warehouse table holds exactly the
reference rows of the partition or, after a wipe, none. The kill is also classified: did it land
inside a commit window, that is with a temporary file holding written bytes not yet renamed, between
the commits of two of the partition's files, or after its files were committed but before its
warehouse transaction was? Each asset's kills must include at least one that did (more "watch"
kills follow until one does), so the checks above are known to have met the hard cases.
After the rerun: the run succeeds with its gates, the visible files are exactly the reference
files, the warehouse rows are exactly the reference rows (no duplicates, none missing), no chunk
folder is left, and the temporary files the kill orphaned are gone: the rerun's writes swept them
(they are aged past the sweep threshold first, standing in for the hour a real orphan waits).

Set CRAWLMIX_TEST_CRASH_SEED to explore other kill points; CRAWLMIX_TEST_CRASH_REPORT=<path> writes one JSON
line per kill (where it landed, what it interrupted).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from crawlmix.storage import LocalStorage
from crawlmix.warehouse import Warehouse
from tests.crash_harness import Zygote
from tests.dagster_harness import make_snapshot

SEED = int(os.environ.get("CRAWLMIX_TEST_CRASH_SEED", "7001"))
KILLS = {"raw_corpus": 6, "embeddings": 6, "cluster_labels": 4, "final_mixtures": 4}
# Further kills, all in the "watch" phase, while none of an asset's kills has landed in a commit window.
MAX_EXTRA_WINDOW_KILLS = 8
WATCH_POLL_S = 0.0005
SNAPSHOT, SHARD, MIXTURE = "snap-a", "000", "crash-mix"

MIXTURES = f"""
mixtures:
  - name: {MIXTURE}
    scope: all
    filters: {{min_quality: 0.0, drop_semantic_duplicates: false}}
    size: {{documents: 6}}
    policy: weighted
    options: {{level: top, temperature: 1.0, max_repeats: 2}}
    seed: 1
    formats: [parquet, jsonl.gz]
"""

# Columns that legitimately differ between two uninterrupted runs: when and how fast it ran.
VOLATILE_COLUMNS = {"snapshot_shard_stats": {"materialized_at", "elapsed_s"}, "mixture_composition": {"built_at"}}


@dataclass
class Target:
    asset: str
    job: str
    partition: object
    assets: list[str] | None
    prefixes: list[str]  # storage folders holding the partition's outputs
    tables: dict[str, dict]  # warehouse table -> the partition's rows
    window: tuple[str, str, str]  # kill between (event, step) ... (event, step) of the reference run
    run_config: dict | None = None
    reference_files: dict[str, bytes] = field(default_factory=dict)
    reference_rows: dict[str, list] = field(default_factory=dict)


@dataclass
class World:
    root: Path
    home: Path
    zygote: Zygote
    store: LocalStorage
    warehouse: Warehouse
    targets: dict[str, Target]
    report: list[dict] = field(default_factory=list)

    def request(self, job, partition=None, assets=None, run_config=None, name="run") -> dict:
        return {
            "job": job,
            "partition": partition,
            "assets": assets,
            "run_config": run_config,
            "snapshots": [SNAPSHOT],
            "result": str(self.root / f"{name}.json"),
            "log": str(self.root / f"{name}.log"),
        }

    def target_request(self, target: Target, name: str) -> dict:
        return self.request(target.job, target.partition, target.assets, target.run_config, name)


def _targets(home: Path) -> dict[str, Target]:
    part = {"snapshot": SNAPSHOT, "shard": SHARD}
    # Small chunks so a shard of ten documents is five resumable chunks a kill can fall between.
    embedder = {"resources": {"embedder": {"config": {"chunk_rows": 2, "device": "cpu", "work_root": str(home / "work")}}}}
    return {
        "raw_corpus": Target(
            "raw_corpus", "crawl_pipeline", [SNAPSHOT, SHARD], ["raw_corpus"],
            [f"raw_corpus/{SNAPSHOT}", f"quarantine/{SNAPSHOT}"],
            {"snapshot_shard_stats": part, "quarantine_counts": part},
            ("STEP_START", "raw_corpus", "STEP_SUCCESS"),
        ),
        "embeddings": Target(
            "embeddings", "crawl_pipeline", [SNAPSHOT, SHARD], ["embeddings"],
            [f"embeddings/{SNAPSHOT}"], {}, ("STEP_START", "embeddings", "STEP_SUCCESS"), embedder,
        ),
        "cluster_labels": Target(
            "cluster_labels", "label_shards", [SNAPSHOT, SHARD], None,
            [f"cluster_labels/{SNAPSHOT}"], {"cluster_shard_sizes": part},
            ("STEP_START", "cluster_labels", "STEP_SUCCESS"),
        ),
        "final_mixtures": Target(
            "final_mixtures", "build_mixture", MIXTURE, None,
            [f"final_mixtures/{MIXTURE}"], {"mixture_composition": {"mixture": MIXTURE}},
            # through the gate and the publication of current.json
            ("STEP_START", "final_mixtures", "ASSET_MATERIALIZATION:mixture_publication"),
        ),
    }


def _event_time(timeline: list, event: str, step: str) -> float:
    return next(t for e, s, t in timeline if e == event and s == step)


def _window(timeline: list, spec: tuple[str, str, str]) -> tuple[float, float]:
    start_event, step, end = spec
    end_event, _, end_step = end.partition(":")
    return _event_time(timeline, start_event, step), _event_time(timeline, end_event, end_step or step)


def _visible(store: LocalStorage, prefixes: list[str]) -> dict[str, bytes]:
    """What a reader sees: the keys Storage lists and their bytes."""
    return {key: store.read_bytes(key) for prefix in prefixes for key in store.list_keys(prefix)}


def _hidden(folder: Path) -> list[str]:
    """Temporary files (hidden names) anywhere under `folder`, relative paths."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.is_file())


def _rows(warehouse: Warehouse, table: str, where: dict) -> list[tuple]:
    condition = " AND ".join(f"{k} = :{k}" for k in where)
    frame = warehouse.read_frame(f"SELECT * FROM {table} WHERE {condition}", where)
    frame = frame.drop(columns=[c for c in VOLATILE_COLUMNS.get(table, ()) if c in frame.columns])
    return sorted(tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False, name=None))


# Per target, the warehouse column stamped anew by every transaction that writes the partition:
# a changed stamp after a kill means the killed run's transaction committed.
TXN_STAMPS = {"snapshot_shard_stats": "materialized_at", "mixture_composition": "built_at"}


def _txn_stamp(warehouse: Warehouse, target: Target, mode: str) -> str | None:
    """Something the partition's warehouse transaction changes every time it commits: its stamp
    column (TXN_STAMPS), or, after a wipe, whether any row exists. None: nothing tells."""
    for table, where in target.tables.items():
        column = TXN_STAMPS.get(table)
        if column:
            condition = " AND ".join(f"{k} = :{k}" for k in where)
            frame = warehouse.read_frame(f"SELECT max({column}) AS stamp FROM {table} WHERE {condition}", where)
            return "no rows" if pd.isna(frame["stamp"][0]) else str(frame["stamp"][0])
    if target.tables and mode == "fresh":
        table, where = next(iter(target.tables.items()))
        return f"{len(_rows(warehouse, table, where))} rows"
    return None


def _last_event(dagster_home: Path, before: set[str]) -> str:
    """The killed run's last event, read straight from its SQLite event log (description only)."""
    new = [p for p in (dagster_home / "history" / "runs").glob("*.db") if p.name not in before]
    if not new:
        return "no run created"
    with sqlite3.connect(f"file:{max(new, key=lambda p: p.stat().st_mtime)}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT dagster_event_type, step_key FROM event_logs WHERE dagster_event_type IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
    return f"{row[0]} {row[1] or ''}".strip() if row else "no event"


def _unfinished_runs(dagster_home: Path) -> list[str]:
    with sqlite3.connect(f"file:{dagster_home / 'history' / 'runs.db'}?mode=ro", uri=True) as db:
        return [r[0] for r in db.execute("SELECT run_id FROM runs WHERE status IN ('NOT_STARTED', 'STARTING', 'STARTED')")]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    started = time.monotonic()
    root = tmp_path_factory.mktemp("crash")
    home = root / "home"
    make_snapshot(home / "snapshots", SNAPSHOT, n_files=2)
    (root / "mixtures.yaml").write_text(MIXTURES)
    env = {
        "CRAWLMIX_HOME": str(home),
        "CRAWLMIX_SHARDS": "1",
        "CRAWLMIX_DEVICE": "cpu",
        "CRAWLMIX_MIXTURES": str(root / "mixtures.yaml"),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    zygote = Zygote(env, root / "zygote.log")
    assert zygote.ready["threads"] == 1, "the zygote must fork from a single-threaded process"
    targets = _targets(home)
    w = World(root, home, zygote, LocalStorage(str(home / "storage")), Warehouse(f"duckdb:///{home / 'warehouse.duckdb'}"), targets)
    try:
        # The uninterrupted reference, stage by stage, each a real job run gated by its checks.
        fit = {"ops": {"centroids": {"config": {"ks": [4, 2]}}}}
        no_classifier = {"ops": {"quality_scores": {"config": {"reference_path": "none"}}}}
        steps = [
            (targets["raw_corpus"], None),
            (targets["embeddings"], None),
            (None, w.request("fit_centroids", run_config=fit, name="setup-fit")),
            (targets["cluster_labels"], None),
            (None, w.request("semantic_dedup", SNAPSHOT, name="setup-dedup")),
            (None, w.request("score_shards", [SNAPSHOT, SHARD], run_config=no_classifier, name="setup-score")),
            (targets["final_mixtures"], None),
        ]
        for target, request in steps:
            result = zygote.run(request or w.target_request(target, f"setup-{target.asset}"))
            assert result["success"], result["error"]
        for target in targets.values():
            target.reference_files = _visible(w.store, target.prefixes)
            target.reference_rows = {t: _rows(w.warehouse, t, where) for t, where in target.tables.items()}
            assert target.reference_files, f"{target.asset}: the reference run wrote nothing"
            assert all(target.reference_rows.values()), f"{target.asset}: the reference run wrote no warehouse rows"
        print(f"\ncrash-safety world ready in {time.monotonic() - started:.1f}s (zygote {zygote.ready})")
        yield w
    finally:
        zygote.close()
        _write_report(w)


def _write_report(w: World) -> None:
    if not w.report:
        return
    lines = [
        f"{'#':>2} {'asset':<15}{'mode':<8}{'phase':<7}{'delay s':>8} {'window s':<12}{'exit':>5}  interrupted",
    ]
    for r in w.report:
        lines.append(
            f"{r['kill']:>2} {r['asset']:<15}{r['mode']:<8}{r['phase']:<7}{r['delay_s']:>8.3f} {r['window_s']:<12}{r['exit']:>5}  {r['interrupted']}"
        )
    print("\n" + "\n".join(lines))
    path = os.environ.get("CRAWLMIX_TEST_CRASH_REPORT")
    if path:
        with open(path, "a") as out:
            for r in w.report:
                out.write(json.dumps(r, default=str) + "\n")


def _wipe(w: World, target: Target) -> None:
    """Make the next run a first materialization of the partition: no files, no rows."""
    for prefix in target.prefixes:
        for key in w.store.list_keys(prefix):
            w.store.delete(key)
    for table, where in target.tables.items():
        w.warehouse.replace_partition(table, where, [])


def _check_readers_after_kill(w: World, target: Target, mode: str) -> dict[str, bytes]:
    visible = _visible(w.store, target.prefixes)
    extra = sorted(set(visible) - set(target.reference_files))
    assert not extra, f"{target.asset}: a reader sees files no complete run writes: {extra}"
    for key, data in visible.items():
        assert data == target.reference_files[key], f"{target.asset}: {key} is visible but not the complete file"
    if mode == "replace":
        assert set(visible) == set(target.reference_files), (
            f"{target.asset}: a complete file disappeared while being replaced: "
            f"{sorted(set(target.reference_files) - set(visible))}"
        )
    # Pointers are written after what they point at.
    npy, ids = f"embeddings/{SNAPSHOT}/{SHARD}.npy", f"embeddings/{SNAPSHOT}/{SHARD}.ids.parquet"
    if npy in visible:
        assert ids in visible, "embeddings: the vectors are visible before their row ids"
    for pointer in (f"final_mixtures/{MIXTURE}/latest.json", f"final_mixtures/{MIXTURE}/current.json"):
        if pointer in visible:
            version = json.loads(visible[pointer])["version"]
            named = {k for k in target.reference_files if k.rsplit("/", 1)[-1].startswith(f"{version}.")}
            assert named and named <= set(visible), f"{pointer} names version {version} before all its files exist"
    for table, where in target.tables.items():
        rows = _rows(w.warehouse, table, where)
        allowed = [target.reference_rows[table]] + ([[]] if mode == "fresh" else [])
        assert rows in allowed, f"{target.asset}: {table} holds a partial or duplicated partition after the kill: {rows}"
    return visible


@dataclass
class KillState:
    """What a killed run left, observed right after the kill and before anything else runs."""

    written_temps: list[str]  # temporary files in the partition's folders holding bytes, not renamed
    committed: list[str]  # the partition's files (sidecars included) the killed run had renamed into place
    txn_committed: bool | None  # its warehouse transaction (None: no table, or nothing tells)
    expected_files: int

    @property
    def commit_window(self) -> str:
        """Which commit window the kill landed in, or "" when it landed in none."""
        if self.written_temps:
            return "temp file written, not renamed"
        if 0 < len(self.committed) < self.expected_files:
            return "between file commits"
        if self.committed and self.txn_committed is False:
            return "files committed, warehouse transaction not"
        return ""


def _temp_files(w: World, target: Target) -> dict[str, int]:
    """Temporary files (hidden names) in the partition's folders: relative path -> size in bytes."""
    out = {}
    for prefix in target.prefixes:
        folder = w.home / "storage" / prefix
        for rel in _hidden(folder):
            out[f"{prefix}/{rel}"] = (folder / rel).stat().st_size
    return out


def _commit_started(w: World, target: Target, before_stat, before_temps) -> bool:
    """Whether the running partition has begun committing: a temporary file holding bytes, or a
    file renamed into place (new, or a new inode under an old name). Cheap: one scandir per folder."""
    for prefix in target.prefixes:
        folder = w.home / "storage" / prefix
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # renamed away between the listing and the stat
            rel = f"{prefix}/{entry.name}"
            if entry.name.startswith("."):
                if st.st_size > 0 and rel not in before_temps:
                    return True
            elif (st.st_ino, st.st_mtime_ns) != before_stat.get(rel):
                return True
    return False


def _kill_when_commit_starts(w: World, target: Target, before_stat, before_temps, timeout_s: float) -> float:
    """SIGKILL the worker as soon as its commit is seen to begin (or at the timeout); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s and not _commit_started(w, target, before_stat, before_temps):
        time.sleep(WATCH_POLL_S)
    w.zygote.kill()
    return time.monotonic() - started


def _observe(w: World, target: Target, mode: str, before_stat, before_stamp, before_temps) -> KillState:
    temps = _temp_files(w, target)
    written = sorted(t for t, size in temps.items() if size > 0 and t not in before_temps)
    committed = []
    for key in _visible(w.store, target.prefixes):
        st = os.stat(w.store.uri(key))
        if key not in before_stat or (st.st_ino, st.st_mtime_ns) != before_stat[key]:
            committed.append(key)
    txn = None if before_stamp is None else _txn_stamp(w.warehouse, target, mode) != before_stamp
    return KillState(written, sorted(committed), txn, len(target.reference_files))


def _describe(w: World, state: KillState, before_runs, exit_code) -> str:
    """What the kill interrupted: the run's last event, the temporary files and chunks it left, which
    outputs it had already committed, whether its warehouse transaction had committed."""
    parts = [f"last event: {_last_event(w.home / 'dagster', before_runs)}"]
    if state.written_temps:
        parts.append("temp files: " + ", ".join(t.rsplit("/", 1)[-1][:28] for t in state.written_temps))
    chunks = sorted(p.name for p in (w.home / "work").rglob("chunk-*.npy")) if (w.home / "work").exists() else []
    if chunks:
        parts.append(f"{len(chunks)} finished chunks")
    replaced = []
    for key in state.committed:
        if not key.endswith(".sha256"):
            folder, name = key.split("/", 1)[0], key.rsplit("/", 1)[-1]
            replaced.append(f"{folder}/{re.sub(r'^[0-9a-f]{16}[.]', '<version>.', name)}")
    parts.append(f"committed (+sidecars): {', '.join(replaced) if replaced else 'none'}")
    if state.txn_committed is not None:
        parts.append(f"warehouse txn {'committed' if state.txn_committed else 'not committed'}")
    if state.commit_window:
        parts.append(f"IN COMMIT WINDOW ({state.commit_window})")
    if exit_code == 0:
        parts.append("run finished before the kill")
    return "; ".join(parts)


@pytest.mark.parametrize("asset", list(KILLS))
def test_sigkill_then_rerun_restores_the_uninterrupted_outputs(world: World, asset: str):
    target = world.targets[asset]
    # A second uninterrupted run: it must reproduce the reference exactly (else no rerun could), and
    # its timeline, taken warm like the runs that will be killed, places the kill window.
    result = world.zygote.run(world.target_request(target, f"measure-{asset}"))
    assert result["success"], result["error"]
    assert _visible(world.store, target.prefixes) == target.reference_files, f"{asset}: two uninterrupted runs differ"
    for table, where in target.tables.items():
        assert _rows(world.warehouse, table, where) == target.reference_rows[table]
    lo, hi = _window(result["timeline"], target.window)
    # When the files were committed in that run: a second window around them aims kills at the
    # writes themselves (temporary files, fsync, renames), which take milliseconds of the step.
    mtimes = [os.stat(world.store.uri(k)).st_mtime - result["started"] for k in target.reference_files]
    write_lo, write_hi = max(lo, min(mtimes) - 0.05), min(hi, max(mtimes) + 0.02)
    rng = random.Random(f"{SEED}:{asset}")
    landed, attempts, in_window = 0, 0, 0
    while landed < KILLS[asset] or (not in_window and landed < KILLS[asset] + MAX_EXTRA_WINDOW_KILLS):
        attempts += 1
        assert attempts <= KILLS[asset] + MAX_EXTRA_WINDOW_KILLS + 4, f"{asset}: kills keep landing after the run finished"
        kill_no = len(world.report) + 1
        mode = rng.choice(["fresh", "replace"])
        phase = rng.choice(["step", "writes", "watch"]) if landed < KILLS[asset] else "watch"
        delay = rng.uniform(lo, hi) if phase == "step" else rng.uniform(write_lo, write_hi)
        if mode == "fresh":
            _wipe(world, target)
        before_files = _visible(world.store, target.prefixes)
        before_stat = {k: (os.stat(world.store.uri(k)).st_ino, os.stat(world.store.uri(k)).st_mtime_ns) for k in before_files}
        before_stamp = _txn_stamp(world.warehouse, target, mode)
        before_runs = {p.name for p in (world.home / "dagster" / "history" / "runs").glob("*.db")}
        before_temps = _temp_files(world, target)

        world.zygote.start(world.target_request(target, f"kill-{kill_no}"))
        if phase == "watch":
            delay = _kill_when_commit_starts(world, target, before_stat, before_temps, timeout_s=hi + 30)
        else:
            time.sleep(delay)
            world.zygote.kill()
        exit_code = world.zygote.wait()
        if exit_code == 0 and phase != "watch":  # the run finished first (this machine runs faster now): aim earlier
            hi, write_hi = min(hi, delay), min(write_hi, delay)
            write_lo = min(write_lo, write_hi)
        landed += exit_code == -9

        state = _observe(world, target, mode, before_stat, before_stamp, before_temps)
        in_window += exit_code == -9 and bool(state.commit_window)
        _check_readers_after_kill(world, target, mode)
        interrupted = _describe(world, state, before_runs, exit_code)
        # The hour an orphan must wait before a sweep may remove it, passed: the rerun's writes
        # to these folders must sweep what the dead writer left (its locks died with it).
        orphaned = _temp_files(world, target)
        for rel in orphaned:
            os.utime(world.home / "storage" / rel, (time.time() - 7200, time.time() - 7200))

        result = world.zygote.run(world.target_request(target, f"rerun-{kill_no}"))
        assert result["success"], f"rerun after kill {kill_no} failed: {result['error']}"
        assert asset in result["materialized"], f"rerun after kill {kill_no} recorded no {asset} materialization"
        after = _visible(world.store, target.prefixes)
        assert sorted(after) == sorted(target.reference_files), f"kill {kill_no}: files differ from the uninterrupted run"
        for key, data in after.items():
            assert data == target.reference_files[key], (
                f"kill {kill_no}: {key} differs from the uninterrupted run "
                f"({_digest(data)} != {_digest(target.reference_files[key])})"
            )
        for table, where in target.tables.items():
            assert _rows(world.warehouse, table, where) == target.reference_rows[table], (
                f"kill {kill_no}: warehouse {table} rows differ from the uninterrupted run"
            )
        # The killed run held a pool slot (`gpu` or `duckdb_warehouse`): the rerun got it back, and
        # the instance lists no run as still going.
        assert _unfinished_runs(world.home / "dagster") == [], f"kill {kill_no}: a killed run is still STARTED"
        # Until a sweep removes it, an orphaned temporary file has a hidden name no reader lists
        # (`Storage.list_keys` skips it, as do shell globs and pyarrow datasets); the rerun swept
        # the partition's folders.
        assert all(Path(p).name.startswith(".") and ".tmp-" in Path(p).name for p in orphaned), orphaned
        leftovers = sorted(_temp_files(world, target))
        assert leftovers == [], f"kill {kill_no}: the rerun left the dead writer's temporary files: {leftovers}"
        work = world.home / "work" / "embeddings" / SNAPSHOT / SHARD
        assert not work.exists(), f"kill {kill_no}: the embedding chunk folder outlived the rerun"

        reused = result["materialized"][asset].get("chunks_reused")
        world.report.append({
            "kill": kill_no, "seed": SEED, "asset": asset, "mode": mode, "phase": phase, "delay_s": round(delay, 3),
            "window_s": {"step": f"{lo:.2f}-{hi:.2f}", "writes": f"{write_lo:.2f}-{write_hi:.2f}"}.get(phase, "on commit"),
            "exit": exit_code,
            "interrupted": interrupted + (f"; rerun reused {reused} chunks" if reused else ""),
            "commit_window": state.commit_window if exit_code == -9 else "",
            "orphaned_temp_files": len(orphaned),
        })
    assert in_window, (
        f"{asset}: none of {landed} kills landed inside a commit window (a temporary file written but not "
        f"renamed, between two file commits, or between the files and the warehouse transaction); "
        f"write window {write_lo:.3f}-{write_hi:.3f}s"
    )
