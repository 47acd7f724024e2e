"""The crawl-snapshot source as a Dagster resource: a local folder or an S3 prefix."""

from __future__ import annotations

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from crawlmix.ingest.url_filter import UrlBlocklist
from crawlmix.snapshots import SnapshotSource, snapshot_source_for


class SnapshotsResource(ConfigurableResource):
    """Where crawl snapshots land: `<root>/<snapshot id>/` with a `_SUCCESS` marker written last,
    and the URL blocklists (local files or UT1-style folders) that keep pages out at ingestion."""

    root: str
    s3: S3Resource
    url_blocklists: list[str] = []

    _source: SnapshotSource | None = PrivateAttr(default=None)
    _blocklist: UrlBlocklist | None = PrivateAttr(default=None)

    def get_url_blocklist(self) -> UrlBlocklist | None:
        """The named lists, loaded once per process; None when none are named."""
        if not self.url_blocklists:
            return None
        if self._blocklist is None:
            self._blocklist = UrlBlocklist.load(list(self.url_blocklists))
        return self._blocklist

    def get_source(self) -> SnapshotSource:
        if self._source is None:
            # Outside a run (the CLI lists snapshots before any run) the nested S3 resource still
            # holds EnvVar references; resolving them here is a no-op inside a run.
            self._source = snapshot_source_for(self.root, self.s3.process_config_and_initialize().get_client)
        return self._source
