"""The generic backend: any fsspec filesystem, last writer wins.

A backend is the only layer that knows filesystems differ. It works on full
paths (root joined with a key) and offers the store a few primitives:
versioned reads, exclusive creates, conditional replaces, atomic streamed
writes, and bulk reads, writes and deletes. Subclasses replace the
primitives their filesystem can do better or more safely.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import posixpath
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypeVar

from fsspec import AbstractFileSystem

from ..layout import FOLDERS
from ..protocols import facts, protocol_of
from .common import (
    BLOCK_SIZE,
    COPY_BUFFER,
    Entry,
    NotStored,
    ReportingReader,
    VersionConflict,
    content_token,
    local_temp,
    pages_of,
    timestamp,
    unlink_quietly,
)
from .failures import as_builtin
from .lease import Holder, Lease
from .retries import retrying, unwrapped

if TYPE_CHECKING:
    from ..job import Config

T = TypeVar("T")

__all__ = ["Backend"]

#: Tries at making a folder that other writers are making at the same time.
_FOLDER_ATTEMPTS = 3


class Backend:
    """Storage primitives on one fsspec filesystem: the generic path.

    It works on any filesystem that implements the basic
    ``AbstractFileSystem`` calls. It makes the parent directories a write
    needs where the filesystem does not; where a rename within the
    filesystem is atomic (:attr:`Protocol.atomic_rename`), it writes to a
    temporary name in ``<root>/tmp/`` and renames it into place, so readers
    never see part of a write; elsewhere each write is one call to the
    filesystem, as atomic as the filesystem makes it. Where one filesystem
    object holds a single connection (:attr:`Protocol.one_connection`),
    each thread gets its own. Every error of the client comes out as a
    builtin exception naming the path.

    It makes no concurrency promise: conditional writes read, compare and
    write without a lock, so concurrent writers can overwrite each other.
    Subclasses that can do better set :attr:`detects_concurrent_updates`.

    Parameters
    ----------
    fs
        The filesystem.
    root
        The store's root path on ``fs``, without a trailing slash.
    """

    #: Whether ``create`` and ``replace`` are safe against concurrent writers.
    detects_concurrent_updates: ClassVar[bool] = False
    #: Whether a streamed read gives one version whole (or fails) when the
    #: file is replaced meanwhile; the generic path reads part by part.
    pins_stream_reads: ClassVar[bool] = False
    #: Whether a write into a missing directory fails, so that the backend
    #: makes the directory and writes again (object stores have none).
    needs_parents: ClassVar[bool] = True
    #: Whether reading a file costs no request (local disk, memory): where it
    #: does not, checksums come from listings, never from reading.
    local_reads: ClassVar[bool] = False

    def __init__(self, fs: AbstractFileSystem, root: str) -> None:
        self.root = root
        self.facts = facts(protocol_of(fs))
        self._fs = fs
        # Retried where the client has no retries of its own (see .retries).
        self._retried = retrying(fs, protocol_of(fs))
        self._threads: threading.local | None = None
        if self.facts.one_connection:
            # The thread that made the backend keeps the filesystem it was given.
            self._threads = threading.local()
            self._threads.fs = self._retried

    @property
    def filesystem(self) -> AbstractFileSystem:
        """The fsspec filesystem itself, as the store shows it to its users."""
        return unwrapped(self.fs)

    @property
    def fs(self) -> AbstractFileSystem:
        """What the backend calls: the filesystem, retried where its client has no retries.

        Where the filesystem holds one connection, each thread has its own.
        """
        if self._threads is None:
            return self._retried
        fs: AbstractFileSystem | None = getattr(self._threads, "fs", None)
        if fs is None:
            fs = self._threads.fs = retrying(_twin(self._fs), protocol_of(self._fs))
        return fs

    # -- options a store on this backend needs -----------------------------------

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        """Storage options every store on this backend needs, before the user's own."""
        return {}

    @classmethod
    def config_options(cls, config: Config, *, encrypted: bool = True) -> dict[str, Any]:
        """Storage options the seed's ``Config`` fields imply on this backend.

        With ``encrypted=False``, only what reaches the service (region,
        credentials), not encryption settings: the marker is written and
        read that way, so ``resume()`` can read it before it knows a key.
        """
        del config, encrypted
        return {}

    # -- the error boundary -------------------------------------------------------

    @contextmanager
    def _errors(self, path: str) -> Iterator[None]:
        """Report any client error inside as a builtin exception naming ``path``."""
        try:
            yield
        except (VersionConflict, NotStored):
            raise
        except Exception as exc:
            error = as_builtin(exc, path)
            if error is exc:
                raise
            raise error from exc

    # -- single small objects -------------------------------------------------

    def read(self, path: str) -> tuple[bytes, str]:
        """Return the bytes at ``path`` and their version token.

        Raises
        ------
        FileNotFoundError
            Nothing at ``path``.
        """
        try:
            with self._errors(path):
                data = bytes(self.fs.cat_file(path))
        except FileNotFoundError:
            raise
        except OSError:
            # Some servers answer a read of a folder with a bare failure (SFTP).
            if self._is_folder(path):
                raise IsADirectoryError(errno.EISDIR, "a folder, not a file", path) from None
            raise
        return data, content_token(data)

    def _is_folder(self, path: str) -> bool:
        try:
            with self._errors(path):
                return bool(self.fs.isdir(path))
        except OSError:
            return False

    def create(self, path: str, data: bytes) -> str:
        """Write ``data`` at ``path`` unless something is there; return the token.

        Raises
        ------
        FileExistsError
            Something is stored at ``path`` already.
        """
        if self.exists(path):
            raise FileExistsError(errno.EEXIST, "already stored", path)
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
        if not self.facts.atomic_rename:
            self._pipe(path, data)
            return
        temp = self._temp()
        try:
            self._pipe(temp, data)
            self._move(temp, path)
        except BaseException:
            self._discard(temp)
            raise

    def _temp(self) -> str:
        """Return a new temporary name in ``<root>/tmp/``, where a crash leaves it reclaimable."""
        return f"{self.root}/tmp/{secrets.token_hex(16)}"

    def _pipe(self, path: str, data: bytes) -> None:
        self._in_folder(path, lambda: self.fs.pipe_file(path, data))

    def _move(self, source: str, path: str) -> None:
        # The source is there (just written): a missing file is the target's folder.
        self._in_folder(path, lambda: self.fs.mv(source, path))

    def _in_folder(self, path: str, call: Callable[[], T]) -> T:
        """Run ``call``, which writes ``path``; if its folder is missing, make it and run again."""
        try:
            with self._errors(path):
                return call()
        except FileNotFoundError:
            if not self.needs_parents:
                raise
        self._make_folder(self.fs._parent(path))
        with self._errors(path):
            return call()

    def _make_folder(self, folder: str) -> None:
        # Only the last level: a store whose folders are gone (destroyed) is
        # not brought back by a late write, which fails instead. Several
        # writers may make the same folder at once, and some clients check
        # and then make (FTP): another writer's folder is as good.
        for attempt in range(_FOLDER_ATTEMPTS):
            try:
                with self._errors(folder):
                    self.fs.mkdir(folder, create_parents=False)
                return
            except OSError:
                with self._errors(folder):
                    if self.fs.isdir(folder):
                        return
                if attempt == _FOLDER_ATTEMPTS - 1:
                    raise

    def _discard(self, path: str) -> None:
        with suppress(Exception):
            self.fs.rm_file(path)

    # -- many small objects ---------------------------------------------------

    def read_many(self, paths: list[str]) -> dict[str, tuple[bytes, str]]:
        """Read many paths in one bulk call; paths gone meanwhile are left out."""
        if not paths:
            return {}
        with self._errors(paths[0]):
            found = self.fs.cat(paths, on_error="return")
        result: dict[str, tuple[bytes, str]] = {}
        for path, data in found.items():
            if isinstance(data, BaseException):
                error = as_builtin(data, path) if isinstance(data, Exception) else data
                if isinstance(error, FileNotFoundError):
                    continue
                raise error
            result[path] = (bytes(data), content_token(data))
        return result

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
        existing = [p for p in items if self.exists(p)]
        todo = {p: d for p, d in items.items() if p not in existing}
        self.write_many(todo)
        return {p: content_token(d) for p, d in todo.items()}, existing

    def write_many(self, items: Mapping[str, bytes]) -> None:
        """Write many paths, in one bulk call where writes go straight to their place."""
        if not items:
            return
        if self.facts.atomic_rename:
            for path, data in items.items():
                self.write(path, data)
            return
        first = next(iter(items))
        try:
            with self._errors(first):
                self.fs.pipe(dict(items))
        except FileNotFoundError:
            if not self.needs_parents:
                raise
            for parent in {self.fs._parent(p) for p in items}:
                self._make_folder(parent)
            with self._errors(first):
                self.fs.pipe(dict(items))

    def delete_many(self, paths: list[str]) -> None:
        """Delete many files; missing ones are ignored.

        One ``rm_file`` each: fsspec's ``rm`` of a list asks first whether
        each path is a file or a folder, and some clients (FTP) answer "not a
        file" for any error, which would turn a dropped connection into a
        folder removal.
        """
        for path in paths:
            try:
                with self._errors(path):
                    self.fs.rm_file(path)
            except FileNotFoundError:
                continue

    def delete(self, path: str) -> bool:
        """Delete one file; return whether it was there."""
        # Asked first: deleting a missing object is no error on object stores.
        if not self.exists(path):
            return False
        try:
            with self._errors(path):
                self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        return True

    def move_many(self, moves: Mapping[str, tuple[str, bytes]]) -> None:
        """Move each ``src`` to ``dst``; ``data`` is its content, already read."""
        self.write_many(dict(moves.values()))
        self.delete_many(list(moves))

    def list_files(self, prefix: str) -> list[str]:
        """Every file below the directory ``prefix``, recursively, sorted; [] if none.

        For folders that stay small (a job's own files); a folder that grows
        with the workflow is read page by page, with :meth:`pages`.
        """
        return sorted(path for page in self.pages(prefix) for path in page)

    def pages(self, prefix: str) -> Iterator[list[str]]:
        """Every file below the directory ``prefix``, a page at a time, in no set order.

        A caller holds one page (at most :data:`PAGE` paths) at a time.
        """
        for page in self.listing(prefix):
            yield [entry.path for entry in page]

    def listing(self, prefix: str) -> Iterator[list[Entry]]:
        """Every file below the directory ``prefix`` with its size, a page at a time.

        In no set order; a missing directory lists nothing. A folder that
        cannot be listed fails the listing, rather than being left out as
        fsspec's walk does by default: a listing that looks empty because a
        connection dropped would hide stored items. Only a folder that is
        missing (removed since its parent was listed) is skipped. The generic
        way lists everything at once (fsspec's ``find`` returns it all).
        """
        try:
            with self._errors(prefix):
                found = self.fs.find(prefix, detail=True, on_error=_unless_missing)
        except FileNotFoundError:
            return
        yield from pages_of(
            Entry(path, int(info.get("size") or 0), None, _modified(info))
            for path, info in found.items()
            if info.get("type") != "directory"
        )

    def exists(self, path: str) -> bool:
        """Whether a file is stored at ``path``."""
        with self._errors(path):
            return bool(self.fs.isfile(path))

    def size(self, path: str) -> int:
        """Size of the file at ``path``.

        Raises
        ------
        FileNotFoundError
            Nothing at ``path``.
        IsADirectoryError
            A folder is at ``path``.
        """
        with self._errors(path):
            info = self.fs.info(path)
        if info.get("type") == "directory":
            raise IsADirectoryError(errno.EISDIR, "a folder, not a file", path)
        return int(info["size"])

    # -- streams and local files ----------------------------------------------

    def open_read(self, path: str) -> IO[bytes]:
        """Open ``path`` for reading; the handle is its own context manager.

        Opening here rather than on entering a ``with`` lets a missing file
        be told apart from a FileNotFoundError raised later, in the body.

        The generic way reads a file of up to :data:`BLOCK_SIZE` whole, in one
        call, so a small read gives one version even where the filesystem
        reads part by part; a bigger one streams.

        Raises
        ------
        NotStored
            Nothing at ``path``.
        IsADirectoryError
            A folder is at ``path``.
        """
        try:
            if self.size(path) <= BLOCK_SIZE:
                with self._errors(path):
                    return io.BytesIO(self.fs.cat_file(path))
            with self._errors(path):
                handle = self.fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise NotStored(path) from exc
        return io.BufferedReader(
            ReportingReader(self._errors, path, handle), buffer_size=COPY_BUFFER
        )

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
        target = self._temp() if self.facts.atomic_rename else path
        try:
            handle = self._in_folder(target, lambda: self.fs.open(target, "wb"))
            with self._errors(target), handle:
                shutil.copyfileobj(source, handle, COPY_BUFFER)
            if target != path:
                self._move(target, path)
        except BaseException:
            if target != path:
                self._discard(target)
            raise

    def upload(self, local_path: str, path: str) -> None:
        """Copy a local regular file to ``path`` atomically."""
        with open(local_path, "rb") as source:
            if os.fstat(source.fileno()).st_size <= BLOCK_SIZE:
                self.write(path, source.read())
            else:
                self.write_stream(path, source)

    def copy(self, source: str, path: str) -> None:
        """Copy the stored file ``source`` to ``path`` within this filesystem."""
        if not self.facts.atomic_rename:
            with self._errors(path):
                self.fs.cp_file(source, path)
            return
        with self.open_read(source) as handle:
            self.write_stream(path, handle)

    def copy_many(self, pairs: Sequence[tuple[str, int, str]]) -> None:
        """Copy each ``(source, size, path)`` within the filesystem (sizes, where known)."""
        for source, _, path in pairs:
            self.copy(source, path)

    def md5(self, path: str) -> str:
        """Return the MD5 digest of the stored file at ``path``, in hex, by reading it."""
        digest = hashlib.md5(usedforsecurity=False)
        with self.open_read(path) as handle:
            while block := handle.read(COPY_BUFFER):
                digest.update(block)
        return digest.hexdigest()

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

    def lease(self, path: str) -> AbstractContextManager[Holder]:
        """Hold the lease at ``path``: one holder at a time among every client of the store."""
        return Lease(self, path)

    def prepare(self, create: bool = False) -> None:
        """Make what writes need: with ``create``, the root and the store's folders.

        Object stores make their bucket here, where one is needed.
        """
        if not create:
            return
        with self._errors(self.root):
            self.fs.makedirs(self.root, exist_ok=True)
        if self.needs_parents:
            for folder in FOLDERS:
                self._make_folder(f"{self.root}/{folder}")

    def prune(self, directory: str) -> None:
        """Remove ``directory`` if it is empty and the filesystem has directories."""
        with suppress(OSError, NotImplementedError), self._errors(directory):
            self.fs.rmdir(directory)

    def remove_root(self) -> None:
        """Remove what is left of the root once the store inside it is deleted."""
        for directory in (f"{self.root}/tmp", self.root):
            with suppress(OSError, NotImplementedError), self._errors(directory):
                # Object stores have no real directories: nothing is left behind.
                if self.fs.isdir(directory) and not self.fs.ls(directory, detail=False):
                    self.fs.rmdir(directory)

    def entries(self, directory: str) -> list[str]:
        """Names directly inside ``directory``; [] if it does not exist."""
        try:
            with self._errors(directory):
                listed = self.fs.ls(directory, detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [posixpath.basename(str(p).rstrip("/")) for p in listed]


def _modified(info: Mapping[str, Any]) -> float | None:
    for name in ("mtime", "modified", "LastModified", "last_modified", "updated"):
        if name in info:
            return timestamp(info[name])
    return None


def _unless_missing(error: BaseException) -> None:
    """Raise ``error`` from a walk unless it says a folder is missing."""
    if not isinstance(error, FileNotFoundError):
        raise error


def _twin(fs: AbstractFileSystem) -> AbstractFileSystem:
    """Make a new filesystem object like ``fs``, with a connection of its own."""
    twin: AbstractFileSystem = type(fs)(*fs.storage_args, **fs.storage_options)
    return twin
