"""fsspec's in-memory filesystem, made safe for threads.

``MemoryFileSystem`` keeps every file in one dict per process, so a process
lock makes conditional writes exact. Small reads copy the
bytes and streams read through a view of them: its own ``open("rb")``
hands every reader the same file object, position included, and its
``open("wb")`` makes a file visible before it is written.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from fsspec.implementations.memory import MemoryFile
from typing_extensions import override

from .base import Backend
from .common import (
    BLOCK_SIZE,
    Entry,
    NotStored,
    SizedReader,
    content_token,
    pages_of,
    timestamp,
)

__all__ = ["MemoryBackend"]

_LOCK = threading.RLock()


class MemoryBackend(Backend):
    """Backend for :class:`fsspec.implementations.memory.MemoryFileSystem`."""

    detects_concurrent_updates = True
    pins_stream_reads = True
    local_reads = True
    needs_parents = False  # a dict of paths: no folder to make

    def _bytes(self, path: str) -> bytes:
        try:
            return bytes(self.fs.store[path].getbuffer())
        except KeyError:
            raise FileNotFoundError(path) from None

    @override
    def read(self, path: str) -> tuple[bytes, str]:
        data = self._bytes(path)
        return data, content_token(data)

    @override
    def create(self, path: str, data: bytes) -> str:
        with _LOCK:
            return super().create(path, data)

    @override
    def replace(self, path: str, data: bytes, token: str) -> str:
        with _LOCK:
            return super().replace(path, data, token)

    @override
    def read_many(self, paths: list[str]) -> dict[str, tuple[bytes, str]]:
        return self.read_each(paths)

    @override
    def create_many(self, items: Mapping[str, bytes]) -> tuple[dict[str, str], list[str]]:
        with _LOCK:
            return super().create_many(items)

    @override
    def delete_many(self, paths: list[str]) -> None:
        with _LOCK:
            for path in paths:
                self.fs.store.pop(path, None)

    @override
    def delete(self, path: str) -> bool:
        with _LOCK:
            return self.fs.store.pop(path, None) is not None

    @override
    def listing(self, prefix: str) -> Iterator[list[Entry]]:
        # MemoryFileSystem.find scans every stored file once per directory.
        start = prefix.rstrip("/") + "/"
        found = [(p, f) for p, f in list(self.fs.store.items()) if p.startswith(start)]
        yield from pages_of(
            Entry(path, int(file.size), None, timestamp(getattr(file, "modified", None)))
            for path, file in found
        )

    @override
    def exists(self, path: str) -> bool:
        return path in self.fs.store

    @override
    def size(self, path: str) -> int:
        try:
            return int(self.fs.store[path].size)
        except KeyError:
            raise FileNotFoundError(path) from None

    @override
    def open_read(self, path: str) -> IO[bytes]:
        try:
            stored = self.fs.store[path]
        except KeyError as exc:
            raise NotStored(path) from exc
        if stored.size <= BLOCK_SIZE:  # a copy is cheaper than a reader over a view
            return io.BytesIO(stored.getvalue())
        # A view, not a copy: streaming a big file must not double it. Writes
        # through this backend replace the stored object rather than change
        # it, so the view keeps the version it opened.
        return io.BufferedReader(_ViewReader(stored.getbuffer()))

    @override
    @contextmanager
    def open_write(self, path: str) -> Iterator[IO[bytes]]:
        pending = MemoryFile(self.fs, path)
        yield pending
        pending.commit()

    @override
    def upload(self, local_path: str, path: str) -> None:
        with open(local_path, "rb") as handle:
            self.write(path, handle.read())


class _ViewReader(SizedReader):
    """A read-only raw stream over a memoryview, released on close."""

    def __init__(self, view: memoryview) -> None:
        super().__init__(len(view))
        self._view = view

    @override
    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        size = len(chunk)
        buffer[:size] = chunk
        self._pos += size
        return size

    @override
    def readall(self) -> bytes:
        # io's default reads 8 KiB at a time.
        data = bytes(self._view[self._pos :])
        self._pos += len(data)
        return data

    @override
    def close(self) -> None:
        self._view.release()
        super().close()
