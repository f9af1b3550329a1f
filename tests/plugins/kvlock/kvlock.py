"""A backend plugin for the ``kvfs`` protocol: conditional writes under a lock file.

The worked example of docs/extending.md. ``kvfs`` keeps its objects in files
below the directory ``fs.base``, shared by every process that opens it, so
an ``flock`` of a file there serialises writers: the generic path's
check-then-write and compare-then-write become exact under it. It is
registered for ``fsjobstore_kvfs_example.KVFileSystem`` in the
``fsjobstore.backends`` entry-point group; fsjobstore itself knows nothing
of it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from typing_extensions import override

from fsjobstore.backends import Backend

__all__ = ["KVLockBackend"]


class KVLockBackend(Backend):
    """The generic path on ``kvfs``, with creates and updates under one lock."""

    detects_concurrent_updates = True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(os.path.join(self.fs.base, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the lock

    @override
    def create(self, path: str, data: bytes) -> str:
        with self._locked():
            return super().create(path, data)

    @override
    def replace(self, path: str, data: bytes, token: str) -> str:
        with self._locked():
            return super().replace(path, data, token)

    @override
    def create_many(self, items: Mapping[str, bytes]) -> tuple[dict[str, str], list[str]]:
        with self._locked():
            return super().create_many(items)

    @override
    def delete_many(self, paths: list[str]) -> None:
        # Under the lock too: a delete never loses to an update that compared.
        with self._locked():
            super().delete_many(paths)
