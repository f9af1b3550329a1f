"""The one job store, written once on fsspec calls."""

from __future__ import annotations

import io
import os
import posixpath
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any

from typing_extensions import override

from . import layout, transfer
from .backends import NotStored, VersionConflict
from .errors import (
    ConcurrentFileModificationException,
    CorruptStoreError,
    InvalidIDError,
    JobStoreError,
    NoSuchFileException,
    NoSuchJobException,
)
from .job import (
    FileID,
    JobDescription,
    decode_job,
    encode_job,
)
from .lifecycle import StoreBase
from .streams import check_text_args, make_executable, regular_file, text_mode
from .transfer import Callback

__all__ = ["AWSJobStore", "FileJobStore", "GoogleJobStore", "JobStore"]


class JobStore(StoreBase):
    """A job store on any fsspec filesystem.

    Everything lives below the root the locator resolves to::

        <root>/
          .fsjobstore.json                   marker: format version and Config
          jobs/<job-id>.json                 one JSON document per job
          files/<owner>/<uid><flags>~<name>  files; owner is a job ID or "_"
          files/_shared/<name>               shared files
          stats/inbox/<log-id>               log messages not yet read
          stats/archive/<log-id>             log messages already delivered
          tmp/                               writes in progress, where renames are atomic

    Parameters
    ----------
    locator
        A path, ``file:PATH``, ``aws:REGION:BUCKET[:PREFIX]``,
        ``gce:REGION:BUCKET[:PREFIX]`` or any fsspec URL.
    **storage_options
        Passed to the fsspec filesystem (credentials, endpoints …); they
        override what the locator implies and are never stored.
    """

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
        # A page of the listing at a time, read in one bulk call: memory
        # holds one page, however many jobs the store has.
        for page in self._backend.pages(self._path(layout.JOBS)):
            ids = {p: layout.job_id_from_key(posixpath.basename(p)) for p in page}
            chunk = [p for p, job_id in ids.items() if job_id]
            found = self._backend.read_many(chunk)
            for path in chunk:
                if path in found:  # deleted since the listing otherwise
                    yield _decode(ids[path] or "", *found[path])

    # -- files ------------------------------------------------------------------

    @override
    def write_file(
        self,
        local_path: str | os.PathLike[str],
        job_id: str | None = None,
        cleanup: bool = False,
        basename: str | None = None,
    ) -> FileID:
        local = os.fspath(local_path)
        status = regular_file(local)
        executable = bool(status.st_mode & stat.S_IXUSR)
        file_id = layout.new_file_id(
            job_id,
            cleanup=cleanup,
            executable=executable,
            basename=os.path.basename(local) if basename is None else basename,
        )
        path = self._path(layout.parse_file_id(file_id).key)
        self._backend.upload(local, path)
        # A device (/dev/null) has no size until it is read.
        size = status.st_size if stat.S_ISREG(status.st_mode) else self._backend.size(path)
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
        path = self._path(ref.key)
        try:
            with _stored(path, ref.file_id):
                self._backend.download(path, local, symlink=symlink)
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
        path = self._path(ref.key)
        with _stored(path, ref.file_id):
            deleted = self._backend.delete(path)
        if not deleted and not missing_ok:
            raise NoSuchFileException(ref.file_id)

    @override
    def file_exists(self, file_id: str) -> bool:
        return self._backend.exists(self._path(layout.parse_file_id(file_id).key))

    @override
    def get_file_size(self, file_id: str) -> int:
        path = self._path(layout.parse_file_id(file_id).key)
        try:
            with _stored(path, file_id):
                return self._backend.size(path)
        except FileNotFoundError:
            raise NoSuchFileException(file_id) from None

    @override
    def get_all_file_ids(self) -> list[str]:
        skip = len(self._backend.root) + 1
        ids = (
            layout.file_id_from_key(path[skip:])
            for page in self._backend.pages(self._path(layout.FILES))
            for path in page
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
            with _stored(path, name, what):
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
        inbox_prefix = self._path(layout.INBOX)
        if not read_all and not any(self._backend.pages(inbox_prefix)):
            return 0  # nothing to deliver: no need to hold the reader lease
        archive = self._path(layout.ARCHIVE)
        count = 0
        # One reader at a time delivers, so each message goes out once even
        # with several readers; listed under the lease, so none is taken twice.
        with self._backend.lease(self._path(layout.READER)) as lease:
            if read_all:
                for page in self._backend.pages(archive):
                    for data, _ in self._backend.read_many(page).values():
                        callback(io.BytesIO(data))
                        count += 1
                        lease.refresh()
            for page in self._backend.pages(inbox_prefix):
                found = self._backend.read_many(page)
                delivered: dict[str, tuple[str, bytes]] = {}
                try:
                    for path in page:
                        if path in found:  # gone otherwise: archived by a reader before
                            data = found[path][0]
                            callback(io.BytesIO(data))
                            delivered[path] = (f"{archive}{posixpath.basename(path)}", data)
                            count += 1
                            lease.refresh()
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


@contextmanager
def _stored(path: str, name: str, what: str = "file") -> Iterator[None]:
    """Report a folder where a stored file should be as the corruption it is."""
    try:
        yield
    except IsADirectoryError as exc:
        if exc.filename not in (path, None):
            raise  # the caller's own side (a destination that is a folder)
        raise CorruptStoreError(
            f"{what} {name!r}: a folder is stored where the file should be ({path})"
        ) from None


def _job_id_of(job: JobDescription) -> str:
    if job.jobStoreID is None:
        raise InvalidIDError("job ID", None, "this job has no jobStoreID: create it first")
    return layout.check_job_id(job.jobStoreID)


def _decode(job_id: str, data: bytes, token: str) -> JobDescription:
    try:
        job = decode_job(data)
    except JobStoreError as exc:
        raise CorruptStoreError(f"job {job_id!r}: {exc}") from exc
    if job.jobStoreID != job_id:
        raise CorruptStoreError(
            f"job {job_id!r}: its stored document says it is job {job.jobStoreID!r}"
        )
    job._version = token
    return job
