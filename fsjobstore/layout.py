"""IDs and the keys they map to, relative to the store's root.

Pure: no I/O. Every key follows from an ID by string work alone, so no
operation needs a listing to find where something is stored.

::

    <root>/
      .fsjobstore.json                  marker: format version and stored Config
      jobs/<job-id>.json                one JSON document per job
      files/<owner>/<uid><flags>~<name> a file; <owner> is its job ID or "_"
      files/_shared/<name>              shared files
      stats/inbox/<log-id>              log messages not yet read
      stats/archive/<log-id>            log messages already delivered
      tmp/                              local disk only: writes in progress

A file ID is ``<owner>~<uid><flags>~<name>``: the owning job (``_`` for
none), 32 hex digits, the flags ``C`` (deleted with its job) and ``X``
(executable), and the sanitized basename. It is one URL-safe path segment,
so callers may put it in a local file name.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from .errors import InvalidIDError

__all__ = [
    "ARCHIVE",
    "FILES",
    "FOLDERS",
    "INBOX",
    "JOBS",
    "MARKER",
    "READER",
    "SHARED",
    "TMP",
    "TOP_LEVEL",
    "FileRef",
    "check_job_id",
    "check_shared_name",
    "file_id_from_key",
    "is_store_key",
    "job_id_from_key",
    "job_key",
    "new_file_id",
    "new_job_id",
    "new_log_key",
    "owner_prefix",
    "parse_file_id",
    "sanitize_basename",
    "shared_key",
]

MARKER = ".fsjobstore.json"
JOBS = "jobs/"
FILES = "files/"
SHARED = "files/_shared/"
INBOX = "stats/inbox/"
ARCHIVE = "stats/archive/"
TMP = "tmp/"
#: The lease a reader of log messages holds while it delivers them.
READER = "stats/reader.lease"
#: Names the store makes directly below its root, besides the marker.
TOP_LEVEL = frozenset({"jobs", "files", "stats", "tmp"})
#: Every folder the store makes when it is initialized, parents first; the
#: folder of each job's own files (``files/<job>/``) is made on first use.
FOLDERS = ("jobs", "files", "files/_shared", "stats", "stats/inbox", "stats/archive", "tmp")

_NO_OWNER = "_"
_JOB_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_JOB_ID_RE = re.compile(_JOB_ID)
_SHARED_RE = re.compile(r"[A-Za-z0-9._-]{1,255}")
_FILE_ID_RE = re.compile(
    rf"(?P<owner>_|{_JOB_ID})~(?P<uid>[0-9a-f]{{32}})(?P<flags>C?X?)~(?P<name>[A-Za-z0-9._-]{{0,128}})"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# Keys the store makes itself, told apart from a user's files with no doubt:
# assigned job IDs, log keys and temporary names all carry 32 hex digits.
_OWN_JOB_KEY = re.compile(r"jobs/[0-9a-f]{32}\.json")
_LOG_KEY = re.compile(r"stats/(?:inbox|archive)/[0-9]{20}-[0-9a-f]{32}")
_TMP_KEY = re.compile(r"tmp/[0-9a-f]{32}(?:\.[a-z]+)?")
# Patterns are used with fullmatch: "$" would also accept a trailing newline.
_MAX_BASENAME = 128


@dataclass(frozen=True)
class FileRef:
    """What a file ID says about its file, with no I/O."""

    file_id: str
    owner: str | None
    cleanup: bool
    executable: bool
    basename: str

    @property
    def key(self) -> str:
        """The file's key below the root."""
        owner, rest = self.file_id.split("~", 1)
        return f"{FILES}{owner}/{rest}"


def _check_str(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidIDError(kind, value, f"expected a string, got {type(value).__name__}")
    return value


def new_job_id() -> str:
    """Return a fresh job ID (32 hex digits)."""
    return secrets.token_hex(16)


def check_job_id(job_id: object) -> str:
    """Return ``job_id`` if it is a well-formed job ID.

    Raises
    ------
    InvalidIDError
        Not 1-128 characters of letters, digits, ``.``, ``_``, ``-`` starting
        with a letter or digit (so it is one safe path segment).
    """
    value = _check_str("job ID", job_id)
    if not _JOB_ID_RE.fullmatch(value):
        raise InvalidIDError(
            "job ID",
            value,
            "a job ID is 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return value


def job_key(job_id: str) -> str:
    """Key of a job's JSON document."""
    return f"{JOBS}{check_job_id(job_id)}.json"


def job_id_from_key(name: str) -> str | None:
    """Job ID of a key's last segment (``<id>.json``), None if it is not a job."""
    if not name.endswith(".json"):
        return None
    job_id = name[: -len(".json")]
    return job_id if _JOB_ID_RE.fullmatch(job_id) else None


def owner_prefix(job_id: str) -> str:
    """Key prefix under which the files of ``job_id`` live."""
    return f"{FILES}{check_job_id(job_id)}/"


def sanitize_basename(name: str) -> str:
    """Make a basename safe for an ID: unsafe characters become ``_``.

    Names of up to 128 safe characters are kept as they are; longer ones keep
    their last 128 characters, so the extension survives.
    """
    return _UNSAFE.sub("_", name)[-_MAX_BASENAME:]


def new_file_id(
    job_id: str | None, *, cleanup: bool, executable: bool, basename: str | None
) -> str:
    """Make a new file ID.

    Raises
    ------
    InvalidIDError
        ``job_id`` is malformed.
    ValueError
        ``cleanup`` is true without a ``job_id``.
    """
    if job_id is None:
        if cleanup:
            raise ValueError("cleanup=True needs a job_id: the file is deleted with that job")
        owner = _NO_OWNER
    else:
        owner = check_job_id(job_id)
    flags = ("C" if cleanup else "") + ("X" if executable else "")
    return f"{owner}~{secrets.token_hex(16)}{flags}~{sanitize_basename(basename or '')}"


def parse_file_id(file_id: object) -> FileRef:
    """Read a file ID.

    Raises
    ------
    InvalidIDError
        Not a file ID this library made.
    """
    value = _check_str("file ID", file_id)
    match = _FILE_ID_RE.fullmatch(value)
    if match is None:
        raise InvalidIDError(
            "file ID", value, "expected '<job-id or _>~<32 hex digits>[C][X]~<name>'"
        )
    owner = match["owner"]
    return FileRef(
        file_id=value,
        owner=None if owner == _NO_OWNER else owner,
        cleanup="C" in match["flags"],
        executable="X" in match["flags"],
        basename=match["name"],
    )


def file_id_from_key(key: str) -> str | None:
    """File ID of a key below ``files/``, None for anything else (shared files too)."""
    if not key.startswith(FILES) or key.startswith(SHARED):
        return None
    parts = key[len(FILES) :].split("/")
    if len(parts) != 2:
        return None
    candidate = f"{parts[0]}~{parts[1]}"
    return candidate if _FILE_ID_RE.fullmatch(candidate) else None


def check_shared_name(name: object) -> str:
    """Return ``name`` if it is a valid shared-file name.

    Raises
    ------
    InvalidIDError
        Not 1-255 letters, digits, ``.``, ``_``, ``-``, or ``.``/``..``.
    """
    value = _check_str("shared file name", name)
    if not _SHARED_RE.fullmatch(value) or value in (".", ".."):
        raise InvalidIDError(
            "shared file name",
            value,
            "a shared file name is 1-255 letters, digits, '.', '_' or '-', and not '.' or '..'",
        )
    return value


def shared_key(name: str) -> str:
    """Key of a shared file."""
    return f"{SHARED}{check_shared_name(name)}"


def is_store_key(key: str) -> bool:
    """Whether ``key`` is one the store makes, in a form no user's file takes by chance.

    Jobs with assigned IDs, files, shared files, log messages and temporary
    files qualify; a job with an ID of the caller's choosing does not (its
    key could be anyone's ``jobs/NAME.json``). ``destroy()`` removes what is
    left of a store whose marker is gone only when every key qualifies.
    """
    if key.startswith(SHARED):
        return _SHARED_RE.fullmatch(key[len(SHARED) :]) is not None
    if key == READER:
        return True
    return (
        file_id_from_key(key) is not None
        or _OWN_JOB_KEY.fullmatch(key) is not None
        or _LOG_KEY.fullmatch(key) is not None
        or _TMP_KEY.fullmatch(key) is not None
    )


def new_log_key() -> str:
    """Key for a new log message in the inbox.

    The time prefix only orders listings for people; delivery never depends
    on it, so a lagging clock loses nothing.
    """
    return f"{INBOX}{time.time_ns():020d}-{secrets.token_hex(16)}"
