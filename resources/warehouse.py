"""Dagster resource wrapping :class:`crawlmix.warehouse.Warehouse` (DuckDB file or PostgreSQL)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from crawlmix.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The relational warehouse for aggregates, by SQLAlchemy URL.

    ``duckdb:////abs/path/warehouse.duckdb`` (default deployments; one writer process at a time, so
    put warehouse writers in a Dagster pool) or ``postgresql://user@host:5432/db``. When the URL
    carries a password, pass it as ``dg.EnvVar("CRAWLMIX_WAREHOUSE_URL")`` so the value never shows
    up in the UI or logs; :class:`Warehouse` masks it in its own messages and ``safe_url``.
    """

    url: str = Field(description="SQLAlchemy URL of the warehouse (use an EnvVar if it has a password).")
    lock_timeout_s: float = Field(
        default=120.0,
        description="How long a writer waits for the DuckDB file lock / a PostgreSQL lock.",
    )

    _warehouse: Any = PrivateAttr(default=None)

    def get_warehouse(self) -> Warehouse:
        """The :class:`crawlmix.warehouse.Warehouse` with its tables created (cached per resource instance)."""
        if self._warehouse is None:
            self._warehouse = Warehouse(self.url, lock_timeout_s=self.lock_timeout_s)
            self._warehouse.ensure_tables()
        return self._warehouse

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warehouse is not None:
            self._warehouse.dispose()
            self._warehouse = None
