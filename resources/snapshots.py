"""The crawl-snapshot source as a Dagster resource: a local folder or an S3 prefix."""

from __future__ import annotations

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from crawlmix.snapshots import SnapshotSource, snapshot_source_for


class SnapshotsResource(ConfigurableResource):
    """Where crawl snapshots land: `<root>/<snapshot id>/` with a `_SUCCESS` marker written last."""

    root: str
    s3: S3Resource

    _source: SnapshotSource | None = PrivateAttr(default=None)

    def get_source(self) -> SnapshotSource:
        if self._source is None:
            # Outside a run (the CLI lists snapshots before any run) the nested S3 resource still
            # holds EnvVar references; resolving them here is a no-op inside a run.
            self._source = snapshot_source_for(self.root, self.s3.process_config_and_initialize().get_client)
        return self._source
