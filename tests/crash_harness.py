"""Kill real Dagster materializations with SIGKILL from outside, cheaply enough to do it often.

Importing Dagster and the project costs about ten seconds, far more than one run on a tiny corpus.
So a *zygote* process imports everything once and then forks one worker per requested run; the
worker starts a new session (so a kill reaches anything it spawned), opens the persistent
DagsterInstance under DAGSTER_HOME (SQLite) and the DuckDB warehouse from the environment it is
given, and runs one job partition with ``execute_in_process``, the path `crawlmix run` takes. The
test process asks for a run, sleeps, and SIGKILLs the worker's process group: nothing in the product
knows it is being tested.

Nothing is loaded in the zygote that starts threads or opens files (no instance, no model, no
warehouse connection): a fork only copies imported modules, so every worker starts clean.

Run as ``python -m tests.crash_harness``: one JSON request per stdin line, replies on stdout.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DAGSTER_DISABLE_TELEMETRY": "1",
}


# ---------------------------------------------------------------------------------------------
# Worker side (runs in the forked child)
# ---------------------------------------------------------------------------------------------


def _run_request(request: dict[str, Any], defs) -> int:
    """One job partition through the real Definitions and the persistent instance; writes a result file."""
    started = time.time()
    from dagster import AssetKey

    from crawlmix.settings import Settings
    from curation_assets.partitions import partition_key_for
    from curation_assets.runner import (
        _outcome,
        execute_run,
        instance_for,
        register_snapshots,
    )

    instance = instance_for(Settings.from_env())
    register_snapshots(instance, request.get("snapshots", []))
    assets = request.get("assets")
    partition = request.get("partition")
    if isinstance(partition, list):  # [snapshot, shard]
        partition = partition_key_for(*partition)
    # The CLI's own path (`crawlmix run`): releases runs of dead processes, then runs in process.
    result = execute_run(
        defs,
        instance,
        request["job"],
        partition,
        run_config=request.get("run_config"),
        asset_selection=[AssetKey(a) for a in assets] if assets else None,
    )
    outcome = _outcome(request["job"], str(partition or ""), result)
    timeline = [
        (entry.dagster_event.event_type_value, entry.step_key, entry.timestamp - started)
        for entry in instance.all_logs(result.run_id)
        if entry.dagster_event is not None
    ]
    payload = {
        "success": outcome.success,
        "run_id": outcome.run_id,
        "error": outcome.error,
        "checks": outcome.checks,
        "materialized": outcome.materialized,
        "timeline": timeline,
        "seconds": time.time() - started,
        "started": started,
    }
    path = Path(request["result"])
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, default=str))
    os.replace(tmp, path)
    instance.dispose()
    return 0 if outcome.success else 3


def serve() -> None:
    """The zygote: preload, then fork a worker per request and report its pid and exit status."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints of imported libraries must not corrupt the protocol
    os.environ.update(OFFLINE_ENV)

    # Libraries the assets and gates import lazily (seconds per worker otherwise). Importing them
    # starts no thread; their thread pools start on first use, in the worker.
    import duckdb_engine  # noqa: F401
    import faiss  # noqa: F401
    import great_expectations  # noqa: F401
    import matplotlib.style  # noqa: F401
    import onnxruntime  # noqa: F401
    import tokenizers  # noqa: F401
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401

    import crawlmix.embed
    import crawlmix.expectations  # noqa: F401
    from crawlmix.settings import Settings
    from curation_assets.definitions import build_definitions

    # The worker's environment is this process's: one Definitions for every run, resolved once.
    defs = build_definitions(Settings.from_env())
    defs.get_repository_def().get_all_jobs()

    protocol.write(json.dumps({"ready": True, "threads": threading.active_count()}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os.setsid()
            code = 1
            try:
                log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                code = _run_request(request, defs)
            except BaseException:  # noqa: BLE001 - any failure is reported through the exit code and log
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        protocol.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        protocol.write(json.dumps({"pid": pid, "exit": os.waitstatus_to_exitcode(status)}) + "\n")


# ---------------------------------------------------------------------------------------------
# Test side
# ---------------------------------------------------------------------------------------------


class WorkerFailed(RuntimeError):
    pass


class Zygote:
    """Handle on the zygote process: start runs, kill them, wait for them."""

    def __init__(self, env: dict[str, str], log_path: Path, ready_timeout_s: float = 300.0, run_timeout_s: float = 180.0):
        self.log_path = log_path
        self.run_timeout_s = run_timeout_s
        self._log = open(log_path, "ab")  # noqa: SIM115 - the zygote writes to it for its lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_harness"],
            cwd=str(REPO),
            env={**os.environ, **OFFLINE_ENV, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        # Replies arrive through a queue so a worker that hangs (e.g. waiting forever for a pool
        # slot) fails the test after a timeout instead of hanging it.
        self._replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.pid: int | None = None
        self.ready = self._read(ready_timeout_s)

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self._replies.put(line)
        self._replies.put("")

    def _read(self, timeout_s: float) -> dict:
        try:
            line = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            if self.pid is not None:
                self.kill()
            raise WorkerFailed(f"no reply from the crash-harness worker within {timeout_s:.0f}s (hung?); see {self.log_path}") from None
        if not line:
            raise WorkerFailed(f"crash-harness zygote exited; see {self.log_path}")
        return json.loads(line)

    def start(self, request: dict[str, Any]) -> int:
        """Fork a worker for `request`; returns its pid (also its process group id)."""
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        self.pid = self._read(60)["pid"]
        return self.pid

    def wait(self) -> int:
        """The worker's exit code (negative: the signal that ended it)."""
        reply = self._read(self.run_timeout_s)
        self.pid = None
        return reply["exit"]

    def kill(self) -> bool:
        """SIGKILL the worker's whole process group; False when it had already exited."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        return True

    def run(self, request: dict[str, Any]) -> dict:
        """Run `request` to completion and return the worker's result."""
        Path(request["result"]).unlink(missing_ok=True)
        self.start(request)
        code = self.wait()
        if code != 0:
            raise WorkerFailed(f"run {request['job']} {request.get('partition')} exited {code}; see {request['log']}")
        return json.loads(Path(request["result"]).read_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


if __name__ == "__main__":
    serve()
