"""What each object store answers when it fails or throttles, and which requests it throttles.

The bodies and headers are the services' own (S3's XML ``<Error>``, GCS's
JSON ``{"error": …}``, Azure's XML ``<Error>`` with ``x-ms-error-code``), so
that each client parses them as it would in production and its own retry
policy decides, not a test's guess at it.

Throttling rules follow the services' published limits, which the emulators
do not enforce: GCS allows about one write per second to one object name
(faster ones get HTTP 429), S3 limits the request rate of a key prefix (and
answers 503 SlowDown beyond it).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "AZURE",
    "GCS",
    "S3",
    "Answer",
    "GcsObjectWriteRate",
    "Request",
    "Rule",
    "S3PrefixRate",
    "Service",
]


@dataclass(frozen=True)
class Request:
    """One HTTP request as the proxy read it (the body whole)."""

    method: str
    target: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @property
    def path(self) -> str:
        """The target's path, percent-decoded."""
        return unquote(urlsplit(self.target).path)

    @property
    def query(self) -> dict[str, list[str]]:
        """The target's query parameters."""
        return parse_qs(urlsplit(self.target).query)


@dataclass(frozen=True)
class Answer:
    """A whole HTTP response the proxy sends instead of the server's."""

    status: int
    reason: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        """The response as bytes on the wire (keep-alive, as the services answer)."""
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def _s3_error(status: int, reason: str, code: str, message: str) -> Callable[[Request], Answer]:
    def answer(request: Request) -> Answer:
        request_id = uuid.uuid4().hex[:16].upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{request.path}</Resource><RequestId>{request_id}</RequestId>"
            f"<HostId>{uuid.uuid4().hex}</HostId></Error>"
        ).encode()
        headers = (("Content-Type", "application/xml"), ("x-amz-request-id", request_id))
        return Answer(status, reason, b"" if request.method == "HEAD" else body, headers)

    return answer


def _gcs_error(status: int, reason: str, why: str, message: str) -> Callable[[Request], Answer]:
    def answer(request: Request) -> Answer:
        error = {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": why}],
        }
        body = json.dumps({"error": error}).encode()
        headers = (("Content-Type", "application/json; charset=UTF-8"),)
        return Answer(status, reason, b"" if request.method == "HEAD" else body, headers)

    return answer


def _azure_error(status: int, reason: str, code: str, message: str) -> Callable[[Request], Answer]:
    def answer(request: Request) -> Answer:
        request_id = str(uuid.uuid4())
        body = (
            '\ufeff<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{code}</Code><Message>{message}\nRequestId:{request_id}\n"
            f"Time:{time.strftime('%Y-%m-%dT%H:%M:%S.0000000Z', time.gmtime())}</Message></Error>"
        ).encode()
        headers = (
            ("Content-Type", "application/xml"),
            ("x-ms-error-code", code),
            ("x-ms-request-id", request_id),
        )
        return Answer(status, reason, b"" if request.method == "HEAD" else body, headers)

    return answer


@dataclass(frozen=True)
class Service:
    """An object store's failure answers, by the name a test asks for."""

    name: str
    errors: Mapping[str, Callable[[Request], Answer]]
    #: The answer a throttling rule gives.
    throttled: str


_SLOWDOWN = _s3_error(503, "Slow Down", "SlowDown", "Please reduce your request rate.")

#: Amazon S3.
S3 = Service(
    "s3",
    {
        "slowdown": _SLOWDOWN,
        "internal": _s3_error(
            500,
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
    },
    throttled="slowdown",
)

_GCS_RATE = (
    "The object exceeded the rate limit for object mutation operations (create, update, "
    "and delete). Please reduce your request rate. See https://cloud.google.com/storage/docs/gcs429."
)

#: Google Cloud Storage (the JSON API).
GCS = Service(
    "gcs",
    {
        "ratelimit": _gcs_error(429, "Too Many Requests", "rateLimitExceeded", _GCS_RATE),
        "unavailable": _gcs_error(
            503,
            "Service Unavailable",
            "backendError",
            "We encountered an internal error. Please try again.",
        ),
    },
    throttled="ratelimit",
)

#: Azure Blob Storage.
AZURE = Service(
    "azure",
    {
        "busy": _azure_error(
            503,
            "Server Busy",
            "ServerBusy",
            "The server is currently unable to receive requests. Please retry your request.",
        ),
        "internal": _azure_error(
            500,
            "Internal Server Error",
            "InternalError",
            "The server encountered an internal error. Please retry the request.",
        ),
    },
    throttled="busy",
)


class Rule:
    """A throttling rule: whether the service would refuse a request now."""

    def refuse(self, request: Request, now: float) -> bool:
        """Whether ``request``, arriving at ``now``, is over the limit; counted if not."""
        raise NotImplementedError


@dataclass
class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class _Buckets:
    rate: float
    burst: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    buckets: dict[tuple[str, ...], _Bucket] = field(default_factory=dict)

    def take(self, key: tuple[str, ...], now: float) -> bool:
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = _Bucket(self.rate, self.burst, self.burst, now)
            return bucket.take(now)


_UPLOAD = re.compile(r"^/upload/storage/v1/b/([^/]+)/o$")
_OBJECT = re.compile(r"^/storage/v1/b/([^/]+)/o/(.+)$")
_NAME = re.compile(rb'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


def gcs_written_object(request: Request) -> tuple[str, str] | None:
    """``(bucket, object)`` a GCS JSON-API request creates, replaces or deletes; None otherwise."""
    upload = _UPLOAD.match(request.path)
    if upload and request.method in ("POST", "PUT"):
        names = request.query.get("name")
        if names:
            return upload[1], names[0]
        found = _NAME.search(request.body)  # a multipart upload names it in its JSON part
        if found:
            return upload[1], json.loads(b'"' + found[1] + b'"')
        return None
    target = _OBJECT.match(request.path)
    if target and request.method in ("DELETE", "PATCH", "PUT"):
        return target[1], target[2]
    return None


class GcsObjectWriteRate(Rule):
    """GCS's limit on writes to one object name: ``per_second`` writes, ``burst`` saved.

    Google documents about one write per second to the same object name;
    faster ones are answered with HTTP 429 (``rateLimitExceeded``).
    """

    def __init__(self, per_second: float = 1.0, burst: float = 1.0) -> None:
        self._buckets = _Buckets(per_second, burst)

    def refuse(self, request: Request, now: float) -> bool:
        written = gcs_written_object(request)
        return written is not None and not self._buckets.take(written, now)


def s3_key(request: Request) -> tuple[str, str] | None:
    """``(bucket, key)`` of a path-style S3 object request; None for a bucket request."""
    bucket, _, key = request.path.lstrip("/").partition("/")
    return (bucket, key) if bucket and key else None


def parent_prefix(key: str) -> str:
    """The key up to its last slash: the "folder" S3 partitions would split on."""
    return key.rpartition("/")[0] + "/"


class S3PrefixRate(Rule):
    """S3's limit on requests to one key prefix, as writes and reads a second.

    S3 scales a prefix's capacity up over time; a prefix used faster than
    its current capacity is answered with 503 SlowDown. Bucket-level
    requests (listings, multi-object deletes) count against the prefix they
    name (``prefix=``), or against the bucket's root.
    """

    def __init__(
        self,
        writes: float,
        reads: float,
        *,
        burst: float = 1.0,
        prefix: Callable[[str], str] = parent_prefix,
    ) -> None:
        self._writes = _Buckets(writes, burst)
        self._reads = _Buckets(reads, burst)
        self._prefix = prefix

    def refuse(self, request: Request, now: float) -> bool:
        found = s3_key(request)
        if found is not None:
            bucket, prefix = found[0], self._prefix(found[1])
        else:
            bucket = request.path.strip("/")
            prefix = request.query.get("prefix", [""])[0]
        buckets = self._reads if request.method in ("GET", "HEAD") else self._writes
        return not buckets.take((bucket, prefix), now)
