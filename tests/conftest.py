"""Shared pytest fixtures: real services for storage and warehouse tests.

* ``aws_credentials``: fake AWS credentials / region in the environment (monkeypatched).
* ``moto_server`` (session): a real ``moto_server`` subprocess on 127.0.0.1, free port; yields its
  endpoint URL (``http://127.0.0.1:PORT``), killed at the end of the session.
* ``s3_client``: a boto3 S3 client pointed at ``moto_server``.
* ``s3_bucket``: creates a fresh, uniquely named bucket on ``moto_server`` and returns its name.
* ``postgres_admin_url`` (session): SQLAlchemy URL of the local PostgreSQL maintenance database
  (``CRAWLMIX_TEST_PG_URL`` or ``postgresql+psycopg2://postgres@127.0.0.1:5432/test``, then ``root``).
  Skips (with the reason) only when nothing answers on the server's host:port.
* ``postgres_url``: a fresh, uniquely named database per test (dropped after); yields its URL.
* ``duckdb_url``: a DuckDB file URL under ``tmp_path``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

# ----------------------------------------------------------------------------------------------
# AWS / moto
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Fake AWS credentials and region in the environment; no profile or config file is read."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config-absent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials-absent"))
    return dict(FAKE_AWS_ENV)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "moto_server"
    if not script.exists():
        found = shutil.which("moto_server")
        script = Path(found) if found else None  # type: ignore[assignment]
    if script is not None:
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``moto_server`` as a real subprocess; yield ``http://127.0.0.1:PORT``."""
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    env = {**os.environ, **FAKE_AWS_ENV}
    for attempt in range(3):
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                _moto_command(port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + 30
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                    ready = True
                    break
            except urllib.error.HTTPError:
                ready = True  # it answered over HTTP
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        if ready:
            break
        _stop(proc)
        if attempt == 2:
            raise RuntimeError(
                f"moto_server did not answer on {endpoint}; log:\n{log_path.read_text()[-4000:]}"
            )
    try:
        yield endpoint
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def s3_client(moto_server: str, aws_credentials: dict[str, str]):
    """A boto3 S3 client talking to the moto server over HTTP."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id=aws_credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_credentials["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def s3_bucket(s3_client) -> Iterator[str]:
    """Create a fresh bucket on the moto server; returns its name; emptied and removed after."""
    name = f"crawlmix-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            paginator = s3_client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=name):
                for obj in page.get("Contents", []) or []:
                    s3_client.delete_object(Bucket=name, Key=obj["Key"])
            s3_client.delete_bucket(Bucket=name)


# ----------------------------------------------------------------------------------------------
# PostgreSQL
# ----------------------------------------------------------------------------------------------

PG_HOST = os.environ.get("CRAWLMIX_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CRAWLMIX_TEST_PG_PORT", "5432"))


def _pg_candidate_urls() -> list[str]:
    explicit = os.environ.get("CRAWLMIX_TEST_PG_URL")
    if explicit:
        return [explicit]
    return [
        f"postgresql+psycopg2://{user}@{PG_HOST}:{PG_PORT}/test" for user in ("postgres", "root")
    ]


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """URL of a maintenance database on the local PostgreSQL server (skip only if unreachable)."""
    import sqlalchemy as sa

    candidates = _pg_candidate_urls()
    first = sa.engine.make_url(candidates[0])
    host, port = first.host or PG_HOST, first.port or PG_PORT
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        pytest.skip(f"PostgreSQL server not reachable at {host}:{port}: {exc}")
    errors = []
    for url in candidates:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("select 1"))
            return url
        except Exception as exc:  # try the next user
            errors.append(f"{sa.engine.make_url(url).render_as_string(hide_password=True)}: {exc}")
        finally:
            engine.dispose()
    raise RuntimeError(
        "PostgreSQL answers but none of the test URLs can connect:\n" + "\n".join(errors)
    )


@contextlib.contextmanager
def _fresh_database(admin_url: str) -> Iterator[str]:
    """A new, uniquely named database on the local PostgreSQL, dropped afterwards; yields its URL."""
    import sqlalchemy as sa

    name = f"crawlmix_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(admin_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception), admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh database on the local PostgreSQL (for a warehouse); yields its SQLAlchemy URL."""
    with _fresh_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
def postgres_instance_url(postgres_admin_url: str) -> Iterator[str]:
    """A second fresh database, for a PostgreSQL-backed Dagster instance beside a PostgreSQL warehouse."""
    with _fresh_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
def duckdb_url(tmp_path: Path) -> str:
    """URL of a (not yet created) DuckDB file under ``tmp_path``."""
    return "duckdb:///" + str(tmp_path / "warehouse.duckdb")


# ----------------------------------------------------------------------------------------------
# The materialized demo (shared by the end-to-end and the browser tests)
# ----------------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]


def crawlmix_env(home: Path) -> dict[str, str]:
    """The caller's environment with CRAWLMIX_HOME=home and no other CRAWLMIX_* or DAGSTER_HOME, so
    every setting takes its default under home (the Dagster instance in home/dagster)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWLMIX_", "DAGSTER_HOME"))}
    env["CRAWLMIX_HOME"] = str(home)
    return env


def run_crawlmix(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`crawlmix ARGS` as a user runs it, in a subprocess, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "crawlmix.cli", *args],
        env=crawlmix_env(home), cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200,
    )


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home in which `crawlmix demo` ran once for the session: (home, the demo's stdout)."""
    home = tmp_path_factory.mktemp("demo") / ".crawlmix"
    proc = run_crawlmix(home, "demo")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return home, proc.stdout
