"""The generic backend: any fsspec filesystem, last writer wins.

A backend is the only layer that knows filesystems differ. It works on full
paths (root joined with a key) and offers the store a few primitives:
versioned reads, exclusive creates, conditional replaces, atomic streamed
writes, and bulk reads, writes and deletes. Subclasses replace the
primitives their filesystem can do better or more safely.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, ClassVar

from fsspec import AbstractFileSystem
from typing_extensions import override

__all__ = [
    "BLOCK_SIZE",
    "COPY_BUFFER",
    "Backend",
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


class Backend:
    """Storage primitives on one fsspec filesystem.

    The generic implementation makes no concurrency promise: conditional
    writes read, compare and write without a lock, so concurrent writers can
    overwrite each other. Subclasses that can do better set
    :attr:`detects_concurrent_updates`.

    Parameters
    ----------
    fs
        The filesystem.
    root
        The store's root path on ``fs``, without a trailing slash.
    """

    #: Whether ``create`` and ``replace`` are safe against concurrent writers.
    detects_concurrent_updates: ClassVar[bool] = False

    def __init__(self, fs: AbstractFileSystem, root: str) -> None:
        self.fs = fs
        self.root = root

    # -- single small objects -------------------------------------------------

    def read(self, path: str) -> tuple[bytes, str]:
        """Return the bytes at ``path`` and their version token.

        Raises
        ------
        FileNotFoundError
            Nothing at ``path``.
        """
        data = self.fs.cat_file(path)
        return data, content_token(data)

    def create(self, path: str, data: bytes) -> str:
        """Write ``data`` at ``path`` unless something is there; return the token.

        Raises
        ------
        FileExistsError
            Something is stored at ``path`` already.
        """
        if self.fs.exists(path):
            raise FileExistsError(path)
        self.write(path, data)
        return content_token(data)

    def replace(self, path: str, data: bytes, token: str) -> str:
        """Write ``data`` at ``path`` if the stored version is ``token``.

        Raises
        ------
        FileNotFoundError
            Nothing at ``path``.
        VersionConflict
            The stored version is not ``token``.
        """
        _, current = self.read(path)
        if current != token:
            raise VersionConflict(path)
        self.write(path, data)
        return content_token(data)

    def write(self, path: str, data: bytes) -> None:
        """Write ``data`` at ``path``, replacing what is there, in one operation."""
        self.fs.pipe_file(path, data)

    # -- many small objects ---------------------------------------------------

    def read_many(self, paths: list[str]) -> dict[str, tuple[bytes, str]]:
        """Read many paths in one bulk call; paths gone meanwhile are left out."""
        if not paths:
            return {}
        found = self.fs.cat(paths, on_error="omit")
        return {p: (d, content_token(d)) for p, d in found.items()}

    def read_each(self, paths: list[str]) -> dict[str, tuple[bytes, str]]:
        """Read paths one by one, leaving out missing ones: for cheap, local reads."""
        found = {}
        for path in paths:
            try:
                found[path] = self.read(path)
            except FileNotFoundError:
                continue
        return found

    def create_many(self, items: Mapping[str, bytes]) -> tuple[dict[str, str], list[str]]:
        """Create many paths in one bulk call.

        Returns
        -------
        tokens, existing
            The version token of each path written, and the paths that were
            already stored and so were not written.
        """
        existing = [p for p in items if self.fs.exists(p)]
        todo = {p: d for p, d in items.items() if p not in existing}
        if todo:
            self.fs.pipe(dict(todo))
        return {p: content_token(d) for p, d in todo.items()}, existing

    def write_many(self, items: Mapping[str, bytes]) -> None:
        """Write many paths in one bulk call."""
        if items:
            self.fs.pipe(dict(items))

    def delete_many(self, paths: list[str]) -> None:
        """Delete many paths in one bulk call; missing ones are ignored."""
        if not paths:
            return
        try:
            self.fs.rm(paths)
        except FileNotFoundError:
            # Some filesystems refuse the whole call for one missing path.
            for path in paths:
                try:
                    self.fs.rm_file(path)
                except FileNotFoundError:
                    pass

    def delete(self, path: str) -> bool:
        """Delete one file; return whether it was there."""
        if not self.exists(path):
            return False
        self.delete_many([path])
        return True

    def move_many(self, moves: Mapping[str, tuple[str, bytes]]) -> None:
        """Move each ``src`` to ``dst``; ``data`` is its content, already read."""
        self.write_many(dict(moves.values()))
        self.delete_many(list(moves))

    def list_files(self, prefix: str) -> list[str]:
        """Every file below the directory ``prefix``, recursively; [] if none."""
        try:
            return sorted(self.fs.find(prefix))
        except FileNotFoundError:
            return []

    def exists(self, path: str) -> bool:
        """Whether a file is stored at ``path``."""
        return bool(self.fs.isfile(path))

    def size(self, path: str) -> int:
        """Size of the file at ``path``; FileNotFoundError if none."""
        info = self.fs.info(path)
        if info.get("type") == "directory":
            raise FileNotFoundError(path)
        return int(info["size"])

    # -- streams and local files ----------------------------------------------

    def open_read(self, path: str) -> IO[bytes]:
        """Open ``path`` for reading; the handle is its own context manager.

        Opening here rather than on entering a ``with`` lets a missing file
        be told apart from a FileNotFoundError raised later, in the body.

        Raises
        ------
        NotStored
            Nothing at ``path``.
        """
        try:
            handle: IO[bytes] = self.fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise NotStored(path) from exc
        return handle

    @contextmanager
    def open_write(self, path: str) -> Iterator[IO[bytes]]:
        """Write ``path`` as a stream; nothing is stored unless the body succeeds.

        The generic way spools to a local temporary file (in memory while
        small) and uploads it whole when the body returns, so readers never
        see part of it and memory stays bounded.
        """
        with tempfile.SpooledTemporaryFile(max_size=BLOCK_SIZE) as spool:
            yield spool
            size = spool.seek(0, os.SEEK_END)
            spool.seek(0)
            if size <= BLOCK_SIZE:
                self.write(path, spool.read())
            else:
                self.write_stream(path, spool)

    def write_stream(self, path: str, source: IO[bytes]) -> None:
        """Upload a large stream; subclasses make it invisible until complete."""
        with self.fs.open(path, "wb") as dst:
            shutil.copyfileobj(source, dst, COPY_BUFFER)

    def upload(self, local_path: str, path: str) -> None:
        """Copy a local file to ``path`` atomically."""
        self.fs.put_file(local_path, path)

    def download(self, path: str, local_path: str, *, symlink: bool = False) -> None:
        """Copy ``path`` to a local file, replacing it atomically.

        Raises
        ------
        FileNotFoundError
            Nothing at ``path`` (the local side's errors keep their own path).
        """
        del symlink  # only meaningful where the store itself is on local disk
        with self.open_read(path) as src:
            tmp = local_temp(local_path)
            try:
                with open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, COPY_BUFFER)
                os.replace(tmp, local_path)
            except BaseException:
                unlink_quietly(tmp)
                raise

    # -- whole-store operations -----------------------------------------------

    def prepare(self, create: bool = False) -> None:
        """Make what writes need: directories, and with ``create`` the bucket too."""

    def prune(self, directory: str) -> None:
        """Remove ``directory`` if it is empty and the filesystem has directories."""

    def remove_root(self) -> None:
        """Remove what is left of the root once the store inside it is deleted."""
        try:
            if self.fs.isdir(self.root) and not self.fs.ls(self.root, detail=False):
                self.fs.rmdir(self.root)
        except (OSError, NotImplementedError):
            # Object stores have no real directories; nothing is left behind.
            pass

    def entries(self, directory: str) -> list[str]:
        """Names directly inside ``directory``; [] if it does not exist."""
        try:
            return [posixpath.basename(p.rstrip("/")) for p in self.fs.ls(directory, detail=False)]
        except FileNotFoundError:
            return []


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
