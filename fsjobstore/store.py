"""The one job store, written once on fsspec calls."""

from __future__ import annotations

import io
import os
import posixpath
import stat
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any, ClassVar

from fsspec import AbstractFileSystem
from typing_extensions import override

from . import layout, transfer
from .abstract import AbstractJobStore
from .backends import Backend, NotStored, VersionConflict, connect
from .errors import (
    ConcurrentFileModificationException,
    InvalidIDError,
    InvalidLocatorError,
    JobStoreError,
    JobStoreExistsException,
    JobStoreNotOpenError,
    NoSuchFileException,
    NoSuchJobException,
    NoSuchJobStoreException,
    NotAJobStoreError,
)
from .job import (
    Config,
    FileID,
    JobDescription,
    decode_config,
    decode_job,
    encode_config,
    encode_job,
)
from .locator import parse_locator
from .streams import check_text_args, chunks, make_executable, regular_file, text_mode
from .transfer import Callback, redact

__all__ = ["AWSJobStore", "FileJobStore", "GoogleJobStore", "JobStore"]

#: Directories the store makes itself; finding only these (empty) is not "data".
_OWN_DIRS = frozenset({"jobs", "files", "stats", "tmp"})


class JobStore(AbstractJobStore):
    """A job store on any fsspec filesystem.

    Everything lives below the root the locator resolves to::

        <root>/
          .fsjobstore.json                   marker: format version and Config
          jobs/<job-id>.json                 one JSON document per job
          files/<owner>/<uid><flags>~<name>  files; owner is a job ID or "_"
          files/_shared/<name>               shared files
          stats/inbox/<log-id>               log messages not yet read
          stats/archive/<log-id>             log messages already delivered
          tmp/                               local disk only: writes in progress

    Parameters
    ----------
    locator
        A path, ``file:PATH``, ``aws:REGION:BUCKET[:PREFIX]``,
        ``gce:REGION:BUCKET[:PREFIX]`` or any fsspec URL.
    **storage_options
        Passed to the fsspec filesystem (credentials, endpoints …); they
        override what the locator implies and are never stored.
    """

    #: Locator families this class accepts; None for every family.
    families: ClassVar[frozenset[str] | None] = None

    def __init__(self, locator: str, **storage_options: Any) -> None:
        parsed = parse_locator(locator)
        if self.families is not None and parsed.family not in self.families:
            accepted = ", ".join(sorted(self.families))
            raise InvalidLocatorError(
                locator, f"{type(self).__name__} takes only {accepted} locators"
            )
        self.locator = parsed.text
        self._parsed = parsed
        self._user_options = storage_options
        # The marker and the lifecycle go through a filesystem built without
        # the config's options, so resume() can read the marker before it
        # knows, say, the customer encryption key; data goes through one
        # built with them, once the config is known.
        self._plain = connect(parsed, storage_options)
        self._backend = self._plain
        self._config: Config | None = None
        self._pending = threading.local()  # per-thread batch() buffers
        if not self._backend.detects_concurrent_updates:
            warnings.warn(
                f"job store {redact(self.locator)!r} is on {type(self.fs).__name__}, which has "
                "no conditional writes: concurrent updates are last-writer-wins",
                RuntimeWarning,
                stacklevel=2,
            )

    def _backends(self, config: Config) -> tuple[Backend, Backend]:
        """Return the backends for the marker and for the data, under ``config``."""
        parsed, user = self._parsed, self._user_options
        backend = type(self._plain)
        access = backend.config_options(config, encrypted=False)
        full = backend.config_options(config)
        plain = connect(parsed, user, access) if access else self._plain
        return plain, plain if full == access else connect(parsed, user, full)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.locator)!r})"

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem the store's data goes through."""
        return self._backend.fs

    @property
    def root(self) -> str:
        """The store's root path on :attr:`fs`."""
        return self._backend.root

    @property
    def detects_concurrent_updates(self) -> bool:
        """Whether ``update_job`` detects a concurrent writer on this backend."""
        return self._backend.detects_concurrent_updates

    def _path(self, key: str) -> str:
        # Every operation but the lifecycle ones comes through here, so none
        # writes into a location that is not an open store.
        if self._config is None:
            raise JobStoreNotOpenError(self.locator)
        return f"{self._backend.root}/{key}"

    # -- lifecycle --------------------------------------------------------------

    @property
    @override
    def config(self) -> Config:
        if self._config is None:
            raise JobStoreNotOpenError(self.locator)
        return self._config

    @override
    def initialize(self, config: Config | None = None) -> None:
        config = Config() if config is None else config
        if config.jobStore is None:
            config.jobStore = self.locator
        elif config.jobStore != self.locator:
            raise ValueError(
                f"config.jobStore is {config.jobStore!r} but this store is {self.locator!r}"
            )
        data = encode_config(config)
        plain, backend = self._backends(config)  # a bad key file fails before any write
        marker = f"{plain.root}/{layout.MARKER}"
        if plain.exists(marker):
            raise JobStoreExistsException(self.locator)
        if self._holds_data(plain):
            raise NotAJobStoreError(self.locator, "initialize")
        plain.prepare(create=True)
        try:
            plain.create(marker, data)
        except FileExistsError:
            raise JobStoreExistsException(self.locator) from None
        self._plain, self._backend, self._config = plain, backend, config

    @override
    def resume(self) -> None:
        try:
            data, _ = self._plain.read(f"{self._plain.root}/{layout.MARKER}")
        except FileNotFoundError:
            raise NoSuchJobStoreException(self.locator) from None
        try:
            config = decode_config(data)
        except JobStoreError as exc:
            raise JobStoreError(f"job store {self.locator!r}: {exc}") from exc
        plain, backend = self._backends(config)
        backend.prepare()
        self._plain, self._backend, self._config = plain, backend, config

    @override
    def destroy(self) -> None:
        plain = self._plain
        marker = f"{plain.root}/{layout.MARKER}"
        if plain.exists(marker):
            # The marker goes last, so an interrupted destroy can be re-run.
            plain.delete_many([p for p in plain.list_files(plain.root) if p != marker])
            plain.delete_many([marker])
        elif self._holds_data(plain):
            raise NotAJobStoreError(self.locator, "destroy")
        plain.remove_root()
        self._backend, self._config = plain, None

    def _holds_data(self, plain: Backend) -> bool:
        names = plain.entries(plain.root)
        if any(name not in _OWN_DIRS for name in names):
            return True
        return any(plain.list_files(f"{plain.root}/{name}") for name in names)

    # -- jobs -------------------------------------------------------------------

    @override
    def assign_job_id(self, job_description: JobDescription) -> str:
        job_description.jobStoreID = layout.new_job_id()
        job_description._set_default_try_count(self.config.retryCount)
        return job_description.jobStoreID

    @override
    def create_job(self, job_description: JobDescription) -> JobDescription:
        job = job_description
        if job.jobStoreID is None:
            self.assign_job_id(job)
        job_id = _job_id_of(job)
        job._set_default_try_count(self.config.retryCount)
        path = self._path(layout.job_key(job_id))
        data = encode_job(job)
        pending: dict[str, tuple[JobDescription, bytes]] | None = getattr(
            self._pending, "jobs", None
        )
        if pending is not None:
            if path in pending:
                raise ConcurrentFileModificationException(job_id, "created twice in one batch")
            pending[path] = (job, data)
            return job
        try:
            job._version = self._backend.create(path, data)
        except FileExistsError:
            raise ConcurrentFileModificationException(
                job_id, "a job with this ID is already stored; nothing was written"
            ) from None
        return job

    @override
    @contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._pending, "jobs", None) is not None:
            yield  # nested: the outermost batch writes
            return
        pending: dict[str, tuple[JobDescription, bytes]] = {}
        self._pending.jobs = pending
        try:
            yield
        finally:
            self._pending.jobs = None
        tokens, existing = self._backend.create_many({p: d for p, (_, d) in pending.items()})
        for path, token in tokens.items():
            pending[path][0]._version = token
        if existing:
            names = ", ".join(repr(pending[p][0].jobStoreID) for p in existing)
            raise ConcurrentFileModificationException(
                names, "already stored, so not created; the rest of the batch was written"
            )

    @override
    def update_job(self, job_description: JobDescription) -> None:
        job = job_description
        job_id = _job_id_of(job)
        path = self._path(layout.job_key(job_id))
        data = encode_job(job)
        try:
            token = job._version or self._backend.read(path)[1]
            job._version = self._backend.replace(path, data, token)
        except FileNotFoundError:
            raise NoSuchJobException(job_id) from None
        except VersionConflict:
            raise ConcurrentFileModificationException(
                job_id, "changed in the store since it was loaded; load it again"
            ) from None

    @override
    def load_job(self, job_id: str) -> JobDescription:
        path = self._path(layout.job_key(job_id))
        try:
            data, token = self._backend.read(path)
        except FileNotFoundError:
            raise NoSuchJobException(job_id) from None
        return _decode(job_id, data, token)

    @override
    def delete_job(self, job_id: str, missing_ok: bool = False) -> None:
        path = self._path(layout.job_key(job_id))
        owned = self._path(layout.owner_prefix(job_id))
        listed = self._backend.list_files(owned)
        if not missing_ok and not self._backend.exists(path):
            raise NoSuchJobException(job_id)
        # Files first: if this is interrupted, the job is still there to delete again.
        self._backend.delete_many([*(p for p in listed if self._is_cleanup(p)), path])
        if listed:
            self._backend.prune(owned)

    def _is_cleanup(self, path: str) -> bool:
        file_id = layout.file_id_from_key(path[len(self._backend.root) + 1 :])
        return file_id is not None and layout.parse_file_id(file_id).cleanup

    @override
    def job_exists(self, job_id: str) -> bool:
        return self._backend.exists(self._path(layout.job_key(job_id)))

    @override
    def jobs(self) -> Iterator[JobDescription]:
        for chunk in chunks(self._job_paths()):
            found = self._backend.read_many(chunk)
            for path in chunk:
                if path in found:  # deleted since the listing otherwise
                    job_id = layout.job_id_from_key(posixpath.basename(path)) or ""
                    yield _decode(job_id, *found[path])

    def _job_paths(self) -> list[str]:
        listed = self._backend.list_files(self._path(layout.JOBS))
        return [p for p in listed if layout.job_id_from_key(posixpath.basename(p))]

    # -- files ------------------------------------------------------------------

    @override
    def write_file(
        self, local_path: str | os.PathLike[str], job_id: str | None = None, cleanup: bool = False
    ) -> FileID:
        local = os.fspath(local_path)
        status = regular_file(local)
        executable = bool(status.st_mode & stat.S_IXUSR)
        file_id = layout.new_file_id(
            job_id, cleanup=cleanup, executable=executable, basename=os.path.basename(local)
        )
        path = self._path(layout.parse_file_id(file_id).key)
        size = status.st_size
        self._backend.upload(local, path)
        return FileID(file_id, size, executable)

    @override
    @contextmanager
    def write_file_stream(
        self,
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
        encoding: str | None = None,
        errors: str | None = None,
    ) -> Iterator[tuple[IO[Any], FileID]]:
        check_text_args(encoding, errors)
        file_id = FileID(
            layout.new_file_id(job_id, cleanup=cleanup, executable=False, basename=basename), 0
        )
        with self._writing(self._path(layout.parse_file_id(file_id).key), encoding, errors) as (
            handle,
            raw,
        ):
            yield handle, file_id
            handle.flush()  # text mode buffers; the size is what reached raw
            size = raw.tell()
        file_id.size = size

    @override
    def get_empty_file_store_id(
        self, job_id: str | None = None, cleanup: bool = False, basename: str | None = None
    ) -> FileID:
        file_id = layout.new_file_id(job_id, cleanup=cleanup, executable=False, basename=basename)
        self._backend.write(self._path(layout.parse_file_id(file_id).key), b"")
        return FileID(file_id, 0)

    @override
    def read_file(
        self, file_id: str, local_path: str | os.PathLike[str], symlink: bool = False
    ) -> None:
        ref = layout.parse_file_id(file_id)
        local = os.fspath(local_path)
        try:
            self._backend.download(self._path(ref.key), local, symlink=symlink)
        except NotStored:
            raise NoSuchFileException(ref.file_id) from None
        if ref.executable:
            make_executable(local)

    @override
    def read_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        ref = layout.parse_file_id(file_id)
        return self._reading(self._path(ref.key), ref.file_id, "file", encoding, errors)

    @override
    def update_file(self, file_id: str, local_path: str | os.PathLike[str]) -> None:
        local = os.fspath(local_path)
        regular_file(local)
        self._backend.upload(local, self._existing_file(file_id))

    @override
    @contextmanager
    def update_file_stream(
        self, file_id: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        check_text_args(encoding, errors)
        with self._writing(self._existing_file(file_id), encoding, errors) as (handle, _):
            yield handle

    def _existing_file(self, file_id: str) -> str:
        ref = layout.parse_file_id(file_id)
        path = self._path(ref.key)
        if not self._backend.exists(path):
            raise NoSuchFileException(ref.file_id)
        return path

    @override
    def delete_file(self, file_id: str, missing_ok: bool = False) -> None:
        ref = layout.parse_file_id(file_id)
        if not self._backend.delete(self._path(ref.key)) and not missing_ok:
            raise NoSuchFileException(ref.file_id)

    @override
    def file_exists(self, file_id: str) -> bool:
        return self._backend.exists(self._path(layout.parse_file_id(file_id).key))

    @override
    def get_file_size(self, file_id: str) -> int:
        try:
            return self._backend.size(self._path(layout.parse_file_id(file_id).key))
        except FileNotFoundError:
            raise NoSuchFileException(file_id) from None

    @override
    def get_all_file_ids(self) -> list[str]:
        skip = len(self._backend.root) + 1
        ids = (
            layout.file_id_from_key(p[skip:])
            for p in self._backend.list_files(self._path(layout.FILES))
        )
        return [i for i in ids if i is not None]

    @override
    def get_file_job_association(self, file_id: str) -> str | None:
        return layout.parse_file_id(file_id).owner

    # -- shared files -----------------------------------------------------------

    @override
    @contextmanager
    def write_shared_file_stream(
        self, shared_file_name: str, encoding: str | None = None, errors: str | None = None
    ) -> Iterator[IO[Any]]:
        check_text_args(encoding, errors)
        with self._writing(self._path(layout.shared_key(shared_file_name)), encoding, errors) as (
            h,
            _,
        ):
            yield h

    @override
    def read_shared_file_stream(
        self, shared_file_name: str, encoding: str | None = None, errors: str | None = None
    ) -> AbstractContextManager[IO[Any]]:
        path = self._path(layout.shared_key(shared_file_name))
        return self._reading(path, shared_file_name, "shared file", encoding, errors)

    # -- streams ----------------------------------------------------------------

    @contextmanager
    def _writing(
        self, path: str, encoding: str | None, errors: str | None
    ) -> Iterator[tuple[IO[Any], IO[bytes]]]:
        with self._backend.open_write(path) as raw, text_mode(raw, encoding, errors) as handle:
            yield handle, raw

    def _reading(
        self, path: str, name: str, what: str, encoding: str | None, errors: str | None
    ) -> IO[Any]:
        # The open handle itself is the context manager: no generator to go
        # through on small reads. Closing a text wrapper closes the raw handle.
        check_text_args(encoding, errors)
        try:
            raw = self._backend.open_read(path)
        except NotStored:
            raise NoSuchFileException(name, what) from None
        return raw if encoding is None else io.TextIOWrapper(raw, encoding, errors)

    # -- logs -------------------------------------------------------------------

    @override
    def write_logs(self, msg: str | bytes) -> None:
        if isinstance(msg, str):
            data = msg.encode()
        elif isinstance(msg, (bytes, bytearray, memoryview)):
            data = bytes(msg)
        else:
            raise TypeError(f"a log message is str or bytes, not {type(msg).__name__}")
        self._backend.write(self._path(layout.new_log_key()), data)

    @override
    def read_logs(self, callback: Callable[[IO[bytes]], Any], read_all: bool = False) -> int:
        inbox = self._backend.list_files(self._path(layout.INBOX))
        archive = self._path(layout.ARCHIVE)
        count = 0
        if read_all:
            for chunk in chunks(self._backend.list_files(archive)):
                for data, _ in self._backend.read_many(chunk).values():
                    callback(io.BytesIO(data))
                    count += 1
        for chunk in chunks(inbox):
            found = self._backend.read_many(chunk)
            delivered: dict[str, tuple[str, bytes]] = {}
            try:
                for path in chunk:
                    if path in found:  # another reader took it otherwise
                        data = found[path][0]
                        callback(io.BytesIO(data))
                        delivered[path] = (f"{archive}{posixpath.basename(path)}", data)
                        count += 1
            finally:
                # What the callback took is archived even if a later one fails.
                self._backend.move_many(delivered)
        return count

    # -- import and export ------------------------------------------------------

    @override
    def _import_urls(
        self,
        urls: Sequence[str],
        shared_file_name: str | None,
        storage_options: Mapping[str, Any] | None,
        callback: Callback,
    ) -> list[FileID]:
        return transfer.import_ids(
            self._backend,
            self._path,
            urls,
            shared_file_name,
            storage_options=storage_options,
            callback=callback,
        )

    @override
    def _export_to_urls(
        self,
        pairs: Sequence[tuple[str, str]],
        storage_options: Mapping[str, Any] | None,
        callback: Callback,
    ) -> None:
        transfer.export_ids(
            self._backend, self._path, pairs, storage_options=storage_options, callback=callback
        )


class FileJobStore(JobStore):
    """:class:`JobStore` that accepts only local paths and ``file:`` locators."""

    families = frozenset({"file"})


class AWSJobStore(JobStore):
    """:class:`JobStore` that accepts only ``aws:`` and ``s3://`` locators."""

    families = frozenset({"aws"})


class GoogleJobStore(JobStore):
    """:class:`JobStore` that accepts only ``gce:``, ``google:`` and ``gs://`` locators."""

    families = frozenset({"google"})


def _job_id_of(job: JobDescription) -> str:
    if job.jobStoreID is None:
        raise InvalidIDError("job ID", None, "this job has no jobStoreID: create it first")
    return layout.check_job_id(job.jobStoreID)


def _decode(job_id: str, data: bytes, token: str) -> JobDescription:
    try:
        job = decode_job(data)
    except JobStoreError as exc:
        raise JobStoreError(f"job {job_id!r}: {exc}") from exc
    job._version = token
    return job
