"""Job descriptions, configuration, file IDs and their JSON encoding.

Pure: no I/O. Everything stored is JSON, never pickle: loading a job store
must not run code.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import JobStoreError

__all__ = [
    "DEFAULT_RETRY_COUNT",
    "Config",
    "FileID",
    "JobDescription",
    "decode_config",
    "decode_job",
    "encode_config",
    "encode_job",
]

DEFAULT_RETRY_COUNT = 1
_FORMAT = 1


class FileID(str):
    """A file ID that also carries the file's size and executable bit.

    It is a :class:`str`, so it can be stored, compared and passed anywhere a
    plain ID can. The executable bit is also encoded in the ID itself, so a
    plain string read back from a job keeps it.
    """

    size: int
    executable: bool

    def __new__(cls, file_id: str, size: int, executable: bool = False) -> FileID:
        """Make a file ID.

        Parameters
        ----------
        file_id
            The ID.
        size
            The file's size in bytes.
        executable
            Whether the file was executable when written.
        """
        obj = super().__new__(cls, file_id)
        obj.size = size
        obj.executable = executable
        return obj

    def __getnewargs__(self) -> tuple[str, int, bool]:  # type: ignore[override]
        return (str(self), self.size, self.executable)

    def __repr__(self) -> str:
        return f"FileID({str(self)!r}, size={self.size}, executable={self.executable})"

    def pack(self) -> str:
        """Return ``"<size>:<executable>:<id>"``, as Toil's ``FileID.pack``."""
        return f"{self.size}:{int(self.executable)}:{self}"

    @classmethod
    def unpack(cls, packed: str) -> FileID:
        """Inverse of :meth:`pack`.

        Raises
        ------
        ValueError
            ``packed`` is not ``"<size>:<0 or 1>:<id>"``; the message names it.
        """
        parts = packed.split(":", 2) if isinstance(packed, str) else []
        if len(parts) != 3 or not parts[0].isdigit() or parts[1] not in ("0", "1"):
            raise ValueError(f"not a packed file ID ('<size>:<0 or 1>:<id>'): {packed!r}")
        return cls(parts[2], int(parts[0]), parts[1] == "1")


class _Attributes:
    """Attributes kept in ``__dict__``; names starting with ``_`` are not stored."""

    if TYPE_CHECKING:
        # Callers may set any attribute (the seed sets ``job.completed``).
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def _public(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._public() == other._public()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._public().items())
        return f"{type(self).__name__}({fields})"


class JobDescription(_Attributes):
    """What the job store keeps about one job.

    Any attribute set on it whose name does not start with ``_`` is stored,
    and must be JSON-serializable (tuples come back as lists).

    Parameters
    ----------
    requirements
        Resource requirements: ``memory``, ``cores``, ``disk``,
        ``preemptible`` and any other JSON values.
    jobName, unitName, displayName
        Names, as in Toil. ``displayName`` defaults to ``jobName``.
    jobStoreID
        The job's ID; None until the store assigns one.
    remainingTryCount
        Tries left; when not given, the store sets ``Config.retryCount + 1``
        on create.
    """

    requirements: dict[str, Any]
    jobName: str
    unitName: str
    displayName: str
    jobStoreID: str | None
    remainingTryCount: int

    def __init__(
        self,
        requirements: Mapping[str, Any] | None = None,
        jobName: str = "",
        unitName: str | None = "",
        displayName: str | None = None,
        *,
        jobStoreID: str | None = None,
        remainingTryCount: int | None = None,
    ) -> None:
        self.requirements = dict(requirements or {})
        self.jobName = jobName
        self.unitName = unitName or ""
        self.displayName = jobName if displayName is None else displayName
        self.jobStoreID = jobStoreID
        self.remainingTryCount = (
            DEFAULT_RETRY_COUNT + 1 if remainingTryCount is None else remainingTryCount
        )
        # Set after remainingTryCount, so that only later assignments count
        # as the caller's choice.
        self._try_count_set = remainingTryCount is not None
        # The storage version this object was last loaded or written as; it
        # makes update_job conditional. Never stored.
        self._version: str | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "remainingTryCount" and "_try_count_set" in vars(self):
            object.__setattr__(self, "_try_count_set", True)
        object.__setattr__(self, name, value)

    def _set_default_try_count(self, retry_count: int) -> None:
        if not self._try_count_set:
            object.__setattr__(self, "remainingTryCount", retry_count + 1)

    @property
    def memory(self) -> int:
        """Memory requirement in bytes."""
        return int(self.requirements.get("memory", 0))

    @property
    def cores(self) -> float:
        """Cores requirement."""
        return float(self.requirements.get("cores", 0))

    @property
    def disk(self) -> int:
        """Disk requirement in bytes."""
        return int(self.requirements.get("disk", 0))

    @property
    def preemptible(self) -> bool:
        """Whether the job may run on preemptible nodes."""
        return bool(self.requirements.get("preemptible", False))


class Config(_Attributes):
    """Job store configuration, stored as JSON by ``initialize``.

    The seed's fields are set here; any other attribute a caller sets is
    stored too, and must be JSON-serializable. Storage options (which may
    hold credentials) are not part of it and are never stored.
    """

    jobStore: str | None
    retryCount: int
    awsRegion: str | None
    sseKey: str | None
    sseKeyFile: str | None
    awsCredentials: str | None
    googleCredentials: str | None

    def __init__(self, /, **fields: Any) -> None:
        self.jobStore = None
        self.retryCount = DEFAULT_RETRY_COUNT
        self.awsRegion = None
        self.sseKey = None
        self.sseKeyFile = None
        self.awsCredentials = None
        self.googleCredentials = None
        for name, value in fields.items():
            setattr(self, name, value)


def _dumps(kind: str, doc: dict[str, Any], values: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(doc, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        # Name the culprit: the caller cannot guess which attribute failed.
        for name, value in values.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError) as inner:
                raise TypeError(
                    f"{kind} attribute {name!r} is not JSON-serializable: {inner}"
                ) from inner
        raise TypeError(f"{kind} is not JSON-serializable: {exc}") from exc


_JOB_FIELDS = (
    "jobStoreID",
    "jobName",
    "unitName",
    "displayName",
    "requirements",
    "remainingTryCount",
)


def encode_job(job: JobDescription) -> bytes:
    """Encode a job as JSON.

    Each encoding carries a fresh random revision, so two writes never store
    the same bytes and a content hash can serve as a version token.

    Raises
    ------
    TypeError
        An attribute is not JSON-serializable; the message names it.
    """
    values = job._public()
    extra = {k: v for k, v in values.items() if k not in _JOB_FIELDS}
    doc = {k: values[k] for k in _JOB_FIELDS}
    doc.update(format=_FORMAT, revision=secrets.token_hex(16), attributes=extra)
    return _dumps("job", doc, values)


def decode_job(data: bytes) -> JobDescription:
    """Decode what :func:`encode_job` made.

    Raises
    ------
    JobStoreError
        The bytes are not a job document.
    """
    doc = _load_doc("job", data)
    for name, kinds in _JOB_TYPES.items():
        if name in doc and type(doc[name]) not in kinds:  # exact: a bool is no count
            raise JobStoreError(
                f"stored job document is malformed: {name!r} is {doc[name]!r}, not "
                + " or ".join("an object" if k is dict else k.__name__ for k in kinds)
            )
    try:
        job = JobDescription(
            doc["requirements"],
            doc["jobName"],
            doc["unitName"],
            doc["displayName"],
            jobStoreID=doc["jobStoreID"],
            remainingTryCount=doc["remainingTryCount"],
        )
        for name, value in _public_items(doc["attributes"]):
            setattr(job, name, value)
    except (KeyError, TypeError, AttributeError) as exc:
        raise JobStoreError(f"stored job document is malformed: {exc!r}") from exc
    return job


#: The types a stored job document's fields must have (a missing one is an error too).
_JOB_TYPES: dict[str, tuple[type, ...]] = {
    "requirements": (dict,),
    "attributes": (dict,),
    "jobStoreID": (str, type(None)),
    "jobName": (str,),
    "unitName": (str,),
    "displayName": (str,),
    "remainingTryCount": (int,),
}


def encode_config(config: Config) -> bytes:
    """Encode the marker document: format version and config.

    Raises
    ------
    TypeError
        A config attribute is not JSON-serializable; the message names it.
    """
    values = config._public()
    return _dumps("config", {"format": _FORMAT, "config": values}, values)


def decode_config(data: bytes) -> Config:
    """Decode the marker document made by :func:`encode_config`.

    Raises
    ------
    JobStoreError
        The bytes are not a marker document, or one of a newer format.
    """
    doc = _load_doc("marker", data)
    fields = doc.get("config")
    if not isinstance(fields, dict):
        raise JobStoreError("job store marker is malformed: no 'config' object")
    config = Config(**dict(_public_items(fields)))
    for name, kinds in _CONFIG_TYPES.items():
        value = getattr(config, name)
        if type(value) not in kinds:  # exact: a bool is no retry count
            raise JobStoreError(
                f"job store marker is malformed: {name!r} is {value!r}, "
                f"not {' or '.join(k.__name__ for k in kinds)}"
            )
    return config


#: The types of the seed's Config fields, as a marker must hold them.
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "retryCount": (int,),
    **{
        name: (str, type(None))
        for name in (
            "jobStore",
            "awsRegion",
            "sseKey",
            "sseKeyFile",
            "awsCredentials",
            "googleCredentials",
        )
    },
}


def _public_items(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    # Stored documents are shared data: never let one set private or dunder
    # attributes.
    return [(k, v) for k, v in values.items() if isinstance(k, str) and not k.startswith("_")]


def _load_doc(kind: str, data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise JobStoreError(f"stored {kind} document is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise JobStoreError(f"stored {kind} document is not a JSON object")
    found = doc.get("format")
    if type(found) is not int or found != _FORMAT:  # True == 1, but is no format
        raise JobStoreError(
            f"stored {kind} document has format {doc.get('format')!r}; "
            f"this fsjobstore reads format {_FORMAT}"
        )
    return doc
