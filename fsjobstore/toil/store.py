"""Toil's ``AbstractJobStore`` on :class:`fsjobstore.JobStore`: any fsspec URL as Toil's store."""

from __future__ import annotations

import copy
import io
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import IO, Any
from urllib.parse import ParseResult, urlsplit

from fsspec.implementations.local import LocalFileSystem
from toil.fileStores import FileID as ToilFileID
from toil.jobStores import abstractJobStore

from .. import Config as StoreConfig
from .. import JobDescription as StoredJob
from .. import JobStore, errors, layout
from ..redaction import SCRUBBER
from . import jobs
from .activation import PREFIX
from .environment import ENVIRONMENT_FILE, scrub_pickled_environment, worker_environment

__all__ = ["PREFIX", "ToilJobStore"]

logger = logging.getLogger(__name__)

#: Lifetime of a signed URL: the longest S3 allows (Toil promises at least an hour).
URL_LIFETIME = 7 * 24 * 3600
#: Writes of one job before a stream of concurrent changes is reported.
_ATTEMPTS = 20
#: Directories of fsjobstore's layout, the only entries a Toil store's root holds.
_LAYOUT = frozenset({"jobs", "files", "stats", "tmp"})
#: The shared file in which Toil keeps its configuration (written by Toil itself).
_TOIL_CONFIG = "config.pickle"
#: Schemes whose imports go to Toil's own URL access: Toil's test servers
#: for FTP answer no ranged reads (``REST``), which fsjobstore's FTP reads use.
_TOIL_STREAMED = frozenset({"ftp"})
_HINT_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_HINT_CHARS = 40


class ToilJobStore(abstractJobStore.AbstractJobStore):
    """A Toil job store on any fsspec filesystem, through :class:`fsjobstore.JobStore`.

    Toil reaches it with ``--jobStore fsjobstore:LOCATOR``, where LOCATOR is
    any fsjobstore locator (``file:/scratch/run``, ``s3://bucket/run``,
    ``az://container/run``, ``memory://run`` …).

    Parameters
    ----------
    locator
        The fsjobstore locator (without the ``fsjobstore:`` prefix). It must
        not hold a password: Toil stores its locator in the job store and
        shows it on every worker's command line.
    **storage_options
        For the filesystem (endpoint, credentials …), when the store is made
        in Python. On Toil's command line there are none: fsspec's own
        configuration and the clients' environment variables apply, in the
        leader and in every worker.

    Raises
    ------
    ValueError
        The locator holds a password.
    """

    def __init__(self, locator: str, **storage_options: Any) -> None:
        if "://" in locator and urlsplit(locator.rsplit("::", 1)[-1]).password:
            raise ValueError(
                "a Toil job store locator must not hold a password: Toil keeps its locator "
                "in the job store and on every worker's command line. Give credentials "
                "through fsspec's configuration (FSSPEC_<PROTOCOL>_<OPTION> variables or "
                "~/.config/fsspec/) or the client's own environment instead"
            )
        self._inner = JobStore(locator, **storage_options)
        super().__init__(self._inner.locator)
        self._versions = jobs.VersionCache()
        self._batches = threading.local()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({SCRUBBER.scrub(self.locator)!r})"

    @property
    def store(self) -> JobStore:
        """The fsjobstore store underneath."""
        return self._inner

    # -- lifecycle --------------------------------------------------------------

    def initialize(self, config: Any) -> None:
        """Create the store, then let Toil store its configuration in it."""
        try:
            self._inner.initialize(StoreConfig(retryCount=config.retryCount))
        except errors.JobStoreExistsException:
            raise abstractJobStore.JobStoreExistsException(self.locator, PREFIX) from None
        super().initialize(config)

    def resume(self) -> None:
        """Open the store and load Toil's configuration from it."""
        try:
            self._inner.resume()
            super().resume()
        except (errors.NoSuchJobStoreException, abstractJobStore.NoSuchFileException):
            raise abstractJobStore.NoSuchJobStoreException(self.locator, PREFIX) from None

    def destroy(self) -> None:
        """Delete the store; idempotent.

        A Toil store whose fsjobstore marker is gone is still recognised and
        deleted: its root holds nothing but fsjobstore's layout, with Toil's
        configuration in it. Any other data makes it refuse, deleting nothing.
        """
        try:
            self._inner.destroy()
        except errors.NotAJobStoreError:
            if not self._orphaned():
                raise
            logger.warning("%s has lost its marker; deleting what it holds", self)
            fs, root = self._inner.fs, self._inner.root
            fs.rm([f"{root}/{name}" for name in sorted(self._entries())], recursive=True)
            self._inner.destroy()
        self._versions = jobs.VersionCache()

    def _entries(self) -> set[str]:
        fs, root = self._inner.fs, self._inner.root
        try:
            return {str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)}
        except FileNotFoundError:
            return set()

    def _orphaned(self) -> bool:
        """Whether the root holds only fsjobstore's layout, with Toil's configuration in it."""
        config = f"{self._inner.root}/{layout.shared_key(_TOIL_CONFIG)}"
        return self._entries() <= _LAYOUT and bool(self._inner.fs.exists(config))

    def get_env(self) -> dict[str, str]:
        """Variables workers need to reach the store (never credentials)."""
        protocol = self._inner.fs.protocol
        return worker_environment(protocol if isinstance(protocol, str) else protocol[0])

    def default_caching(self) -> bool:
        """No caching on local disk (Toil's own local store says the same); on the rest, yes."""
        return not isinstance(self._inner.fs, LocalFileSystem)

    # -- jobs -------------------------------------------------------------------

    def assign_job_id(self, job_description: Any) -> None:
        """Give the job a fresh ID: its name, then 128 random bits."""
        job_description.jobStoreID = jobs.new_job_id(getattr(job_description, "jobName", ""))

    def create_job(self, job_description: Any) -> Any:
        """Store a new job; inside :meth:`batch`, when the batch ends."""
        job = job_description
        job.pre_update_hook()
        job_id = _job_id(job)
        stored = jobs.encode(job, job_id)
        pending: list[StoredJob] | None = getattr(self._batches, "jobs", None)
        if pending is not None:
            self._inner.create_job(stored)
            pending.append(stored)
            return job
        try:
            self._inner.create_job(stored)
        except errors.ConcurrentFileModificationException:
            # Already stored: Toil's stores write a job as it is, whatever is there.
            self._write(job_id, stored, create=True)
            return job
        self._versions.put(job_id, stored)
        return job

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write the jobs created inside it together, when it ends."""
        if getattr(self._batches, "jobs", None) is not None:
            yield
            return
        pending: list[StoredJob] = []
        self._batches.jobs = pending
        written = False
        try:
            with self._inner.batch():
                yield
                written = True  # the batch writes when the body is done
        except errors.ConcurrentFileModificationException:
            if not written:
                raise  # the body's own error
            # Some were stored already: write each as it is, as Toil's stores do.
            for stored in pending:
                self._write(_job_id(stored), stored, create=True)
            return
        finally:
            self._batches.jobs = None
        for stored in pending:
            self._versions.put(_job_id(stored), stored)

    def update_job(self, job_description: Any) -> None:
        """Store a new version of a job: the last writer wins, as in Toil's stores.

        Raises
        ------
        toil.jobStores.abstractJobStore.NoSuchJobException
            The job is not stored (it was deleted): it is not brought back.
        """
        job = job_description
        job.pre_update_hook()
        job_id = _job_id(job)
        self._write(job_id, jobs.encode(job, job_id), create=False)

    def _write(self, job_id: str, fresh: StoredJob, *, create: bool) -> None:
        """Write ``fresh`` over whatever version of the job is stored."""
        for _ in range(_ATTEMPTS):
            base = self._versions.get(job_id)
            if base is None:
                try:
                    base = self._inner.load_job(job_id)
                except errors.NoSuchJobException:
                    if not create:
                        raise abstractJobStore.NoSuchJobException(job_id) from None
                    try:
                        self._inner.create_job(copy.copy(fresh))
                    except errors.ConcurrentFileModificationException:
                        continue  # created meanwhile: write over it
                    self._versions.put(job_id, fresh)
                    return
            stored = copy.copy(base)  # other threads may hold the cached one
            for name in ("jobName", "unitName", "displayName", "remainingTryCount", jobs.ATTRIBUTE):
                setattr(stored, name, getattr(fresh, name))
            try:
                self._inner.update_job(stored)
            except errors.ConcurrentFileModificationException:
                self._versions.drop(job_id)  # written by another: take its version and retry
                continue
            except errors.NoSuchJobException:
                self._versions.drop(job_id)
                continue
            self._versions.put(job_id, stored)
            return
        raise abstractJobStore.ConcurrentFileModificationException(job_id)

    def load_job(self, job_id: str) -> Any:
        """Load a job and give it the store's Toil configuration."""
        try:
            stored = self._inner.load_job(job_id)
        except (errors.NoSuchJobException, errors.InvalidIDError):
            raise abstractJobStore.NoSuchJobException(job_id) from None
        return self._toil_job(job_id, stored)

    def _toil_job(self, job_id: str, stored: StoredJob) -> Any:
        job = jobs.decode(stored)
        self._versions.put(job_id, stored)
        job.assignConfig(self.config)
        return job

    def delete_job(self, job_id: str) -> None:
        """Delete a job and the files written for it with ``cleanup=True``; idempotent."""
        self._versions.drop(job_id)
        try:
            self._inner.delete_job(job_id, missing_ok=True)
        except errors.InvalidIDError:
            pass  # no such job can be stored

    def job_exists(self, job_id: str) -> bool:
        """Whether a job is stored under ``job_id``."""
        try:
            return self._inner.job_exists(job_id)
        except errors.InvalidIDError:
            return False

    def jobs(self) -> Iterator[Any]:
        """Every stored Toil job, read in bulk."""
        for stored in self._inner.jobs():
            job_id = _job_id(stored)
            try:
                yield self._toil_job(job_id, stored)
            except ValueError as exc:
                logger.warning("skipping a job that is not Toil's: %s", exc)

    # -- files ------------------------------------------------------------------

    def write_file(
        self,
        local_path: str,
        job_id: str | None = None,
        cleanup: bool = False,
        hints: list[str] | None = None,
    ) -> str:
        """Store a local file; its basename, after any hints, ends the ID."""
        cleanup = cleanup and job_id is not None  # Toil: cleanup without a job does nothing
        name = _hinted(hints, os.path.basename(local_path))
        return str(self._inner.write_file(local_path, job_id, cleanup, basename=name))

    @contextmanager
    def write_file_stream(  # noqa: PLR0917 - Toil's signature
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        hints: list[str] | None = None,
        basename: str | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> Iterator[tuple[IO[Any], str]]:
        """Write a new file as a stream; it appears when the body succeeds."""
        cleanup = cleanup and job_id is not None
        name = _hinted(hints, basename or "") or None
        with self._inner.write_file_stream(job_id, cleanup, name, encoding, errors) as (f, fid):
            yield f, str(fid)

    def get_empty_file_store_id(
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
        hints: list[str] | None = None,
    ) -> str:
        """Store an empty file and return its ID."""
        cleanup = cleanup and job_id is not None
        name = _hinted(hints, basename or "") or None
        return str(self._inner.get_empty_file_store_id(job_id, cleanup, name))

    def read_file(self, file_id: str, local_path: str, symlink: bool = False) -> None:
        """Copy a stored file to a local path (a link, on local disk, if Toil accepts one)."""
        symlink = symlink and bool(getattr(self.config, "symlink_job_store_reads", True))
        with _no_such_file(file_id):
            self._inner.read_file(file_id, local_path, symlink=symlink)

    @contextmanager
    def read_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a stored file for reading; a missing one raises on entering, as in Toil."""
        with ExitStack() as stack:
            with _no_such_file(file_id):
                handle = stack.enter_context(
                    self._inner.read_file_stream(file_id, encoding, errors)
                )
            yield handle

    def delete_file(self, file_id: str) -> None:
        """Delete a stored file; idempotent."""
        try:
            self._inner.delete_file(file_id, missing_ok=True)
        except errors.InvalidIDError:
            pass  # no such file can be stored

    def file_exists(self, file_id: str) -> bool:
        """Whether a file is stored under ``file_id``."""
        try:
            return self._inner.file_exists(file_id)
        except errors.InvalidIDError:
            return False

    def get_file_size(self, file_id: str) -> int:
        """Size of a stored file in bytes; 0 for a missing one, as Toil asks."""
        try:
            return self._inner.get_file_size(file_id)
        except (errors.NoSuchFileException, errors.InvalidIDError):
            return 0

    def update_file(self, file_id: str, local_path: str) -> None:
        """Replace a stored file with a local file's content, atomically."""
        with _no_such_file(file_id):
            self._inner.update_file(file_id, local_path)

    @contextmanager
    def update_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        """Replace a stored file's content as a stream; if the body raises, the old one stays."""
        with ExitStack() as stack:
            with _no_such_file(file_id):
                handle = stack.enter_context(
                    self._inner.update_file_stream(file_id, encoding, errors)
                )
            yield handle

    def get_public_url(self, file_name: str) -> str:
        """Return a URL others can read the file at: ``file:`` on local disk, else signed.

        Raises
        ------
        toil.jobStores.abstractJobStore.NoSuchFileException
            The file is not stored.
        NotImplementedError
            The filesystem cannot sign URLs (memory, SFTP …).
        RuntimeError
            It can, but not with these credentials (gcsfs needs a service
            account's key; adlfs an account key).
        """
        if not self.file_exists(file_name):
            raise abstractJobStore.NoSuchFileException(file_name)
        return self._url(layout.parse_file_id(file_name).key, file_name)

    def get_shared_public_url(self, shared_file_name: str) -> str:
        """As :meth:`get_public_url`, for a shared file."""
        key = layout.shared_key(shared_file_name)
        if not self._inner.fs.exists(f"{self._inner.root}/{key}"):
            raise abstractJobStore.NoSuchFileException(shared_file_name)
        return self._url(key, shared_file_name)

    def _url(self, key: str, name: str) -> str:
        fs, path = self._inner.fs, f"{self._inner.root}/{key}"
        if isinstance(fs, LocalFileSystem):
            return f"file:{path}"  # Toil's own local store's form
        try:
            return str(fs.sign(path, expiration=URL_LIFETIME))
        except NotImplementedError:
            raise NotImplementedError(
                f"{type(fs).__name__} cannot make a URL others can open, for {name!r}"
            ) from None
        except Exception as exc:
            raise RuntimeError(
                f"cannot sign a URL for {name!r} on {type(fs).__name__}: {SCRUBBER.scrub(str(exc))}"
            ) from None

    # -- shared files -----------------------------------------------------------

    @contextmanager
    def write_shared_file_stream(
        self,
        shared_file_name: str,
        encrypted: bool | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> Iterator[IO[Any]]:
        """Write a shared file; the last writer wins.

        ``encrypted`` is accepted and ignored: encryption is the filesystem's
        (S3's ``Config.sseKeyFile`` in fsjobstore). Toil's environment file is
        stored without the variables that hold credentials.
        """
        del encrypted
        if shared_file_name == ENVIRONMENT_FILE:
            with self._scrubbed_environment(encoding, errors) as handle:
                yield handle
            return
        with self._inner.write_shared_file_stream(shared_file_name, encoding, errors) as handle:
            yield handle

    @contextmanager
    def _scrubbed_environment(self, encoding: str | None, errors: str | None) -> Iterator[IO[Any]]:
        raw = io.BytesIO()
        handle: IO[Any] = raw if encoding is None else io.TextIOWrapper(raw, encoding, errors)
        yield handle
        handle.flush()
        data = scrub_pickled_environment(raw.getvalue())
        with self._inner.write_shared_file_stream(ENVIRONMENT_FILE) as target:
            target.write(data)

    @contextmanager
    def read_shared_file_stream(
        self, shared_file_name: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a shared file for reading; a missing one raises on entering."""
        with ExitStack() as stack:
            with _no_such_file(shared_file_name):
                handle = stack.enter_context(
                    self._inner.read_shared_file_stream(shared_file_name, encoding, errors)
                )
            yield handle

    # -- logs -------------------------------------------------------------------

    def write_logs(self, msg: str | bytes) -> None:
        """Store a statistics or log message for the leader."""
        self._inner.write_logs(msg)

    def read_logs(self, callback: Callable[..., Any], read_all: bool = False) -> int:
        """Hand each unread message to ``callback``; return how many."""
        return self._inner.read_logs(callback, read_all)

    # -- import and export: fsjobstore's transfer layer, for every scheme -------

    def _import_file(
        self,
        otherCls: Any,
        uri: ParseResult,
        shared_file_name: str | None = None,
        hardlink: bool = False,
        symlink: bool = True,
    ) -> ToilFileID | None:
        if uri.scheme.lower() in _TOIL_STREAMED:
            # Toil reads these in one streamed request; fsjobstore's transfer
            # layer reads FTP in ranged blocks, which not every server answers.
            return super()._import_file(otherCls, uri, shared_file_name, hardlink, symlink)
        del otherCls, hardlink, symlink  # imports are always copies here
        url = uri.geturl()
        if shared_file_name is not None:
            self._requireValidSharedFileName(shared_file_name)
            self._inner.import_file(url, shared_file_name=shared_file_name)
            return None
        found = self._inner.import_file(url)
        assert found is not None  # only a shared-file import returns None
        return ToilFileID(str(found), found.size, found.executable)

    def _export_file(self, otherCls: Any, jobStoreFileID: Any, url: ParseResult) -> None:
        del otherCls
        with _no_such_file(jobStoreFileID):
            self._inner.export_file(jobStoreFileID, url.geturl())


def _job_id(job: Any) -> str:
    job_id = job.jobStoreID
    if not isinstance(job_id, str):
        raise ValueError(f"job {job!r} has no job store ID: call assign_job_id first")
    return job_id


def _hinted(hints: list[str] | None, basename: str) -> str:
    """Return the name to store a file under: its hints, made safe, then its basename.

    fsjobstore keeps a file's name at the end of its ID, so hints show there
    too (``lions.tigers.bears--file.txt``); the name stays within fsjobstore's
    128 characters, the basename kept whole where it fits.
    """
    parts = []
    room = 128 - len(basename) - 2
    for hint in hints or []:
        part = _HINT_UNSAFE.sub("_", hint).strip("._-")[:_HINT_CHARS]
        if part and part not in (".", "..") and len(part) < room:
            parts.append(part)
            room -= len(part) + 1
    if not parts:
        return basename
    return f"{'.'.join(parts)}--{basename}"


@contextmanager
def _no_such_file(name: str) -> Iterator[None]:
    """Turn fsjobstore's "no such file" (or a malformed ID) into Toil's."""
    try:
        yield
    except (errors.NoSuchFileException, errors.InvalidIDError):
        raise abstractJobStore.NoSuchFileException(name) from None
