"""Opening, creating and destroying stores, including a migration's unfinished destination."""

from __future__ import annotations

from typing import Any

from .. import layout
from ..backends import Backend
from ..errors import NoSuchJobStoreException
from ..job import Config
from ..store import JobStore
from ._access import marker_backend

__all__ = ["MIGRATION_RECORD", "STORE_PREFIXES", "delete_all", "destroy", "init", "open_store"]

#: The record of a migration in progress, at the destination's root.
MIGRATION_RECORD = ".fsjobstore-migration.json"
#: Where a store keeps its objects, below its root (besides the marker and tmp/).
STORE_PREFIXES = (layout.JOBS, layout.FILES, "stats/")


def open_store(locator: str, **storage_options: Any) -> JobStore:
    """Open the existing store at ``locator``.

    Raises
    ------
    NoSuchJobStoreException
        No store there.
    """
    store = JobStore(locator, **storage_options)
    store.resume()
    return store


def init(locator: str, *, retry_count: int | None = None, **storage_options: Any) -> JobStore:
    """Create a store at ``locator`` and return it, open.

    Parameters
    ----------
    locator
        Where.
    retry_count
        ``Config.retryCount``: tries a job gets after its first; the
        library's default when None.
    **storage_options
        For the filesystem; never stored.

    Raises
    ------
    JobStoreExistsException
        A store is there already.
    NotAJobStoreError
        Other data is there.
    """
    config = Config()
    if retry_count is not None:
        config.retryCount = retry_count
    store = JobStore(locator, **storage_options)
    store.initialize(config)
    return store


def destroy(locator: str, **storage_options: Any) -> None:
    """Delete the store at ``locator``, as :meth:`JobStore.destroy` does.

    Only a store is deleted: a location without the store's marker but with
    other data is refused. The destination of an unfinished migration
    (:func:`~fsjobstore.maintenance.migrate`), which has no marker yet, is
    recognised by its migration record and deleted too.

    Raises
    ------
    NoSuchJobStoreException
        Nothing to destroy: no store (and no unfinished migration) there.
    NotAJobStoreError
        Other data is there; nothing was deleted.
    """
    store = JobStore(locator, **storage_options)
    plain = marker_backend(store)
    root = plain.root
    if plain.exists(f"{root}/{layout.MARKER}"):
        store.destroy()
        return
    record = f"{root}/{MIGRATION_RECORD}"
    if not plain.exists(record):
        if not _holds_anything(store):
            raise NoSuchJobStoreException(store.locator)
        store.destroy()  # raises NotAJobStoreError: other data is there
        return
    skip = len(root) + 1
    own = (*STORE_PREFIXES, layout.TMP)
    delete_all(plain, [p for p in plain.list_files(root) if p[skip:].startswith(own)])
    delete_all(plain, [record])  # last, so an interrupted destroy can be run again
    plain.remove_root()


def delete_all(backend: Backend, paths: list[str]) -> None:
    """Delete ``paths`` in bulk, also where no marker is there yet.

    Bulk deletes on local disk lock the store's marker, which an unfinished
    migration's destination does not have yet: there, one by one.
    """
    try:
        backend.delete_many(paths)
    except FileNotFoundError:
        for path in paths:
            backend.delete(path)


def _holds_anything(store: JobStore) -> bool:
    plain = marker_backend(store)
    return bool(plain.entries(plain.root))
