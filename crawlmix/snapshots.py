"""Crawl snapshots on disk or S3: which exist, which are complete, and which files make each shard.

A snapshot is a folder (or S3 prefix) ``<root>/<snapshot id>/`` holding input files and a
``_SUCCESS`` marker written last. Only complete snapshots are ever read, so a snapshot's file list
is immutable once seen, and the file-to-shard assignment below is stable under re-listing.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from crawlmix.ingest.readers import is_supported
from crawlmix.settings import shard_keys
from crawlmix.storage import parse_s3_uri

SUCCESS_MARKER = "_SUCCESS"
_SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")


class SnapshotError(ValueError):
    """A snapshot id or snapshot folder is not usable; the message says why."""


def validate_snapshot_id(snapshot_id: str) -> str:
    """Snapshot ids become partition keys and path components, so they must be plain names."""
    if (
        not isinstance(snapshot_id, str)
        # fullmatch: `$` in match() would accept a trailing newline
        or not _SNAPSHOT_ID.fullmatch(snapshot_id)
        or ".." in snapshot_id
    ):
        raise SnapshotError(
            f"invalid snapshot id {snapshot_id!r}: use 1-128 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit, without '..'"
        )
    return snapshot_id


@dataclass(frozen=True)
class InputFile:
    name: str  # path relative to the snapshot folder, '/'-separated
    size: int
    uri: str  # absolute local path or s3:// URI, what the reader opens


@dataclass(frozen=True)
class SnapshotListing:
    snapshot_id: str
    input_files: list[InputFile]
    ignored_files: list[str]  # files present but of no supported format (reported, not read)


class SnapshotSource(ABC):
    """Lists and opens snapshots under one root."""

    root: str

    @abstractmethod
    def snapshot_ids(self) -> list[str]:
        """Names of the folders directly under the root, sorted (validity not yet checked)."""

    @abstractmethod
    def is_complete(self, snapshot_id: str) -> bool: ...

    @abstractmethod
    def _list_files(self, snapshot_id: str) -> list[tuple[str, int]]:
        """(relative name, size) of every file under the snapshot folder."""

    @abstractmethod
    def uri(self, snapshot_id: str, name: str) -> str: ...

    @abstractmethod
    @contextmanager
    def open_input(self, uri: str) -> Iterator[BinaryIO]: ...

    @abstractmethod
    def write_marker(self, snapshot_id: str) -> None: ...

    def complete_snapshots(self) -> tuple[list[str], list[str]]:
        """(complete valid snapshot ids, rejected names with reasons) in sorted order."""
        complete, rejected = [], []
        for name in self.snapshot_ids():
            try:
                validate_snapshot_id(name)
                if self.is_complete(name):
                    complete.append(name)
            except SnapshotError as exc:
                rejected.append(str(exc))
        return complete, rejected

    def listing(self, snapshot_id: str) -> SnapshotListing:
        validate_snapshot_id(snapshot_id)
        inputs, ignored = [], []
        for name, size in sorted(self._list_files(snapshot_id)):
            base = name.rsplit("/", 1)[-1]
            if base == SUCCESS_MARKER or base.startswith("."):
                continue
            if is_supported(name):
                inputs.append(InputFile(name=name, size=size, uri=self.uri(snapshot_id, name)))
            else:
                ignored.append(name)
        return SnapshotListing(snapshot_id, inputs, ignored)


class LocalSnapshotSource(SnapshotSource):
    def __init__(self, root: str):
        self.root = str(Path(root).resolve())

    def _folder(self, snapshot_id: str) -> Path:
        folder = Path(self.root) / validate_snapshot_id(snapshot_id)
        if not self._inside_root(folder):
            raise SnapshotError(
                f"snapshot {snapshot_id!r} is a link leading outside the snapshots root {self.root}"
            )
        return folder

    def _inside_root(self, path: Path) -> bool:
        """Whether ``path``, with every link followed (dangling or not), stays under the real root."""
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)

    def snapshot_ids(self) -> list[str]:
        root = Path(self.root)
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def is_complete(self, snapshot_id: str) -> bool:
        return (self._folder(snapshot_id) / SUCCESS_MARKER).is_file()

    def _list_files(self, snapshot_id: str) -> list[tuple[str, int]]:
        folder = self._folder(snapshot_id)
        # Dangling links are listed on purpose: reading them fails the shard with the file's name,
        # instead of the shard silently coming out short. A link leading outside the snapshots root
        # fails the listing: the pipeline must never read (and publish) files from elsewhere.
        files = []
        for p in folder.rglob("*"):
            if not (p.is_file() or p.is_symlink()):
                continue
            name = p.relative_to(folder).as_posix()
            if not self._inside_root(p):
                raise SnapshotError(
                    f"snapshot {snapshot_id!r}: {name} is a link leading outside the snapshots root {self.root}"
                )
            files.append((name, p.stat().st_size if p.exists() else 0))
        return files

    def uri(self, snapshot_id: str, name: str) -> str:
        return str(self._folder(snapshot_id) / name)

    @contextmanager
    def open_input(self, uri: str) -> Iterator[BinaryIO]:
        with open(uri, "rb") as handle:
            yield handle

    def write_marker(self, snapshot_id: str) -> None:
        (self._folder(snapshot_id) / SUCCESS_MARKER).touch()


class S3SnapshotSource(SnapshotSource):
    def __init__(self, root: str, client: Any):
        self.root = root.rstrip("/")
        self.bucket, self.prefix = parse_s3_uri(root)
        self.client = client

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def snapshot_ids(self) -> list[str]:
        prefix = self._key("") + "/" if self.prefix else ""
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix):].rstrip("/"))
        return sorted(names)

    def is_complete(self, snapshot_id: str) -> bool:
        key = self._key(validate_snapshot_id(snapshot_id), SUCCESS_MARKER)
        response = self.client.list_objects_v2(Bucket=self.bucket, Prefix=key, MaxKeys=1)
        return any(obj["Key"] == key for obj in response.get("Contents", []))

    def _list_files(self, snapshot_id: str) -> list[tuple[str, int]]:
        folder = self._key(validate_snapshot_id(snapshot_id)) + "/"
        files = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=folder):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(folder):]
                if not name or name.endswith("/"):
                    continue  # a zero-byte "folder" placeholder some uploaders create
                if any(part in ("", ".", "..") for part in name.split("/")):
                    # S3 keeps such keys literally, but HTTP clients and proxies may normalize
                    # `..` in the request path and fetch an object outside the snapshot.
                    raise SnapshotError(
                        f"snapshot {snapshot_id!r}: object key {obj['Key']!r} has an empty, '.' or '..' path segment"
                    )
                files.append((name, int(obj["Size"])))
        return files

    def uri(self, snapshot_id: str, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(snapshot_id, name)}"

    @contextmanager
    def open_input(self, uri: str) -> Iterator[BinaryIO]:
        bucket, key = parse_s3_uri(uri)
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield body
        finally:
            body.close()

    def write_marker(self, snapshot_id: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(snapshot_id, SUCCESS_MARKER), Body=b"")


def snapshot_source_for(root: str, s3_client_factory=None) -> SnapshotSource:
    if root.startswith("s3://"):
        if s3_client_factory is None:
            raise ValueError(f"snapshots root {root} is on S3 but no S3 client was configured")
        return S3SnapshotSource(root, s3_client_factory())
    return LocalSnapshotSource(root)


def assign_shards(files: list[InputFile], n_shards: int) -> dict[str, list[InputFile]]:
    """Deterministic, size-balanced grouping of a snapshot's files into shards.

    Largest file first onto the currently lightest shard (ties by name and shard order), so the
    result depends only on the file set, never on listing order, and shards carry similar bytes.
    Within a shard, files keep name order so record order is reproducible.
    """
    keys = shard_keys(n_shards)
    groups: dict[str, list[InputFile]] = {key: [] for key in keys}
    loads = {key: 0 for key in keys}
    for f in sorted(files, key=lambda f: (-f.size, f.name)):
        lightest = min(keys, key=lambda k: (loads[k], k))
        groups[lightest].append(f)
        loads[lightest] += f.size
    return {key: sorted(group, key=lambda f: f.name) for key, group in groups.items()}
