"""File storage for per-document data: a local folder or an S3 prefix.

Pure library code (no Dagster import). Layout under the storage root::

    <root>/<asset>/<snapshot>/<shard>.<ext>

Keys are always relative ("raw_corpus/CC-MAIN-2024-10/0003.parquet"), made of validated parts
(letters, digits, ``-``, ``_``, ``.``; no separators, no ``.``/``..``, no leading dot).

Writes are atomic: :meth:`Storage.atomic_write_path` yields a local temporary file; on a clean exit
the file is committed in one step (local: fsync + ``os.replace`` in the destination folder; S3: one
upload, which S3 makes visible only once complete). On an exception the temporary file is removed and
any previous object under the key is left untouched, so a reader never sees a partial file.

A writer that is killed (SIGKILL, OOM, power loss) cannot remove its temporary file. Locally that
leaves a hidden ``.<name>.tmp-<hex>`` file that no reader lists, and
:meth:`Storage.sweep_orphaned_temp_files` removes such files later. A sweep must never remove a live
writer's file, and age alone cannot tell (an embedding step holds its temporary files for hours),
so the local writer holds an exclusive ``flock`` on its temporary file from creation to commit and
the sweeper removes only files it can lock itself *and* that are older than a threshold (one hour
by default). The lock dies with the writer's process; the age rule covers the instant between
creating a file and locking it, and files written by code that replaces the temporary file's inode
(a nested ``os.replace``), which are freshly written when that happens.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - no flock on Windows: only the age rule guards a sweep
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "KeyNotFoundError",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StorageError",
    "parse_s3_uri",
    "storage_for",
    "validate_key",
    "validate_key_part",
]


class StorageError(Exception):
    """Any failure of the storage layer that is not a plain argument error."""


class KeyNotFoundError(StorageError, FileNotFoundError):
    """The key does not exist (also a ``FileNotFoundError``, so either can be caught)."""


_PART_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_MAX_PART_LEN = 255
_TMP_MARKER = ".tmp-"
# How old an unlocked temporary file must be before a sweep removes it. An hour is far longer than
# any commit takes once a temporary file stops being locked (see the module docstring).
DEFAULT_ORPHAN_AGE_S = 3600.0
_S3_STAGING_PREFIX = "crawlmix-s3-"


def validate_key_part(part: str, what: str) -> str:
    """Return ``part`` if it is a safe single path component, else raise ``ValueError`` naming ``what``.

    Allowed: letters, digits, ``-``, ``_``, ``.``; not ``.`` or ``..``; no leading dot (names starting
    with a dot are reserved for hidden temporary files); at most 255 characters.
    """
    if not isinstance(part, str):
        raise ValueError(f"{what} must be a string, got {type(part).__name__}")
    if not part:
        raise ValueError(f"{what} must not be empty")
    if part in (".", ".."):
        raise ValueError(f"{what} must not be {part!r}")
    if len(part) > _MAX_PART_LEN:
        raise ValueError(f"{what} is longer than {_MAX_PART_LEN} characters")
    if not _PART_RE.fullmatch(part):  # fullmatch: `$` in match() would accept a trailing newline
        raise ValueError(
            f"{what} {part!r} may contain only letters, digits, '-', '_' and '.' "
            "(no path separators, spaces or other characters)"
        )
    if part.startswith("."):
        raise ValueError(f"{what} {part!r} must not start with '.' (reserved for temporary files)")
    return part


def validate_key(key: str, what: str = "key") -> str:
    """Validate a relative key made of ``/``-separated parts, each passing :func:`validate_key_part`."""
    if not isinstance(key, str):
        raise ValueError(f"{what} must be a string, got {type(key).__name__}")
    if not key:
        raise ValueError(f"{what} must not be empty")
    if key.startswith("/") or "\\" in key or re.match(r"^[A-Za-z]:", key):
        raise ValueError(f"{what} {key!r} must be relative to the storage root")
    for i, part in enumerate(key.split("/")):
        validate_key_part(part, f"{what} {key!r} part {i}")
    return key


def _normalize_prefix(prefix: str) -> str:
    """'' means everything; otherwise a folder-like key prefix without a trailing slash."""
    if prefix is None:
        return ""
    if not isinstance(prefix, str):
        raise ValueError(f"prefix must be a string, got {type(prefix).__name__}")
    stripped = prefix.rstrip("/")
    if not stripped:
        if prefix:
            raise ValueError(f"prefix {prefix!r} is not a relative key prefix")
        return ""
    return validate_key(stripped, "prefix")


def _is_hidden_key(key: str) -> bool:
    return any(part.startswith(".") for part in key.split("/"))


def _temp_name(name: str) -> str:
    """Hidden temp name in the destination folder that keeps the extension (np.save appends .npy)."""
    ext = os.path.splitext(name)[1]
    return f".{name}{_TMP_MARKER}{secrets.token_hex(8)}{ext}"


def _is_temp_name(name: str) -> bool:
    """A temporary file of an atomic write: ours, or one derived from ours by a nested writer
    (``.<our temp name>.tmp-<pid>-<hex>``, as the embedding chunk store makes)."""
    return name.startswith(".") and _TMP_MARKER in name


def _lock_for_writing(fd: int) -> None:
    """Hold an exclusive lock on the writer's temporary file (or staging folder) until its
    descriptor is closed. Blocking: a sweeper may hold the lock for the instant it takes to see
    that the file is fresh. Where the file system has no flock (ENOLCK, EOPNOTSUPP) the write goes
    on unlocked, and no sweeper can lock the file either, so it is never swept."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass


def _check_orphan_age(older_than_s: float) -> float:
    older_than_s = float(older_than_s)
    if not older_than_s >= 1.0:
        # The age rule is what protects a file in the instant between its creation and its lock.
        raise ValueError(f"older_than_s must be at least 1 second, got {older_than_s!r}")
    return older_than_s


def _newest_mtime(fd: int, is_dir: bool, path: str) -> float:
    newest = os.fstat(fd).st_mtime
    if is_dir:  # a file written inside a folder does not touch the folder's own mtime
        for dirpath, _dirs, files in os.walk(path, followlinks=False):
            for name in files:
                try:
                    newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
                except OSError:
                    pass
    return newest


def _remove_if_orphaned(path: str, cutoff: float) -> bool:
    """Remove the temporary file (or staging folder) at `path` when no live writer holds its lock
    and nothing in it was modified after `cutoff` (a time.time() value). True when removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # gone meanwhile, a symlink (never ours), or unreadable: not ours to remove
        return False
    try:
        st = os.fstat(fd)
        is_dir = stat.S_ISDIR(st.st_mode)
        if not (stat.S_ISREG(st.st_mode) or is_dir):
            return False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live writer holds it
                return False
        if _newest_mtime(fd, is_dir, path) > cutoff:
            return False
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            return False
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return False  # the name was re-pointed after we opened it: judge it on a later sweep
        if is_dir:
            shutil.rmtree(path, ignore_errors=True)
            return not os.path.lexists(path)
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class Storage(ABC):
    """A key/value file store rooted at ``root`` (a local path or ``s3://bucket/prefix``)."""

    root: str

    # -- keys -------------------------------------------------------------------------------------
    def key(self, asset: str, snapshot: str, shard: str, ext: str) -> str:
        """``"<asset>/<snapshot>/<shard>.<ext>"`` with each part validated."""
        validate_key_part(asset, "asset")
        validate_key_part(snapshot, "snapshot")
        validate_key_part(shard, "shard")
        validate_key_part(ext, "ext")
        return f"{asset}/{snapshot}/{shard}.{ext}"

    @abstractmethod
    def uri(self, key: str) -> str:
        """Absolute path (local) or ``s3://bucket/prefix/key`` of ``key``, for metadata."""

    # -- writing ----------------------------------------------------------------------------------
    @abstractmethod
    @contextmanager
    def atomic_write_path(self, key: str) -> Iterator[str]:
        """Yield a local temp path to write; commit atomically to ``key`` on clean exit."""

    def write_bytes(self, key: str, data: bytes) -> None:
        """Atomically replace ``key`` with ``data``."""
        with self.atomic_write_path(key) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)

    @abstractmethod
    def sweep_orphaned_temp_files(self, prefix: str = "", older_than_s: float | None = None) -> list[str]:
        """Remove what killed writers left behind under ``prefix`` and return what was removed.

        Only temporary files no live writer holds and that are older than ``older_than_s`` (default:
        the storage's ``orphan_age_s``) are removed; committed files are never touched."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    # -- reading ----------------------------------------------------------------------------------
    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """A seekable binary file object for ``key``."""

    @abstractmethod
    @contextmanager
    def local_copy(self, key: str) -> Iterator[str]:
        """A local path holding the content of ``key`` for the duration of the block."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Sorted keys under ``prefix`` (a folder-like key prefix; ``""`` for all), never temp files.

        ``list_keys("raw_corpus/s1")`` returns ``raw_corpus/s1/...`` keys but not ``raw_corpus/s10/...``.
        """

    @abstractmethod
    def size(self, key: str) -> int: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root!r})"


# ------------------------------------------------------------------------------------------------
# Local
# ------------------------------------------------------------------------------------------------


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalStorage(Storage):
    """Files under a local folder. Every resolved key must stay inside the (real) root."""

    def __init__(self, root: str, orphan_age_s: float = DEFAULT_ORPHAN_AGE_S):
        if not isinstance(root, str) or not root.strip():
            raise ValueError("local storage root must be a non-empty path")
        if "://" in root:
            raise ValueError(f"local storage root {root!r} looks like a URI; only s3:// is supported")
        path = os.path.abspath(os.path.expanduser(root))
        os.makedirs(path, exist_ok=True)
        self.root = os.path.realpath(path)
        self.orphan_age_s = _check_orphan_age(orphan_age_s)

    def _inside_root(self, real: str) -> bool:
        return real == self.root or real.startswith(self.root.rstrip(os.sep) + os.sep)

    def _path(self, key: str) -> str:
        validate_key(key)
        path = os.path.join(self.root, *key.split("/"))
        real = os.path.realpath(path)
        if not self._inside_root(real) or real == self.root:
            raise StorageError(f"key {key!r} resolves outside the storage root {self.root!r}")
        return path

    def uri(self, key: str) -> str:
        return self._path(key)

    @contextmanager
    def _locked_temp(self, key: str, empty_is_nothing: bool) -> Iterator[tuple[str, int]]:
        """(temporary path, its locked descriptor); committed to ``key`` on a clean exit.

        The temporary file exists, empty and locked, from the start, so a sweep never mistakes it
        for an orphan however long the writer takes; the lock is released only after the rename.
        With ``empty_is_nothing`` an empty file counts as nothing written (a file writer that wrote
        to another path, as ``np.save`` does to a name without ``.npy``); no format we write is empty.
        """
        final = self._path(key)
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        # Re-check after creating folders: a symlinked folder must not lead outside the root.
        if not self._inside_root(os.path.realpath(folder)):
            raise StorageError(f"key {key!r} resolves outside the storage root {self.root!r}")
        tmp = os.path.join(folder, _temp_name(os.path.basename(final)))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            _lock_for_writing(fd)
            yield tmp, fd
            try:
                st = os.lstat(tmp)
            except FileNotFoundError:
                raise StorageError(
                    f"nothing was written to the temporary file for {key!r}; not committed"
                ) from None
            if not stat.S_ISREG(st.st_mode):
                raise StorageError(f"temporary file for {key!r} is not a regular file")
            if empty_is_nothing and st.st_size == 0:
                raise StorageError(
                    f"nothing was written to the temporary file for {key!r} (it is empty); not committed"
                )
            sync_fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(sync_fd)
            finally:
                os.close(sync_fd)
            os.replace(tmp, final)
            _fsync_dir(folder)
        except BaseException:
            _remove_quietly(tmp)
            raise
        finally:
            os.close(fd)

    @contextmanager
    def atomic_write_path(self, key: str) -> Iterator[str]:
        with self._locked_temp(key, empty_is_nothing=True) as (tmp, _fd):
            yield tmp

    def write_bytes(self, key: str, data: bytes) -> None:
        with self._locked_temp(key, empty_is_nothing=False) as (_tmp, fd):
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view):]

    def sweep_orphaned_temp_files(self, prefix: str = "", older_than_s: float | None = None) -> list[str]:
        """Remove temporary files under ``prefix`` (a folder-like key prefix, ``""`` for the whole
        root) whose writer is gone: unlocked and not modified for ``older_than_s`` seconds
        (default ``orphan_age_s``). Returns their paths relative to the root. Never raises for a
        file it cannot judge or remove: it is left for a later sweep."""
        cutoff = time.time() - _check_orphan_age(self.orphan_age_s if older_than_s is None else older_than_s)
        prefix = _normalize_prefix(prefix)
        start = os.path.join(self.root, *prefix.split("/")) if prefix else self.root
        if not os.path.isdir(start) or not self._inside_root(os.path.realpath(start)):
            return []
        removed = []
        for dirpath, _dirnames, filenames in os.walk(start, followlinks=False):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if _is_temp_name(name) and _remove_if_orphaned(path, cutoff):
                    removed.append(os.path.relpath(path, self.root).replace(os.sep, "/"))
        return sorted(removed)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            raise KeyNotFoundError(f"no such key {key!r} in {self.root!r}") from None

    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            raise KeyNotFoundError(f"no such key {key!r} in {self.root!r}") from None
        with fh:
            yield fh

    @contextmanager
    def local_copy(self, key: str) -> Iterator[str]:
        path = self._path(key)
        if not os.path.isfile(path):
            raise KeyNotFoundError(f"no such key {key!r} in {self.root!r}")
        yield path

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise StorageError(f"key {key!r} is a folder, not a file") from None
        except OSError as exc:  # pragma: no cover - platform specific (EISDIR vs EPERM)
            if exc.errno in (errno.EISDIR, errno.EPERM) and os.path.isdir(path):
                raise StorageError(f"key {key!r} is a folder, not a file") from None
            raise

    def list_keys(self, prefix: str) -> list[str]:
        prefix = _normalize_prefix(prefix)
        start = os.path.join(self.root, *prefix.split("/")) if prefix else self.root
        if prefix:
            if not self._inside_root(os.path.realpath(start)):
                raise StorageError(f"prefix {prefix!r} resolves outside the storage root")
            if not os.path.isdir(start):
                return []
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = os.path.relpath(dirpath, self.root)
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
                try:
                    path = self._path(key)
                except (ValueError, StorageError):
                    continue  # names we would never write, or symlinks leading outside the root
                if os.path.isfile(path):
                    out.append(key)
        return sorted(out)

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            return os.path.getsize(path)
        except FileNotFoundError:
            raise KeyNotFoundError(f"no such key {key!r} in {self.root!r}") from None


def _remove_quietly(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass


# ------------------------------------------------------------------------------------------------
# S3
# ------------------------------------------------------------------------------------------------

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``"s3://bucket/a/b/"`` -> ``("bucket", "a/b")``; ``ValueError`` with a clear message otherwise."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI (expected 's3://bucket[/prefix]'): {uri!r}")
    rest = uri[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"S3 URI {uri!r} has no bucket name (expected 's3://bucket[/prefix]')")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise ValueError(
            f"S3 URI {uri!r}: {bucket!r} is not a valid bucket name "
            "(3-63 lowercase letters, digits, '.', '-')"
        )
    prefix = prefix.strip("/")
    if prefix:
        for part in prefix.split("/"):
            if part in ("", ".", ".."):
                raise ValueError(f"S3 URI {uri!r} has an empty, '.' or '..' path segment")
    return bucket, prefix


def _client_error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if not code and status:
        code = str(status)
    return code


def _is_not_found(exc: BaseException) -> bool:
    return _client_error_code(exc) in ("404", "NoSuchKey", "NotFound")


class S3Storage(Storage):
    """Objects under ``s3://bucket/prefix`` through a boto3 S3 client."""

    def __init__(self, bucket: str, prefix: str, client: Any, orphan_age_s: float = DEFAULT_ORPHAN_AGE_S):
        if not isinstance(bucket, str) or not _BUCKET_RE.fullmatch(bucket):
            raise ValueError(f"{bucket!r} is not a valid S3 bucket name")
        prefix = (prefix or "").strip("/")
        if prefix:
            for part in prefix.split("/"):
                if part in ("", ".", ".."):
                    raise ValueError(f"S3 prefix {prefix!r} has an empty, '.' or '..' segment")
        if client is None:
            raise ValueError("S3Storage needs a boto3 S3 client")
        self.bucket = bucket
        self.prefix = prefix
        self.client = client
        self.root = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.orphan_age_s = _check_orphan_age(orphan_age_s)

    def _s3key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._s3key(key)}"

    @contextmanager
    def _tempdir(self) -> Iterator[str]:
        """A local staging folder, locked while in use (see :meth:`sweep_orphaned_temp_files`)."""
        folder = tempfile.mkdtemp(prefix=_S3_STAGING_PREFIX)
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            _lock_for_writing(fd)
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            os.close(fd)

    def sweep_orphaned_temp_files(self, prefix: str = "", older_than_s: float | None = None) -> list[str]:
        """A killed S3 writer leaves nothing in the bucket: a PUT, or a multipart upload completed
        in one call, makes the object visible only when it is whole (the parts of an interrupted
        multipart upload are invisible; a bucket lifecycle rule `AbortIncompleteMultipartUpload`
        deletes them). It can leave its local staging folder (``crawlmix-s3-*`` in the system temp
        folder): those that no live process holds and that are older than ``older_than_s`` are
        removed, whatever ``prefix`` (they are not keyed by it). Returns their paths."""
        _normalize_prefix(prefix)
        cutoff = time.time() - _check_orphan_age(self.orphan_age_s if older_than_s is None else older_than_s)
        staging = tempfile.gettempdir()
        try:
            names = [n for n in os.listdir(staging) if n.startswith(_S3_STAGING_PREFIX)]
        except OSError:
            return []
        return sorted(
            os.path.join(staging, name) for name in names if _remove_if_orphaned(os.path.join(staging, name), cutoff)
        )

    @contextmanager
    def atomic_write_path(self, key: str) -> Iterator[str]:
        s3key = self._s3key(key)
        with self._tempdir() as folder:
            tmp = os.path.join(folder, key.rsplit("/", 1)[-1])
            yield tmp
            if not os.path.isfile(tmp):
                raise StorageError(
                    f"nothing was written to the temporary file for {key!r}; not committed"
                )
            # upload_file: one PUT, or a multipart upload for large files; either way S3 makes the
            # object visible only when the upload completes, and boto3 aborts a failed multipart.
            try:
                self.client.upload_file(tmp, self.bucket, s3key)
            except Exception as exc:
                raise StorageError(f"upload of {self.uri(key)} failed: {exc}") from exc

    def write_bytes(self, key: str, data: bytes) -> None:
        s3key = self._s3key(key)
        try:
            self.client.put_object(Bucket=self.bucket, Key=s3key, Body=bytes(data))
        except Exception as exc:
            raise StorageError(f"upload of {self.uri(key)} failed: {exc}") from exc

    def read_bytes(self, key: str) -> bytes:
        s3key = self._s3key(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=s3key)
        except Exception as exc:
            if _is_not_found(exc):
                raise KeyNotFoundError(f"no such key {key!r} in {self.root!r}") from None
            raise
        with response["Body"] as body:
            return body.read()

    def _download(self, key: str, folder: str) -> str:
        s3key = self._s3key(key)
        path = os.path.join(folder, key.rsplit("/", 1)[-1])
        try:
            self.client.download_file(self.bucket, s3key, path)
        except Exception as exc:
            if _is_not_found(exc):
                raise KeyNotFoundError(f"no such key {key!r} in {self.root!r}") from None
            raise
        return path

    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        with self._tempdir() as folder:
            path = self._download(key, folder)
            with open(path, "rb") as fh:
                yield fh

    @contextmanager
    def local_copy(self, key: str) -> Iterator[str]:
        with self._tempdir() as folder:
            yield self._download(key, folder)

    def _head(self, key: str) -> dict | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._s3key(key))
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise KeyNotFoundError(f"no such key {key!r} in {self.root!r}")
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._s3key(key))

    def list_keys(self, prefix: str) -> list[str]:
        prefix = _normalize_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        query = f"{base}{prefix}/" if prefix else base
        out: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if query:
            kwargs["Prefix"] = query
        for page in paginator.paginate(**kwargs):
            for obj in page.get("Contents", []) or []:
                full = obj["Key"]
                key = full[len(base) :]
                if not key or key.endswith("/") or _is_hidden_key(key):
                    continue
                try:
                    validate_key(key)
                except ValueError:
                    continue
                out.append(key)
        return sorted(out)


# ------------------------------------------------------------------------------------------------


def storage_for(root: str, s3_client_factory: Callable[[], Any] | None = None) -> Storage:
    """``"s3://bucket/prefix"`` -> :class:`S3Storage` (needs ``s3_client_factory``), else :class:`LocalStorage`."""
    if not isinstance(root, str) or not root.strip():
        raise ValueError("storage root must be a non-empty string (a folder or s3://bucket/prefix)")
    root = root.strip()
    if root.startswith("s3://"):
        bucket, prefix = parse_s3_uri(root)
        if s3_client_factory is None:
            raise ValueError(f"storage root {root!r} is on S3 but no S3 client factory was given")
        return S3Storage(bucket, prefix, s3_client_factory())
    if root.startswith("file://"):
        root = root[len("file://") :]
    if "://" in root:
        raise ValueError(f"unsupported storage root {root!r}: use a local folder or s3://bucket/prefix")
    return LocalStorage(root)


def stored_shards(store: Storage, asset: str, snapshots: Sequence[str], ext: str) -> list[tuple[str, str]]:
    """(snapshot, shard) of every `<asset>/<snapshot>/<shard>.<ext>` present, sorted."""
    suffix = f".{ext}"
    refs = []
    for snapshot in snapshots:
        for key in store.list_keys(f"{asset}/{snapshot}"):
            name = key.rsplit("/", 1)[-1]
            if name.endswith(suffix):
                refs.append((snapshot, name[: -len(suffix)]))
    return sorted(refs)
