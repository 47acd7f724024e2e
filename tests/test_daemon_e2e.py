"""The deployment runs itself: under the real `dagster-daemon`, a snapshot written into the snapshots
root flows through ingestion, embedding, labels, semantic dedup and quality scores with no other action.

One snapshot is processed first with `crawlmix run` (the project's own runner) into a persistent
SQLite DAGSTER_HOME. Then the daemon starts as its own process on `workspace.yaml`, exactly as a
deployment runs it, and a second snapshot is written (files, then `_SUCCESS`). The crawl sensor (60 s
interval) and the automation sensor (30 s) must carry it through within the time limit, every
blocking check passing, the daemon launching nothing for the first snapshot, whose files stay
byte-identical. Data: short real pages, Debian documentation records of the bundled sample crawl.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

SHARDS = ("000", "001")
FIRST, SECOND = "crawl-a", "crawl-b"
PAGES_PER_FILE = 8
# From `_SUCCESS` to the last quality score: up to 60 s until the crawl sensor's tick, up to 30 s per
# automation stage, then seven runs whose ~20 steps each start a process that loads the code location
# (and Great Expectations for a check), most of them one at a time in the `duckdb_warehouse` pool.
# The work itself takes seconds; the processes take minutes (19.5 min on two cores shared with a
# load average of 11). CRAWLMIX_TEST_DAEMON_FLOW_LIMIT_S sets another limit.
FLOW_LIMIT_S = int(os.environ.get("CRAWLMIX_TEST_DAEMON_FLOW_LIMIT_S", "1500"))
DAEMON_READY_LIMIT_S = 180
SNAPSHOT_ASSETS = ("raw_corpus", "embeddings", "cluster_labels", "quality_scores")  # per shard
SAMPLE_WARC = REPO_ROOT / "crawlmix" / "sample" / "snapshots" / "sample-2026-11" / "crawl-00000.warc.gz"


def write_snapshot(root: Path, snapshot: str, first_page: int) -> Path:
    """Two WARC files of PAGES_PER_FILE real pages each (the sample crawl's responses from
    `first_page` on), then `_SUCCESS`, as the snapshot folder contract requires."""
    folder = root / snapshot
    folder.mkdir(parents=True)
    with open(SAMPLE_WARC, "rb") as sample:
        responses = (r for r in ArchiveIterator(sample) if r.rec_type == "response")
        for _ in range(first_page):
            next(responses)
        for part in range(2):
            with open(folder / f"part-{part}.warc.gz", "wb") as out:
                writer = WARCWriter(out, gzip=True)
                for _ in range(PAGES_PER_FILE):
                    record = next(responses)
                    writer.write_record(writer.create_warc_record(
                        record.rec_headers.get_header("WARC-Target-URI"), "response",
                        payload=record.raw_stream, http_headers=record.http_headers,
                    ))
    (folder / "_SUCCESS").touch()
    return folder


def deployment_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWLMIX_", "DAGSTER_HOME"))}
    env.update(
        CRAWLMIX_HOME=str(home),
        CRAWLMIX_SHARDS=str(len(SHARDS)),
        CRAWLMIX_DEVICE="cpu",
        DAGSTER_HOME=str(home / "dagster"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        GX_ANALYTICS_ENABLED="false",
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        DAGSTER_DISABLE_TELEMETRY="1",
    )
    return env


def snapshot_files_digest(storage: Path, snapshot: str) -> dict[str, str]:
    """sha256 of every file under any `<storage>/<asset>/<snapshot>/` folder."""
    return {
        str(path.relative_to(storage)): hashlib.sha256(path.read_bytes()).hexdigest()
        for asset in storage.iterdir()
        if (asset / snapshot).is_dir()
        for path in sorted((asset / snapshot).rglob("*"))
        if path.is_file()
    }


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the daemon's process group (the daemon, its code server and every run it launched),
    SIGKILL to whatever is left after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def sensor_ticks(instance, sensor_name: str) -> list:
    for state in instance.all_instigator_state():
        if state.instigator_name == sensor_name:
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return []


def snapshot_runs(instance, since: float) -> list:
    """(run record, the snapshot the run is for or None) for every run created after `since`."""
    from dagster import RunsFilter

    created_after = datetime.datetime.fromtimestamp(since, tz=datetime.timezone.utc)
    out = []
    for record in instance.get_run_records(RunsFilter(created_after=created_after), ascending=True):
        tags = record.dagster_run.tags
        snapshot = tags.get("dagster/partition/snapshot") or (
            tags.get("dagster/partition") if tags.get("dagster/partition") in (FIRST, SECOND) else None
        )
        out.append((record, snapshot))
    return out


def run_line(record) -> str:
    run = record.dagster_run
    took = (record.end_time or time.time()) - record.start_time if record.start_time else 0.0
    assets = ",".join(sorted(k.to_user_string() for k in run.asset_selection or ()))
    return f"run {run.job_name:<15} {run.tags.get('dagster/partition', '-'):<14} {run.status.value:<8} {took:5.0f} s  {assets}"


def latest_check_results(instance, runs) -> dict[tuple[str, str, str | None], bool]:
    """(asset, check, partition) -> passed, the latest evaluation in the given runs."""
    from dagster import DagsterEventType

    results = {}
    for record, _ in runs:
        for entry in instance.all_logs(record.dagster_run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data
            results[(evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.partition)] = evaluation.passed
    return results


def run_failure(instance, record) -> str:
    from dagster import DagsterEventType

    run = record.dagster_run
    errors = [
        f"{e.dagster_event.step_key}: {e.dagster_event.step_failure_data.error.message.strip()[:800]}"
        for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    ]
    return f"run {run.run_id} ({run.job_name}, {run.tags.get('dagster/partition')}) {run.status.value}: " + (
        "; ".join(errors) or "no step failure recorded"
    )


def test_a_new_snapshot_flows_through_under_the_daemon(tmp_path):
    from dagster import AssetKey, DagsterInstance, DagsterRunStatus

    home = tmp_path / "home"
    env = deployment_env(home)
    snapshots, storage = home / "snapshots", home / "storage"
    write_snapshot(snapshots, FIRST, first_page=0)

    started = time.monotonic()
    first = subprocess.run(
        [sys.executable, "-m", "crawlmix.cli", "run", "--snapshots", str(snapshots), "--snapshot", FIRST],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1500,
    )
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    print(f"\n{FIRST}: processed by `crawlmix run` in {time.monotonic() - started:.0f} s")
    before = snapshot_files_digest(storage, FIRST)
    assert {p.split("/")[0] for p in before} >= {*SNAPSHOT_ASSETS, "semantic_duplicates"}

    daemon_log = tmp_path / "daemon.log"
    daemon_started = time.time()
    with open(daemon_log, "wb") as log:
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the code server and run workers join it
        )
    try:
        with DagsterInstance.from_config(str(home / "dagster")) as instance:
            # The deployment is steady: both sensors ticked once (finding nothing new to do).
            deadline = time.monotonic() + DAEMON_READY_LIMIT_S
            while not (sensor_ticks(instance, "crawl_snapshot_sensor") and sensor_ticks(instance, "curation_automation_sensor")):
                assert daemon.poll() is None, daemon_log.read_text()[-6000:]
                assert time.monotonic() < deadline, "daemon sensors did not tick:\n" + daemon_log.read_text()[-6000:]
                time.sleep(2)
            print(f"daemon: both sensors ticked {time.time() - daemon_started:.0f} s after start")

            write_snapshot(snapshots, SECOND, first_page=2 * PAGES_PER_FILE)
            landed = time.time()
            expected = {(a, str(p)) for a in SNAPSHOT_ASSETS for p in (f"{s}|{SECOND}" for s in SHARDS)}
            expected.add(("semantic_duplicates", SECOND))
            done = {}
            deadline = time.monotonic() + FLOW_LIMIT_S
            while len(done) < len(expected):
                for asset, partition in expected - done.keys():
                    records = instance.fetch_materializations(
                        _partition_filter(AssetKey(asset), partition), limit=1
                    ).records
                    if records:
                        done[(asset, partition)] = records[0].timestamp - landed
                failed = [r for r, snap in snapshot_runs(instance, daemon_started) if snap == SECOND
                          and r.dagster_run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)]
                assert not failed, "\n".join(run_failure(instance, run) for run in failed)
                assert daemon.poll() is None, daemon_log.read_text()[-6000:]
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"after {FLOW_LIMIT_S} s, not materialized: {sorted(expected - done.keys())}\n"
                        + "\n".join(run_line(r) for r, _ in snapshot_runs(instance, daemon_started))
                        + "\n" + daemon_log.read_text()[-6000:]
                    )
                time.sleep(3)
            flowed = max(done.values())
            # Checks run after their asset in the same run, and the reports refresh after the last
            # scores: wait for every launched run to finish.
            deadline = time.monotonic() + 300
            runs = snapshot_runs(instance, daemon_started)
            while any(not r.dagster_run.is_finished for r, _ in runs) and time.monotonic() < deadline:
                time.sleep(3)
                runs = snapshot_runs(instance, daemon_started)
            settled = time.time() - landed

            print(f"{SECOND}: _SUCCESS written -> last of its partitions materialized in {flowed:.0f} s")
            for asset in (*SNAPSHOT_ASSETS[:3], "semantic_duplicates", SNAPSHOT_ASSETS[3]):
                times = [t for (a, _), t in done.items() if a == asset]
                print(f"  {asset:<20} {min(times):6.0f} s .. {max(times):6.0f} s")
            for record, _ in runs:
                print("  " + run_line(record))

            print(f"  all {len(runs)} runs finished {settled:.0f} s after _SUCCESS")

            # Every run the daemon launched was for the new snapshot or the (unpartitioned) reports,
            # every one succeeded, and every blocking check of the new partitions passed.
            graph = _asset_graph()
            reports = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "reports"}
            assert all(snap == SECOND or set(r.dagster_run.asset_selection or {"?"}) <= reports for r, snap in runs), [
                run_line(r) for r, _ in runs
            ]
            assert any(set(r.dagster_run.asset_selection or ()) & reports for r, _ in runs), "the reports did not refresh"
            assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r, _ in runs), [
                run_failure(instance, r) for r, _ in runs if r.dagster_run.status != DagsterRunStatus.SUCCESS
            ]
            results = latest_check_results(instance, runs)
            for asset, partition in expected:
                for check_key in graph.get_check_keys_for_assets({AssetKey(asset)}):
                    if graph.get(check_key).blocking:
                        assert results.get((asset, check_key.name, partition)) is True, (asset, check_key.name, partition)
    finally:
        stop_process_group(daemon)

    assert snapshot_files_digest(storage, FIRST) == before


def _partition_filter(key, partition: str):
    from dagster import AssetRecordsFilter

    return AssetRecordsFilter(asset_key=key, asset_partitions=[partition])


def _asset_graph():
    """The graph as the deployment defines it (shard count from the test's settings)."""
    import tempfile

    from curation_assets.definitions import build_definitions
    from tests.dagster_harness import settings_for

    with tempfile.TemporaryDirectory() as scratch:
        return build_definitions(settings_for(Path(scratch) / "home", shards=len(SHARDS))).resolve_asset_graph()
