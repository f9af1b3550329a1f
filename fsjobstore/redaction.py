"""Keep credentials out of messages and logs.

Secrets are learned as they are met (a URL's user and password, storage
options named like secrets, an encryption key) and masked from then on, in
the text of errors fsjobstore raises and in the records of the loggers of
fsspec and the storage clients, which log URLs and options at DEBUG level.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["SCRUBBER", "guard_logs", "redact", "secrets_of"]

#: Option names (lower case, as substrings) whose string values are secrets.
_SECRET_NAMES = ("pass", "secret", "token", "key", "credential", "sas", "auth", "user", "sig")
#: Shorter strings are not scrubbed from messages: they would mangle words.
_MIN_SECRET = 4
#: Values of secret-named options that are modes, not secrets (gcsfs's ``token``).
_NOT_SECRET = frozenset({"anon", "cloud", "browser", "cache", "google_default", "true", "false"})
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s?#]*@")
_SECRET_QUERY = re.compile(
    r"(?P<name>[?&](?:[^=&#\s]*(?:sig|signature|token|secret|password|credential|key)[^=&#\s]*)=)"
    r"[^&#\s'\"]*",
    re.IGNORECASE,
)


def redact(url: str) -> str:
    """Remove credentials from a URL, for messages and logs.

    ``user:password@`` becomes ``***@``, and the values of query parameters
    that carry credentials (``sig``, ``X-Amz-Signature``, ``token`` …) become
    ``***``.
    """
    return _SECRET_QUERY.sub(r"\g<name>***", _USERINFO.sub(r"\g<scheme>***@", url))


def secrets_of(url: str, options: Mapping[str, Any]) -> frozenset[str]:
    """Return the credentials in a URL and its storage options, to mask later."""
    found: set[str] = set()
    if "://" in url:
        parts = urlsplit(url)
        for value in (parts.username, parts.password):
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


class _Scrubber(logging.Filter):
    """Takes credentials out of text, and out of log records."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def learn(self, secrets: frozenset[str]) -> None:
        """Scrub ``secrets`` from now on."""
        if not secrets <= self.secrets:
            with self._lock:  # copy on write: readers never see the set change
                self.secrets = self.secrets | secrets

    def scrub(self, text: str) -> str:
        """``text`` without URL credentials or any secret seen so far."""
        text = redact(text)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the message and any traceback of ``record``; never drop it."""
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        return True


SCRUBBER = _Scrubber()
#: Loggers that may see a URL or an option: fsspec's, the clients', ours.
_LOGGERS = (
    *("fsspec", "aiohttp", "s3fs", "gcsfs", "adlfs", "azure", "botocore", "aiobotocore"),
    *("urllib3", "paramiko", "fsjobstore"),
)
_guarded: dict[str, int] = {}  # root logger name -> loggers known when last guarded


def guard_logs(cls: type | None = None) -> None:
    """Put the scrubber on every logger of the clients a transfer goes through.

    ``cls`` is a filesystem class whose package's loggers are guarded too.

    A logger's filters see only its own records, not its children's, so each
    existing logger below those roots gets one; loggers made later are found
    when the next transfer starts.
    """
    roots = {*_LOGGERS, *([cls.__module__.split(".")[0]] if cls else [])}
    names = logging.root.manager.loggerDict
    known = len(names)
    if all(_guarded.get(root) == known for root in roots):
        return
    for name in [*roots, *list(names)]:
        if name.split(".")[0] in roots:
            target = logging.getLogger(name)
            if SCRUBBER not in target.filters:
                target.addFilter(SCRUBBER)
    _guarded.update(dict.fromkeys(roots, len(names)))
