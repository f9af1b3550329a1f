"""The job store interface, and Toil's camelCase names for it."""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import IO, TYPE_CHECKING, Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .job import Config, FileID, JobDescription

if TYPE_CHECKING:
    from .store import JobStore

__all__ = ["AbstractJobStore"]

PathLike = str | os.PathLike[str]


class _Alias:
    """A second name for a method, renaming Toil's camelCase keyword arguments."""

    def __init__(self, target: str, renames: Mapping[str, str]) -> None:
        self.target = target
        self.renames = dict(renames)

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        method = getattr(obj if obj is not None else objtype, self.target)
        if not self.renames:
            return method

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            for old, new in self.renames.items():
                if old in kwargs:
                    kwargs[new] = kwargs.pop(old)
            return method(*args, **kwargs)

        return call


def _alias(target: str, **renames: str) -> Any:
    return _Alias(target, renames)


class AbstractJobStore(ABC):
    """What every job store does.

    The methods are snake_case, as in current Toil; the camelCase names of
    older Toil (``writeFile(localFilePath, jobStoreID=None)`` …) work too,
    keyword arguments included.
    """

    locator: str

    # Toil's camelCase names: each one is the snake_case method, with its
    # camelCase keyword arguments renamed.
    assignID = _alias("assign_job_id", jobDescription="job_description")
    create = _alias("create_job", jobDescription="job_description")
    update = _alias("update_job", jobDescription="job_description", job="job_description")
    load = _alias("load_job", jobStoreID="job_id")
    delete = _alias("delete_job", jobStoreID="job_id")
    exists = _alias("job_exists", jobStoreID="job_id")
    writeFile = _alias("write_file", localFilePath="local_path", jobStoreID="job_id")
    writeFileStream = _alias("write_file_stream", jobStoreID="job_id")
    getEmptyFileStoreID = _alias("get_empty_file_store_id", jobStoreID="job_id")
    readFile = _alias("read_file", jobStoreFileID="file_id", localFilePath="local_path")
    readFileStream = _alias("read_file_stream", jobStoreFileID="file_id")
    updateFile = _alias("update_file", jobStoreFileID="file_id", localFilePath="local_path")
    updateFileStream = _alias("update_file_stream", jobStoreFileID="file_id")
    deleteFile = _alias("delete_file", jobStoreFileID="file_id")
    fileExists = _alias("file_exists", jobStoreFileID="file_id")
    getFileSize = _alias("get_file_size", jobStoreFileID="file_id")
    writeSharedFileStream = _alias("write_shared_file_stream", sharedFileName="shared_file_name")
    readSharedFileStream = _alias("read_shared_file_stream", sharedFileName="shared_file_name")
    writeStatsAndLogging = _alias("write_logs", statsAndLoggingString="msg")
    readStatsAndLogging = _alias("read_logs", readAll="read_all")
    importFile = _alias("import_file", srcUrl="src_url", sharedFileName="shared_file_name")
    exportFile = _alias("export_file", jobStoreFileID="file_id", dstUrl="dst_url")

    @classmethod
    def createJobStore(cls, locator: str, **storage_options: Any) -> JobStore:
        """Return an uninitialized store for ``locator``.

        Called on :class:`AbstractJobStore` it returns a :class:`JobStore`;
        called on a subclass, an instance of that subclass.
        """
        from .store import JobStore

        target = JobStore if cls is AbstractJobStore else cls
        if not issubclass(target, JobStore):
            raise TypeError(f"{target.__name__} cannot be created from a locator")
        return target(locator, **storage_options)

    # -- lifecycle --------------------------------------------------------------

    @property
    @abstractmethod
    def config(self) -> Config:
        """The configuration stored by ``initialize`` and restored by ``resume``.

        Raises
        ------
        JobStoreNotOpenError
            Neither ``initialize`` nor ``resume`` has been called.
        """

    @abstractmethod
    def initialize(self, config: Config | None = None) -> None:
        """Create the store and store ``config`` (default: ``Config()``).

        Raises
        ------
        JobStoreExistsException
            A job store is there already.
        NotAJobStoreError
            The location holds other data; nothing is written.
        ValueError
            ``config.jobStore`` names another locator.
        """

    @abstractmethod
    def resume(self) -> None:
        """Open an existing store and restore its configuration.

        Raises
        ------
        NoSuchJobStoreException
            No job store at the locator.
        """

    @abstractmethod
    def destroy(self) -> None:
        """Delete the store and everything in it.

        Idempotent: a missing or half-deleted store is fine. The marker is
        deleted last, so an interrupted destroy can be completed by calling it
        again.

        Raises
        ------
        NotAJobStoreError
            The location holds data but no job-store marker; nothing is deleted.
        """

    # -- jobs -------------------------------------------------------------------

    @abstractmethod
    def assign_job_id(self, job_description: JobDescription) -> str:
        """Give the job a new ID (and its default try count) without storing it."""

    @abstractmethod
    def create_job(self, job_description: JobDescription) -> JobDescription:
        """Store a new job, assigning an ID if it has none; return the same object.

        Raises
        ------
        ConcurrentFileModificationException
            A job with this ID is already stored; nothing is written.
        TypeError
            An attribute is not JSON-serializable; nothing is written.
        """

    @abstractmethod
    def batch(self) -> AbstractContextManager[None]:
        """Buffer ``create_job`` calls and write them together, in one bulk call, on exit.

        If the body raises, nothing buffered is written. Jobs created in the
        batch are not visible until it exits. A batch is not one atomic write:
        a process killed while it writes may leave any of its jobs stored,
        each of them whole.
        """

    @abstractmethod
    def update_job(self, job_description: JobDescription) -> None:
        """Store a new version of a job.

        Raises
        ------
        NoSuchJobException
            The job is not stored.
        ConcurrentFileModificationException
            Another writer changed the job since this object was loaded or
            written; nothing is written. Load it again and retry.
        """

    @abstractmethod
    def load_job(self, job_id: str) -> JobDescription:
        """Load a job.

        Raises
        ------
        NoSuchJobException
            The job is not stored.
        """

    @abstractmethod
    def delete_job(self, job_id: str, missing_ok: bool = False) -> None:
        """Delete a job and every file written for it with ``cleanup=True``.

        Raises
        ------
        NoSuchJobException
            The job is not stored and ``missing_ok`` is false.
        """

    @abstractmethod
    def job_exists(self, job_id: str) -> bool:
        """Whether a job is stored under ``job_id``."""

    @abstractmethod
    def jobs(self) -> Iterator[JobDescription]:
        """Every stored job, read in bulk, in no set order.

        The store is listed and read a page at a time, so memory holds one
        page of jobs however many the store has.
        """

    # -- files ------------------------------------------------------------------

    @abstractmethod
    def write_file(
        self,
        local_path: PathLike,
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
    ) -> FileID:
        """Copy a local file into the store; its basename ends the new file ID.

        Parameters
        ----------
        local_path
            The file to copy: a regular file, or a device that reads to an
            end (``/dev/null``); a directory, a FIFO or a socket is refused.
        job_id
            The job the file belongs to, if any.
        cleanup
            Delete the file with that job (needs ``job_id``).
        basename
            End the file ID with this name instead of the local file's.
        """

    @abstractmethod
    def write_file_stream(
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> AbstractContextManager[tuple[IO[Any], FileID]]:
        """Write a new file as a stream: ``with store.write_file_stream() as (f, file_id)``.

        Text mode when ``encoding`` is given. The file appears only when the
        body succeeds; ``file_id.size`` is set on exit.
        """

    @abstractmethod
    def get_empty_file_store_id(
        self, job_id: str | None = None, cleanup: bool = False, basename: str | None = None
    ) -> FileID:
        """Store an empty file and return its ID."""

    @abstractmethod
    def read_file(self, file_id: str, local_path: PathLike, symlink: bool = False) -> None:
        """Copy a stored file to a local path, replacing what is there.

        The local path never holds part of a file: the copy is made under a
        temporary name beside it and renamed into place (a store on local
        disk unlinks an existing file just before, so for a moment there is
        none). If the copy fails, an existing file is kept. The executable
        bit recorded in the file ID is restored. With ``symlink=True`` a
        store on local disk links to the stored file instead of copying it;
        the caller must then not modify it.

        Raises
        ------
        NoSuchFileException
            The file is not stored.
        """

    @abstractmethod
    def read_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        """Open a stored file for reading (text mode when ``encoding`` is given).

        Raises
        ------
        NoSuchFileException
            The file is not stored.
        """

    @abstractmethod
    def update_file(self, file_id: str, local_path: PathLike) -> None:
        """Replace a stored file with a local file's content, atomically.

        Raises
        ------
        NoSuchFileException
            The file is not stored.
        """

    @abstractmethod
    def update_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        """Replace a stored file's content as a stream.

        If the body raises, the exception propagates and the old content stays.

        Raises
        ------
        NoSuchFileException
            The file is not stored.
        """

    @abstractmethod
    def delete_file(self, file_id: str, missing_ok: bool = False) -> None:
        """Delete a stored file.

        Raises
        ------
        NoSuchFileException
            The file is not stored and ``missing_ok`` is false.
        """

    @abstractmethod
    def file_exists(self, file_id: str) -> bool:
        """Whether a file is stored under ``file_id``."""

    @abstractmethod
    def get_file_size(self, file_id: str) -> int:
        """Size of a stored file in bytes.

        Raises
        ------
        NoSuchFileException
            The file is not stored.
        """

    @abstractmethod
    def get_all_file_ids(self) -> list[str]:
        """IDs of every file written through the file API (not shared files or logs)."""

    @abstractmethod
    def get_file_job_association(self, file_id: str) -> str | None:
        """Return the ID of the job a file was written for, or None; no I/O."""

    # -- shared files -----------------------------------------------------------

    @abstractmethod
    def write_shared_file_stream(
        self, shared_file_name: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        """Write a shared file as a stream; the last writer wins.

        Names are 1-255 letters, digits, ``.``, ``_`` and ``-``.
        """

    @abstractmethod
    def read_shared_file_stream(
        self, shared_file_name: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        """Open a shared file for reading.

        Raises
        ------
        NoSuchFileException
            No shared file of that name.
        """

    # -- logs -------------------------------------------------------------------

    @abstractmethod
    def write_logs(self, msg: str | bytes) -> None:
        """Store a statistics or log message for the leader to read."""

    @abstractmethod
    def read_logs(self, callback: Callable[[IO[bytes]], Any], read_all: bool = False) -> int:
        """Hand each unread message to ``callback`` as a binary handle; return how many.

        Each message is delivered once, then archived; with ``read_all`` the
        archived ones are delivered again too. Readers in several processes at
        once deliver each message once in all: one reader delivers at a time
        (on backends that detect concurrent updates). A reader killed after
        delivering messages but before archiving them leaves them unread, so
        they are delivered again: at least once across crashes. If
        ``callback`` raises, the messages it already took are archived and the
        rest stay unread.
        """

    # -- import and export ------------------------------------------------------
    #
    # The four calls below are written once, here; a job store implements the
    # two hooks under them. docs/import-export.md lists the URL schemes.

    def import_file(
        self,
        src_url: str,
        shared_file_name: str | None = None,
        *,
        storage_options: Mapping[str, Any] | None = None,
    ) -> FileID | None:
        """Copy a file from a URL or local path into the store.

        Parameters
        ----------
        src_url
            A local path (relative ones too), ``file://``, ``http(s)://``,
            ``ftp://user:pass@host/path``, ``s3://``, ``gs://``, ``az://``,
            ``memory://`` or any installed fsspec protocol.
        shared_file_name
            Store it as this shared file instead of a new file.
        storage_options
            For the URL's filesystem (credentials, endpoint, TLS), not the
            store's; without them fsspec's own configuration applies.

        Returns
        -------
        FileID or None
            The new file's ID, ending with the source's basename and carrying
            its size and executable bit (a local file's); None for a shared
            file.

        Raises
        ------
        FileNotFoundError
            No file at the URL; the message names it (without credentials).
        IsADirectoryError
            The URL is a directory.
        PermissionError
            The server refused (HTTP 401/403, FTP login failure).
        OSError
            Any other failure of the URL's side, after retrying those that
            may pass (HTTP 5xx); nothing is stored.
        ValueError, ImportError
            The URL is empty, or its scheme unknown or not installed (the
            message names the package).
        """
        found = self._import_urls([src_url], shared_file_name, storage_options, DEFAULT_CALLBACK)
        return None if shared_file_name is not None else found[0]

    def import_files(
        self,
        urls: Iterable[str],
        *,
        storage_options: Mapping[str, Any] | None = None,
        callback: Callback = DEFAULT_CALLBACK,
    ) -> list[FileID]:
        """Import many URLs at once, concurrently, as :meth:`import_file` does each.

        Parameters
        ----------
        urls
            URLs or local paths.
        storage_options
            For the URLs' filesystems, the same for every URL.
        callback
            An fsspec ``Callback`` (a ``TqdmCallback`` shows a bar): told the
            number of files, then one step per file done.

        Returns
        -------
        list of FileID
            In the order of ``urls``.

        Raises
        ------
        FileNotFoundError, IsADirectoryError, PermissionError, OSError
            As :meth:`import_file`, for the first URL that failed; files the
            call already imported are deleted again.
        """
        return self._import_urls(list(urls), None, storage_options, callback)

    def export_file(
        self, file_id: str, dst_url: str, *, storage_options: Mapping[str, Any] | None = None
    ) -> None:
        """Copy a stored file to a URL or local path.

        An HTTP(S) destination gets a ``POST``, or a ``PUT`` with
        ``storage_options={"method": "put"}``. A destination that can be
        written atomically never shows part of the file.

        Raises
        ------
        NoSuchFileException
            The file is not stored; nothing is sent.
        PermissionError, FileNotFoundError, OSError
            The destination failed; the message names it (without
            credentials).
        """
        self._export_to_urls([(file_id, dst_url)], storage_options, DEFAULT_CALLBACK)

    def export_files(
        self,
        pairs: Iterable[tuple[str, str]],
        *,
        storage_options: Mapping[str, Any] | None = None,
        callback: Callback = DEFAULT_CALLBACK,
    ) -> None:
        """Export many ``(file_id, dst_url)`` pairs at once, concurrently.

        Every file is checked first, so a missing one sends nothing. When a
        destination fails, the exports already done stay.

        Raises
        ------
        NoSuchFileException
            A file is not stored; nothing is sent.
        PermissionError, FileNotFoundError, OSError
            As :meth:`export_file`, for the first pair that failed.
        """
        self._export_to_urls(list(pairs), storage_options, callback)

    @abstractmethod
    def _import_urls(
        self,
        urls: Sequence[str],
        shared_file_name: str | None,
        storage_options: Mapping[str, Any] | None,
        callback: Callback,
    ) -> list[FileID]:
        """Import ``urls``; with ``shared_file_name``, the only one, as that file ([])."""

    @abstractmethod
    def _export_to_urls(
        self,
        pairs: Sequence[tuple[str, str]],
        storage_options: Mapping[str, Any] | None,
        callback: Callback,
    ) -> None:
        """Export each ``(file_id, dst_url)``."""
