"""Every exception fsjobstore raises.

Each one derives from :class:`JobStoreError`, and, where a builtin fits, from
that builtin too, so generic handlers (``except FileNotFoundError``) work.
"""

from __future__ import annotations

import errno

from .redaction import redact

__all__ = [
    "ConcurrentFileModificationException",
    "CorruptStoreError",
    "InvalidIDError",
    "InvalidLocatorError",
    "JobStoreError",
    "JobStoreExistsException",
    "JobStoreNotOpenError",
    "NoSuchFileException",
    "NoSuchJobException",
    "NoSuchJobStoreException",
    "NotAJobStoreError",
    "UnsafeLinkError",
]


class JobStoreError(Exception):
    """Base class of every fsjobstore error."""


class NoSuchJobException(JobStoreError, FileNotFoundError):
    """A job ID is well formed but no such job is stored."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no such job: {job_id!r}")
        self.job_id = job_id


class NoSuchFileException(JobStoreError, FileNotFoundError):
    """A file ID or shared-file name is well formed but nothing is stored under it."""

    def __init__(self, file_id: str, what: str = "file") -> None:
        super().__init__(f"no such {what}: {file_id!r}")
        self.file_id = file_id


class NoSuchJobStoreException(JobStoreError, FileNotFoundError):
    """``resume()`` found no job store at the locator."""

    def __init__(self, locator: str) -> None:
        self.locator = redact(locator)
        super().__init__(f"no job store at {self.locator!r}")


class JobStoreExistsException(JobStoreError, FileExistsError):
    """``initialize()`` found a job store already there."""

    def __init__(self, locator: str) -> None:
        self.locator = redact(locator)
        super().__init__(f"a job store already exists at {self.locator!r}")


class NotAJobStoreError(JobStoreError, FileExistsError):
    """The location holds data but no job-store marker, so it is left alone."""

    def __init__(self, locator: str, action: str, reason: str | None = None) -> None:
        self.locator = redact(locator)
        super().__init__(
            f"refusing to {action} {self.locator!r}: "
            + (reason or "it holds data but is not a job store (no .fsjobstore.json marker)")
        )


class ConcurrentFileModificationException(JobStoreError):
    """The stored item is not the version the caller last saw.

    Raised by ``update_job`` when another writer updated or deleted the job
    since it was loaded, and by ``create_job`` when the ID is already stored.
    Nothing is written.
    """

    def __init__(self, item: str, detail: str) -> None:
        super().__init__(f"{item!r}: {detail}")
        self.item = item


class JobStoreNotOpenError(JobStoreError, RuntimeError):
    """An operation was called before ``initialize()`` or ``resume()``."""

    def __init__(self, locator: str) -> None:
        super().__init__(
            f"job store {redact(locator)!r} is not open: call initialize() or resume() first"
        )


class InvalidLocatorError(JobStoreError, ValueError):
    """A locator string is malformed or names the wrong family of store."""

    def __init__(self, locator: object, reason: str) -> None:
        self.locator = redact(locator) if isinstance(locator, str) else locator
        super().__init__(f"invalid job store locator {self.locator!r}: {reason}")


class InvalidIDError(JobStoreError, ValueError):
    """A job ID, file ID or shared-file name is malformed.

    Malformed names are rejected before any I/O, so they can never reach
    outside the store's root.
    """

    def __init__(self, kind: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {kind} {value!r}: {reason}")
        self.value = value


class CorruptStoreError(JobStoreError):
    """Something stored is not what the store wrote there; the message names it.

    Raised for a job document whose ID is not its key's, a document or marker
    that is not of the store's format, a folder where a file should be, and a
    symbolic link inside the store (:class:`UnsafeLinkError`). Nothing is
    changed.
    """


class UnsafeLinkError(CorruptStoreError, OSError):
    """A symbolic link inside a store on local disk: fsjobstore follows none.

    Someone put a link where the store keeps a folder or a file; following it
    could read, write, move or delete outside the store's root. The path is
    the link's.
    """

    def __init__(self, path: str) -> None:
        super().__init__(
            errno.ELOOP,
            "a symbolic link inside the job store, which fsjobstore never follows",
            path,
        )
