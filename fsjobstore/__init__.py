"""fsjobstore: a workflow job store written once, on any fsspec filesystem."""

from .abstract import AbstractJobStore
from .errors import (
    ConcurrentFileModificationException,
    CorruptStoreError,
    InvalidIDError,
    InvalidLocatorError,
    JobStoreError,
    JobStoreExistsException,
    JobStoreNotOpenError,
    NoSuchFileException,
    NoSuchJobException,
    NoSuchJobStoreException,
    NotAJobStoreError,
    UnsafeLinkError,
)
from .job import Config, FileID, JobDescription
from .store import AWSJobStore, FileJobStore, GoogleJobStore, JobStore

__all__ = [
    "AWSJobStore",
    "AbstractJobStore",
    "ConcurrentFileModificationException",
    "Config",
    "CorruptStoreError",
    "FileID",
    "FileJobStore",
    "GoogleJobStore",
    "InvalidIDError",
    "InvalidLocatorError",
    "JobDescription",
    "JobStore",
    "JobStoreError",
    "JobStoreExistsException",
    "JobStoreNotOpenError",
    "NoSuchFileException",
    "NoSuchJobException",
    "NoSuchJobStoreException",
    "NotAJobStoreError",
    "UnsafeLinkError",
]

__version__ = "0.1.0"
