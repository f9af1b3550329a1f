"""How a transfer's foreign side failed: which errors may pass, and how to report them.

Errors arrive from many clients (aiohttp, ftplib, botocore, the Azure SDK),
wrapped by fsspec in different ways; these functions look down an error's
chain for the server's answer and turn it into a builtin exception type.
"""

from __future__ import annotations

import errno
import ftplib
import http
import re
import ssl
import sys
from collections.abc import Iterator
from typing import TypeVar

from ..redaction import SCRUBBER

__all__ = ["describe", "find", "leaks", "transient"]

T = TypeVar("T")


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def find(error: BaseException, kind: type[T]) -> T | None:
    """Return the first exception of ``kind`` in ``error``'s chain, if any."""
    for e in _chain(error):
        if isinstance(e, kind):
            return e
    return None


def _reply(error: BaseException) -> tuple[str, int, str] | None:
    """``("HTTP" or "FTP", code, text)`` of the server's answer, if any in the chain."""
    for e in _chain(error):
        if isinstance(e, ftplib.Error):
            match = re.match(r"\s*(\d{3})[ -]?(.*)", str(e), re.DOTALL)
            if match:
                return "FTP", int(match[1]), match[2].strip()
        for name in ("status", "status_code", "code"):  # aiohttp, Azure, gcsfs
            code = getattr(e, name, None)
            if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
                try:
                    phrase = http.HTTPStatus(code).phrase
                except ValueError:
                    phrase = ""
                return "HTTP", code, phrase
    return None


def _aiohttp_error(error: BaseException, *names: str) -> bool:
    aiohttp = sys.modules.get("aiohttp")  # never imported just to ask
    kinds = tuple(getattr(aiohttp, name) for name in names if hasattr(aiohttp, name))
    return bool(kinds) and isinstance(error, kinds)


def _tls_error(error: BaseException) -> BaseException | None:
    for e in _chain(error):
        if isinstance(e, ssl.SSLError) or _aiohttp_error(e, "ClientSSLError"):
            return e
    return None


def _connection_error(error: BaseException) -> BaseException | None:
    for e in _chain(error):
        if isinstance(e, (ConnectionError, TimeoutError, EOFError)) or _aiohttp_error(
            e, "ClientConnectionError", "ClientPayloadError"
        ):
            return e
    return None


def transient(error: Exception) -> bool:
    """Whether ``error`` may pass if the transfer is tried again."""
    reply = _reply(error)
    if reply is not None:
        protocol, code, _ = reply
        if protocol == "FTP":
            return 400 <= code < 500
        return code >= 500 or code in (408, 429)
    return _tls_error(error) is None and _connection_error(error) is not None


#: Builtin exception types a foreign error keeps (most specific first).
_KEPT = (
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    FileExistsError,
    TimeoutError,
    ConnectionRefusedError,
    ConnectionResetError,
    ConnectionError,
)


#: Errors that say what went wrong even when a dropped connection is in their chain.
_DEFINITE = (IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError)


def describe(error: Exception) -> tuple[type[Exception], int, str]:  # noqa: PLR0911 - one case each
    """Return the ``(exception type, errno, text)`` that report ``error``."""
    reply = _reply(error)
    if reply is not None:
        protocol, code, text = reply
        kind: type[OSError] = OSError
        if code in ((530, 332) if protocol == "FTP" else (401, 403)):
            kind = PermissionError
        elif code in ((550,) if protocol == "FTP" else (404, 410)):
            kind = FileNotFoundError
        number = {PermissionError: errno.EACCES, FileNotFoundError: errno.ENOENT}.get(kind)
        return kind, number or errno.EIO, f"{protocol} {code} {text}".strip()
    tls = _tls_error(error)
    if tls is not None:
        reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or tls
        return OSError, errno.EPROTO, f"TLS failed: {reason}"
    connection = _connection_error(error)
    if connection is not None and not isinstance(error, _DEFINITE):
        # fsspec reports an HTTP server it cannot reach as a missing file.
        kinds = (k for e in _chain(connection) for k in _KEPT[5:] if isinstance(e, k))
        return next(kinds, ConnectionError), errno.ECONNABORTED, f"connection failed: {connection}"
    if isinstance(error, FileNotFoundError):
        return FileNotFoundError, errno.ENOENT, "no such file"
    if type(error) in (ValueError, TypeError):
        return type(error), 0, str(error)
    if isinstance(error, NotImplementedError):
        return NotImplementedError, 0, str(error) or "not supported by this filesystem"
    if isinstance(error, OSError):
        kind = next((k for k in _KEPT if isinstance(error, k)), OSError)
        return kind, error.errno or errno.EIO, str(error.strerror or error)
    return OSError, errno.EIO, f"{type(error).__name__}: {error}"


def leaks(error: BaseException) -> bool:
    """Whether printing ``error`` and its chain would show a credential."""
    return any(SCRUBBER.scrub(str(e)) != str(e) for e in _chain(error))
