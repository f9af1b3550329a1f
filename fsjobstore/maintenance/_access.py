"""The one place maintenance reaches below a store's public API.

Maintenance works on what a store keeps as stored objects (listings with
sizes, raw documents, temporaries), which the job store API does not expose:
these helpers hand out the store's own backends, so every operation goes
through the same error boundary and options as the store's.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from .. import layout
from ..backends import Backend
from ..backends.local import LocalBackend
from ..job import Config
from ..store import JobStore

__all__ = [
    "data_backend",
    "detailed_listing",
    "holds_data",
    "marker_backend",
    "open_backends",
]


def data_backend(store: JobStore) -> Backend:
    """Return the backend the store's data goes through (with the config's options)."""
    store.config  # noqa: B018 - raises JobStoreNotOpenError on a store not open
    backend: Backend = store._backend
    return backend


def marker_backend(store: JobStore) -> Backend:
    """Return the backend the store's marker goes through (no encryption options)."""
    backend: Backend = store._plain
    return backend


def open_backends(store: JobStore, config: Config) -> tuple[Backend, Backend]:
    """Return the marker's and the data's backends ``store`` would have under ``config``."""
    backends: tuple[Backend, Backend] = store._backends(config)
    return backends


def holds_data(store: JobStore) -> bool:
    """Tell whether the store's location holds anything but temporaries in the store's layout."""
    plain: Backend = store._plain
    listed, foreign = store._survey(plain)
    tmp = f"{plain.root}/{layout.TMP}"
    return bool(foreign) or any(not path.startswith(tmp) for path in listed)


def detailed_listing(backend: Backend, folder: str) -> dict[str, dict[str, Any]]:
    """Path → the listing's details (``size`` at least) of every file below ``folder``.

    On local disk the folder is walked without following links, and links
    are left out: a link planted in a store never leads a clean-up or a
    migration outside it.
    """
    if isinstance(backend, LocalBackend):
        found: dict[str, dict[str, Any]] = {}
        _walk(folder.rstrip("/"), found)
        return found
    try:
        with backend._errors(folder):
            listed: dict[str, dict[str, Any]] = backend.fs.find(folder, detail=True)
    except FileNotFoundError:
        return {}
    return {path: info for path, info in listed.items() if info.get("type") != "directory"}


def _walk(folder: str, found: dict[str, dict[str, Any]]) -> None:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    _walk(entry.path, found)
                elif stat.S_ISREG(info.st_mode):
                    found[entry.path] = {"size": info.st_size, "mtime": info.st_mtime}
    except (FileNotFoundError, NotADirectoryError):
        return
