"""Security: secrets never leak, paths never escape their roots, SQL is parameterized, the UI is local.

Secrets are planted for real: a PostgreSQL role whose password travels in CRAWLMIX_WAREHOUSE_URL,
and AWS_SECRET_ACCESS_KEY for the S3 snapshots and storage roots on the moto server. `crawlmix run` then runs the
whole graph on a tiny snapshot (ingestion through the mixtures and the dbt reports, which dbt builds
on the role's database through the profile made from that URL), and once more failing on an
unreachable warehouse host; every output is searched for the secret strings: the terminal, the
Dagster event log and run records, compute logs and every other file under the home, every object
in the storage bucket (Parquet, embeddings, data cards, pointers, sidecars), every warehouse table,
and the dbt run's target folder (manifest, run results, compiled SQL, dbt.log) and dbt's log folder.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from dagster import DagsterInstance

from crawlmix.quality import REFERENCE_SET_PATH, load_reference_texts
from crawlmix.snapshots import LocalSnapshotSource, S3SnapshotSource, SnapshotError, validate_snapshot_id
from crawlmix.storage import LocalStorage, S3Storage, StorageError, validate_key
from crawlmix.warehouse import TABLES, Warehouse
from tests.dagster_harness import make_snapshot

REPO = Path(__file__).resolve().parents[1]
DBT_DIR = REPO / "dbt_project"
SNAPSHOT = "snap-sec"
MIXTURE = "sec-mix"
MIXTURES_YAML = f"""
mixtures:
  - name: {MIXTURE}
    scope: all
    filters: {{min_quality: 0.0, drop_semantic_duplicates: false}}
    size: {{documents: 10}}
    policy: weighted
    options: {{level: top, temperature: 1.0, max_repeats: 2}}
    seed: 0
    formats: [parquet, jsonl.gz]
"""

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


def _files_holding(root: Path, secrets: list[str], since: float | None = None) -> list[str]:
    """Files under `root` (modified at or after `since`, when given) holding any secret."""
    needles = [s.encode() for s in secrets]
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and (since is None or path.stat().st_mtime >= since):
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


def _tiny_snapshot(s3_client, bucket: str) -> str:
    """On S3: one JSONL file of 24 real passages (openings of the bundled reference documents),
    then `_SUCCESS`. Returns the snapshots root."""
    texts = load_reference_texts(str(REFERENCE_SET_PATH))
    step = max(1, len(texts) // 24)
    lines = [json.dumps({"url": f"https://docs.example.org/{i}", "text": t[:700]}) for i, t in enumerate(texts[::step][:24])]
    body = ("\n".join(lines) + "\n").encode()
    s3_client.put_object(Bucket=bucket, Key=f"snapshots/{SNAPSHOT}/part-0.jsonl", Body=body)
    s3_client.put_object(Bucket=bucket, Key=f"snapshots/{SNAPSHOT}/_SUCCESS", Body=b"")
    return f"s3://{bucket}/snapshots"


def _crawlmix_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crawlmix.cli", "run", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=900,
    )


def _warehouse_text(url: str) -> str:
    """Every row of every table in the warehouse, as text."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )).scalars().all()
            meta = sa.MetaData()
            return "\n".join(
                repr(conn.execute(sa.select(sa.Table(name, meta, autoload_with=conn))).all()) for name in tables
            )
    finally:
        engine.dispose()


def test_secrets_never_reach_any_output_of_a_whole_graph_run(
    tmp_path, secret_role, moto_server, s3_client, s3_bucket
):
    from curation_assets.reports import dbt_env_for_url

    warehouse_url, pg_password = secret_role
    aws_secret = f"aws-{uuid.uuid4().hex}"
    secrets = [pg_password, aws_secret]
    home = tmp_path / "home"
    snapshots = _tiny_snapshot(s3_client, s3_bucket)
    (tmp_path / "mixtures.yaml").write_text(MIXTURES_YAML)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRAWLMIX_", "DAGSTER_HOME", "AWS_"))}
    env.update({
        "CRAWLMIX_HOME": str(home),
        "CRAWLMIX_SHARDS": "1",
        "CRAWLMIX_DEVICE": "cpu",
        "CRAWLMIX_MIXTURES": str(tmp_path / "mixtures.yaml"),
        "CRAWLMIX_WAREHOUSE_URL": warehouse_url,
        "CRAWLMIX_STORAGE": f"s3://{s3_bucket}/curated",
        "CRAWLMIX_S3_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": aws_secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials-absent"),
    })
    # the dbt profile made from the URL carries the real password (dbt connects with it)
    assert dbt_env_for_url(warehouse_url)["CRAWLMIX_PG_PASSWORD"] == pg_password
    started = time.time() - 1  # mtime granularity

    ok = _crawlmix_run(env, "--snapshots", snapshots)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    failed = _crawlmix_run(
        {**env, "CRAWLMIX_WAREHOUSE_URL": warehouse_url.replace("@127.0.0.1:", "@no-such-host.invalid:")},
        "--verbose", "--snapshots", snapshots, "--snapshot", SNAPSHOT,
    )
    assert failed.returncode != 0 and "FAILED" in failed.stdout, failed.stdout[-2000:] + failed.stderr[-2000:]
    assert "no-such-host.invalid" in failed.stdout + failed.stderr  # the error is useful ...
    for proc in (ok, failed):  # ... and the terminal never shows a secret
        assert not [s for s in secrets if s in proc.stdout + proc.stderr]

    # The whole graph ran with the password: the role's database holds every stage's tables, and
    # the dbt report models, built by dbt as that role through the profile made from the URL.
    engine = sa.create_engine(warehouse_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            owners = dict(conn.execute(sa.text(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            )).all())
            composition = conn.execute(sa.text(
                "SELECT count(*) FROM mixture_composition WHERE mixture = :m"
            ), {"m": MIXTURE}).scalar_one()
    finally:
        engine.dispose()
    role = sa.engine.make_url(warehouse_url).username
    assert {"snapshot_shard_stats", "clusters", "quality_by_cluster", "mixture_composition"} <= set(owners)
    assert composition > 0
    dbt_models = {p.stem for p in (DBT_DIR / "models").rglob("*.sql")}
    assert dbt_models and dbt_models <= set(owners), f"dbt built none of {sorted(dbt_models - set(owners))}"
    assert all(owners[m] == role for m in dbt_models)

    # The event log and run records, through the instance as the UI reads them.
    instance = DagsterInstance.from_config(str(home / "dagster"))
    try:
        runs = instance.get_runs()
        event_text = _event_log_text(instance)
    finally:
        instance.dispose()
    jobs = {run.job_name for run in runs}
    assert {"crawl_pipeline", "fit_centroids", "build_mixture", "build_reports"} <= jobs
    assert all(run.is_success for run in runs if run.job_name == "build_reports")
    assert SNAPSHOT in event_text and "no-such-host.invalid" in event_text
    assert not [s for s in secrets if s in event_text]

    # Every file under the home: instance databases, compute logs, the CLI's log files.
    assert list((home / "dagster" / "logs").glob("crawlmix-run-*.log"))
    assert _files_holding(home, secrets) == []

    # dbt's own output: the run's target folder (dagster-dbt gives each run its own, under
    # dbt_project/target) and dbt's log folder.
    report_runs = [run.run_id for run in runs if run.job_name == "build_reports"]
    targets = [p for run_id in report_runs for p in (DBT_DIR / "target").glob(f"*-{run_id[:7]}-*")]
    assert targets and all((t / "run_results.json").is_file() and (t / "dbt.log").is_file() for t in targets)
    for target in targets:
        assert _files_holding(target, secrets) == []
    assert _files_holding(DBT_DIR / "logs", secrets, since=started) == []

    # Every object in storage: Parquet, embeddings, centroids, data cards, mixture files, pointers.
    keys = [o["Key"] for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
            for o in page.get("Contents", [])]
    for expected in (f"raw_corpus/{SNAPSHOT}/000.parquet", f"embeddings/{SNAPSHOT}/000.npy", ".card.md",
                     ".docs-00000.parquet", ".docs-00000.jsonl.gz", "current.json"):
        assert any(k.endswith(expected) for k in keys), f"no {expected} in storage: {keys}"
    for key in keys:
        body = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        assert not [s for s in secrets if s.encode() in body], key

    # Every row of every warehouse table.
    assert not [s for s in secrets if s in _warehouse_text(warehouse_url)]


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
