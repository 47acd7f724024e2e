"""dbt report models (``dbt_project/``) as Dagster assets, downstream of the Python assets.

* :func:`build_reports` returns ``([dbt assets], [])``: one ``@dbt_assets`` definition, group
  ``reports``, whose dbt tests are asset checks, and whose sources map (``meta.dagster.asset_key`` in
  ``models/sources.yml``) onto the Python assets that write the warehouse tables.
* :func:`dbt_resource` returns the ``dbt`` resource for a warehouse URL: the dbt target (``duckdb``
  or ``postgres``) and connection env vars follow the SQLAlchemy URL, set only for the duration of
  each dbt invocation (the password never reaches a command line, log or metadata).
* The manifest is prepared once, at build/deploy time: ``python -m curation_assets.reports prepare``
  runs ``dbt parse`` and writes ``dbt_project/target/manifest.json``; loading the code location only
  reads it (and raises naming that command when it is missing).
"""


import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, EnvVar
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from sqlalchemy.engine import make_url

__all__ = [
    "DBT_PROJECT_DIR",
    "PREPARE_COMMAND",
    "ReportsTranslator",
    "WarehouseDbtCliResource",
    "build_reports",
    "dbt_env_for_url",
    "dbt_project",
    "dbt_resource",
    "prepare_manifest",
]

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
PREPARE_COMMAND = "python -m curation_assets.reports prepare"
REPORTS_GROUP = "reports"

# The env vars dbt_project/profiles.yml reads; every invocation sets all of them (unused ones to "").
_PROFILE_VARS = (
    "DBT_TARGET",
    "CRAWLMIX_DUCKDB_PATH",
    "CRAWLMIX_PG_HOST",
    "CRAWLMIX_PG_PORT",
    "CRAWLMIX_PG_USER",
    "CRAWLMIX_PG_PASSWORD",
    "CRAWLMIX_PG_DBNAME",
    "CRAWLMIX_PG_SCHEMA",
)
_ENV_LOCK = threading.RLock()


def _dbt_executable() -> str:
    """The dbt next to this interpreter (the venv's), else ``dbt`` on PATH."""
    local = Path(sys.executable).parent / "dbt"
    return os.fspath(local) if local.exists() else "dbt"


def dbt_project(project_dir: str | Path = DBT_PROJECT_DIR) -> DbtProject:
    return DbtProject(project_dir=Path(project_dir), profiles_dir=Path(project_dir))


def dbt_env_for_url(warehouse_url: str) -> dict[str, str]:
    """The profile env vars (``DBT_TARGET``, ``CRAWLMIX_*``) for a SQLAlchemy warehouse URL."""
    try:
        url = make_url(str(warehouse_url).strip())
    except Exception:
        raise ValueError(
            "could not parse the warehouse URL for dbt (value not shown as it may hold a password)"
        ) from None
    backend = url.get_backend_name()
    env = {name: "" for name in _PROFILE_VARS}
    if backend == "duckdb":
        if url.database in (None, "", ":memory:"):
            raise ValueError("dbt reports need a DuckDB file warehouse, not an in-memory one")
        env.update(DBT_TARGET="duckdb", CRAWLMIX_DUCKDB_PATH=os.path.abspath(url.database))
    elif backend == "postgresql":
        schema = "public"
        options = url.query.get("options")
        if isinstance(options, str) and "search_path=" in options:
            schema = options.split("search_path=", 1)[1].split()[0].split(",")[0] or "public"
        env.update(
            DBT_TARGET="postgres",
            CRAWLMIX_PG_HOST=url.host or "127.0.0.1",
            CRAWLMIX_PG_PORT=str(url.port or 5432),
            CRAWLMIX_PG_USER=url.username or "postgres",
            CRAWLMIX_PG_PASSWORD=url.password if isinstance(url.password, str) else "",
            CRAWLMIX_PG_DBNAME=url.database or "postgres",
            CRAWLMIX_PG_SCHEMA=schema,
        )
    else:
        raise ValueError(f"unsupported warehouse backend {backend!r} for dbt: use duckdb or postgresql")
    return env


@contextlib.contextmanager
def _patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set env vars for the duration of one dbt invocation (dagster-dbt copies os.environ into the
    dbt subprocess and reads the profile in-process while starting it)."""
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


class WarehouseDbtCliResource(DbtCliResource):
    """``DbtCliResource`` whose dbt target and connection follow ``warehouse_url``."""

    warehouse_url: str

    def cli(self, args, **kwargs):  # type: ignore[override]
        env = dbt_env_for_url(self.warehouse_url)
        env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
        with _patched_environ(env):
            return super().cli(args, **kwargs)


def dbt_resource(warehouse_url: Any, project_dir: str | Path = DBT_PROJECT_DIR) -> WarehouseDbtCliResource:
    """The configured ``dbt`` resource for a warehouse URL (a string or a Dagster ``EnvVar``)."""
    # EnvVar is a str holding the variable's name: validate the value it stands for.
    value = warehouse_url.get_value() if isinstance(warehouse_url, EnvVar) else warehouse_url
    target = dbt_env_for_url(value)["DBT_TARGET"] if isinstance(value, str) else None  # validates early
    project = dbt_project(project_dir)
    return WarehouseDbtCliResource(
        project_dir=os.fspath(project.project_dir),
        profiles_dir=os.fspath(project.profiles_dir),
        target=target,
        dbt_executable=_dbt_executable(),
        warehouse_url=warehouse_url,
    )


class ReportsTranslator(DagsterDbtTranslator):
    """dbt models land in group ``reports``, owned by the data-curation team (kinds: dbt + the adapter, set by dagster-dbt)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return REPORTS_GROUP

    def get_owners(self, dbt_resource_props: Mapping[str, Any]):
        return ["team:data-curation"]



def prepare_manifest(project_dir: str | Path = DBT_PROJECT_DIR) -> Path:
    """Run ``dbt parse`` once and return the path of ``target/manifest.json``."""
    project = dbt_project(project_dir)
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    cmd = [_dbt_executable(), "parse", "--quiet",
           "--project-dir", os.fspath(project.project_dir),
           "--profiles-dir", os.fspath(project.profiles_dir),
           "--target-path", os.fspath(project.project_dir / project.target_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not project.manifest_path.exists():
        raise RuntimeError(f"dbt parse failed (rc={proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return project.manifest_path


def build_reports(
    warehouse_url: Any = None, project_dir: str | Path = DBT_PROJECT_DIR, warehouse_pool: str | None = None
) -> tuple[list, list]:
    """``([dbt assets], [])`` for the report models. Needs the prepared manifest (``PREPARE_COMMAND``).

    ``warehouse_url`` is accepted for symmetry with the other builders and validated when given as a
    string; the connection itself comes from the ``dbt`` resource (:func:`dbt_resource`).
    ``warehouse_pool``: the pool of the warehouse's writers (DuckDB admits one writing process), which
    a dbt build joins since it writes the report tables.
    """
    if isinstance(warehouse_url, str):
        dbt_env_for_url(warehouse_url)
    project = dbt_project(project_dir)
    if not project.manifest_path.exists():
        raise FileNotFoundError(
            f"dbt manifest not found at {project.manifest_path}: prepare it once with "
            f"`{PREPARE_COMMAND}` (runs `dbt parse`) before loading the code location"
        )
    translator = ReportsTranslator(settings=DagsterDbtTranslatorSettings(
        enable_asset_checks=True,
        # raw_corpus, quality_scores and final_mixtures each write two source tables
        enable_duplicate_source_asset_keys=True,
    ))

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator,
        name="dbt_reports",
        pool=warehouse_pool,
    )
    def dbt_reports(context: AssetExecutionContext, dbt: DbtCliResource):
        yield from dbt.cli(["build"], context=context).stream()

    return [dbt_reports], []


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["prepare"]:
        print(f"usage: {PREPARE_COMMAND}", file=sys.stderr)
        return 2
    print(prepare_manifest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
