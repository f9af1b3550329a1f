"""Looking inside a store, and the thin calls the command line makes on it."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .. import layout
from ..backends import Backend
from ..backends.temporaries import find_temporaries
from ..errors import JobStoreError, NoSuchJobException
from ..store import JobStore
from ._access import data_backend

__all__ = [
    "FileInfo",
    "cat",
    "export_files",
    "files",
    "import_urls",
    "job_document",
    "job_documents",
    "read_logs",
    "summary",
]


@dataclass(frozen=True)
class FileInfo:
    """One stored file, as its ID and its listing tell.

    Attributes
    ----------
    id
        The file ID.
    size
        Its size in bytes.
    job
        The ID of the job it was written for; None for a file written with no job.
    cleanup
        Whether it is deleted with its job.
    executable
        Whether it was executable when written.
    """

    id: str
    size: int
    job: str | None
    cleanup: bool
    executable: bool

    def as_json(self) -> dict[str, Any]:
        """Return the fields as a JSON object (``id``, ``size``, ``job``, ``cleanup`` …)."""
        return asdict(self)


def summary(store: JobStore) -> dict[str, int]:
    """Count what a store holds.

    Returns
    -------
    dict
        ``jobs``, ``files``, ``bytes`` (of those files), ``shared_files``,
        ``logs`` (pending messages), ``orphans`` (files of jobs no longer
        stored) and ``temporaries`` (what writers have in progress or
        crashed writers left; see :func:`clean`).
    """
    backend = data_backend(store)
    jobs = _job_ids(backend)
    counts = dict.fromkeys(("files", "bytes", "orphans"), 0)
    # A page of the listing at a time: memory holds the job IDs, not the files.
    skip = len(backend.root) + 1
    for page in backend.listing(f"{backend.root}/{layout.FILES}"):
        for entry in page:
            file_id = layout.file_id_from_key(entry.path[skip:])
            if file_id is None:
                continue  # a shared file, or nothing of the store's
            owner = layout.parse_file_id(file_id).owner
            counts["files"] += 1
            counts["bytes"] += entry.size
            counts["orphans"] += owner is not None and owner not in jobs
    return {
        "jobs": len(jobs),
        "files": counts["files"],
        "bytes": counts["bytes"],
        "shared_files": _count(backend, layout.SHARED),
        "logs": _count(backend, layout.INBOX),
        "orphans": counts["orphans"],
        "temporaries": len(find_temporaries(backend)),
    }


def job_documents(store: JobStore) -> list[dict[str, Any]]:
    """Return every stored job document, as stored (JSON objects), in job ID order."""
    backend = data_backend(store)
    paths = [f"{backend.root}/{layout.job_key(job_id)}" for job_id in sorted(_job_ids(backend))]
    found = backend.read_many(paths)
    return [_document(path, found[path][0]) for path in paths if path in found]


def job_document(store: JobStore, job_id: str) -> dict[str, Any]:
    """Return one job's stored document.

    Raises
    ------
    NoSuchJobException
        No such job.
    InvalidIDError
        ``job_id`` is malformed.
    """
    backend = data_backend(store)
    path = f"{backend.root}/{layout.job_key(job_id)}"
    try:
        data, _ = backend.read(path)
    except FileNotFoundError:
        raise NoSuchJobException(job_id) from None
    return _document(path, data)


def files(store: JobStore, *, job: str | None = None, orphans: bool = False) -> list[FileInfo]:
    """List the store's files (not shared files), in ID order.

    Parameters
    ----------
    store
        An open store.
    job
        Only the files written for this job.
    orphans
        Only orphans: files written for a job that is no longer stored.
        Files written with no job are never orphans.
    """
    backend = data_backend(store)
    prefix = layout.owner_prefix(job) if job is not None else layout.FILES
    found = []
    for key, size in _sizes(backend, prefix).items():
        file_id = layout.file_id_from_key(key)
        if file_id is None:
            continue  # a shared file, or something that is no file of the store
        ref = layout.parse_file_id(file_id)
        found.append(FileInfo(file_id, size, ref.owner, ref.cleanup, ref.executable))
    if orphans:
        jobs = _job_ids(backend)
        found = [f for f in found if f.job is not None and f.job not in jobs]
    return sorted(found, key=lambda f: f.id)


def read_logs(store: JobStore, *, include_archived: bool = False) -> list[str]:
    """Deliver the pending log messages, archiving them as ``read_logs`` does.

    Parameters
    ----------
    store
        An open store.
    include_archived
        Also the messages delivered before (first).

    Returns
    -------
    list of str
        The messages, decoded as UTF-8 (undecodable bytes replaced).
    """
    messages: list[str] = []
    store.read_logs(
        lambda handle: messages.append(handle.read().decode("utf-8", "replace")),
        read_all=include_archived,
    )
    return messages


def cat(store: JobStore, file_id: str | None = None, *, shared: str | None = None) -> IO[bytes]:
    """Open a file, or a shared file, for reading its bytes.

    Raises
    ------
    NoSuchFileException
        No such file.
    ValueError
        Neither or both of ``file_id`` and ``shared`` given.
    """
    if (file_id is None) == (shared is None):
        raise ValueError("give a file ID or a shared file name, not both or neither")
    if shared is not None:
        handle: IO[bytes] = store.read_shared_file_stream(shared)  # type: ignore[assignment]
    else:
        handle = store.read_file_stream(file_id or "")  # type: ignore[assignment]
    return handle


def import_urls(
    store: JobStore,
    urls: Sequence[str],
    *,
    shared: str | None = None,
    callback: Callback = DEFAULT_CALLBACK,
) -> list[str]:
    """Import URLs (or local paths) as new files, or one as a shared file.

    Returns
    -------
    list of str
        The new file IDs, in the order of ``urls``; [] for a shared file.
    """
    if shared is not None:
        if len(urls) != 1:
            raise ValueError("a shared file is imported from exactly one URL")
        store.import_file(urls[0], shared)
        return []
    return [str(file_id) for file_id in store.import_files(urls, callback=callback)]


def export_files(
    store: JobStore, pairs: Sequence[tuple[str, str]], *, callback: Callback = DEFAULT_CALLBACK
) -> None:
    """Export each ``(file_id, url)``: the store's ``export_files``."""
    store.export_files(pairs, callback=callback)


# -- helpers ------------------------------------------------------------------------


def _job_ids(backend: Backend) -> set[str]:
    ids = (
        layout.job_id_from_key(posixpath.basename(path))
        for page in backend.pages(f"{backend.root}/{layout.JOBS}")
        for path in page
    )
    return {i for i in ids if i}


def _count(backend: Backend, prefix: str) -> int:
    return sum(len(page) for page in backend.pages(f"{backend.root}/{prefix}"))


def _sizes(backend: Backend, prefix: str) -> dict[str, int]:
    """Key (below the root) → size of every object below ``prefix``."""
    skip = len(backend.root) + 1
    found = backend.listing(f"{backend.root}/{prefix}")
    return {entry.path[skip:]: entry.size for page in found for entry in page}


def _document(path: str, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise JobStoreError(f"stored job document {path!r} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise JobStoreError(f"stored job document {path!r} is not a JSON object")
    return doc
