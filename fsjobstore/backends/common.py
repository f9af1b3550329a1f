"""What every backend shares: the primitives' own errors, version tokens, sizes, readers.

No I/O but the local file helpers at the end.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets

from typing_extensions import override

__all__ = [
    "BLOCK_SIZE",
    "COPY_BUFFER",
    "NotStored",
    "SizedReader",
    "VersionConflict",
    "content_token",
    "local_temp",
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
