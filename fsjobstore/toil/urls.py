"""Toil's URL access for every fsspec scheme, through fsjobstore's transfer layer.

Toil reads and writes URLs (``importFile``, ``exportFile``, CWL and WDL
inputs) through ``URLAccess`` classes registered by scheme. The plug-in
module ``toil_url_access_fsjobstore`` registers :class:`FsspecURLAccess` for
each scheme fsspec knows and Toil does not handle itself (``az://``,
``abfs://``, ``gcs://``, ``sftp://``, ``memory://`` …), and for ``s3://`` and
``gs://`` when Toil's own clients for them cannot be imported.

Each call opens the URL with fsspec under fsjobstore's rules: errors come
out as builtin exceptions (``FileNotFoundError``, ``PermissionError``,
``OSError``) naming the URL without credentials, and a failure that may pass
(a dropped connection, HTTP 5xx) is retried before any byte has moved.
Options come from fsspec's configuration (``FSSPEC_<PROTOCOL>_<OPTION>``
variables, ``~/.config/fsspec/``) and the clients' environment. An upload
to an object store appears only when complete.

A Toil job store on fsjobstore does not need these for its own imports and
exports: it hands the whole URL to fsjobstore's transfer layer, which also
copies server-side where it can.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import IO, TypeVar
from urllib.parse import ParseResult

import fsspec
from fsspec.implementations.local import LocalFileSystem
from toil.lib.url import URLAccess

from ..streams import is_executable, make_executable
from ..transfer.remote import BLOCK, Foreign, Remote

__all__ = ["FsspecURLAccess"]

T = TypeVar("T")


class FsspecURLAccess(URLAccess):
    """Toil's ``URLAccess`` on fsspec, for any scheme fsspec knows."""

    @classmethod
    def _remote(cls, url: ParseResult, verb: str) -> Remote:
        return Remote(url.geturl(), None, verb)

    @classmethod
    def _ask(cls, url: ParseResult, func: Callable[[Remote], T]) -> T:
        remote = cls._remote(url, "import")
        return remote.attempt(lambda: func(remote))

    @classmethod
    def _supports_url(cls, url: ParseResult, export: bool = False) -> bool:
        del export
        try:
            fsspec.get_filesystem_class(url.scheme.lower())
        except (ValueError, ImportError):
            return False
        return True

    @classmethod
    def _url_exists(cls, url: ParseResult) -> bool:
        return cls._ask(url, lambda r: bool(r.call(r.fs.exists, r.path)))

    @classmethod
    def _get_size(cls, url: ParseResult) -> int | None:
        def size(r: Remote) -> int | None:
            found = r.call(r.fs.size, r.path)
            return None if found is None else int(found)

        return cls._ask(url, size)

    @classmethod
    def _get_is_directory(cls, url: ParseResult) -> bool:
        return cls._ask(url, lambda r: bool(r.call(r.fs.isdir, r.path)))

    @classmethod
    def _list_url(cls, url: ParseResult) -> list[str]:
        def listing(r: Remote) -> list[str]:
            entries = r.call(r.fs.ls, r.path.rstrip("/") or r.path, detail=True)
            names = []
            for entry in entries:
                name = posixpath.basename(str(entry["name"]).rstrip("/"))
                names.append(name + "/" if entry.get("type") == "directory" else name)
            return names

        return cls._ask(url, listing)

    @classmethod
    def _open_url(cls, url: ParseResult) -> IO[bytes]:
        def opened(r: Remote) -> IO[bytes]:
            return r.call(r.fs.open, r.path, "rb")

        return cls._ask(url, opened)

    @classmethod
    def _read_from_url(cls, url: ParseResult, writable: IO[bytes]) -> tuple[int, bool]:
        remote = cls._remote(url, "import")
        fs, path = remote.fs, remote.path
        info = remote.attempt(lambda: remote.call(fs.info, path))
        if info.get("type") == "directory":
            raise IsADirectoryError(f"cannot import a directory: {remote.shown}")
        # Opening may be retried; once bytes have gone to the caller's stream
        # they cannot be taken back, so a failure then is reported at once.
        handle = remote.attempt(
            lambda: remote.call(fs.open, path, "rb", block_size=BLOCK, cache_type="none")
        )
        size = 0
        try:
            with handle:
                while chunk := remote.call(handle.read, BLOCK):
                    writable.write(chunk)
                    size += len(chunk)
        except Foreign as failure:
            raise remote.failure(failure.error, 1) from None
        return size, isinstance(fs, LocalFileSystem) and is_executable(path)

    @classmethod
    def _write_to_url(
        cls, readable: IO[bytes] | IO[str], url: ParseResult, executable: bool = False
    ) -> None:
        remote = cls._remote(url, "export")
        fs, path = remote.fs, remote.path
        try:
            parent = posixpath.dirname(path)
            if parent and not fs.async_impl:  # object stores have no directories to make
                remote.call(fs.makedirs, parent, exist_ok=True)
            # Object stores show an upload only when it completes (s3fs, gcsfs
            # and adlfs commit on close, and a failed write is not committed).
            with remote.call(fs.open, path, "wb", block_size=BLOCK) as target:
                while chunk := readable.read(BLOCK):
                    data = chunk.encode() if isinstance(chunk, str) else chunk
                    remote.call(target.write, data)
            if executable and isinstance(fs, LocalFileSystem):
                make_executable(path)
        except Foreign as failure:
            raise remote.failure(failure.error, 1) from None
