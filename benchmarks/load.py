"""Load: how the code location and the snapshot sensor behave with many registered snapshots.

    python benchmarks/load.py [--snapshots 200] [--shards 8] [--new 1 5] [--repeat 3]

Builds a throwaway home (tests/load_fixtures.py): N tiny complete snapshots, all registered as
partitions of a SQLite Dagster instance. Times the code-location load in a fresh `dagster
code-server` subprocess, the sensor function alone, and real sensor-daemon ticks (nothing new;
then K new snapshots, which registers them and queues K x shards runs).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
for _name, _value in {"DAGSTER_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1", "GX_ANALYTICS_ENABLED": "false"}.items():
    os.environ.setdefault(_name, _value)

from tests.load_fixtures import (  # noqa: E402
    daemon_tick,
    daemon_workspace,
    make_registered_instance,
    make_tiny_snapshot,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=200)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--new", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory(prefix="crawlmix-load-") as tmp:
        started = time.perf_counter()
        deployment = make_registered_instance(Path(tmp) / "home", args.snapshots, args.shards)
        print(f"fixture: {args.snapshots} snapshots x {args.shards} shards registered in {time.perf_counter() - started:.2f} s")
        os.environ.update(deployment.env)
        os.environ["CRAWLMIX_SNAPSHOTS_PER_TICK"] = str(max(args.new))

        from dagster import build_sensor_context

        from curation_assets.definitions import build_definitions, build_resources

        started = time.perf_counter()
        defs = build_definitions(deployment.settings)
        print(f"in-process build_definitions: {time.perf_counter() - started:.2f} s")
        sensor = defs.resolve_sensor_def("crawl_snapshot_sensor")
        resources = {"snapshots": build_resources(deployment.settings)["snapshots"]}
        timings = []
        for _ in range(args.repeat):
            with build_sensor_context(instance=deployment.instance, resources=resources) as context:
                started = time.perf_counter()
                sensor(context)
                timings.append(time.perf_counter() - started)
        print(f"sensor function, nothing new: median {statistics.median(timings) * 1000:.0f} ms")

        now = datetime.datetime.now(datetime.timezone.utc)
        step = 0
        with daemon_workspace(deployment) as (workspace, load_s):
            print(f"code location load (fresh code-server subprocess): {load_s:.2f} s")
            timings = []
            for _ in range(args.repeat):
                step += 1
                elapsed, tick = daemon_tick(workspace, deployment.instance, now + datetime.timedelta(seconds=61 * step))
                timings.append(elapsed)
            print(f"daemon tick, nothing new: median {statistics.median(timings):.2f} s ({tick.status.value})")
            for k in args.new:
                for i in range(k):
                    make_tiny_snapshot(Path(deployment.settings.snapshots_root), f"zz-new-{step}-{i}")
                step += 1
                elapsed, tick = daemon_tick(workspace, deployment.instance, now + datetime.timedelta(seconds=61 * step))
                print(
                    f"daemon tick, {k} new snapshot(s) -> {len(tick.run_ids)} runs queued: {elapsed:.2f} s "
                    f"({elapsed / max(1, len(tick.run_ids)):.2f} s per run; {tick.status.value})"
                )


if __name__ == "__main__":
    main()
