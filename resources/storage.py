"""Dagster resource wrapping :mod:`crawlmix.storage` (local folder or ``s3://bucket/prefix``)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from crawlmix.storage import Storage, storage_for


class StorageResource(dg.ConfigurableResource):
    """Where per-document files live: ``<root>/<asset>/<snapshot>/<shard>.<ext>``.

    ``root`` is a local folder or ``s3://bucket/prefix``. For S3 roots the nested dagster-aws
    :class:`~dagster_aws.s3.S3Resource` makes the client: set ``endpoint_url`` / ``region_name`` there,
    and leave credentials to the standard AWS chain (``AWS_ACCESS_KEY_ID`` ... in the environment, an
    instance role) or pass them as ``dg.EnvVar(...)`` so they never appear as plain config values.
    ``s3`` may be left out (defaults to ``S3Resource()``); it is not used for local roots.

    Example::

        StorageResource(
            root=dg.EnvVar("CRAWLMIX_STORAGE"),
            s3=S3Resource(endpoint_url=dg.EnvVar("CRAWLMIX_S3_ENDPOINT_URL")),
        )
    """

    root: str = Field(description="Local folder or s3://bucket/prefix holding the per-document files.")
    s3: S3Resource = Field(
        description="dagster-aws S3 resource used only for s3:// roots (endpoint, region, credentials)."
    )

    _storage: Any = PrivateAttr(default=None)

    def __init__(self, **data: Any):
        # Dagster drops defaults declared on nested-resource fields (its metaclass rewrites them),
        # so the default S3Resource is filled in here.
        if data.get("s3") is None:
            data["s3"] = S3Resource()
        super().__init__(**data)

    def get_storage(self) -> Storage:
        """The :class:`crawlmix.storage.Storage` for ``root`` (cached per resource instance)."""
        if self._storage is None:
            # Outside a run (the CLI asks for the storage between runs) the nested S3 resource still
            # holds EnvVar references; resolving them here is a no-op inside a run.
            self._storage = storage_for(self.root, self.s3.process_config_and_initialize().get_client)
        return self._storage
