"""Deployment files under docker/: checked with real parts, no container engine needed.

* docker/dagster.yaml is loaded as a real Dagster instance against a fresh database on the local
  PostgreSQL server, an asset is materialized through it, and the materialization is read back
  from the PostgreSQL event log (SQL and the instance API).
* docker/dagster.ecs.yaml (and the other instance files) validate against Dagster's instance
  schema; the ECS run launcher's config validates against ``EcsRunLauncher.config_type()``
  without contacting AWS.
* docker/docker-compose.yml: ``docker compose config`` when the compose plugin is installed
  (it parses offline), and always a structural check of the YAML.
* Dockerfiles: every COPY source exists; no linter (hadolint) is needed. The image layout is
  rebuilt in a throwaway folder by replaying the Dockerfile's own steps (its ENV, WORKDIR and COPY
  lines, honouring its .dockerignore), and its dbt prepare RUN line is run there with the venv's
  Python: the layout must then hold the dbt manifest, so no container parses the project at start.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
DOCS = REPO / "docs" / "deploy.md"
INSTANCE_FILES = ["dagster.yaml", "dagster.ecs.yaml", "dagster.k8s.yaml"]
PG_ENV = [
    "DAGSTER_POSTGRES_USER",
    "DAGSTER_POSTGRES_PASSWORD",
    "DAGSTER_POSTGRES_HOST",
    "DAGSTER_POSTGRES_DB",
    "DAGSTER_POSTGRES_PORT",
]


def _load(name: str) -> dict:
    return yaml.safe_load((DOCKER / name).read_text())


def _set_pg_env(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    monkeypatch.setenv("DAGSTER_POSTGRES_USER", parsed.username or "postgres")
    # trust auth: an empty password is a real (set) value for the env-sourced field
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", parsed.password or "")
    monkeypatch.setenv("DAGSTER_POSTGRES_HOST", parsed.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_POSTGRES_PORT", str(parsed.port or 5432))
    monkeypatch.setenv("DAGSTER_POSTGRES_DB", parsed.database)


# ----------------------------------------------------------------------------------------------
# docker/dagster.yaml against the real PostgreSQL server
# ----------------------------------------------------------------------------------------------


@dg.asset(pool="gpu")
def deployment_probe() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@pytest.mark.postgres
def test_dagster_yaml_runs_on_postgres(postgres_url, tmp_path, monkeypatch):
    import sqlalchemy as sa
    from dagster import DagsterInstance
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    _set_pg_env(monkeypatch, postgres_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.run_queue_config.max_concurrent_runs == 8
        tag_keys = {
            limit["key"]
            for limit in concurrency.run_queue_config.tag_concurrency_limits
        }
        assert {"dagster/partition", "crawlmix/resources"} <= tag_keys
        assert instance.run_monitoring_enabled
        assert not instance.telemetry_enabled

        result = dg.materialize([deployment_probe], instance=instance)
        assert result.success

        event = instance.get_latest_materialization_event(
            dg.AssetKey("deployment_probe")
        )
        assert event is not None and event.run_id == result.run_id
        assert event.asset_materialization.metadata["rows"].value == 3
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.is_success

    # ...and the rows are really in the PostgreSQL database the env vars pointed at.
    engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            n_events = conn.execute(
                sa.text(
                    "select count(*) from event_logs "
                    "where dagster_event_type = 'ASSET_MATERIALIZATION' and run_id = :run_id"
                ),
                {"run_id": result.run_id},
            ).scalar_one()
            run_status = conn.execute(
                sa.text("select status from runs where run_id = :run_id"),
                {"run_id": result.run_id},
            ).scalar_one()
            asset_keys = (
                conn.execute(sa.text("select asset_key from asset_keys"))
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert n_events == 1
    assert run_status == "SUCCESS"
    assert any("deployment_probe" in key for key in asset_keys)


# ----------------------------------------------------------------------------------------------
# instance files: schema, ECS launcher config
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INSTANCE_FILES)
def test_instance_files_match_dagster_schema(name, tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    for var in PG_ENV:
        monkeypatch.setenv(var, "5432" if var.endswith("PORT") else "x")
    shutil.copy(DOCKER / name, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert "postgres_db" in config["storage"]["postgres"]
    db = config["storage"]["postgres"]["postgres_db"]
    assert {
        db[k]["env"] for k in ("username", "password", "hostname", "db_name", "port")
    } == set(PG_ENV)
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["pools"]["default_limit"] >= 1
    assert config["telemetry"]["enabled"] is False


def test_ecs_run_launcher_config_validates(monkeypatch):
    from dagster._config import process_config, validate_config
    from dagster._config.field import resolve_to_config_type
    from dagster_aws.ecs import EcsRunLauncher

    launcher = _load("dagster.ecs.yaml")["run_launcher"]
    assert (launcher["module"], launcher["class"]) == (
        "dagster_aws.ecs",
        "EcsRunLauncher",
    )
    config_type = resolve_to_config_type(EcsRunLauncher.config_type())
    assert validate_config(config_type, launcher["config"]).success
    # env-sourced fields resolve once their variables exist (names only, nothing calls AWS)
    env_refs = set(
        re.findall(
            r"env: (CRAWLMIX_ECS_[A-Z_]+)", (DOCKER / "dagster.ecs.yaml").read_text()
        )
    )
    assert env_refs
    for var in env_refs:
        monkeypatch.setenv(var, f"arn:aws:iam::123456789012:role/{var.lower()}")
    result = process_config(config_type, launcher["config"])
    assert result.success, result.errors
    value = result.value
    assert value["container_name"] == "run"
    assert value["use_current_ecs_task_config"] is True
    assert value["run_resources"]["cpu"] and value["run_resources"]["memory"]
    # the container named in the op tags' ecs/task_overrides is the launcher's container
    import json

    from curation_assets.embedding import GPU_OP_TAGS

    overrides = json.loads(GPU_OP_TAGS["ecs/task_overrides"])
    assert overrides["containerOverrides"][0]["name"] == value["container_name"]
    assert overrides["containerOverrides"][0]["resourceRequirements"] == [
        {"type": "GPU", "value": "1"}
    ]

    # a misspelt field is rejected by the same check (the check is not vacuous)
    bad = process_config(config_type, {**launcher["config"], "task_defintion": "x"})
    assert not bad.success


def test_k8s_instance_file_names_k8s_launcher():
    launcher = _load("dagster.k8s.yaml")["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert launcher["config"]["instance_config_map"]


def test_workspace_points_at_user_code_grpc_server():
    entry = _load("workspace.yaml")["load_from"][0]["grpc_server"]
    assert (entry["host"], entry["port"]) == ("user_code", 4000)


# ----------------------------------------------------------------------------------------------
# docker-compose.yml
# ----------------------------------------------------------------------------------------------


def _compose_plugin_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return probe.returncode == 0


def test_docker_compose_config_cli(tmp_path):
    """`docker compose config` parses and interpolates offline (no daemon); skipped without the plugin."""
    if not _compose_plugin_available():
        pytest.skip(
            "docker compose plugin not installed; structure is checked by the next test"
        )
    env = {"DAGSTER_POSTGRES_PASSWORD": "pw", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    for files in (
        ["docker-compose.yml"],
        ["docker-compose.yml", "docker-compose.gpu.yml"],
    ):
        args = ["docker", "compose"]
        for name in files:
            args += ["-f", str(DOCKER / name)]
        proc = subprocess.run(
            args + ["config", "--quiet"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr


def test_docker_compose_structure():
    compose = _load("docker-compose.yml")
    services = compose["services"]
    assert {"postgres", "user_code", "webserver", "daemon"} <= set(services)

    assert services["webserver"]["ports"] == ["127.0.0.1:3000:3000"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (
                f"{name} publishes {port} beyond localhost"
            )

    assert (
        "healthcheck" in services["postgres"] and "healthcheck" in services["user_code"]
    )
    assert any(v.startswith("postgres_data:") for v in services["postgres"]["volumes"])
    for name in ("user_code", "webserver", "daemon"):
        assert (
            services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        )
    for name in ("webserver", "daemon"):
        assert (
            services[name]["depends_on"]["user_code"]["condition"] == "service_healthy"
        )

    assert services["user_code"]["command"] == [
        "dagster",
        "code-server",
        "start",
        "-h",
        "0.0.0.0",
        "-p",
        "4000",
        "-m",
        "curation_assets.definitions",
    ]
    assert services["webserver"]["command"][:1] == ["dagster-webserver"]
    assert "/opt/dagster/app/docker/workspace.yaml" in services["webserver"]["command"]
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    for name in ("user_code", "webserver", "daemon"):
        env = services[name]["environment"]
        assert "CRAWLMIX_WAREHOUSE_URL" in env and env[
            "CRAWLMIX_WAREHOUSE_URL"
        ].startswith("postgresql")
        assert set(PG_ENV) <= set(env)
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile.cpu"
        assert (DOCKER / services[name]["build"]["context"]).resolve() == REPO

    gpu = _load("docker-compose.gpu.yml")["services"]
    assert gpu["user_code"]["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    device = gpu["user_code"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]

    # bind-mounted files exist
    for svc in services.values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), source


def test_every_compose_variable_is_documented():
    text = (DOCKER / "docker-compose.yml").read_text() + (
        DOCKER / "docker-compose.gpu.yml"
    ).read_text()
    variables = set(
        re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text)
    )  # $${X} is an escaped literal
    assert "DAGSTER_POSTGRES_PASSWORD" in variables
    env_example = (DOCKER / ".env.example").read_text()
    docs = DOCS.read_text()
    for var in sorted(variables):
        assert re.search(rf"^{var}=", env_example, re.MULTILINE), (
            f"{var} missing from docker/.env.example"
        )
        assert var in docs, f"{var} not documented in docs/deploy.md"


# ----------------------------------------------------------------------------------------------
# Dockerfiles
# ----------------------------------------------------------------------------------------------


def _copy_sources(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].upper() != "COPY":
            continue
        args = [p for p in parts[1:] if not p.startswith("--")]
        sources += args[:-1]
    return sources


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_dockerfile_copy_sources_exist(name):
    dockerfile = DOCKER / name
    text = dockerfile.read_text()
    sources = _copy_sources(dockerfile)
    assert "docker/dagster.yaml" in sources and "docker/workspace.yaml" in sources
    for source in sources:
        assert (REPO / source).exists(), (
            f"{name}: COPY source {source} missing (context is the repo root)"
        )
    assert re.search(r"^USER\s+(?!root\b)\S+", text, re.MULTILINE), (
        "image must not run as root"
    )
    assert "DAGSTER_HOME=/opt/dagster/home" in text
    assert "torch==2.13.0" in text and "pip install ." in text
    # torch comes from the PyTorch wheel index, before the project install
    install = re.search(r"^RUN pip install \.$", text, re.MULTILINE)
    assert install and text.index("torch==2.13.0") < install.start()
    assert "download.pytorch.org/whl/" in text
    assert "hadolint" not in text
    base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE).group(1)
    if name == "Dockerfile.cpu":
        assert base == "python:3.11-slim"
    else:
        assert "nvidia/cuda" in re.search(r"ARG CUDA_IMAGE=(\S+)", text).group(1)
        assert "python3.11" in text


# ----------------------------------------------------------------------------------------------
# The image layout, rebuilt from the Dockerfile's steps: the dbt manifest is prepared in the image
# ----------------------------------------------------------------------------------------------

PREPARE = "python -m curation_assets.reports prepare"


@dataclass
class Instruction:
    keyword: str
    args: str


def _instructions(dockerfile: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        pending += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            keyword, _, args = pending.strip().partition(" ")
            out.append(Instruction(keyword.upper(), args.strip()))
            pending = ""
    return out


def _env_pairs(args: str) -> dict[str, str]:
    """ENV key=value pairs (the form these Dockerfiles use)."""
    pairs = {}
    for token in shlex.split(args):
        key, sep, value = token.partition("=")
        assert sep, f"ENV {args!r}: only the key=value form is replayed"
        pairs[key] = value
    return pairs


def _ignore_patterns(dockerfile: Path) -> list[tuple[bool, re.Pattern]]:
    """(is an exception, regex) per line of the ignore file BuildKit uses for this Dockerfile:
    <Dockerfile>.dockerignore beside it, else .dockerignore at the context root."""
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not ignore.exists():
        ignore = REPO / ".dockerignore"
    patterns = []
    for line in ignore.read_text().splitlines() if ignore.exists() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((negate, re.compile(regex)))
    return patterns


def _ignored(rel: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in patterns:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def _copy_into(rootfs: Path, workdir: str, args: str, patterns) -> list[str]:
    """Replay one COPY: sources relative to the context (the repository), the destination in the
    image (relative to WORKDIR). Returns the context paths copied."""
    parts = [p for p in shlex.split(args) if not p.startswith("--")]
    sources, dest = parts[:-1], parts[-1]
    target = rootfs / (dest if dest.startswith("/") else f"{workdir}/{dest}").lstrip("/")
    into_folder = dest.endswith("/") or len(sources) > 1
    copied = []
    for source in sources:
        src = REPO / source
        files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
        for path in files:
            rel = path.relative_to(REPO).as_posix()
            if _ignored(rel, patterns):
                continue
            if src.is_file():
                out = target / path.name if into_folder else target
            else:
                out = target / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)
            copied.append(rel)
    return copied


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_image_layout_built_from_the_dockerfile_holds_the_dbt_manifest(name, tmp_path):
    dockerfile = DOCKER / name
    steps = _instructions(dockerfile)
    runs = [i for i, step in enumerate(steps) if step.keyword == "RUN"]
    prepare = [i for i in runs if PREPARE in steps[i].args]
    assert len(prepare) == 1, f"{name}: no RUN step prepares the dbt manifest ({PREPARE})"
    prepare_at = prepare[0]
    install_at = next(i for i in runs if re.fullmatch(r"pip install \.", steps[i].args))
    chown_at = next(i for i in runs if "chown -R" in steps[i].args)
    user_at = next(i for i, step in enumerate(steps) if step.keyword == "USER")
    # dbt and the project are installed before it; the dagster user owns what it writes, since
    # dagster-dbt writes each run's target folder under dbt_project/target
    assert install_at < prepare_at < chown_at < user_at

    patterns = _ignore_patterns(dockerfile)
    assert _ignored("dbt_project/target/manifest.json", patterns), "the context should not carry a local manifest"
    rootfs, workdir, env, copied = tmp_path / "rootfs", "/", {}, []
    for step in steps[:prepare_at]:
        if step.keyword == "WORKDIR":
            workdir = step.args
        elif step.keyword == "ENV":
            env.update(_env_pairs(step.args))
        elif step.keyword == "COPY":
            copied += _copy_into(rootfs, workdir, step.args, patterns)
    app = rootfs / workdir.lstrip("/")
    assert "dbt_project/dbt_project.yml" in copied and "curation_assets/reports.py" in copied
    assert not [p for p in copied if "/target/" in p or "__pycache__" in p], "ignored files were copied"
    assert not (app / "dbt_project" / "target").exists()
    assert env.get("DBT_SEND_ANONYMOUS_USAGE_STATS") == "false", f"{name}: dbt would try to send usage stats"

    # The RUN line as written, with the venv's Python as the image's `python`, in the image's
    # WORKDIR, with the image's ENV only (paths under / moved into the throwaway root).
    venv_bin = Path(sys.executable).parent
    run_env = {k: str(rootfs / v.lstrip("/")) if v.startswith("/") else v for k, v in env.items() if k != "PATH"}
    run_env.update(PATH=f"{venv_bin}:/usr/bin:/bin", HOME=str(tmp_path / "home"))
    command = steps[prepare_at].args.replace("python ", f"{venv_bin / 'python'} ", 1)
    proc = subprocess.run(["bash", "-c", command], cwd=app, env=run_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    manifest = app / "dbt_project" / "target" / "manifest.json"
    assert manifest.is_file(), f"{name}: the image layout has no {manifest.relative_to(app)}"
    nodes = json.loads(manifest.read_text())["nodes"]
    models = {Path(p).stem for p in (REPO / "dbt_project" / "models").rglob("*.sql")}
    assert models and models <= {n["name"] for n in nodes.values() if n["resource_type"] == "model"}
    if name != "Dockerfile.cpu":
        return  # the app layout is the same in both images: loading it once is enough
    # and the definitions load from that layout without parsing again
    mtime = manifest.stat().st_mtime_ns
    load = subprocess.run(
        [str(venv_bin / "python"), "-c", "import curation_assets.definitions as d; print(d.__file__)"],
        cwd=app, env=run_env, capture_output=True, text=True, timeout=300,
    )
    assert load.returncode == 0, load.stderr[-3000:]
    assert load.stdout.strip().startswith(str(app)), "the definitions were not imported from the image layout"
    assert manifest.stat().st_mtime_ns == mtime
