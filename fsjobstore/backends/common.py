"""What every backend shares: the primitives' own errors, version tokens, sizes, readers.

No I/O but the local file helpers at the end.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from fsspec import AbstractFileSystem
from typing_extensions import override

__all__ = [
    "BLOCK_SIZE",
    "COPY_BUFFER",
    "PAGE",
    "Entry",
    "NotStored",
    "ReportingReader",
    "SizedReader",
    "Temporary",
    "VersionConflict",
    "content_token",
    "local_temp",
    "pages_of",
    "same_service",
    "timestamp",
    "unlink_quietly",
]

#: Buffer for streamed copies: large enough for object-store parts to fill
#: quickly, small enough to keep memory bounded.
COPY_BUFFER = 4 * 1024 * 1024

#: Streams up to this size are spooled in memory and written in one request;
#: larger ones spill to local disk and go up in parts of this size. The
#: clients hold a few parts per open stream (s3fs defaults to 50 MiB parts,
#: about 150 MiB held), so it bounds a stream's memory.
BLOCK_SIZE = 8 * 1024 * 1024


T = TypeVar("T")

#: Paths per page of a listing: what S3 and GCS return per request, and a
#: bulk call's size; a page is what a caller holds at once.
PAGE = 1000


@dataclass(frozen=True)
class Entry:
    """A stored file, as a listing tells of it.

    Attributes
    ----------
    path
        Its full path on the backend.
    size
        Its size in bytes.
    md5
        The MD5 digest of its bytes, in hex, where the service's listing
        gives one (GCS, Azure; S3's ETag of a plain single-part object);
        None elsewhere.
    modified
        When it was last written (POSIX seconds), where the listing says.
    """

    path: str
    size: int
    md5: str | None = None
    modified: float | None = None


def pages_of(items: Iterable[T], size: int = PAGE) -> Iterator[list[T]]:
    """Group ``items`` into lists of at most ``size``, holding one list at a time."""
    page: list[T] = []
    for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def timestamp(value: object) -> float | None:
    """POSIX seconds of a listing's time field (a number or a datetime); None otherwise."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True)
class Temporary:
    """Something a writer left behind: a temporary file or an unfinished upload.

    Attributes
    ----------
    kind
        ``"file"`` (a temporary file), ``"lock"`` (an SFTP lock object),
        ``"upload"`` (an S3 multipart upload) or ``"blocks"`` (an uncommitted
        Azure blob).
    path
        Its full path on the backend's filesystem (for an upload, the path
        the upload was to write).
    size
        Bytes it holds, where the service tells; None otherwise.
    modified
        When it was last written (or the upload started), as a POSIX
        timestamp; None where the filesystem does not tell.
    upload_id
        The service's ID of an unfinished upload; None for files.
    """

    kind: str
    path: str
    size: int | None
    modified: float | None
    upload_id: str | None = None


class VersionConflict(Exception):
    """A conditional write found another version than the one expected."""


class NotStored(FileNotFoundError):
    """The stored side of a transfer is missing (the local side's errors differ)."""


def content_token(data: bytes) -> str:
    """Version token of some bytes; unique per write since job JSON carries a nonce."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class SizedReader(io.RawIOBase):
    """A read-only, seekable raw stream of ``size`` bytes; subclasses give ``readinto``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._pos = 0

    @override
    def readable(self) -> bool:
        return True

    @override
    def seekable(self) -> bool:
        return True

    @override
    def tell(self) -> int:
        return self._pos

    @override
    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos


def local_temp(local_path: str) -> str:
    """Return a temporary name beside ``local_path``, so ``os.replace`` stays atomic."""
    head, tail = os.path.split(local_path)  # a relative head is the same directory
    return os.path.join(head, f".{tail}.fsjobstore-{secrets.token_hex(6)}")


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


#: Options that tune only a client's caches and connection pool: filesystems
#: differing in nothing else reach the same service as the same user.
_CACHE_OPTIONS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"}
)
_POOL_OPTIONS = frozenset({"max_pool_connections"})  # inside botocore's config_kwargs


def same_service(a: AbstractFileSystem, b: AbstractFileSystem) -> bool:
    """Whether ``a`` and ``b`` reach the same service as the same user."""
    if type(a) is not type(b):
        return False
    if a is b:
        return True

    def essential(fs: AbstractFileSystem) -> dict[str, Any]:
        options = getattr(fs, "storage_options", None) or {}
        kept = {k: v for k, v in options.items() if k not in _CACHE_OPTIONS}
        config = kept.pop("config_kwargs", None)
        if isinstance(config, Mapping):
            config = {k: v for k, v in config.items() if k not in _POOL_OPTIONS}
        if config:
            kept["config_kwargs"] = config
        return kept

    try:
        return bool(essential(a) == essential(b))
    except Exception:  # option values that cannot be compared
        return False


class ReportingReader(io.RawIOBase):
    """A read-only raw stream over a filesystem's file, reporting its errors as builtins.

    Parameters
    ----------
    errors
        The backend's error boundary: a context manager for a path that
        turns client errors raised inside into builtin ones naming it.
    path
        The file's path, for the errors.
    handle
        The filesystem's open file.
    """

    def __init__(
        self,
        errors: Callable[[str], AbstractContextManager[None]],
        path: str,
        handle: Any,
    ) -> None:
        super().__init__()
        self._errors, self._path, self._handle = errors, path, handle

    @override
    def readable(self) -> bool:
        return True

    @override
    def readinto(self, buffer: Any) -> int:
        with self._errors(self._path):
            data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    @override
    def close(self) -> None:
        if not self.closed:
            with suppress(Exception):
                self._handle.close()
        super().close()
