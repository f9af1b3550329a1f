"""What fsjobstore knows about fsspec protocols: one table, no I/O.

Everything that depends on a protocol's name rather than on its filesystem
class lives here: which family of locators a protocol belongs to (for the
restricted store classes), whether its client caches listings (a stale
listing would make ``file_exists`` and ``jobs()`` lie about another writer's
work), whether one filesystem object holds a single connection that threads
must not share, and whether a rename within it is one atomic operation.

A protocol missing from the table gets :data:`UNKNOWN`: its own family, no
listing cache, thread-safe, and no atomic rename, which is what an
object-store-like filesystem gives. Which *backend* serves a filesystem is
decided by its class, in :mod:`fsjobstore.backends.registry`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["FAMILIES", "PROTOCOLS", "UNKNOWN", "Protocol", "facts", "protocol_of"]


@dataclass(frozen=True)
class Protocol:
    """Facts about one protocol.

    Attributes
    ----------
    family
        The family of locators it belongs to (``"aws"`` for ``s3``/``s3a`` …);
        None for a protocol that is its own family.
    caches_listings
        Its client caches directory listings unless told not to
        (``use_listings_cache=False``).
    one_connection
        One filesystem object holds one connection that cannot serve several
        threads at once (fsspec's FTP client), so each thread needs its own.
    atomic_rename
        ``mv`` within the filesystem is one atomic rename that replaces the
        target (POSIX ``rename``, SFTP's ``posix-rename``, FTP's ``RNFR``/``RNTO``
        on a POSIX server), so a write can go to a temporary name first.
    one_request_reads
        A file is best read as one streamed request (HTTP: one ``GET``, which
        needs no ``Range`` support from the server), opened with
        ``block_size=0``, rather than as a range request per block.
    extra
        The extra of fsjobstore's distribution that installs its client
        (``pip install "fsjobstore[s3]"``); None if it needs none.
    """

    family: str | None = None
    caches_listings: bool = False
    one_connection: bool = False
    atomic_rename: bool = False
    one_request_reads: bool = False
    extra: str | None = None


_S3 = Protocol("aws", caches_listings=True, extra="s3")
_GCS = Protocol("google", caches_listings=True, extra="gcs")
_AZURE = Protocol("azure", caches_listings=True, extra="azure")
_SFTP = Protocol("sftp", atomic_rename=True, extra="sftp")

#: Every protocol fsjobstore knows something about.
PROTOCOLS: Mapping[str, Protocol] = {
    "file": Protocol("file", atomic_rename=True),
    "local": Protocol("file", atomic_rename=True),
    "memory": Protocol(),
    "s3": _S3,
    "s3a": _S3,
    "gs": _GCS,
    "gcs": _GCS,
    "az": _AZURE,
    "abfs": _AZURE,
    "abfss": _AZURE,
    "adl": Protocol(caches_listings=True),
    "sftp": _SFTP,
    "ssh": _SFTP,
    "ftp": Protocol(caches_listings=True, one_connection=True, atomic_rename=True),
    "http": Protocol(one_request_reads=True),
    "https": Protocol(one_request_reads=True),
}

#: Facts assumed for a protocol missing from :data:`PROTOCOLS`.
UNKNOWN = Protocol()


def facts(protocol: str) -> Protocol:
    """Return the facts of ``protocol`` (lower case); :data:`UNKNOWN` if not in the table."""
    return PROTOCOLS.get(protocol, UNKNOWN)


def _families() -> dict[str, frozenset[str]]:
    grouped: dict[str, set[str]] = {}
    for name, protocol in PROTOCOLS.items():
        if protocol.family is not None:
            grouped.setdefault(protocol.family, set()).add(name)
    return {family: frozenset(names) for family, names in grouped.items()}


#: Families of locators, by the protocols that belong to each; used by the
#: restricted store classes (``FileJobStore`` …) to refuse a foreign locator.
FAMILIES: Mapping[str, frozenset[str]] = _families()


def protocol_of(fs: AbstractFileSystem) -> str:
    """Return the protocol a filesystem answers to (the first of several)."""
    protocol = fs.protocol
    return str(protocol if isinstance(protocol, str) else protocol[0]).lower()
