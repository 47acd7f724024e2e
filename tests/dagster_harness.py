"""Build real snapshots and run the real Dagster definitions against a throwaway home."""

from __future__ import annotations

import io
from pathlib import Path

from dagster import AssetKey, DagsterInstance
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawlmix.settings import Settings
from curation_assets.partitions import crawl_snapshots, partition_key_for

PAGE = """<html><head><title>{title}</title></head><body>
<nav><a href="/">Home</a> | <a href="/docs">Docs</a></nav>
<main><h1>{title}</h1>
<p>{body}</p>
<p>This paragraph is here so the extractor has enough running text to consider the page main
content rather than boilerplate, as on a real documentation page about {title}.</p>
</main><footer>Copyright 2026 Example</footer></body></html>"""


def html_page(title: str, body: str) -> bytes:
    return PAGE.format(title=title, body=body).encode("utf-8")


def write_warc(path: Path, responses: list[tuple[str, int, str, bytes]]) -> None:
    """responses: (url, HTTP status, content type, payload) written as gzip'd WARC response records."""
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, status, content_type, payload in responses:
            reason = {200: "OK", 404: "Not Found"}.get(status, "Status")
            http = StatusAndHeaders(
                f"{status} {reason}",
                [("Content-Type", content_type), ("Content-Length", str(len(payload)))],
                protocol="HTTP/1.1",
            )
            record = writer.create_warc_record(url, "response", payload=io.BytesIO(payload), http_headers=http)
            writer.write_record(record)


def make_snapshot(
    root: Path,
    snapshot_id: str,
    n_files: int = 2,
    complete: bool = True,
    bad: bool = True,
    plant_copies: bool = False,
    recrawl_of: str | None = None,
) -> Path:
    """A snapshot of `n_files` WARCs of distinct pages; the first file also carries a 404 and a duplicate.

    plant_copies: the last file also carries an exact copy of page 0-0 under a new URL (a copy in
    another file, so another shard) and a near copy of page 0-1 (same body, title changed).
    recrawl_of: the last file also re-fetches page 1-0 of that earlier snapshot byte for byte.
    """
    folder = root / snapshot_id
    folder.mkdir(parents=True)
    for i in range(n_files):
        pages = [
            (
                f"https://docs.example.org/{snapshot_id}/{i}/{j}.html",
                200,
                "text/html; charset=utf-8",
                html_page(f"Topic {i}-{j} of {snapshot_id}", f"Unique text number {i * 100 + j} " * 8),
            )
            for j in range(5)
        ]
        if bad and i == 0:
            pages.append(("https://docs.example.org/missing.html", 404, "text/html", b"<html>gone</html>"))
            pages.append(("https://docs.example.org/copy.html",) + pages[0][1:])
        if i == n_files - 1 and plant_copies:
            pages.append((f"https://mirror.example.org/{snapshot_id}/0/0.html", 200, "text/html; charset=utf-8",
                          html_page(f"Topic 0-0 of {snapshot_id}", "Unique text number 0 " * 8)))
            pages.append((f"https://mirror.example.org/{snapshot_id}/0/1.html", 200, "text/html; charset=utf-8",
                          html_page(f"Topic 0-1 of {snapshot_id} (mirror)", "Unique text number 1 " * 8)))
        if i == n_files - 1 and recrawl_of:
            pages.append((f"https://docs.example.org/{recrawl_of}/1/0.html", 200, "text/html; charset=utf-8",
                          html_page(f"Topic 1-0 of {recrawl_of}", "Unique text number 100 " * 8)))
        write_warc(folder / f"part-{i:03d}.warc.gz", pages)
    if complete:
        (folder / "_SUCCESS").touch()
    return folder


def settings_for(home: Path, shards: int = 2, **overrides: str) -> Settings:
    env = {"CRAWLMIX_HOME": str(home), "CRAWLMIX_SHARDS": str(shards), **overrides}
    return Settings.from_env(env)


def run_partition(
    defs, instance: DagsterInstance, snapshot: str, shard: str, job_name: str, run_config=None, assets=None
):
    """One partition of a job, optionally only some of its assets (with their checks)."""
    if snapshot not in instance.get_dynamic_partitions(crawl_snapshots.name):
        instance.add_dynamic_partitions(crawl_snapshots.name, [snapshot])
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key_for(snapshot, shard),
        raise_on_error=False,
        run_config=run_config,
        asset_selection=[AssetKey(a) for a in assets] if assets else None,
    )
