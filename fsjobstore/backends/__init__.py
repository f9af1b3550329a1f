"""Pick the backend for a filesystem: the one place that dispatches on it."""

from __future__ import annotations

from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from .base import Backend, NotStored, VersionConflict
from .local import LocalBackend
from .memory import MemoryBackend

__all__ = ["Backend", "NotStored", "VersionConflict", "backend_for"]


def backend_for(fs: AbstractFileSystem, root: str) -> Backend:
    """Return the backend that knows ``fs`` best; the generic one otherwise."""
    if isinstance(fs, LocalFileSystem):
        return LocalBackend(fs, root)
    if isinstance(fs, MemoryFileSystem):
        return MemoryBackend(fs, root)
    return Backend(fs, root)
