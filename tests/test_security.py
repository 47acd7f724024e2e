"""Security: secrets never leak, paths never escape their roots, SQL is parameterized, the UI is local.

Secrets are planted for real: a PostgreSQL role whose password travels in CRAWLMIX_WAREHOUSE_URL,
and AWS_SECRET_ACCESS_KEY for an S3 storage root on the moto server. A real pipeline then runs
(raw_corpus through Dagster, in-process and through the `crawlmix` CLI, once succeeding and once
failing on an unreachable warehouse host) and every output is searched for the secret strings.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterInstance

from crawlmix.snapshots import LocalSnapshotSource, S3SnapshotSource, SnapshotError, validate_snapshot_id
from crawlmix.storage import LocalStorage, S3Storage, StorageError, validate_key
from crawlmix.warehouse import TABLES, Warehouse
from tests.dagster_harness import make_snapshot, run_partition

REPO = Path(__file__).resolve().parents[1]
INGEST = ["raw_corpus"]

# ------------------------------------------------------------------------------------------------
# 1. Credentials


@pytest.fixture
def secret_role(postgres_admin_url):
    """A login role with a password and its own database; yields (url with password, password)."""
    suffix = uuid.uuid4().hex[:10]
    role, password, database = f"crawlmix_sec_{suffix}", f"pw-{uuid.uuid4().hex}", f"crawlmix_sec_{suffix}"
    admin = sa.create_engine(postgres_admin_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        conn.execute(sa.text(f'CREATE DATABASE "{database}" OWNER {role}'))
    host = sa.engine.make_url(postgres_admin_url)
    url = f"postgresql+psycopg2://{role}:{password}@{host.host or '127.0.0.1'}:{host.port or 5432}/{database}"
    try:
        yield url, password
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def _files_holding(root: Path, secrets: list[str]) -> list[str]:
    needles = [s.encode() for s in secrets]
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            hits += [f"{path}: {n.decode()}" for n in needles if n in data]
    return hits


def _event_log_text(instance: DagsterInstance) -> str:
    from dagster._serdes import serialize_value

    parts = []
    for run in instance.get_runs():
        parts.append(serialize_value(run))
        for entry in instance.all_logs(run.run_id):
            parts.append(serialize_value(entry))
    return "\n".join(parts)


def test_secrets_never_reach_logs_metadata_files_or_errors(
    tmp_path, monkeypatch, secret_role, moto_server, s3_client, s3_bucket
):
    from curation_assets.definitions import build_definitions
    from crawlmix.settings import Settings

    warehouse_url, pg_password = secret_role
    aws_secret = f"aws-{uuid.uuid4().hex}"
    home = tmp_path / "home"
    snapshots = home / "snapshots"
    make_snapshot(snapshots, "snap-sec", n_files=2)
    env = {
        "CRAWLMIX_HOME": str(home),
        "CRAWLMIX_SHARDS": "1",
        "CRAWLMIX_WAREHOUSE_URL": warehouse_url,
        "CRAWLMIX_STORAGE": f"s3://{s3_bucket}/curated",
        "CRAWLMIX_S3_ENDPOINT_URL": moto_server,
        "AWS_SECRET_ACCESS_KEY": aws_secret,
        "DAGSTER_HOME": str(home / "dagster"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    secrets = [pg_password, aws_secret]
    (home / "dagster").mkdir(parents=True)
    instance = DagsterInstance.from_config(str(home / "dagster"))

    ok = run_partition(build_definitions(Settings.from_env()), instance, "snap-sec", "000", "crawl_pipeline", assets=INGEST)
    assert ok.success
    # the warehouse really received the row (the password was used, not dropped)
    assert Warehouse(warehouse_url).count("snapshot_shard_stats", {"snapshot": "snap-sec"}) == 1

    monkeypatch.setenv("CRAWLMIX_WAREHOUSE_URL", warehouse_url.replace("@127.0.0.1:", "@no-such-host.invalid:"))
    failed = run_partition(build_definitions(Settings.from_env()), instance, "snap-sec", "000", "crawl_pipeline", assets=INGEST)
    assert not failed.success
    failure_text = "\n".join(str(e.event_specific_data) for e in failed.all_events if e.is_failure)
    assert "no-such-host.invalid" in failure_text  # the error is useful ...
    assert not [s for s in secrets if s in failure_text]  # ... and masked

    # the CLI, failing the same way, in a subprocess
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWLMIX_", "DAGSTER_HOME", "AWS_"))}
    cli_env.update(env, CRAWLMIX_WAREHOUSE_URL=os.environ["CRAWLMIX_WAREHOUSE_URL"], AWS_ACCESS_KEY_ID="testing")
    cli_env.update(AWS_DEFAULT_REGION="us-east-1")
    proc = subprocess.run(
        [sys.executable, "-m", "crawlmix.cli", "run", "--snapshots", str(snapshots)],
        env=cli_env, cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "FAILED" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not [s for s in secrets if s in proc.stdout + proc.stderr]

    event_text = _event_log_text(instance)
    assert "snap-sec" in event_text and "no-such-host.invalid" in event_text
    assert not [s for s in secrets if s in event_text]
    assert _files_holding(home, secrets) == []  # instance DBs, compute logs, local files
    objects = s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    assert any(o["Key"].endswith("raw_corpus/snap-sec/000.parquet") for o in objects)
    for obj in objects:
        body = s3_client.get_object(Bucket=s3_bucket, Key=obj["Key"])["Body"].read()
        assert not [s for s in secrets if s.encode() in body], obj["Key"]


def test_resources_read_credentials_only_from_environment_references(monkeypatch, tmp_path):
    from dagster import EnvVar

    from crawlmix.settings import Settings
    from curation_assets.definitions import build_resources

    monkeypatch.setenv("CRAWLMIX_WAREHOUSE_URL", "postgresql://u:pw-secret@127.0.0.1:5432/test")
    monkeypatch.setenv("CRAWLMIX_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    resources = build_resources(Settings.from_env({"CRAWLMIX_HOME": str(tmp_path), **{
        k: os.environ[k] for k in ("CRAWLMIX_WAREHOUSE_URL", "CRAWLMIX_S3_ENDPOINT_URL")}}))
    assert resources["warehouse"].url == EnvVar("CRAWLMIX_WAREHOUSE_URL")
    assert resources["storage"].s3.endpoint_url == EnvVar("CRAWLMIX_S3_ENDPOINT_URL")
    for resource in resources.values():
        fields = {k: v for k, v in resource.__dict__.items() if isinstance(v, str)}
        assert not [k for k, v in fields.items() if "pw-secret" in v], type(resource).__name__


# ------------------------------------------------------------------------------------------------
# 2. Paths cannot escape their roots

ESCAPING_IDS = [
    "..", "../etc", "a/../../b", "/etc/passwd", "%2e%2e", "%2e%2e%2fetc", "snap\x00", "snap\n", "snap/x",
    "snap\\x", ".hidden", "", " snap", "a" * 129, "C:evil", "snap..", "s3://bucket/x",
]


@pytest.mark.parametrize("snapshot_id", ESCAPING_IDS)
def test_snapshot_ids_that_could_escape_are_refused(snapshot_id):
    with pytest.raises(SnapshotError):
        validate_snapshot_id(snapshot_id)


# Storage parts are file names, so longer names and "snap.." are fine there; these are not.
ESCAPING_PARTS = ["..", "../etc", "a/../../b", "/etc/passwd", "%2e%2e%2fetc", "snap\x00", "snap\n", "snap\\x",
                  ".hidden", "", "C:evil", " snap"]


@pytest.mark.parametrize("part", ESCAPING_PARTS)
def test_storage_keys_that_could_escape_are_refused(tmp_path, part):
    store = LocalStorage(str(tmp_path / "root"))
    with pytest.raises((ValueError, StorageError)):
        store.key("raw_corpus", part, "000", "parquet")
    with pytest.raises((ValueError, StorageError)):
        store.write_bytes(f"raw_corpus/{part}/000.parquet", b"x")
    assert not any(p for p in tmp_path.rglob("*") if p.is_file())


def test_symlinks_out_of_the_roots_are_refused(tmp_path):
    outside = tmp_path / "outside"
    make_snapshot(outside, "elsewhere", n_files=1)
    root = tmp_path / "snapshots"
    make_snapshot(root, "inside", n_files=1)
    (root / "linked").symlink_to(outside / "elsewhere", target_is_directory=True)
    (root / "inside" / "stolen.jsonl").symlink_to(outside / "elsewhere" / "part-000.warc.gz")
    source = LocalSnapshotSource(str(root))
    complete, rejected = source.complete_snapshots()
    assert complete == ["inside"]
    assert any("linked" in r and "outside the snapshots root" in r for r in rejected)
    with pytest.raises(SnapshotError, match="stolen.jsonl is a link leading outside"):
        source.listing("inside")
    (root / "inside" / "stolen.jsonl").unlink()
    (root / "inside" / "sibling.warc.gz").symlink_to(root / "inside" / "part-000.warc.gz")
    assert [f.name for f in source.listing("inside").input_files] == ["part-000.warc.gz", "sibling.warc.gz"]

    store_root = tmp_path / "storage"
    store = LocalStorage(str(store_root))
    (store_root / "raw_corpus").mkdir()
    (store_root / "raw_corpus" / "snap").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match="outside the storage root"):
        store.write_bytes("raw_corpus/snap/000.parquet", b"x")
    with pytest.raises(StorageError, match="outside the storage root"):
        store.read_bytes("raw_corpus/snap/elsewhere/_SUCCESS".replace("/elsewhere/_SUCCESS", "/x"))
    assert store.list_keys("") == []
    assert not (outside / "000.parquet").exists()


def test_s3_keys_with_dot_segments_are_refused(s3_client, s3_bucket):
    for bad in ("a/../b", "./a", "a//b", "a/./b"):
        with pytest.raises(ValueError):
            validate_key(bad)
    store = S3Storage(s3_bucket, "prefix", s3_client)
    with pytest.raises(ValueError):
        store.write_bytes("raw_corpus/../../other/x.parquet", b"x")
    s3_client.put_object(Bucket=s3_bucket, Key="snaps/s1/_SUCCESS", Body=b"")
    s3_client.put_object(Bucket=s3_bucket, Key="snaps/s1/part.jsonl", Body=b"{}\n")
    s3_client.put_object(Bucket=s3_bucket, Key="snaps/s1/../../secret/part.jsonl", Body=b"{}\n")
    source = S3SnapshotSource(f"s3://{s3_bucket}/snaps", s3_client)
    with pytest.raises(SnapshotError, match=r"'\.\.' path segment"):
        source.listing("s1")
    assert store.list_keys("") == []


# ------------------------------------------------------------------------------------------------
# 3. SQL: bound parameters only

HOSTILE = "snap'; DROP TABLE snapshot_shard_stats; --"


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_hostile_values_round_trip_as_data(backend, request):
    url = request.getfixturevalue("duckdb_url" if backend == "duckdb" else "postgres_url")
    wh = Warehouse(url)
    wh.ensure_tables()
    row = {
        "snapshot": HOSTILE, "shard": "0'--", "n_input_files": 1, "n_records": 1, "n_docs": 1,
        "n_exact_duplicates": 0, "n_quarantined": 0, "input_bytes": 1, "output_bytes": 1,
        "quarantine_fraction": 0.0, "materialized_at": __import__("datetime").datetime.now(__import__("datetime").timezone.utc),
    }
    wh.replace_partition("snapshot_shard_stats", {"snapshot": HOSTILE, "shard": "0'--"}, [row])
    wh.replace_partition("clusters", {"centroid_version": HOSTILE}, [
        {"centroid_version": HOSTILE, "level": 1, "cluster_id": 0, "parent_id": None, "fit_size": 1,
         "name": "x'); DELETE FROM clusters; --", "keywords": "a"}])
    wh.replace_partition("clusters", {"centroid_version": HOSTILE}, [
        {"centroid_version": HOSTILE, "level": 1, "cluster_id": 0, "parent_id": None, "fit_size": 1,
         "name": "x'); DELETE FROM clusters; --", "keywords": "a"}])
    assert wh.count("snapshot_shard_stats", {"snapshot": HOSTILE}) == 1
    frame = wh.read_frame("SELECT snapshot, shard FROM snapshot_shard_stats WHERE snapshot = :s", {"s": HOSTILE})
    assert frame.values.tolist() == [[HOSTILE, "0'--"]]
    assert wh.read_frame("SELECT name FROM clusters").values.tolist() == [["x'); DELETE FROM clusters; --"]]
    wh.dispose()


SQL_KEYWORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|SET|GRANT|TRUNCATE)\b")
# (file, interpolated expression) -> why it is not a value: every other interpolation into SQL fails.
ALLOWED_SQL_INTERPOLATIONS = {
    ("crawlmix/warehouse.py", "target"): "registered table name, quoted by the dialect",
    ("crawlmix/warehouse.py", "quoted"): "registered column names, quoted by the dialect",
    ("crawlmix/warehouse.py", "name"): "uuid-generated name of the registered Arrow view",
    ("crawlmix/warehouse.py", "table.name"): "registered table name (checked against TABLES below)",
    ("crawlmix/warehouse.py", "column.name"): "registered column name (checked against TABLES below)",
    ("crawlmix/warehouse.py", "column_type"): "the dialect's compiled type of a registered column",
    ("crawlmix/warehouse.py", "ms"): "an int computed from lock_timeout_s",
    ("crawlmix/cli.py", "', '.join((f':s{i}' for i in range(len(snapshots))))"): "bind placeholders :s0, :s1, ...",
}


def _interpolations(node: ast.AST) -> tuple[str, list[str]] | None:
    """(constant text, interpolated expressions) of an f-string, str.format or % / + expression."""
    if isinstance(node, ast.JoinedStr):
        text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        return text, [ast.unparse(v.value) for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format" \
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str):
        return node.func.value.value, [ast.unparse(a) for a in [*node.args, *(k.value for k in node.keywords)]]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        texts, exprs = [], []
        for side in (node.left, node.right):
            inner = _interpolations(side)
            if inner is not None:
                texts.append(inner[0])
                exprs += inner[1]
            elif isinstance(side, ast.Constant) and isinstance(side.value, str):
                texts.append(side.value)
            else:
                exprs.append(ast.unparse(side))
        return "".join(texts), exprs
    return None


def test_no_sql_is_built_by_interpolating_values():
    found = []
    for folder in ("crawlmix", "curation_assets", "resources"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.BinOp) and isinstance(getattr(node, "_parent_binop", None), ast.BinOp):
                    continue
                result = _interpolations(node)
                if result is None or not result[1] or not SQL_KEYWORDS.search(result[0]):
                    continue
                if not re.search(r"\b(FROM|INTO|TABLE|WHERE|VALUES|COLUMN|LOCAL)\b", result[0]):
                    continue  # prose in a message ("Set ..."), not a statement
                found += [(rel, expr, node.lineno) for expr in result[1]]
    unexplained = [(rel, expr, line) for rel, expr, line in found if (rel, expr) not in ALLOWED_SQL_INTERPOLATIONS]
    assert unexplained == []
    assert {(rel, expr) for rel, expr, _ in found} >= {("crawlmix/warehouse.py", "target")}
    # the identifiers allowed above come from the declared tables, which are plain names
    for table in TABLES.values():
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", table.name)
        assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", c.name) for c in table.columns)


# ------------------------------------------------------------------------------------------------
# 4. The UI is local by default


def _published_ports(service: dict) -> list[tuple[str | None, str]]:
    out = []
    for port in service.get("ports", []) or []:
        if isinstance(port, dict):  # long syntax
            out.append((port.get("host_ip"), str(port.get("published", port.get("target")))))
        else:
            parts = str(port).split(":")
            out.append((parts[0] if len(parts) == 3 else None, str(port)))
    return out


def test_every_compose_file_publishes_ports_on_localhost_only():
    files = sorted((REPO / "docker").glob("*compose*.y*ml"))
    assert len(files) >= 2
    published = 0
    for path in files:
        for name, service in (yaml.safe_load(path.read_text()).get("services") or {}).items():
            assert "network_mode" not in service or service["network_mode"] != "host", (path.name, name)
            for host_ip, spec in _published_ports(service):
                assert host_ip == "127.0.0.1", f"{path.name}: {name} publishes {spec} beyond localhost"
                published += 1
    assert published >= 1


def test_cli_ui_binds_localhost():
    source = (REPO / "crawlmix" / "cli.py").read_text()
    call = re.search(r'"dagster", "dev".*?\]', source, re.S)
    assert call and '"-h", "127.0.0.1"' in call.group(0)
