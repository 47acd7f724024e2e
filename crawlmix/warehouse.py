"""Relational warehouse for aggregates (per-partition stats, cluster tables, mixture composition, ...).

Pure library code (no Dagster import), SQLAlchemy Core, works on DuckDB (duckdb-engine; the default,
a single file) and PostgreSQL (production).

* Tables live on one module-level :data:`METADATA`; :data:`TABLES` maps names to tables and
  :func:`register_table` adds more (later assets define their tables the same way).
* Writes are idempotent per partition: :meth:`Warehouse.replace_partition` deletes the partition's
  rows and inserts the new ones in one transaction.
* DuckDB allows one writer *process* at a time, and the file is locked by whichever process has it
  open. The engine therefore never keeps the file open between units of work (``NullPool``), and a
  unit of work that hits the lock (or a DuckDB write-write conflict) is retried with backoff for up to
  ``lock_timeout_s`` seconds before :class:`WarehouseLockTimeout` is raised.
* PostgreSQL: a normal connection pool; replacing a partition takes a transaction-scoped advisory
  lock on (table, partition) so concurrent writers of the same partition serialize and writers of
  different partitions never block each other; ``create_all`` runs under an advisory lock so that
  concurrent ``ensure_tables`` callers do not race; deadlocks / serialization failures are retried.
* Passwords never appear in ``url``/``safe_url``, ``repr`` or the messages of errors raised here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import NullPool, StaticPool

__all__ = [
    "METADATA",
    "TABLES",
    "Warehouse",
    "WarehouseError",
    "WarehouseLockTimeout",
    "default_duckdb_url",
    "cluster_shard_sizes",
    "clusters",
    "filter_impact",
    "mixture_composition",
    "mixture_search",
    "quality_by_cluster",
    "quarantine_counts",
    "register_table",
    "semantic_dedup_stats",
    "snapshot_shard_stats",
]

T = TypeVar("T")

METADATA = sa.MetaData()
TABLES: dict[str, sa.Table] = {}
_REGISTRY_LOCK = threading.Lock()


def register_table(table: sa.Table) -> None:
    """Register a table defined on :data:`METADATA` so ``ensure_tables`` creates it.

    Registering the same table object twice is a no-op; a different table under a taken name is an
    error.
    """
    if not isinstance(table, sa.Table):
        raise TypeError(f"register_table expects a sqlalchemy.Table, got {type(table).__name__}")
    if table.metadata is not METADATA:
        raise ValueError(
            f"table {table.name!r} must be defined on crawlmix.warehouse.METADATA to be registered"
        )
    with _REGISTRY_LOCK:
        existing = TABLES.get(table.name)
        if existing is not None and existing is not table:
            raise ValueError(f"a different table named {table.name!r} is already registered")
        TABLES[table.name] = table


snapshot_shard_stats = sa.Table(
    "snapshot_shard_stats",
    METADATA,
    sa.Column("snapshot", sa.String, primary_key=True),
    sa.Column("shard", sa.String, primary_key=True),
    sa.Column("n_input_files", sa.Integer, nullable=False),
    sa.Column("n_records", sa.Integer, nullable=False),
    sa.Column("n_docs", sa.Integer, nullable=False),
    sa.Column("n_exact_duplicates", sa.Integer, nullable=False),
    sa.Column("n_quarantined", sa.Integer, nullable=False),
    sa.Column("input_bytes", sa.BigInteger, nullable=False),
    sa.Column("output_bytes", sa.BigInteger, nullable=False),
    sa.Column("quarantine_fraction", sa.Double, nullable=False),
    sa.Column("elapsed_s", sa.Double, nullable=True),
    sa.Column("config_hash", sa.String, nullable=True),
    sa.Column("code_version", sa.String, nullable=True),
    sa.Column("materialized_at", sa.DateTime(timezone=True), nullable=False),
)
register_table(snapshot_shard_stats)

quarantine_counts = sa.Table(
    "quarantine_counts",
    METADATA,
    sa.Column("snapshot", sa.String, primary_key=True),
    sa.Column("shard", sa.String, primary_key=True),
    sa.Column("reason", sa.String, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)
register_table(quarantine_counts)

clusters = sa.Table(
    "clusters",
    METADATA,
    sa.Column("centroid_version", sa.String, primary_key=True),
    sa.Column("level", sa.Integer, primary_key=True),
    sa.Column("cluster_id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.Integer, nullable=True),
    sa.Column("fit_size", sa.Integer, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("keywords", sa.String, nullable=False),
)
register_table(clusters)

cluster_shard_sizes = sa.Table(
    "cluster_shard_sizes",
    METADATA,
    sa.Column("snapshot", sa.String, primary_key=True),
    sa.Column("shard", sa.String, primary_key=True),
    sa.Column("centroid_version", sa.String, primary_key=True),
    sa.Column("level", sa.Integer, primary_key=True),
    sa.Column("cluster_id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("mean_distance", sa.Double, nullable=True),
)
register_table(cluster_shard_sizes)

semantic_dedup_stats = sa.Table(
    "semantic_dedup_stats",
    METADATA,
    sa.Column("snapshot", sa.String, primary_key=True),
    sa.Column("centroid_version", sa.String, nullable=False),
    sa.Column("eps", sa.Double, nullable=False),
    sa.Column("n_docs", sa.Integer, nullable=False),
    sa.Column("n_removed", sa.Integer, nullable=False),
    sa.Column("removal_fraction", sa.Double, nullable=False),
    sa.Column("n_exact_removed", sa.Integer, nullable=True),  # of n_removed; added after release 1
)
register_table(semantic_dedup_stats)

quality_by_cluster = sa.Table(
    "quality_by_cluster",
    METADATA,
    sa.Column("snapshot", sa.String, primary_key=True),
    sa.Column("shard", sa.String, primary_key=True),
    sa.Column("centroid_version", sa.String, primary_key=True),
    sa.Column("level", sa.Integer, primary_key=True),
    sa.Column("cluster_id", sa.Integer, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("mean_quality", sa.Double, nullable=False),
    sa.Column("p10", sa.Double, nullable=False),
    sa.Column("p50", sa.Double, nullable=False),
    sa.Column("p90", sa.Double, nullable=False),
    sa.Column("pass_gopher_rate", sa.Double, nullable=False),
    sa.Column("pass_c4_rate", sa.Double, nullable=False),
    sa.Column("pass_fineweb_rate", sa.Double, nullable=False),
    sa.Column("pass_all_rate", sa.Double, nullable=False),
)
register_table(quality_by_cluster)

language_by_cluster = sa.Table(
    "language_by_cluster",
    METADATA,
    sa.Column("snapshot", sa.String, primary_key=True),
    sa.Column("shard", sa.String, primary_key=True),
    sa.Column("centroid_version", sa.String, primary_key=True),
    sa.Column("level", sa.Integer, primary_key=True),
    sa.Column("cluster_id", sa.Integer, primary_key=True),
    sa.Column("language", sa.String, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("mean_language_score", sa.Double, nullable=False),
)
register_table(language_by_cluster)

filter_impact = sa.Table(
    "filter_impact",
    METADATA,
    sa.Column("snapshot", sa.String, primary_key=True),
    sa.Column("shard", sa.String, primary_key=True),
    sa.Column("centroid_version", sa.String, primary_key=True),
    sa.Column("level", sa.Integer, primary_key=True),
    sa.Column("cluster_id", sa.Integer, primary_key=True),
    sa.Column("rule", sa.String, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("removed", sa.Integer, nullable=False),
)
register_table(filter_impact)

mixture_composition = sa.Table(
    "mixture_composition",
    METADATA,
    sa.Column("mixture", sa.String, primary_key=True),
    sa.Column("version", sa.String, primary_key=True),
    sa.Column("cluster_id", sa.Integer, primary_key=True),
    sa.Column("centroid_version", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("docs", sa.BigInteger, nullable=False),
    sa.Column("tokens", sa.BigInteger, nullable=False),
    sa.Column("share", sa.Double, nullable=False),
    # Nullable: rows of versions built before the column existed keep no build time.
    sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
)
register_table(mixture_composition)

mixture_search = sa.Table(
    "mixture_search",
    METADATA,
    sa.Column("mixture", sa.String, primary_key=True),
    sa.Column("version", sa.String, primary_key=True),
    sa.Column("candidate", sa.Integer, primary_key=True),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("weights", sa.String, nullable=False),
    sa.Column("score", sa.Double, nullable=False),
    sa.Column("predicted", sa.Double, nullable=True),
)
register_table(mixture_search)


def default_duckdb_url(path: str) -> str:
    """``"duckdb:////abs/path.duckdb"`` for a (relative or absolute) file path."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("DuckDB warehouse path must be a non-empty string")
    return "duckdb:///" + os.path.abspath(os.path.expanduser(path))


class WarehouseError(Exception):
    """A warehouse operation failed. The message names the warehouse (password masked)."""


class WarehouseLockTimeout(WarehouseError):
    """The warehouse stayed locked by another writer for longer than ``lock_timeout_s``."""


# DuckDB messages meaning "someone else holds it, try again".
_DUCKDB_RETRY_MARKERS = (
    "could not set lock",
    "conflicting lock",
    "write-write conflict",
    "conflict on tuple",
    "conflict on update",
    "transaction conflict",
)
# PostgreSQL SQLSTATEs worth retrying: serialization_failure, deadlock_detected.
_PG_RETRY_CODES = {"40001", "40P01"}
_PG_LOCK_TIMEOUT_CODE = "55P03"
_ADVISORY_ENSURE_TABLES = "crawlmix.warehouse.ensure_tables"


# One DuckDB file = one writer. Inside a process, units of work on the same file are serialized with
# a plain lock (threads would otherwise race on DuckDB's instance cache and on optimistic write
# conflicts); across processes, DuckDB's own file lock does it and we retry.
_DUCKDB_FILE_LOCKS: dict[str, threading.RLock] = {}
_DUCKDB_FILE_LOCKS_GUARD = threading.Lock()


def _reset_duckdb_locks_after_fork() -> None:
    global _DUCKDB_FILE_LOCKS_GUARD
    _DUCKDB_FILE_LOCKS.clear()
    _DUCKDB_FILE_LOCKS_GUARD = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_duckdb_locks_after_fork)


def _duckdb_file_lock(path: str) -> threading.RLock:
    key = os.path.realpath(path)
    with _DUCKDB_FILE_LOCKS_GUARD:
        lock = _DUCKDB_FILE_LOCKS.get(key)
        if lock is None:
            lock = _DUCKDB_FILE_LOCKS[key] = threading.RLock()
        return lock


def _advisory_key(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _with_default_driver(url: URL) -> URL:
    """``postgresql://`` means psycopg (v3) in SQLAlchemy 2.1; fall back to psycopg2 when that is
    the driver installed (the project depends on psycopg2-binary)."""
    if url.drivername in ("postgresql", "postgres"):
        import importlib.util

        driver = "psycopg" if importlib.util.find_spec("psycopg") is not None else "psycopg2"
        return url.set(drivername=f"postgresql+{driver}")
    return url


def _to_python(value: Any) -> Any:
    """numpy / pandas scalars -> plain Python values; NaN/NaT/NA -> None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, (datetime, date)):
        return value
    try:
        import numpy as np

        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else pd.Timestamp(value).to_pydatetime()
        if isinstance(value, np.generic):
            value = value.item()
            if isinstance(value, float) and math.isnan(value):
                return None
            return value
    except ImportError:  # pragma: no cover
        pass
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _add_missing_columns(conn: Connection, tables: Sequence[sa.Table]) -> None:
    """Add nullable columns that a newer release declares to tables an older release created.

    Identifiers and types come from the registered tables, never from data.
    """
    # information_schema rather than SQLAlchemy's inspector, which duckdb-engine cannot serve on DuckDB 2.
    query = sa.text(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = :table_name"
    )
    for table in tables:
        present = set(conn.execute(query, {"table_name": table.name}).scalars())
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise WarehouseError(
                    f"warehouse table {table.name} lacks the required column {column.name}: it was created by "
                    "an incompatible release; drop the table and re-materialize the assets that write it"
                )
            column_type = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {column_type}'))


class Warehouse:
    """A SQLAlchemy-backed warehouse (DuckDB file or PostgreSQL database)."""

    def __init__(self, url: str, lock_timeout_s: float = 120.0):
        if isinstance(url, URL):
            parsed = url
        else:
            if not isinstance(url, str) or not url.strip():
                raise ValueError("warehouse URL must be a non-empty string")
            try:
                parsed = make_url(url.strip())
            except Exception:
                # The parser's own message echoes the string, password included.
                raise ValueError(
                    "could not parse the warehouse URL (expected e.g. 'duckdb:////path/file.duckdb' "
                    "or 'postgresql://user@host:5432/db'; value not shown as it may hold a password)"
                ) from None
        if lock_timeout_s is None or float(lock_timeout_s) < 0:
            raise ValueError("lock_timeout_s must be a non-negative number of seconds")
        parsed = _with_default_driver(parsed)
        self._url: URL = parsed
        self._password = parsed.password if isinstance(parsed.password, str) else None
        self.lock_timeout_s = float(lock_timeout_s)
        self.lock_retries = 0  # how many times a unit of work was retried (lock / conflict)
        self.backend = parsed.get_backend_name()
        self._engine: Engine | None = None
        self._engine_pid: int | None = None
        self._engine_lock = threading.Lock()
        if self.backend not in ("duckdb", "postgresql"):
            raise ValueError(
                f"unsupported warehouse backend {self.backend!r} in {self.safe_url}: "
                "use duckdb:///... or postgresql://..."
            )
        if self.is_duckdb and not self._is_memory:
            folder = os.path.dirname(os.path.abspath(self.duckdb_path or ""))
            if folder:
                os.makedirs(folder, exist_ok=True)

    # -- identity ---------------------------------------------------------------------------------
    @property
    def safe_url(self) -> str:
        """The URL with any password replaced by ``***`` (safe for logs and metadata)."""
        return self._url.render_as_string(hide_password=True)

    @property
    def url(self) -> str:
        """Same as :attr:`safe_url`: the display form; the password is never exposed here."""
        return self.safe_url

    @property
    def sa_url(self) -> URL:
        """The parsed SQLAlchemy URL (its ``str()`` masks the password; ``.password`` does not)."""
        return self._url

    @property
    def is_duckdb(self) -> bool:
        return self.backend == "duckdb"

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgresql"

    @property
    def duckdb_path(self) -> str | None:
        """Absolute DuckDB file path (None for PostgreSQL or in-memory DuckDB)."""
        if not self.is_duckdb or self._is_memory:
            return None
        return os.path.abspath(self._url.database or "")

    @property
    def _is_memory(self) -> bool:
        return self.is_duckdb and (self._url.database in (None, "", ":memory:"))

    def __repr__(self) -> str:
        return f"Warehouse({self.safe_url!r})"

    # -- engine -----------------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (created lazily; recreated after a fork)."""
        with self._engine_lock:
            if self._engine is None or self._engine_pid != os.getpid():
                if self._engine is not None:
                    # Inherited through fork: drop the parent's pooled connections without closing.
                    self._engine.dispose(close=False)
                self._engine = self._make_engine()
                self._engine_pid = os.getpid()
            return self._engine

    def _make_engine(self) -> Engine:
        if self.is_duckdb:
            if self._is_memory:
                return sa.create_engine(self._url, poolclass=StaticPool)
            # Never hold the file open between units of work: another process may be waiting.
            return sa.create_engine(self._url, poolclass=NullPool)
        return sa.create_engine(self._url, pool_pre_ping=True)

    def dispose(self) -> None:
        """Close pooled connections (PostgreSQL); DuckDB holds none between calls anyway."""
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # -- error handling ---------------------------------------------------------------------------
    def _mask(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def _leaks_password(self, exc: BaseException) -> bool:
        if not self._password:
            return False
        seen: set[int] = set()
        cur: BaseException | None = exc
        while cur is not None and id(cur) not in seen:
            seen.add(id(cur))
            if self._password in str(cur) or self._password in repr(getattr(cur, "orig", "")):
                return True
            cur = cur.__cause__ or cur.__context__
        return False

    def _wrap(self, what: str, exc: BaseException) -> WarehouseError:
        detail = self._mask(str(getattr(exc, "orig", None) or exc)).strip()
        statement = getattr(exc, "statement", None)
        msg = f"{what} on warehouse {self.safe_url} failed: {type(getattr(exc, 'orig', None) or exc).__name__}: {detail}"
        if statement:
            msg += f"\n[SQL: {self._mask(str(statement))[:2000]}]"
        err = WarehouseError(msg)
        err.orig = getattr(exc, "orig", exc)  # type: ignore[attr-defined]
        return err

    def _retryable(self, exc: BaseException) -> bool:
        if self.is_duckdb:
            text = str(getattr(exc, "orig", None) or exc).lower()
            return any(marker in text for marker in _DUCKDB_RETRY_MARKERS)
        code = getattr(getattr(exc, "orig", None), "pgcode", None)
        return code in _PG_RETRY_CODES

    def _is_pg_lock_timeout(self, exc: BaseException) -> bool:
        return getattr(getattr(exc, "orig", None), "pgcode", None) == _PG_LOCK_TIMEOUT_CODE

    def run_transaction(self, fn: Callable[[Connection], T], what: str = "transaction") -> T:
        """Run ``fn(conn)`` in one transaction, retrying the whole unit on lock/conflict errors.

        ``fn`` may run more than once, so it must only touch the database through ``conn``.
        """
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.02
        attempts = 0
        file_lock = _duckdb_file_lock(self.duckdb_path) if self.duckdb_path else None
        while True:
            attempts += 1
            if file_lock is not None:
                if not file_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise WarehouseLockTimeout(
                        f"{what} on warehouse {self.safe_url}: still locked by another writer in "
                        f"this process after {self.lock_timeout_s:g}s"
                    )
            try:
                with self.engine.begin() as conn:
                    if self.is_postgres:
                        ms = max(1, int(self.lock_timeout_s * 1000))
                        conn.execute(sa.text(f"SET LOCAL lock_timeout = {ms}"))
                    return fn(conn)
            except Exception as exc:
                if not isinstance(exc, sa_exc.SQLAlchemyError) and not self._is_driver_error(exc):
                    raise
                cause = None if self._leaks_password(exc) else exc
                if self._is_pg_lock_timeout(exc):
                    raise WarehouseLockTimeout(
                        f"{what} on warehouse {self.safe_url}: gave up waiting for a lock after "
                        f"{self.lock_timeout_s:g}s (another writer holds it)"
                    ) from cause
                if not self._retryable(exc):
                    raise self._wrap(what, exc) from cause
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WarehouseLockTimeout(
                        f"{what} on warehouse {self.safe_url}: still locked by another writer after "
                        f"{self.lock_timeout_s:g}s and {attempts} attempts: "
                        f"{self._mask(str(getattr(exc, 'orig', exc)))}"
                    ) from cause
            finally:
                if file_lock is not None:
                    file_lock.release()
            self.lock_retries += 1
            time.sleep(min(remaining, delay * (0.5 + random.random())))
            delay = min(delay * 2, 0.5)

    def _is_driver_error(self, exc: BaseException) -> bool:
        """A DBAPI error raised by the driver itself (e.g. DuckDB's native bulk insert path)."""
        if self.is_duckdb:
            import duckdb

            return isinstance(exc, duckdb.Error)
        return False

    # -- schema -----------------------------------------------------------------------------------
    def _table(self, name: str) -> sa.Table:
        if isinstance(name, sa.Table):
            name = name.name
        table = TABLES.get(name)
        if table is None:
            raise ValueError(f"unknown warehouse table {name!r}; registered: {sorted(TABLES)}")
        return table

    def ensure_tables(self) -> None:
        """Create all registered tables that do not exist yet (idempotent, safe when concurrent)."""
        tables = list(TABLES.values())

        def create(conn: Connection) -> None:
            if self.is_postgres:
                conn.execute(
                    sa.select(sa.func.pg_advisory_xact_lock(_advisory_key(_ADVISORY_ENSURE_TABLES)))
                )
            METADATA.create_all(conn, tables=tables, checkfirst=True)
            _add_missing_columns(conn, tables)

        for attempt in range(3):
            try:
                self.run_transaction(create, what="ensure_tables")
                return
            except WarehouseError as exc:
                # Another creator (e.g. a different tool without our advisory lock, or another
                # DuckDB connection in this process) won the race: check again.
                text = str(exc).lower()
                if attempt < 2 and ("already exists" in text or "duplicate" in text):
                    continue
                raise

    # -- writes -----------------------------------------------------------------------------------
    def _records(self, table: sa.Table, rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> list[dict]:
        columns = set(table.c.keys())
        if isinstance(rows, pd.DataFrame):
            names = [str(c) for c in rows.columns]
            if len(set(names)) != len(names):
                raise ValueError(f"rows for {table.name!r} have duplicate column names")
            unknown = sorted(set(names) - columns)
            if unknown:
                raise ValueError(f"rows for {table.name!r} have unknown columns {unknown}")
            return [
                {name: _to_python(v) for name, v in zip(names, values)}
                for values in rows.itertuples(index=False, name=None)
            ]
        if isinstance(rows, (str, bytes)) or not isinstance(rows, (Sequence, list, tuple)):
            raise ValueError(
                f"rows for {table.name!r} must be a list of dicts or a pandas DataFrame, "
                f"got {type(rows).__name__}"
            )
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise ValueError(f"row {i} for {table.name!r} is not a mapping: {type(row).__name__}")
            unknown = sorted(set(map(str, row)) - columns)
            if unknown:
                raise ValueError(f"row {i} for {table.name!r} has unknown columns {unknown}")
            out.append({str(k): _to_python(v) for k, v in row.items()})
        return out

    def _check_where(self, table: sa.Table, where: Mapping[str, Any], what: str) -> dict[str, Any]:
        if not isinstance(where, Mapping):
            raise ValueError(f"{what} must be a dict of column -> value")
        unknown = sorted(set(map(str, where)) - set(table.c.keys()))
        if unknown:
            raise ValueError(f"{what} for {table.name!r} names unknown columns {unknown}")
        out = {}
        for k, v in where.items():
            v = _to_python(v)
            if v is None:
                raise ValueError(f"{what} value for {k!r} must not be None")
            out[str(k)] = v
        return out

    def replace_partition(
        self,
        table: str,
        partition: dict[str, Any],
        rows: list[dict] | pd.DataFrame,
    ) -> int:
        """Replace the rows of one partition in one transaction; returns the number of rows inserted.

        Deletes every row whose columns equal all of ``partition``'s values, then inserts ``rows``;
        each row must carry the partition's values (``ValueError`` otherwise). Any failure rolls
        back the delete too. Calling twice with the same rows leaves exactly one copy.
        """
        t = self._table(table)
        part = self._check_where(t, partition, "partition")
        if not part:
            raise ValueError(
                f"partition for {t.name!r} must name at least one column "
                "(an empty partition would replace the whole table)"
            )
        records = self._records(t, rows)
        for i, rec in enumerate(records):
            for k, v in part.items():
                if k not in rec:
                    raise ValueError(f"row {i} for {t.name!r} is missing partition column {k!r}")
                if rec[k] != v:
                    raise ValueError(
                        f"row {i} for {t.name!r} has {k}={rec[k]!r}, outside partition {k}={v!r}"
                    )
        condition = sa.and_(*(t.c[k] == sa.bindparam(f"p_{k}", v) for k, v in part.items()))
        lock_key = _advisory_key(t.name, json.dumps(part, sort_keys=True, default=str))

        def work(conn: Connection) -> int:
            if self.is_postgres:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key)))
            conn.execute(sa.delete(t).where(condition))
            if records:
                self._insert(conn, t, records)
            return len(records)

        return self.run_transaction(work, what=f"replace_partition({t.name})")

    def _insert(self, conn: Connection, table: sa.Table, records: list[dict]) -> None:
        # Group rows by their column set so every statement has one fixed shape (columns a row
        # leaves out get their database default).
        groups: dict[tuple[str, ...], list[dict]] = {}
        for rec in records:
            groups.setdefault(tuple(c for c in table.c.keys() if c in rec), []).append(rec)
        for cols, group in groups.items():
            if self.is_duckdb and self._insert_duckdb_arrow(conn, table, cols, group):
                continue
            if self.is_duckdb:
                # duckdb-engine runs executemany row by row; a multi-row VALUES is much faster.
                chunk = max(1, 2000 // max(1, len(cols)))
                for i in range(0, len(group), chunk):
                    conn.execute(sa.insert(table).values(group[i : i + chunk]))
            else:
                conn.execute(sa.insert(table), group)

    @staticmethod
    def _arrow_type(col: sa.Column) -> Any:
        import pyarrow as pa

        t = col.type
        if isinstance(t, sa.Boolean):
            return pa.bool_()
        if isinstance(t, sa.Integer):
            return pa.int64()
        if isinstance(t, sa.Float):
            return pa.float64()
        if isinstance(t, sa.DateTime):
            return pa.timestamp("us", tz="UTC") if t.timezone else pa.timestamp("us")
        if isinstance(t, sa.Date):
            return pa.date32()
        if isinstance(t, (sa.String, sa.Enum)):
            return pa.string()
        if isinstance(t, sa.LargeBinary):
            return pa.binary()
        return None

    def _insert_duckdb_arrow(
        self, conn: Connection, table: sa.Table, cols: tuple[str, ...], group: list[dict]
    ) -> bool:
        """Bulk insert through an Arrow table scanned by DuckDB, inside the same transaction.

        Returns False (caller falls back to SQL inserts) when a column type or a value has no
        straightforward Arrow representation.
        """
        import uuid

        import pyarrow as pa

        types = [self._arrow_type(table.c[c]) for c in cols]
        if any(t is None for t in types):
            return False
        try:
            arrow_rows = pa.Table.from_pylist(
                group, schema=pa.schema([pa.field(c, t) for c, t in zip(cols, types)])
            )
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return False
        raw = conn.connection.driver_connection
        name = f"_crawlmix_rows_{uuid.uuid4().hex}"
        quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in cols)
        target = conn.dialect.identifier_preparer.format_table(table)
        raw.register(name, arrow_rows)
        try:
            raw.execute(f"INSERT INTO {target} ({quoted}) SELECT {quoted} FROM {name}")
        except BaseException:
            # The transaction is aborted now; unregistering would raise and hide the real error.
            with contextlib.suppress(Exception):
                raw.unregister(name)
            raise
        raw.unregister(name)
        return True

    # -- reads ------------------------------------------------------------------------------------
    def read_frame(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        """Run a query with bound parameters (``:name`` placeholders) and return a DataFrame."""
        if not isinstance(sql, str):
            raise ValueError("read_frame expects SQL text with :name placeholders")
        if params is not None and not isinstance(params, Mapping):
            raise ValueError("read_frame params must be a dict")
        bound = {k: _to_python(v) for k, v in (params or {}).items()}

        def work(conn: Connection) -> pd.DataFrame:
            result = conn.execute(sa.text(sql), bound)
            if not result.returns_rows:
                return pd.DataFrame()
            columns = list(result.keys())
            return pd.DataFrame(result.fetchall(), columns=columns)

        return self.run_transaction(work, what="read_frame")

    def count(self, table: str, where: dict | None = None) -> int:
        """Number of rows in ``table`` whose columns equal all of ``where``'s values."""
        t = self._table(table)
        cond = self._check_where(t, where or {}, "where")
        stmt = sa.select(sa.func.count()).select_from(t)
        if cond:
            stmt = stmt.where(
                sa.and_(*(t.c[k] == sa.bindparam(f"w_{k}", v) for k, v in cond.items()))
            )
        return int(self.run_transaction(lambda conn: conn.execute(stmt).scalar_one(), what="count"))
