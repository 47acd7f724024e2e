"""Deployment settings read from the environment, validated once at load time.

Every setting has a safe local default so a fresh checkout runs the embedded demo with nothing set.
An invalid value fails fast with a message naming the variable and the form it expects, instead of
surfacing later as an obscure error deep inside a run.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_SHARDS = 4096
DEFAULT_SHARDS = 4
DEFAULT_SNAPSHOTS_PER_TICK = 5
# Snapshots x shards must stay below this: Dagster's partition machinery slows down past it.
MAX_PARTITION_PAIRS = 100_000

_SUPPORTED_WAREHOUSE_DIALECTS = ("duckdb", "postgresql")
_S3_URI = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^\s]*)?$")


# Each Settings field and the environment variable that sets it. Tests enumerate this (and the
# dataclass fields) so a new setting cannot be added without a variable and a validation test.
FIELD_VARIABLES: dict[str, str] = {
    "home": "CRAWLMIX_HOME",
    "snapshots_root": "CRAWLMIX_SNAPSHOTS",
    "storage_root": "CRAWLMIX_STORAGE",
    "shards": "CRAWLMIX_SHARDS",
    "warehouse_url": "CRAWLMIX_WAREHOUSE_URL",
    "dagster_home": "DAGSTER_HOME",
    "snapshots_per_tick": "CRAWLMIX_SNAPSHOTS_PER_TICK",
    "s3_endpoint_url": "CRAWLMIX_S3_ENDPOINT_URL",
    "device": "CRAWLMIX_DEVICE",
    "mixtures_file": "CRAWLMIX_MIXTURES",
    "url_blocklists": "CRAWLMIX_URL_BLOCKLISTS",
}

# CRAWLMIX_* variables that are not deployment settings but are read elsewhere: by one library
# module, by the dbt profile (set per dbt call from the warehouse URL), by docker compose or the ECS
# launcher config, or passed to a mixture-search evaluator command.
OTHER_VARIABLES: frozenset[str] = frozenset({
    "CRAWLMIX_EMBED_THREADS",
    "CRAWLMIX_ONNX_CACHE",
    "CRAWLMIX_WEIGHTS",
    "CRAWLMIX_DUCKDB_PATH",
    "CRAWLMIX_DUCKDB_SCHEMA",
    "CRAWLMIX_SOURCE_SCHEMA",
    "CRAWLMIX_PG_HOST",
    "CRAWLMIX_PG_PORT",
    "CRAWLMIX_PG_USER",
    "CRAWLMIX_PG_PASSWORD",
    "CRAWLMIX_PG_DBNAME",
    "CRAWLMIX_PG_SCHEMA",
    "CRAWLMIX_IMAGE",
    "CRAWLMIX_CUDA_IMAGE",
    "CRAWLMIX_GPU_COUNT",
    "CRAWLMIX_WAREHOUSE_DB",
    "CRAWLMIX_ECS_CLUSTER",
    "CRAWLMIX_ECS_EXECUTION_ROLE_ARN",
    "CRAWLMIX_ECS_TASK_ROLE_ARN",
})
# The test suite's own knobs (CRAWLMIX_TEST_PG_URL, ...) never configure a deployment.
RESERVED_PREFIXES: tuple[str, ...] = ("CRAWLMIX_TEST_",)


class SettingsError(ValueError):
    """A setting has a value of the wrong form; the message names the setting."""


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """CRAWLMIX_* names in ``env`` that nothing reads, sorted (typos of a setting's name)."""
    known = set(FIELD_VARIABLES.values()) | OTHER_VARIABLES
    return sorted(
        name
        for name in env
        if name.startswith("CRAWLMIX_") and name not in known and not name.startswith(RESERVED_PREFIXES)
    )


def _reject_unknown_variables(env: Mapping[str, str]) -> None:
    # An error, not a warning: a mistyped CRAWLMIX_SHARDS would otherwise silently fall back to the
    # default shard count (or a mistyped storage root to the local default), and the run would
    # write to the wrong place or the wrong partitions with nothing in the logs to say why.
    unknown = unknown_variables(env)
    if not unknown:
        return
    settings = sorted(v for v in FIELD_VARIABLES.values() if v.startswith("CRAWLMIX_"))
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, settings + sorted(OTHER_VARIABLES), n=1, cutoff=0.75)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    raise SettingsError(
        f"unknown environment variable{'s' if len(unknown) > 1 else ''} {', '.join(hints)}: "
        f"crawlmix settings are {', '.join(settings)}; unset the variable or fix its name"
    )


@dataclass(frozen=True)
class Settings:
    home: Path
    snapshots_root: str
    storage_root: str
    shards: int
    warehouse_url: str
    dagster_home: Path
    snapshots_per_tick: int
    s3_endpoint_url: str | None
    device: str = "auto"
    mixtures_file: str = ""
    url_blocklists: tuple[str, ...] = ()

    @property
    def shard_keys(self) -> list[str]:
        return shard_keys(self.shards)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        _reject_unknown_variables(env)
        home = _folder_setting(env, "CRAWLMIX_HOME", Path(".crawlmix"))
        snapshots_root = _root_setting(env, "CRAWLMIX_SNAPSHOTS", home / "snapshots")
        storage_root = _root_setting(env, "CRAWLMIX_STORAGE", home / "storage")
        shards = _int_setting(env, "CRAWLMIX_SHARDS", DEFAULT_SHARDS, 1, MAX_SHARDS)
        per_tick = _int_setting(env, "CRAWLMIX_SNAPSHOTS_PER_TICK", DEFAULT_SNAPSHOTS_PER_TICK, 1, 1000)
        warehouse_url = _warehouse_url(env, home)
        dagster_home = _folder_setting(env, "DAGSTER_HOME", home / "dagster")
        endpoint = _get(env, "CRAWLMIX_S3_ENDPOINT_URL")
        if endpoint and not re.match(r"^https?://[^\s/]+(:\d+)?/?$", endpoint):
            raise SettingsError(
                f"CRAWLMIX_S3_ENDPOINT_URL must be an http(s)://host[:port] URL, got {endpoint!r}"
            )
        device = _get(env, "CRAWLMIX_DEVICE") or "auto"
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise SettingsError(f"CRAWLMIX_DEVICE must be auto, cpu, cuda or cuda:N, got {device!r}")
        return cls(
            home=home,
            snapshots_root=snapshots_root,
            storage_root=storage_root,
            shards=shards,
            warehouse_url=warehouse_url,
            dagster_home=dagster_home,
            snapshots_per_tick=per_tick,
            s3_endpoint_url=endpoint,
            device=device,
            mixtures_file=_mixtures_file(env),
            url_blocklists=_url_blocklists(env),
        )


def _url_blocklists(env: Mapping[str, str]) -> tuple[str, ...]:
    """Comma-separated local files or folders; each must exist (a typo would filter nothing)."""
    raw = _get(env, "CRAWLMIX_URL_BLOCKLISTS")
    if raw is None:
        return ()
    _reject_control_characters("CRAWLMIX_URL_BLOCKLISTS", raw)
    paths = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        path = Path(part).expanduser().resolve()
        if not path.exists():
            raise SettingsError(f"CRAWLMIX_URL_BLOCKLISTS names {part!r}, which does not exist (comma-separated "
                                "domain-list files or UT1-style folders)")
        paths.append(str(path))
    return tuple(paths)


def _mixtures_file(env: Mapping[str, str]) -> str:
    raw = _get(env, "CRAWLMIX_MIXTURES")
    if raw is None:
        return str(Path(__file__).resolve().parent / "sample" / "mixtures.yaml")
    _reject_control_characters("CRAWLMIX_MIXTURES", raw)
    path = Path(raw).expanduser().resolve()
    if not path.is_file():
        raise SettingsError(f"CRAWLMIX_MIXTURES must name a mixture-spec YAML file, got {raw!r} (no such file)")
    return str(path)


def shard_keys(n_shards: int) -> list[str]:
    """Zero-padded shard keys ("000", "001", ...) so they sort the same as text and as numbers."""
    width = max(3, len(str(n_shards - 1)))
    return [str(i).zfill(width) for i in range(n_shards)]


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _int_setting(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, got {raw!r}")
    return int(raw)


def _reject_control_characters(name: str, raw: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise SettingsError(f"{name} must not contain control characters (such as a null byte), got {raw!r}")


def _folder_setting(env: Mapping[str, str], name: str, default: Path) -> Path:
    """A local folder (created later if missing); a URL or an existing non-folder is refused."""
    raw = _get(env, name)
    if raw is None:
        return default.expanduser().resolve()
    _reject_control_characters(name, raw)
    if "://" in raw:
        raise SettingsError(f"{name} must be a local folder, got {raw!r}")
    path = Path(raw).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise SettingsError(f"{name} must be a local folder, got {raw!r} (it is a file)")
    return path


def _root_setting(env: Mapping[str, str], name: str, default: Path) -> str:
    raw = _get(env, name)
    if raw is None:
        return str(default)
    _reject_control_characters(name, raw)
    if raw.startswith("s3://"):
        if not _S3_URI.match(raw):
            raise SettingsError(
                f"{name} must be a local folder or s3://bucket[/prefix] with a valid bucket name, got {raw!r}"
            )
        if any(part in ("", ".", "..") for part in raw[len("s3://"):].rstrip("/").split("/")[1:]):
            raise SettingsError(f"{name} must not have empty, '.' or '..' path segments, got {raw!r}")
        return raw.rstrip("/")
    if "://" in raw:
        raise SettingsError(f"{name} must be a local folder or s3://bucket[/prefix], got {raw!r}")
    path = Path(raw).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise SettingsError(f"{name} must be a local folder or s3://bucket[/prefix], got {raw!r} (it is a file)")
    return str(path)


def _warehouse_url(env: Mapping[str, str], home: Path) -> str:
    raw = _get(env, "CRAWLMIX_WAREHOUSE_URL")
    if raw is None:
        return f"duckdb:///{home / 'warehouse.duckdb'}"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw)
    except ArgumentError:
        raise SettingsError(
            "CRAWLMIX_WAREHOUSE_URL must be a SQLAlchemy URL such as duckdb:///path/to/file.duckdb "
            "or postgresql://user@host:5432/db (value not shown: it may hold a password)"
        ) from None
    if url.get_backend_name() not in _SUPPORTED_WAREHOUSE_DIALECTS:
        raise SettingsError(
            "CRAWLMIX_WAREHOUSE_URL must use one of the dialects "
            f"{', '.join(_SUPPORTED_WAREHOUSE_DIALECTS)}, got {url.get_backend_name()!r}"
        )
    if url.get_backend_name() == "duckdb" and not url.database:
        raise SettingsError("CRAWLMIX_WAREHOUSE_URL for DuckDB must name a database file: duckdb:///path/file.duckdb")
    return raw
