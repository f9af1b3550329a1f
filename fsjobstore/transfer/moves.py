"""One import, one export: the ways bytes move, first that applies."""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import IO, Any
from urllib.parse import urlsplit

from fsspec.callbacks import Callback
from fsspec.implementations.local import LocalFileSystem

from ..backends import Backend, NotStored
from ..backends.common import local_temp, same_service, unlink_quietly
from ..protocols import facts, protocol_of
from ..streams import is_executable, make_executable
from .remote import BLOCK, CHUNK, Foreign, Progress, Remote

__all__ = ["Export", "Source", "export_one", "import_one"]

logger = logging.getLogger("fsjobstore.transfer")


@dataclass(frozen=True)
class Source:
    """What an import found at its URL.

    Attributes
    ----------
    url
        The URL as given.
    basename
        The last part of its path, for the file ID.
    size
        Bytes stored.
    executable
        Whether it is a local file its owner may execute.
    """

    url: str
    basename: str
    size: int
    executable: bool


@dataclass(frozen=True)
class Export:
    """One stored file to send to a URL.

    Attributes
    ----------
    path
        The file's full path on the store's backend.
    url
        Where it goes.
    executable
        Set the executable bit, where the destination is local.
    """

    path: str
    url: str
    executable: bool


def import_one(  # noqa: D103 - documented with the bulk call, transfer.import_files
    backend: Backend,
    url: str,
    place: Callable[[Source], str],
    storage_options: Mapping[str, Any] | None,
    callback: Callback,
) -> Source:
    remote = Remote(url, storage_options, "import")
    fs, src = remote.fs, remote.path
    info = remote.attempt(lambda: remote.call(fs.info, src))
    if info.get("type") == "directory":
        raise IsADirectoryError(errno.EISDIR, "cannot import a directory", remote.shown)
    local = isinstance(fs, LocalFileSystem)
    source = Source(url, _basename(src), int(info.get("size") or 0), local and is_executable(src))
    dest = place(source)
    progress = Progress(callback)
    progress.set_size(info.get("size"))
    if local:
        backend.upload(src, dest)
    elif same_service(fs, backend.filesystem):
        logger.debug("import of %s: copied within the store's own service", remote.shown)
        remote.attempt(lambda: remote.call(backend.copy, src, dest))
    else:
        # One streamed request where the protocol reads best so (HTTP, which
        # then needs no Range support from the server); blocks elsewhere.
        streamed = facts(protocol_of(fs)).one_request_reads
        reading: dict[str, Any] = (
            {"block_size": 0} if streamed else {"block_size": BLOCK, "cache_type": "none"}
        )
        # A stream hands over what it buffered: smaller reads hold less.
        piece = CHUNK if streamed else BLOCK

        def download() -> int:
            progress.absolute_update(0)
            received = 0
            # Reads of a size we choose, with no cache to copy them again, bound
            # the memory; get_file would not (s3fs fetches 50 MiB parts at once).
            # The source closes first, so its buffers are gone when the store
            # uploads what it spooled.
            with (
                backend.open_write(dest) as target,
                remote.call(fs.open, src, "rb", **reading) as f,
            ):
                while chunk := remote.call(f.read, piece):
                    target.write(chunk)
                    received += len(chunk)
                    progress.relative_update(len(chunk))
            return received

        # The size the server announced may be missing or wrong: keep what came.
        return replace(source, size=remote.attempt(download))
    progress.absolute_update(source.size)
    return source


def export_one(  # noqa: D103 - documented with the bulk call, transfer.export_files
    backend: Backend,
    item: Export,
    storage_options: Mapping[str, Any] | None,
    callback: Callback,
) -> None:
    remote = Remote(item.url, storage_options, "export")
    fs, dst = remote.fs, remote.path
    progress = Progress(callback)
    if isinstance(fs, LocalFileSystem):
        os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
        # Into a temporary name first, so a progress callback that raises
        # at the end still leaves nothing.
        temp = local_temp(dst)
        try:
            backend.download(item.path, temp)
            if item.executable:
                make_executable(temp)
            size = os.path.getsize(temp)
            progress.set_size(size)
            progress.absolute_update(size)
            os.replace(temp, dst)
        finally:
            unlink_quietly(temp)
    elif same_service(fs, backend.filesystem):
        logger.debug("export to %s: copied within the store's own service", remote.shown)
        try:
            remote.attempt(lambda: remote.call(backend.copy, item.path, dst))
        except FileNotFoundError:
            if not backend.exists(item.path):
                raise NotStored(item.path) from None
            raise
    else:
        remote.attempt(lambda: _send(backend, item.path, remote, progress))


def _send(backend: Backend, path: str, remote: Remote, progress: Callback) -> None:
    """One attempt at sending a stored file to a destination that is not local."""
    progress.absolute_update(0)
    if not remote.put_options:
        with backend.open_read(path) as source:
            upload = _Upload.open(remote)
            if upload is not None:
                progress.set_size(_size_of(source))
                upload.send(source, progress)
                return
    # No way to write a stream there (HTTP): upload a whole local file. It is
    # read on fsspec's event loop, which a store on an async filesystem
    # needs too, so it must be a plain local file, copied out of the store.
    with _local_copy(backend, path) as local:
        remote.call(remote.fs.put_file, local, remote.path, callback=progress, **remote.put_options)


class _Upload:
    """A file being written at an export's destination, shown only when complete."""

    def __init__(self, remote: Remote, file: IO[bytes], temp: str | None) -> None:
        self.remote = remote
        self.file: Any = file
        self.temp = temp

    @classmethod
    def open(cls, remote: Remote) -> _Upload | None:
        """Open the destination for writing; None if its filesystem cannot."""
        fs, dst = remote.fs, remote.path
        try:
            if fs.async_impl:
                # Object stores upload in parts and show the object only when
                # the upload completes: commit() does that, discard() aborts.
                file = remote.call(fs.open, dst, "wb", block_size=BLOCK, autocommit=False)
                return cls(remote, file, None)
            # The others write in place, where half an upload would show:
            # write a hidden sibling and rename it.
            parent = fs._parent(dst)
            temp = posixpath.join(parent, f".{posixpath.basename(dst)}.{uuid.uuid4().hex[:12]}~")
            remote.call(fs.makedirs, parent, exist_ok=True)
            return cls(remote, remote.call(fs.open, temp, "wb", block_size=BLOCK), temp)
        except Foreign as failure:
            if isinstance(failure.error, NotImplementedError):
                return None
            raise

    def send(self, source: IO[bytes], progress: Callback) -> None:
        """Copy ``source`` and make it visible; on any failure, show nothing."""
        remote, file = self.remote, self.file
        try:
            while chunk := source.read(CHUNK):
                remote.call(file.write, chunk)
                progress.relative_update(len(chunk))
            remote.call(file.close)
            if self.temp is None:
                remote.call(file.commit)
            else:
                remote.call(remote.fs.mv, self.temp, remote.path)
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        with suppress(Exception):
            if self.temp is None:
                self.file.discard()
            else:
                self.file.close()
                self.remote.fs.rm_file(self.temp)
        with suppress(AttributeError):  # a plain io object, which has no later close
            # fsspec's buffered files close when garbage collected, and
            # closing one would complete the upload.
            self.file.closed = True


@contextmanager
def _local_copy(backend: Backend, path: str) -> Iterator[str]:
    """Yield a local file with the stored content.

    A copy even on local disk: the client opens the file by name, and the
    backend is what makes sure no link inside the store is followed.
    """
    fd, tmp = tempfile.mkstemp(prefix="fsjobstore-export-")
    os.close(fd)
    try:
        backend.download(path, tmp)
        yield tmp
    finally:
        unlink_quietly(tmp)


def _size_of(handle: IO[bytes]) -> int | None:
    try:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
    except (OSError, ValueError):
        return None
    return size


def _basename(path: str) -> str:
    if "://" in path:  # HTTP paths are whole URLs: no query, no fragment
        path = urlsplit(path).path
    return posixpath.basename(path.rstrip("/"))
