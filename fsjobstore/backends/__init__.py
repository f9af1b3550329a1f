"""Pick the backend for a filesystem, and the storage options a backend needs.

This package is the one place that knows filesystems differ.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from ..errors import InvalidLocatorError
from ..job import Config
from ..locator import Locator, merge_options
from ..redaction import SCRUBBER, guard_logs
from .base import Backend, NotStored, VersionConflict
from .local import LocalBackend
from .memory import MemoryBackend
from .object import CONCURRENCY

__all__ = [
    "Backend",
    "NotStored",
    "VersionConflict",
    "backend_for",
    "config_options",
    "connect",
    "default_options",
]

# (module, class, backend module, backend class): looked up in sys.modules, so
# a client library is never imported just to ask whether the fs is one of it.
_OBJECT_STORES = (
    ("s3fs", "S3FileSystem", "s3", "S3Backend"),
    ("gcsfs", "GCSFileSystem", "gcs", "GCSBackend"),
    ("adlfs", "AzureBlobFileSystem", "azure", "AzureBackend"),
)

#: Protocols whose clients cache listings: a stale listing would make
#: ``file_exists``, ``job_exists`` and ``jobs()`` lie about another writer's work.
_LISTING_CACHES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
_AWS = frozenset({"s3", "s3a"})
_GOOGLE = frozenset({"gs", "gcs"})


def backend_for(fs: AbstractFileSystem, root: str) -> Backend:
    """Return the backend that knows ``fs`` best; the generic one otherwise."""
    if isinstance(fs, LocalFileSystem):
        return LocalBackend(fs, root)
    if isinstance(fs, MemoryFileSystem):
        return MemoryBackend(fs, root)
    for module, name, backend_module, backend_name in _OBJECT_STORES:
        client = sys.modules.get(module)
        if client is not None and isinstance(fs, getattr(client, name)):
            backends = __import__(f"{__name__}.{backend_module}", fromlist=[backend_name])
            backend: Backend = getattr(backends, backend_name)(fs, root)
            return backend
    return Backend(fs, root)


def connect(
    locator: Locator,
    user_options: Mapping[str, Any],
    config_implied: Mapping[str, Any] | None = None,
) -> Backend:
    """Open the filesystem a locator names and return its backend.

    Options are layered: what every store on the protocol needs, what the
    config implies (:func:`config_options`), what the locator implies, and
    the caller's own, later ones winning.

    Raises
    ------
    InvalidLocatorError
        fsspec does not know the protocol (its message says so).
    ImportError
        The protocol's package is not installed (fsspec's message names it).
    """
    options = merge_options(
        default_options(locator.protocol),
        config_implied or {},
        locator.storage_options,
        user_options,
    )
    try:
        fs, root = url_to_fs(locator.url, **options)
    except ValueError as exc:
        raise InvalidLocatorError(locator.text, str(exc)) from None
    except ImportError as exc:
        raise ImportError(f"job store {locator.text!r}: {exc}") from None
    return backend_for(fs, root.rstrip("/"))


def default_options(protocol: str) -> dict[str, Any]:
    """Storage options every store on ``protocol`` needs, before the user's own."""
    options: dict[str, Any] = {"use_listings_cache": False} if protocol in _LISTING_CACHES else {}
    if protocol in _AWS:
        # botocore keeps 10 connections unless told otherwise, which would cap
        # a bulk call at 10 requests in flight instead of the backend's 32.
        options["config_kwargs"] = {"max_pool_connections": CONCURRENCY}
    return options


def config_options(protocol: str, config: Config, *, encrypted: bool = True) -> dict[str, Any]:
    """Storage options the seed's ``Config`` fields imply for ``protocol``.

    With ``encrypted=False``, only what reaches the service (region,
    credentials), not the encryption settings: the marker is written and
    read that way, so ``resume()`` can read it before it knows the key.

    Raises
    ------
    ValueError
        Both ``sseKey`` and ``sseKeyFile`` are set, or the key file does not
        hold a 32-byte key. The message names the file, never the key.
    """
    options: dict[str, Any] = {}
    if protocol in _AWS:
        if config.awsRegion:
            options["client_kwargs"] = {"region_name": config.awsRegion}
        if config.sseKey and config.sseKeyFile:
            raise ValueError("set Config.sseKey (SSE-KMS) or Config.sseKeyFile (SSE-C), not both")
        if config.awsCredentials:
            options.update(_aws_credentials(config.awsCredentials))
        if not encrypted:
            return options
        if config.sseKey:
            options["s3_additional_kwargs"] = {
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": config.sseKey,
            }
        if config.sseKeyFile:
            key = _read_key(config.sseKeyFile)
            options["s3_additional_kwargs"] = {
                "SSECustomerAlgorithm": "AES256",
                "SSECustomerKey": key,
            }
            # s3fs logs every call's arguments at DEBUG level, the key included.
            SCRUBBER.learn(frozenset({key}))
            guard_logs()
    if protocol in _GOOGLE and config.googleCredentials:
        options["token"] = os.path.expanduser(config.googleCredentials)
    return options


def _read_key(path: str) -> str:
    with open(os.path.expanduser(path), "rb") as handle:
        raw = handle.read()
    key = raw[:-1] if raw.endswith(b"\n") else raw
    if len(key) != 32:
        raise ValueError(
            f"Config.sseKeyFile {path!r} must hold a 32-byte key, not {len(key)} bytes"
        )
    try:
        return key.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"Config.sseKeyFile {path!r} must hold an ASCII key") from None


def _aws_credentials(value: str) -> dict[str, Any]:
    """Turn a credentials file into a session that reads it; anything else is a profile."""
    path = os.path.expanduser(value)
    if not os.path.isfile(path):
        return {"profile": value}
    from aiobotocore.session import AioSession

    session = AioSession()
    session.set_config_variable("credentials_file", path)
    return {"session": session}
