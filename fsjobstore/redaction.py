"""Keep credentials out of messages and logs.

Secrets are learned as they are met (a URL's user and password, storage
options named like secrets, an encryption key) and masked from then on, in
every encoding a client may log them in (as they are, base64, URL-safe
base64, hexadecimal), in the text of errors fsjobstore raises and in log
records.

What it touches in logging, exactly: once the first secret is learned, it
wraps the process's log record factory (:func:`logging.setLogRecordFactory`),
keeping the factory that was there. Each record made by a logger under one
of :data:`LOGGERS` (fsspec's, the storage clients', fsjobstore's) gets its
message, arguments and traceback text scrubbed as it is made, before any
handler or filter sees it; no record is dropped, and records of every other
logger are left as they are. Records are made only for the levels a logger
is enabled for, so a program that does not log at DEBUG pays nothing. A
factory installed later by someone else replaces this one; fsjobstore checks
that its own is still there each time it learns a secret, and puts it back
on top if not.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["LOGGERS", "SCRUBBER", "redact", "secrets_of"]

#: Option names (lower case, as substrings) whose string values are secrets.
_SECRET_NAMES = ("pass", "secret", "token", "key", "credential", "sas", "auth", "user", "sig")
#: Shorter strings are not scrubbed from messages: they would mangle words.
_MIN_SECRET = 4
#: Values of secret-named options that are modes, not secrets (gcsfs's ``token``).
_NOT_SECRET = frozenset({"anon", "cloud", "browser", "cache", "google_default", "true", "false"})
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s?#]*)@")
#: Schemes whose bare user name (no password) is an account, never a token.
_ACCOUNT_SCHEMES = frozenset({"sftp://", "ssh://"})
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&](?:[^=&#\s]*(?:sig|signature|token|secret|password|credential|key)[^=&#\s]*)=)"
    r"[^&#\s'\"]*",
    re.IGNORECASE,
)
#: Loggers whose records are scrubbed: fsspec's, the storage clients', ours.
LOGGERS = (
    *("fsspec", "aiohttp", "s3fs", "gcsfs", "adlfs", "azure", "botocore", "aiobotocore"),
    *("boto3", "urllib3", "asyncssh", "paramiko", "sshfs", "google", "fsjobstore"),
)


def redact(url: str) -> str:
    """Remove credentials from a URL, for messages and logs.

    ``user:password@`` becomes ``***@`` (so does a bare ``user@``, which may
    be a token, except in ``sftp://`` and ``ssh://`` URLs, where it names the
    account), and the values of query parameters that carry credentials
    (``sig``, ``X-Amz-Signature``, ``token`` …) become ``***``.
    """
    return _SECRET_QUERY.sub(r"\g<name>***", _USERINFO.sub(_userinfo, url))


def _userinfo(match: re.Match[str]) -> str:
    scheme, userinfo = match["scheme"], match["userinfo"]
    if scheme.lower() in _ACCOUNT_SCHEMES and ":" not in userinfo:
        return match[0]
    return f"{scheme}***@"


def secrets_of(url: str, options: Mapping[str, Any]) -> frozenset[str]:
    """Return the credentials in a URL and its storage options, to mask later."""
    found: set[str] = set()
    if "://" in url:
        try:
            parts = urlsplit(url.rsplit("::", 1)[-1])
            values = (parts.username, parts.password)
        except ValueError:  # a malformed port, say: no credentials to find
            values = (None, None)
        for value in values:
            if value:
                found |= {value, unquote(value)}

    def walk(values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            if isinstance(value, Mapping):
                walk(value)
            elif isinstance(value, str) and any(s in str(name).lower() for s in _SECRET_NAMES):
                found.add(value)
                # Connection strings hold their secrets as "Name=value;" pairs.
                for pair in value.split(";"):
                    key, _, part = pair.partition("=")
                    if part and any(s in key.lower() for s in _SECRET_NAMES):
                        found.add(part)

    walk(options)
    return frozenset(s for s in found if len(s) >= _MIN_SECRET and s.lower() not in _NOT_SECRET)


def encodings(secret: str) -> frozenset[str]:
    """Return ``secret`` as clients write it: as it is, base64 (both alphabets), hex."""
    raw = secret.encode()
    forms = {
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        raw.hex(),
        raw.hex().upper(),
    }
    # Padding may be dropped, and a form may be cut at any line width.
    forms |= {form.rstrip("=") for form in forms}
    return frozenset(form for form in forms if len(form) >= _MIN_SECRET)


class _Scrubber:
    """Takes credentials out of text, and out of log records as they are made."""

    def __init__(self) -> None:
        self.secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._factory: Any = None  # ours, once installed

    def learn(self, secrets: frozenset[str]) -> None:
        """Scrub ``secrets``, in every encoding, from now on."""
        forms = frozenset().union(*(encodings(s) for s in secrets)) if secrets else frozenset()
        with self._lock:
            if not forms <= self.secrets:
                # Copy on write: readers never see the set change under them.
                self.secrets = self.secrets | forms
            if self.secrets and logging.getLogRecordFactory() is not self._factory:
                self._install()

    def scrub(self, text: str) -> str:
        """Return ``text`` without URL credentials or any secret seen so far."""
        text = redact(text)
        # Longest first: a secret's base64 form may contain a shorter secret.
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def _install(self) -> None:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record: logging.LogRecord = previous(*args, **kwargs)
            if record.name.split(".", 1)[0] in LOGGERS:
                self._clean(record)
            return record

        self._factory = factory
        logging.setLogRecordFactory(factory)

    def _clean(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))


SCRUBBER = _Scrubber()
