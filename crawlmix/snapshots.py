"""Crawl snapshots on disk or S3: which exist, which are complete, and which records make each shard.

A snapshot is a folder (or S3 prefix) ``<root>/<snapshot id>/`` holding input files and a
``_SUCCESS`` marker written last. Only complete snapshots are ever read, so a snapshot's bytes are
immutable once seen, and the record-range plan below is stable under re-listing.
"""

from __future__ import annotations

import bisect
import io
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from crawlmix.ingest.boundaries import RecordBoundaries
from crawlmix.ingest.readers import is_supported
from crawlmix.ingest.records import FileRange
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
    def open_input(self, uri: str, start: int = 0) -> Iterator[BinaryIO]:
        """A seekable binary stream of the file, positioned at byte `start`."""

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
    def open_input(self, uri: str, start: int = 0) -> Iterator[BinaryIO]:
        with open(uri, "rb") as handle:
            if start:
                handle.seek(start)
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
    def open_input(self, uri: str, start: int = 0) -> Iterator[BinaryIO]:
        bucket, key = parse_s3_uri(uri)
        stream = io.BufferedReader(_S3RangeReader(self.client, bucket, key, start), _S3_READ_BUFFER)
        try:
            yield stream
        finally:
            stream.close()

    def write_marker(self, snapshot_id: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(snapshot_id, SUCCESS_MARKER), Body=b"")


_S3_READ_BUFFER = 1 << 20


class _S3RangeReader(io.RawIOBase):
    """An S3 object as a seekable raw stream: each read after a seek opens one ranged GET
    (`Range: bytes=<position>-`) and streams from it, so a shard fetches only its own part of a
    file, and Parquet reads only the footer and the row groups it needs."""

    def __init__(self, client: Any, bucket: str, key: str, start: int):
        self._client = client
        self._bucket = bucket
        self._key = key
        self._position = start
        self._body = None
        self._size: int | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._object_size() + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        if position != self._position:
            self._close_body()
            self._position = position
        return position

    def readinto(self, buffer) -> int:
        if self._body is None and not self._open_body():
            return 0
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        self._close_body()
        super().close()

    def _open_body(self) -> bool:
        """Start a ranged GET at the position; False at or past the end of the object."""
        if self._size is not None and self._position >= self._size:
            return False
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # at or past the end
                return False
            raise
        self._body = response["Body"]
        return True

    def _object_size(self) -> int:
        if self._size is None:
            self._size = int(self._client.head_object(Bucket=self._bucket, Key=self._key)["ContentLength"])
        return self._size

    def _close_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None


def snapshot_source_for(root: str, s3_client_factory=None) -> SnapshotSource:
    if root.startswith("s3://"):
        if s3_client_factory is None:
            raise ValueError(f"snapshots root {root} is on S3 but no S3 client was configured")
        return S3SnapshotSource(root, s3_client_factory())
    return LocalSnapshotSource(root)


# =============================================================================================
# Shards: record ranges of the snapshot's files

# Opens a file (by uri) positioned at a byte offset: SnapshotSource.open_input.
OpenInput = Callable[[str, int], AbstractContextManager[BinaryIO]]


@dataclass(frozen=True)
class ShardInput:
    """What one shard reads: record ranges of the snapshot's files, in name order."""

    shard: str
    ranges: list[FileRange]
    # Files that one of this shard's cuts fell into but that cannot be split (one compressed
    # stream): the cut moved to the file's nearer edge, and the file is read whole by one shard.
    unsplittable_files: list[str] = field(default_factory=list)

    @property
    def input_bytes(self) -> int:
        return sum(r.n_bytes for r in self.ranges)


def shard_input(files: list[InputFile], n_shards: int, shard: str, open_input: OpenInput) -> ShardInput:
    """The record ranges of one shard, resolving only that shard's two cuts (a seek and a small
    read each), so any number of shards can plan themselves independently."""
    keys = shard_keys(n_shards)
    if shard not in keys:
        raise ValueError(f"unknown shard {shard!r}: expected one of {keys[0]} .. {keys[-1]}")
    index = keys.index(shard)
    cuts = _Cuts(files, n_shards, open_input)
    return cuts.shard(index, shard)


def plan_shards(files: list[InputFile], n_shards: int, open_input: OpenInput) -> dict[str, ShardInput]:
    """Every shard's record ranges at once: the same answer `shard_input` gives shard by shard."""
    cuts = _Cuts(files, n_shards, open_input)
    return {key: cuts.shard(index, key) for index, key in enumerate(shard_keys(n_shards))}


class _Cuts:
    """The snapshot's files in name order as one virtual byte stream of `total` bytes. Shard k
    covers [cut(k), cut(k+1)); cut(k) is the ideal point k * total // n moved to the first split
    point at or after it in the file it falls in (the file's end when none follows), or, in a file
    that cannot be split, to that file's nearer edge (its end on a tie). Cuts depend only on the
    bytes and n, never on listing order, and never decrease with k."""

    def __init__(self, files: list[InputFile], n_shards: int, open_input: OpenInput):
        if n_shards < 1:
            raise ValueError(f"n_shards must be at least 1, got {n_shards}")
        names = [f.name for f in files]
        if len(set(names)) != len(names):
            raise ValueError("a snapshot listing names a file twice")
        self._files = sorted(files, key=lambda f: f.name)
        self._starts = []
        position = 0
        for f in self._files:
            self._starts.append(position)
            position += f.size
        self.total = position
        self._n = n_shards
        self._open_input = open_input
        self._boundaries: dict[str, RecordBoundaries] = {}
        self._cuts: dict[int, tuple[int, str | None]] = {}

    def cut(self, k: int) -> tuple[int, str | None]:
        """(virtual offset of cut k, the unsplittable file it fell into, if any)."""
        if k not in self._cuts:
            self._cuts[k] = self._resolve(k)
        return self._cuts[k]

    def _resolve(self, k: int) -> tuple[int, str | None]:
        if k == 0:
            return 0, None
        if k == self._n:
            return self.total, None
        ideal = k * self.total // self._n
        if ideal == 0:
            return 0, None
        index = bisect.bisect_right(self._starts, ideal) - 1
        f, file_start = self._files[index], self._starts[index]
        local = ideal - file_start
        if local == 0:
            return ideal, None
        boundaries = self._boundaries_of(f)
        if not boundaries.splittable():
            return file_start + (0 if 2 * local < f.size else f.size), f.name
        return file_start + boundaries.at_or_after(local), None

    def _boundaries_of(self, f: InputFile) -> RecordBoundaries:
        if f.name not in self._boundaries:
            self._boundaries[f.name] = RecordBoundaries(
                f.name, f.size, lambda offset, uri=f.uri: self._open_input(uri, offset)
            )
        return self._boundaries[f.name]

    def shard(self, index: int, key: str) -> ShardInput:
        low, low_file = self.cut(index)
        high, high_file = self.cut(index + 1)
        last = index == self._n - 1
        # Only the files that can overlap [low, high): the one running into `low`, those starting inside.
        first = max(bisect.bisect_left(self._starts, low) - 1, 0)
        stop = len(self._files) if last else bisect.bisect_left(self._starts, high)
        ranges = []
        for f, file_start in zip(self._files[first:stop], self._starts[first:stop]):
            file_end = file_start + f.size
            if f.size == 0:
                # A file of no bytes goes to the shard whose range holds its position (the last
                # shard at the very end), so a dangling link listed as empty is still opened and
                # fails its shard with its name.
                if low <= file_start < high or (last and file_start == self.total):
                    ranges.append(FileRange.whole(f.name, f.uri, 0))
                continue
            start, end = max(low, file_start), min(high, file_end)
            if start < end:
                ranges.append(FileRange(f.name, f.uri, start - file_start, end - file_start, f.size))
        unsplittable = sorted({name for name in (low_file, high_file) if name is not None})
        return ShardInput(key, ranges, unsplittable)
