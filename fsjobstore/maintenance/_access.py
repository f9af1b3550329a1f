"""The one place maintenance reaches below a store's public API.

Maintenance works on what a store keeps as stored objects (listings with
sizes, raw documents, temporaries), which the job store API does not expose:
these helpers hand out the store's own backends, so every operation goes
through the same error boundary and options as the store's.
"""

from __future__ import annotations

from ..backends import Backend
from ..job import Config
from ..store import JobStore

__all__ = [
    "data_backend",
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
    folders, foreign = store._folders(plain, marked=False)
    ours, data = store._leftovers(plain, folders)
    return foreign or not ours or data
