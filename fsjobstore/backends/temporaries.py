"""What a crashed writer can leave behind, per backend, and how it is reclaimed.

Every write of fsjobstore is atomic: readers never see part of one. The price
is that a writer killed in the middle leaves its unfinished work where no
reader looks, and so where nothing ever removes it:

- **local disk**: ``<root>/tmp/<hex>``, a file being written, renamed into
  place when complete;
- **SFTP, FTP, any filesystem with an atomic rename**: the same; on SFTP also
  ``<root>/tmp/<hex>.lock`` (a job document's lock) and ``<hex>.broken`` (a
  lock being broken);
- **S3**: an incomplete multipart upload of a key below the root (streams over
  50 MiB): its parts are stored, and billed, until aborted;
- **Azure Blob**: an *uncommitted blob*, blocks staged for a new blob that was
  never committed (streams over 8 MiB); the service discards them after a
  week, and bills them until then;
- **GCS**: a resumable upload session (streams over 8 MiB); the service offers
  no call that lists them, shows nothing of them in the bucket, and discards
  them a week after they start: nothing to reclaim;
- **memory**: nothing; it dies with the process.

:func:`find_temporaries` lists them (optionally only those older than a given
age) and :func:`reclaim_temporaries` removes them: it deletes the files and
aborts the uploads, which each object-store backend lists and aborts itself
(``unfinished_uploads`` and ``discard_uploads``), so that this module needs
no service's client. Both are safe while no writer is running; a writer that
is running has temporaries too, younger than any sensible threshold.

Blocks staged to *replace* an existing Azure blob are not listed (that would
take one request per blob); the service drops them when the blob is next
written, or after a week. A ``read_file`` interrupted by a crash can leave a
hidden ``.<name>.fsjobstore-<hex>`` file beside its destination (from local
disk only without ``O_TMPFILE``), outside the store, where no store-wide
clean-up can look for it.
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from .base import Backend
from .common import Temporary
from .object import ObjectBackend

__all__ = ["Temporary", "find_temporaries", "reclaim_temporaries"]

#: The folder below the root where writes in progress live, on the backends that rename.
TMP = "tmp"


def find_temporaries(backend: Backend, older_than: float | None = None) -> list[Temporary]:
    """List what crashed writers may have left in a store.

    Parameters
    ----------
    backend
        The store's backend (its root is the store's root).
    older_than
        Only those last written at least this many seconds ago; ones whose
        age is unknown are left out unless this is 0 or None.

    Returns
    -------
    list of Temporary
        Sorted by path.
    """
    # Object stores never write below tmp/: their writes are single requests
    # or uploads that only the service can list.
    found = (
        backend.unfinished_uploads() if isinstance(backend, ObjectBackend) else _tmp_files(backend)
    )
    if older_than:
        cutoff = time.time() - older_than
        found = [t for t in found if t.modified is not None and t.modified <= cutoff]
    return sorted(found, key=lambda t: (t.path, t.upload_id or ""))


def reclaim_temporaries(backend: Backend, temporaries: Iterable[Temporary]) -> None:
    """Delete temporary files and abort unfinished uploads.

    Ones already gone (finished or reclaimed by someone else) are no error.

    Parameters
    ----------
    backend
        The store's backend, as given to :func:`find_temporaries`.
    temporaries
        What :func:`find_temporaries` returned, or part of it.
    """
    items = list(temporaries)
    files = [t.path for t in items if t.kind in ("file", "lock")]
    uploads = [t for t in items if t.kind in ("upload", "blocks")]
    if files:
        _delete_files(backend, files)
    if uploads:
        if not isinstance(backend, ObjectBackend):
            raise TypeError(f"{type(backend).__name__} has no unfinished uploads")
        backend.discard_uploads(uploads)


# -- temporary files below <root>/tmp/ ---------------------------------------------------


def _tmp_files(backend: Backend) -> list[Temporary]:
    from .local import LocalBackend

    folder = f"{backend.root}/{TMP}"
    if isinstance(backend, LocalBackend):
        return _local_tmp_files(folder)
    # One level only: writers put their temporaries directly in tmp/, and a
    # planted folder there is nobody's temporary.
    try:
        with backend._errors(folder):
            listed = backend.fs.ls(folder, detail=True)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for info in listed:
        if info.get("type") == "directory":
            continue
        path = str(info["name"]).rstrip("/")
        found.append(
            Temporary(
                _kind(path), path, _int_or_none(info.get("size")), _timestamp(backend, path, info)
            )
        )
    return found


def _local_tmp_files(folder: str) -> list[Temporary]:
    # lstat, never stat: a link planted in tmp/ is removed as a link, and
    # whatever it points at is never looked at.
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    continue
                found.append(Temporary(_kind(entry.path), entry.path, info.st_size, info.st_mtime))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return found


def _kind(path: str) -> str:
    name = posixpath.basename(path)
    return "lock" if name.endswith((".lock", ".broken")) else "file"


def _delete_files(backend: Backend, paths: Sequence[str]) -> None:
    from .local import LocalBackend

    for path in paths:
        if isinstance(backend, LocalBackend):
            try:
                os.unlink(path)  # a link is removed, never followed
            except FileNotFoundError:
                pass
            continue
        try:
            with backend._errors(path):
                backend.fs.rm_file(path)
        except FileNotFoundError:
            pass


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


#: Keys of a listing's details that hold a modification time, by client.
_TIME_KEYS = ("mtime", "modified", "LastModified", "last_modified", "updated", "modify", "created")


def _timestamp(backend: Backend, path: str, info: dict[str, Any]) -> float | None:
    for key in _TIME_KEYS:
        value = _as_timestamp(info.get(key))
        if value is not None:
            return value
    try:
        with backend._errors(path):
            return _as_timestamp(backend.fs.modified(path))
    except (OSError, NotImplementedError, ValueError):
        return None


def _as_timestamp(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()  # naive ones are taken as local time, as fsspec makes them
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value:
        if value.isdigit() and len(value) == 14:  # FTP's MLSD: YYYYMMDDHHMMSS in UTC
            return datetime.strptime(value + "+0000", "%Y%m%d%H%M%S%z").timestamp()
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
