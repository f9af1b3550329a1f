"""Import and export: any URL, through fsspec, one code path.

Every URL is opened with :func:`fsspec.core.url_to_fs`, whatever its scheme,
and the bytes take the first of these ways that applies.

Import (URL → store):

1. a local file goes in through the backend's atomic ``upload``;
2. a URL on the store's own service (same filesystem class, same options
   but for caching) is copied by the service: S3 ``CopyObject``, GCS
   rewrite, Azure copy, a dict entry in memory;
3. anything else is read with ``fs.open`` into the backend's atomic
   ``open_write``: HTTP(S) as one streamed ``GET`` (which needs no ``Range``
   support from the server), the others in blocks of :data:`BLOCK` (FTP
   ``REST``/``RETR``, object-store ranged GETs).

Export (store → URL):

1. a local destination gets the backend's atomic ``download`` (a temporary
   file beside it, renamed into place), and the executable bit;
2. the store's own service copies server-side, as for imports;
3. a filesystem that can open files for writing gets the stored file as a
   stream, in blocks of :data:`BLOCK`: object stores with
   ``autocommit=False`` (S3 multipart, GCS resumable, Azure staged blocks:
   the upload appears on commit, and is aborted otherwise), the others (FTP,
   SFTP, memory) through a hidden sibling renamed into place;
4. one that cannot (HTTP) uploads a local file with ``put_file`` in one
   streamed request (``POST``, or ``PUT`` with the ``method`` storage
   option): a temporary local copy of the stored file.

Memory stays bounded by a few blocks whatever the file size. A transfer the
foreign side fails in a way that may pass (HTTP 5xx, 408, 429; FTP 4xx; a
dropped connection) is retried, :data:`ATTEMPTS` times in all. Errors name
the URL without its credentials, and so do the log records of the clients
the bytes go through. Bulk calls run the same per-file transfer in a thread
pool; each transfer on an async filesystem (HTTP, object stores) runs on
fsspec's event loop, so they overlap there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .. import layout
from ..backends import Backend, NotStored
from ..errors import NoSuchFileException
from ..job import FileID
from ..redaction import SCRUBBER, redact
from .moves import Export, Source, export_one, import_one
from .remote import ATTEMPTS, BACKOFF, CallbackFailed, check_scheme

__all__ = [
    "ATTEMPTS",
    "BACKOFF",
    "CONCURRENCY",
    "DEFAULT_CALLBACK",
    "Callback",
    "Export",
    "Source",
    "export_files",
    "export_ids",
    "import_files",
    "import_ids",
    "redact",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)

#: Transfers in flight at once in one bulk call.
CONCURRENCY = 16


# -- the store's calls ---------------------------------------------------------------


def import_ids(
    backend: Backend,
    path_of: Callable[[str], str],
    urls: Sequence[str],
    shared_file_name: str | None = None,
    *,
    storage_options: Mapping[str, Any] | None = None,
    callback: Callback = DEFAULT_CALLBACK,
) -> list[FileID]:
    """Import URLs as new files, or one URL as a shared file.

    Parameters
    ----------
    backend
        The store's backend.
    path_of
        The store's key → backend path mapping (it refuses a store not open).
    urls
        URLs or local paths.
    shared_file_name
        Import the only URL as this shared file instead.
    storage_options, callback
        As for :func:`import_files`.

    Returns
    -------
    list of FileID
        One per URL, carrying the size stored and the executable bit; empty
        for a shared file.
    """
    if shared_file_name is not None:
        if len(urls) != 1:
            raise ValueError("a shared file is imported from exactly one URL")
        shared = path_of(layout.shared_key(shared_file_name))  # the name is checked first
        import_files(
            backend, urls, lambda _, __: shared, storage_options=storage_options, rollback=False
        )
        return []
    ids: dict[int, str] = {}

    def place(index: int, source: Source) -> str:
        ids[index] = layout.new_file_id(
            None, cleanup=False, executable=source.executable, basename=source.basename
        )
        return path_of(layout.parse_file_id(ids[index]).key)

    sources = import_files(backend, urls, place, storage_options=storage_options, callback=callback)
    return [FileID(ids[i], source.size, source.executable) for i, source in enumerate(sources)]


def export_ids(
    backend: Backend,
    path_of: Callable[[str], str],
    pairs: Iterable[tuple[str, str]],
    *,
    storage_options: Mapping[str, Any] | None = None,
    callback: Callback = DEFAULT_CALLBACK,
) -> None:
    """Export stored files, given by ID, to URLs.

    Raises
    ------
    InvalidIDError
        A file ID is malformed; nothing is sent.
    NoSuchFileException
        A file is not stored; nothing is sent.
    """
    refs = [(layout.parse_file_id(file_id), url) for file_id, url in pairs]
    items = [Export(path_of(ref.key), url, ref.executable) for ref, url in refs]
    owner = {item.path: ref.file_id for item, (ref, _) in zip(items, refs, strict=True)}
    try:
        export_files(backend, items, storage_options=storage_options, callback=callback)
    except NotStored as missing:
        path = str(missing.args[0]) if missing.args else ""
        raise NoSuchFileException(owner.get(path, path)) from None


# -- bulk calls -------------------------------------------------------------------


def import_files(
    backend: Backend,
    urls: Sequence[str],
    place: Callable[[int, Source], str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    callback: Callback = DEFAULT_CALLBACK,
    rollback: bool = True,
) -> list[Source]:
    """Copy each URL into the store, concurrently.

    Parameters
    ----------
    backend
        The store's backend.
    urls
        URLs or local paths.
    place
        ``place(index, source)`` returns the backend path that ``urls[index]``
        goes to; called once per URL, after its source is found.
    storage_options
        For the URLs' filesystems (the same for every URL).
    callback
        Told the number of files, then one step per file done; each file's
        bytes go to ``callback.branched(url, path)``.
    rollback
        On failure, delete every path ``place`` gave (off for a shared
        file, whose old content a failed import leaves in place).

    Returns
    -------
    list of Source
        In the order of ``urls``; ``size`` is the number of bytes stored.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError, OSError
        A URL failed; the message names it. Files that other URLs of the
        call already imported are deleted again.
    ValueError, ImportError
        A URL is empty, or its scheme unknown or not installed; raised
        before anything is copied.
    """
    for url in urls:
        check_scheme(url, "import")
    written: dict[int, str] = {}

    def job(index: int, url: str) -> Callable[[Callback], Source]:
        def run(progress: Callback) -> Source:
            def placed(source: Source) -> str:
                written[index] = place(index, source)
                return written[index]

            return import_one(backend, url, placed, storage_options, progress)

        return run

    outcomes = _run_all(
        [(redact(url), f"#{i}", job(i, url)) for i, url in enumerate(urls)], callback
    )
    failure = _first_failure(outcomes, [f"import of {redact(url)!r}" for url in urls])
    if failure is None:
        return [o for o in outcomes if isinstance(o, Source)]
    if rollback and written:
        # All or nothing: no file of a failed call survives, not even one
        # whose bytes were stored before its progress callback raised.
        backend.delete_many(list(written.values()))
    raise failure


def export_files(
    backend: Backend,
    items: Sequence[Export],
    *,
    storage_options: Mapping[str, Any] | None = None,
    callback: Callback = DEFAULT_CALLBACK,
) -> None:
    """Copy stored files to URLs, concurrently.

    Every stored file is checked first, so a missing one stops the call
    before anything is sent. Each export is atomic on its own; when one
    fails, the others already done stay.

    Parameters
    ----------
    backend
        The store's backend.
    items
        What goes where.
    storage_options
        For the URLs' filesystems; ``method`` (``"post"`` or ``"put"``) is
        given to ``put_file`` where the filesystem takes one (HTTP).
    callback
        As for :func:`import_files`.

    Raises
    ------
    NotStored
        A stored file is missing; nothing was sent.
    FileNotFoundError, PermissionError, OSError
        A destination failed; the message names it.
    ValueError, ImportError
        A URL is empty, its scheme unknown or not installed, or ``method``
        given for a filesystem without one.
    """
    for item in items:
        check_scheme(item.url, "export")
    if len(items) > 1:
        present = _run_all(
            [(p, p, _checker(backend, p)) for p in {item.path: None for item in items}], None
        )
        missing = _first_failure(present, ["check"] * len(present))
        if missing is not None:
            raise missing

    def job(item: Export) -> Callable[[Callback], None]:
        return lambda progress: export_one(backend, item, storage_options, progress)

    outcomes = _run_all([(item.path, redact(item.url), job(item)) for item in items], callback)
    failure = _first_failure(outcomes, [f"export to {redact(item.url)!r}" for item in items])
    if failure is not None:
        raise failure


def _checker(backend: Backend, path: str) -> Callable[[Callback], None]:
    def check(progress: Callback) -> None:
        del progress
        if not backend.exists(path):
            raise NotStored(path)

    return check


class _Skipped(Exception):
    """A bulk job not started because another one had failed."""


def _run_all(
    jobs: Sequence[tuple[str, str, Callable[[Callback], T]]], callback: Callback | None
) -> list[T | BaseException]:
    """Run each ``(label, label, job)``; return each result or exception, in order.

    Once a job fails, those not yet started are skipped. ``callback`` is told
    the number of jobs and one step per job done; each job gets its own
    child of it, for its bytes.
    """
    if not jobs:
        return []
    parent = callback if callback is not None else DEFAULT_CALLBACK
    parent.set_size(len(jobs))
    lock = threading.Lock()
    failed = threading.Event()

    def run(job: tuple[str, str, Callable[[Callback], T]]) -> T:
        if failed.is_set():
            raise _Skipped
        first, second, work = job
        try:
            with lock:
                child = parent.branched(first, second)
            with child:
                result = work(child)
        except CallbackFailed as error:
            failed.set()
            raise error.error from None  # the caller's own exception, as it was
        except BaseException:
            failed.set()
            raise
        with lock:
            parent.relative_update(1)
        return result

    if len(jobs) == 1:  # in the caller's thread: no pool for a single transfer
        try:
            return [run(jobs[0])]
        except BaseException as error:  # re-raised by the caller, after its clean-up
            return [error]
    outcomes: list[T | BaseException] = []
    pool = ThreadPoolExecutor(min(CONCURRENCY, len(jobs)), thread_name_prefix="fsjobstore")
    try:
        futures: list[Future[T]] = [pool.submit(run, job) for job in jobs]
        wait(futures)
    finally:
        failed.set()  # an interrupted wait skips what has not started
        pool.shutdown(wait=True, cancel_futures=True)
    for future in futures:
        failure = future.exception()
        outcomes.append(failure if failure is not None else future.result())
    return outcomes


def _first_failure(outcomes: Sequence[object], labels: Sequence[str]) -> BaseException | None:
    """Return the first real failure in input order, logging the others."""
    errors = [
        (label, o)
        for label, o in zip(labels, outcomes, strict=True)
        if isinstance(o, BaseException) and not isinstance(o, _Skipped)
    ]
    for label, error in errors[1:]:
        logger.warning("%s failed too: %s", label, SCRUBBER.scrub(str(error)))
    return errors[0][1] if errors else None
