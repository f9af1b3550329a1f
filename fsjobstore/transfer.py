"""Import and export: any URL, through fsspec, one code path.

Every URL is opened with :func:`fsspec.core.url_to_fs`, whatever its scheme,
and the bytes take the first of these ways that applies.

Import (URL → store):

1. a local file goes in through the backend's atomic ``upload``;
2. a URL on the store's own service (same filesystem class, same options
   but for caching) is copied by the service: S3 ``CopyObject``, GCS
   rewrite, Azure copy, a dict entry in memory;
3. anything else is read with ``fs.open`` in blocks of :data:`_BLOCK` (HTTP
   range requests, FTP ``REST``/``RETR``, object-store ranged GETs) into the
   backend's atomic ``open_write``.

Export (store → URL):

1. a local destination gets the backend's atomic ``download`` (a temporary
   file beside it, renamed into place), and the executable bit;
2. the store's own service copies server-side, as for imports;
3. a filesystem that can open files for writing gets the stored file as a
   stream, in blocks of :data:`_BLOCK`: object stores with
   ``autocommit=False`` (S3 multipart, GCS resumable, Azure staged blocks:
   the upload appears on commit, and is aborted otherwise), the others (FTP,
   SFTP, memory) through a hidden sibling renamed into place;
4. one that cannot (HTTP) uploads a local file with ``put_file`` in one
   streamed request (``POST``, or ``PUT`` with the ``method`` storage
   option): the stored file itself on a local store, else a temporary copy.

Memory stays bounded by a few blocks whatever the file size. A transfer the
foreign side fails in a way that may pass (HTTP 5xx, 408, 429; FTP 4xx; a
dropped connection) is retried, :data:`ATTEMPTS` times in all. Errors name
the URL without its credentials, and so do the log records of the clients
the bytes go through. Bulk calls run the same per-file transfer in a thread
pool; each transfer on an async filesystem (HTTP, object stores) runs on
fsspec's event loop, so they overlap there.
"""

from __future__ import annotations

import errno
import ftplib
import http
import inspect
import logging
import os
import posixpath
import re
import ssl
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from typing import IO, Any, TypeVar
from urllib.parse import unquote, urlsplit

import fsspec
from fsspec import AbstractFileSystem
from fsspec.callbacks import DEFAULT_CALLBACK, Callback
from fsspec.core import split_protocol, url_to_fs
from fsspec.implementations.local import LocalFileSystem

from . import layout
from .backends import Backend, NotStored
from .backends.base import local_temp, unlink_quietly
from .errors import NoSuchFileException
from .job import FileID
from .streams import is_executable, make_executable

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

#: Attempts at one transfer whose foreign side fails in a way that may pass.
ATTEMPTS = 3
#: Seconds before the second attempt; doubled before each further one.
BACKOFF = 0.25
#: Transfers in flight at once in one bulk call.
CONCURRENCY = 16

#: Bytes read from or written to a foreign file at a time.
_CHUNK = 1024 * 1024
#: Block size of the foreign files a transfer opens: S3's smallest part. A
#: part on its way costs several times its size (buffer, request body,
#: checksums), so the part size bounds a transfer's memory.
_BLOCK = 5 * 1024 * 1024

#: Options that tune only a client's caches: filesystems differing in nothing
#: else reach the same service as the same user.
_CACHE_OPTIONS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths"}
)
#: Option names (lower case, as substrings) whose string values are secrets.
_SECRET_NAMES = ("pass", "secret", "token", "key", "credential", "sas", "auth", "user", "sig")
#: Shorter strings are not scrubbed from messages: they would mangle words.
_MIN_SECRET = 4
#: Values of secret-named options that are modes, not secrets (gcsfs's ``token``).
_NOT_SECRET = frozenset({"anon", "cloud", "browser", "cache", "google_default", "true", "false"})
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s?#]*@")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&](?:[^=&#\s]*(?:sig|signature|token|secret|password|credential|key)[^=&#\s]*)=)"
    r"[^&#\s'\"]*",
    re.IGNORECASE,
)


def redact(url: str) -> str:
    """Remove credentials from a URL, for messages and logs.

    ``user:password@`` becomes ``***@``, and the values of query parameters
    that carry credentials (``sig``, ``X-Amz-Signature``, ``token`` …) become
    ``***``.
    """
    return _SECRET_QUERY.sub(r"\g<name>***", _USERINFO.sub(r"\g<scheme>***@", url))


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
        _check_scheme(url, "import")
    written: dict[int, str] = {}

    def job(index: int, url: str) -> Callable[[Callback], Source]:
        def run(progress: Callback) -> Source:
            def placed(source: Source) -> str:
                written[index] = place(index, source)
                return written[index]

            return _import_one(backend, url, placed, storage_options, progress)

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
        _check_scheme(item.url, "export")
    if len(items) > 1:
        present = _run_all(
            [(p, p, _checker(backend, p)) for p in {item.path: None for item in items}], None
        )
        missing = _first_failure(present, ["check"] * len(present))
        if missing is not None:
            raise missing

    def job(item: Export) -> Callable[[Callback], None]:
        return lambda progress: _export_one(backend, item, storage_options, progress)

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
        except _CallbackFailed as error:
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
        logger.warning("%s failed too: %s", label, _SCRUBBER.scrub(str(error)))
    return errors[0][1] if errors else None


# -- one import, one export ---------------------------------------------------------


def _import_one(
    backend: Backend,
    url: str,
    place: Callable[[Source], str],
    storage_options: Mapping[str, Any] | None,
    callback: Callback,
) -> Source:
    remote = _Remote(url, storage_options, "import")
    fs, src = remote.fs, remote.path
    info = remote.attempt(lambda: remote.call(fs.info, src))
    if info.get("type") == "directory":
        raise IsADirectoryError(errno.EISDIR, "cannot import a directory", remote.shown)
    local = isinstance(fs, LocalFileSystem)
    source = Source(url, _basename(src), int(info.get("size") or 0), local and is_executable(src))
    dest = place(source)
    progress = _Progress(callback)
    progress.set_size(info.get("size"))
    if local:
        backend.upload(src, dest)
    elif _same_service(fs, backend.fs):
        logger.debug("import of %s: server-side copy", remote.shown)
        remote.attempt(lambda: remote.call(backend.fs.cp_file, src, dest))
    else:

        def download() -> int:
            progress.absolute_update(0)
            received = 0
            # Reads of a size we choose, with no cache to copy them again, bound
            # the memory; get_file would not (s3fs fetches 50 MiB parts at once).
            # The source closes first, so its buffers are gone when the store
            # uploads what it spooled.
            with (
                backend.open_write(dest) as target,
                remote.call(fs.open, src, "rb", block_size=_BLOCK, cache_type="none") as f,
            ):
                while chunk := remote.call(f.read, _BLOCK):
                    target.write(chunk)
                    received += len(chunk)
                    progress.relative_update(len(chunk))
            return received

        # The size the server announced may be missing or wrong: keep what came.
        return replace(source, size=remote.attempt(download))
    progress.absolute_update(source.size)
    return source


def _export_one(
    backend: Backend,
    item: Export,
    storage_options: Mapping[str, Any] | None,
    callback: Callback,
) -> None:
    remote = _Remote(item.url, storage_options, "export")
    fs, dst = remote.fs, remote.path
    progress = _Progress(callback)
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
    elif _same_service(fs, backend.fs):
        logger.debug("export to %s: server-side copy", remote.shown)
        try:
            remote.attempt(lambda: remote.call(backend.fs.cp_file, item.path, dst))
        except FileNotFoundError:
            if not backend.exists(item.path):
                raise NotStored(item.path) from None
            raise
    else:
        remote.attempt(lambda: _send(backend, item.path, remote, progress))


def _send(backend: Backend, path: str, remote: _Remote, progress: Callback) -> None:
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
    # needs too, so it must be a plain local file.
    with _local_copy(backend, path) as local:
        remote.call(remote.fs.put_file, local, remote.path, callback=progress, **remote.put_options)


class _Upload:
    """A file being written at an export's destination, shown only when complete."""

    def __init__(self, remote: _Remote, file: IO[bytes], temp: str | None) -> None:
        self.remote = remote
        self.file: Any = file
        self.temp = temp

    @classmethod
    def open(cls, remote: _Remote) -> _Upload | None:
        """Open the destination for writing; None if its filesystem cannot."""
        fs, dst = remote.fs, remote.path
        try:
            if fs.async_impl:
                # Object stores upload in parts and show the object only when
                # the upload completes: commit() does that, discard() aborts.
                file = remote.call(fs.open, dst, "wb", block_size=_BLOCK, autocommit=False)
                return cls(remote, file, None)
            # The others write in place, where half an upload would show:
            # write a hidden sibling and rename it.
            parent = fs._parent(dst)
            temp = posixpath.join(parent, f".{posixpath.basename(dst)}.{uuid.uuid4().hex[:12]}~")
            remote.call(fs.makedirs, parent, exist_ok=True)
            return cls(remote, remote.call(fs.open, temp, "wb", block_size=_BLOCK), temp)
        except _Foreign as failure:
            if isinstance(failure.error, NotImplementedError):
                return None
            raise

    def send(self, source: IO[bytes], progress: Callback) -> None:
        """Copy ``source`` and make it visible; on any failure, show nothing."""
        remote, file = self.remote, self.file
        try:
            while chunk := source.read(_CHUNK):
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
    """Yield a local file with the stored content: on local disk, the stored file itself."""
    if isinstance(backend.fs, LocalFileSystem):
        if not os.path.isfile(path):
            raise NotStored(path)
        yield path
        return
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


def _same_service(a: AbstractFileSystem, b: AbstractFileSystem) -> bool:
    """Whether ``a`` and ``b`` reach the same service as the same user."""
    if type(a) is not type(b):
        return False
    if a is b:
        return True

    def essential(fs: AbstractFileSystem) -> dict[str, Any]:
        options = getattr(fs, "storage_options", None) or {}
        return {k: v for k, v in options.items() if k not in _CACHE_OPTIONS}

    try:
        return bool(essential(a) == essential(b))
    except Exception:  # option values that cannot be compared
        return False


# -- the foreign side: resolving URLs, retrying, reporting ----------------------------


class _Foreign(Exception):
    """An error of the foreign side of a transfer, to be retried or reported."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class _CallbackFailed(Exception):
    """The caller's progress callback raised: re-raised as it is, never retried."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class _Progress(Callback):  # type: ignore[misc]
    """Passes progress to the caller's callback, marking what that raises."""

    def __init__(self, inner: Callback) -> None:
        super().__init__()
        self.inner = inner

    def _pass(self, method: Callable[..., Any], *args: Any) -> None:
        try:
            method(*args)
        except Exception as exc:
            raise _CallbackFailed(exc) from exc

    def set_size(self, size: int | None) -> None:
        self._pass(self.inner.set_size, size)

    def relative_update(self, inc: int = 1) -> None:
        self._pass(self.inner.relative_update, inc)

    def absolute_update(self, value: int) -> None:
        self._pass(self.inner.absolute_update, value)


class _Remote:
    """The foreign side of one transfer: its filesystem and path, and its failures."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None, verb: str) -> None:
        self.url, self.verb, self.shown = url, verb, redact(url)
        options = dict(storage_options or {})
        method = options.pop("method", None)  # an upload option, not the filesystem's
        self.put_options: dict[str, Any] = {}
        secrets = _secrets_of(url, options)
        _SCRUBBER.learn(secrets)
        cls = _check_scheme(url, verb)
        _guard_logs(cls)
        self.fs, self.path = self.attempt(lambda: self.call(_resolve, url, options))
        if method is not None and verb == "export":
            upload = self.fs._put_file if self.fs.async_impl else self.fs.put_file
            if "method" not in inspect.signature(upload).parameters:
                raise ValueError(
                    f"cannot export to {self.shown!r}: storage option 'method' applies to "
                    f"HTTP(S) uploads, not to {type(self.fs).__name__}"
                )
            self.put_options["method"] = method
        http_fs = sys.modules.get("fsspec.implementations.http")
        if verb == "export" and http_fs and isinstance(self.fs, http_fs.HTTPFileSystem):
            # fsspec turns an upload's 404 into a bare FileNotFoundError; have
            # aiohttp raise first, with the status, so the message can name it.
            self.put_options["raise_for_status"] = True

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func``, marking its errors as the foreign side's."""
        try:
            return func(*args, **kwargs)
        except (_Foreign, _CallbackFailed):
            raise
        except Exception as exc:
            failed = _find(exc, _CallbackFailed)
            if failed is not None:
                raise failed from None
            raise _Foreign(exc) from exc

    def attempt(self, func: Callable[[], T]) -> T:
        """Run ``func`` until it succeeds, fails for good, or runs out of attempts."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return func()
            except _Foreign as failure:
                error = failure.error
                if attempt < ATTEMPTS and _transient(error):
                    logger.info(
                        "%s of %s failed (%s); attempt %d of %d in %.2f s",
                        self.verb,
                        self.shown,
                        _SCRUBBER.scrub(_describe(error)[2]),
                        attempt + 1,
                        ATTEMPTS,
                        BACKOFF * 2 ** (attempt - 1),
                    )
                    time.sleep(BACKOFF * 2 ** (attempt - 1))
                    continue
                report = self.failure(error, attempt)
                if _leaks(error):
                    raise report from None
                raise report from error
            except _CallbackFailed as failed:
                raise failed.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def failure(self, error: Exception, attempts: int) -> Exception:
        """Return the exception to raise for ``error``: a builtin type, naming the URL."""
        kind, code, text = _describe(error)
        text = _SCRUBBER.scrub(text)
        if attempts > 1:
            text += f" (after {attempts} attempts)"
        if kind in (ValueError, TypeError, NotImplementedError):
            return kind(f"cannot {self.verb} {self.shown!r}: {text}")
        return kind(code, f"cannot {self.verb}: {text}", self.shown)


def _resolve(url: str, options: dict[str, Any]) -> tuple[AbstractFileSystem, str]:
    fs, path = url_to_fs(url, **options)
    return fs, str(path)


def _protocols(url: str) -> list[str]:
    parts = url.split("::")
    found = []
    for i, part in enumerate(parts):
        if i < len(parts) - 1 and "://" not in part:
            found.append(part)  # a chained URL's outer layers are bare names
        else:
            protocol = split_protocol(part)[0]
            found.append(protocol or "file")
    return found


def _check_scheme(url: object, verb: str) -> type[AbstractFileSystem]:
    """Return the filesystem class of ``url``'s scheme, found with no I/O.

    Raises
    ------
    ValueError
        ``url`` is empty, or no fsspec filesystem is known for its scheme.
    ImportError
        The scheme's package is not installed; the message names it.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"expected a URL or path to {verb}, got {url!r}")
    shown = redact(url)
    cls: type[AbstractFileSystem] = LocalFileSystem
    for protocol in _protocols(url):
        try:
            cls = fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise ValueError(
                f"cannot {verb} {shown!r}: unknown URL scheme {protocol!r}; no fsspec "
                f"filesystem is registered for it: install the package that provides the "
                f"{protocol!r} protocol"
            ) from None
        except ImportError as exc:
            raise ImportError(
                f"cannot {verb} {shown!r}: the {protocol!r} scheme needs a package that is "
                f"not installed ({exc})"
            ) from None
    return cls


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _find(error: BaseException, kind: type[T]) -> T | None:
    for e in _chain(error):
        if isinstance(e, kind):
            return e
    return None


def _reply(error: BaseException) -> tuple[str, int, str] | None:
    """``("HTTP" or "FTP", code, text)`` of the server's answer, if any in the chain."""
    for e in _chain(error):
        if isinstance(e, ftplib.Error):
            match = re.match(r"\s*(\d{3})[ -]?(.*)", str(e), re.DOTALL)
            if match:
                return "FTP", int(match[1]), match[2].strip()
        for name in ("status", "status_code", "code"):  # aiohttp, Azure, gcsfs
            code = getattr(e, name, None)
            if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
                try:
                    phrase = http.HTTPStatus(code).phrase
                except ValueError:
                    phrase = ""
                return "HTTP", code, phrase
    return None


def _aiohttp_error(error: BaseException, *names: str) -> bool:
    aiohttp = sys.modules.get("aiohttp")  # never imported just to ask
    kinds = tuple(getattr(aiohttp, name) for name in names if hasattr(aiohttp, name))
    return bool(kinds) and isinstance(error, kinds)


def _tls_error(error: BaseException) -> BaseException | None:
    for e in _chain(error):
        if isinstance(e, ssl.SSLError) or _aiohttp_error(e, "ClientSSLError"):
            return e
    return None


def _connection_error(error: BaseException) -> BaseException | None:
    for e in _chain(error):
        if isinstance(e, (ConnectionError, TimeoutError, EOFError)) or _aiohttp_error(
            e, "ClientConnectionError", "ClientPayloadError"
        ):
            return e
    return None


def _transient(error: Exception) -> bool:
    reply = _reply(error)
    if reply is not None:
        protocol, code, _ = reply
        if protocol == "FTP":
            return 400 <= code < 500
        return code >= 500 or code in (408, 429)
    return _tls_error(error) is None and _connection_error(error) is not None


#: Builtin exception types a foreign error keeps (most specific first).
_KEPT = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    FileExistsError,
    TimeoutError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionError,
)


#: Errors that say what went wrong even when a dropped connection is in their chain.
_DEFINITE = (IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError)


def _describe(error: Exception) -> tuple[type[Exception], int, str]:  # noqa: PLR0911 - one case each
    """Return the ``(exception type, errno, text)`` that report ``error``."""
    reply = _reply(error)
    if reply is not None:
        protocol, code, text = reply
        kind: type[OSError] = OSError
        if code in ((530, 332) if protocol == "FTP" else (401, 403)):
            kind = PermissionError
        elif code in ((550,) if protocol == "FTP" else (404, 410)):
            kind = FileNotFoundError
        number = {PermissionError: errno.EACCES, FileNotFoundError: errno.ENOENT}.get(kind)
        return kind, number or errno.EIO, f"{protocol} {code} {text}".strip()
    tls = _tls_error(error)
    if tls is not None:
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or tls
        return OSError, errno.EPROTO, f"TLS failed: {reason}"
    connection = _connection_error(error)
    if connection is not None and not isinstance(error, _DEFINITE):
        # fsspec reports an HTTP server it cannot reach as a missing file.
        kinds = (k for e in _chain(connection) for k in _KEPT[5:] if isinstance(e, k))
        return next(kinds, ConnectionError), errno.ECONNABORTED, f"connection failed: {connection}"
    if isinstance(error, FileNotFoundError):
        return FileNotFoundError, errno.ENOENT, "no such file"
    if type(error) in (ValueError, TypeError):
        return type(error), 0, str(error)
    if isinstance(error, NotImplementedError):
        return NotImplementedError, 0, str(error) or "not supported by this filesystem"
    if isinstance(error, OSError):
        kind = next((k for k in _KEPT if isinstance(error, k)), OSError)
        return kind, error.errno or errno.EIO, str(error.strerror or error)
    return OSError, errno.EIO, f"{type(error).__name__}: {error}"


def _leaks(error: BaseException) -> bool:
    """Whether printing ``error`` and its chain would show a credential."""
    return any(_SCRUBBER.scrub(str(e)) != str(e) for e in _chain(error))


# -- credentials out of messages and logs ------------------------------------------


def _secrets_of(url: str, options: Mapping[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    if "://" in url:
        parts = urlsplit(url)
        for value in (parts.username, parts.password):
            if value:
                found |= {value, unquote(value)}

    def walk(values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            if isinstance(value, Mapping):
                walk(value)
            elif isinstance(value, str) and any(s in str(name).lower() for s in _SECRET_NAMES):
                found.add(value)
                # Connection strings hold their secrets as "Name=value;" pairs.
                for pair in value.split(";"):
                    key, _, part = pair.partition("=")
                    if part and any(s in key.lower() for s in _SECRET_NAMES):
                        found.add(part)

    walk(options)
    return frozenset(s for s in found if len(s) >= _MIN_SECRET and s.lower() not in _NOT_SECRET)


class _Scrubber(logging.Filter):
    """Takes credentials out of text, and out of log records."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def learn(self, secrets: frozenset[str]) -> None:
        """Scrub ``secrets`` from now on."""
        if not secrets <= self.secrets:
            with self._lock:  # copy on write: readers never see the set change
                self.secrets = self.secrets | secrets

    def scrub(self, text: str) -> str:
        """``text`` without URL credentials or any secret seen so far."""
        text = redact(text)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the message and any traceback of ``record``; never drop it."""
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        return True


_SCRUBBER = _Scrubber()
#: Loggers that may see a URL or an option: fsspec's, the clients', ours.
_LOGGERS = (
    *("fsspec", "aiohttp", "s3fs", "gcsfs", "adlfs", "azure", "botocore", "aiobotocore"),
    *("urllib3", "paramiko", "fsjobstore"),
)
_guarded: dict[str, int] = {}  # root logger name -> loggers known when last guarded


def _guard_logs(cls: type) -> None:
    """Put the scrubber on every logger of the clients a transfer goes through.

    A logger's filters see only its own records, not its children's, so each
    existing logger below those roots gets one; loggers made later are found
    when the next transfer starts.
    """
    roots = {*_LOGGERS, cls.__module__.split(".")[0]}
    names = logging.root.manager.loggerDict
    known = len(names)
    if all(_guarded.get(root) == known for root in roots):
        return
    for name in [*roots, *list(names)]:
        if name.split(".")[0] in roots:
            target = logging.getLogger(name)
            if _SCRUBBER not in target.filters:
                target.addFilter(_SCRUBBER)
    _guarded.update(dict.fromkeys(roots, len(names)))
