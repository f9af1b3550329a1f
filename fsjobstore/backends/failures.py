"""How a client failed: which errors may pass, and the builtin exception that reports each.

The one place that maps client errors to fsjobstore's. Errors arrive from
many clients (aiohttp, ftplib, asyncssh, botocore, the Azure SDK), wrapped by
fsspec in different ways; these functions look down an error's chain for the
server's answer and turn it into a builtin exception type. Backends report
their filesystem's errors through :func:`as_builtin`, and transfers the
errors of a URL's side through :func:`describe`.
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

__all__ = ["as_builtin", "describe", "find", "leaks", "sftp_status", "transient"]

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


def _parser_error(error: BaseException) -> bool:
    """Whether ``error`` is aiohttp's own complaint about an answer it was reading.

    Its ``code`` (400 for a body cut short) is what an aiohttp *server* would
    answer; no server sent it, so it is no reply.
    """
    parser = sys.modules.get("aiohttp.http_exceptions")  # never imported just to ask
    kind = getattr(parser, "HttpProcessingError", None)
    return isinstance(kind, type) and isinstance(error, kind)


def _reply(error: BaseException) -> tuple[str, int, str] | None:
    """``("HTTP" or "FTP", code, text)`` of the server's answer, if any in the chain."""
    for e in _chain(error):
        if isinstance(e, ftplib.Error):
            match = re.match(r"\s*(\d{3})[ -]?(.*)", str(e), re.DOTALL)
            if match:
                return "FTP", int(match[1]), match[2].strip()
        if _parser_error(e):
            continue
        for name in ("status", "status_code", "code"):  # aiohttp, Azure, gcsfs
            code = getattr(e, name, None)
            if isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599:
                try:
                    phrase = http.HTTPStatus(code).phrase
                except ValueError:
                    phrase = ""
                return "HTTP", code, phrase
    return None


#: SFTP status codes (draft-ietf-secsh-filexfer) and the builtin type of each.
_SFTP_KINDS: dict[int, tuple[type[OSError], int]] = {
    2: (FileNotFoundError, errno.ENOENT),  # no such file
    3: (PermissionError, errno.EACCES),  # permission denied
    6: (ConnectionError, errno.ENOTCONN),  # no connection
    7: (ConnectionError, errno.ECONNABORTED),  # connection lost
    10: (FileNotFoundError, errno.ENOENT),  # no such path
    11: (FileExistsError, errno.EEXIST),  # file already exists
    12: (PermissionError, errno.EROFS),  # write protect
    14: (OSError, errno.ENOSPC),  # no space on filesystem
    15: (OSError, errno.EDQUOT),  # quota exceeded
    18: (OSError, errno.ENOTEMPTY),  # directory not empty
    19: (NotADirectoryError, errno.ENOTDIR),  # not a directory
    24: (IsADirectoryError, errno.EISDIR),  # file is a directory
}


def _ssh(error: BaseException) -> tuple[type[OSError], int, str] | None:
    """Return the builtin type, errno and text of an SSH or SFTP error in the chain, if any."""
    asyncssh = sys.modules.get("asyncssh")  # never imported just to ask
    if asyncssh is None:
        return None
    for e in _chain(error):
        if isinstance(e, asyncssh.SFTPError):
            kind, number = _SFTP_KINDS.get(e.code, (OSError, errno.EIO))
            return kind, number, f"SFTP: {e.reason or type(e).__name__}"
        if isinstance(e, asyncssh.DisconnectError):
            return ConnectionError, errno.ECONNABORTED, f"SSH: {e.reason or type(e).__name__}"
    return None


def sftp_status(error: BaseException) -> int | None:
    """Return the SFTP status code of an SFTP error in ``error``'s chain, if any."""
    asyncssh = sys.modules.get("asyncssh")
    if asyncssh is None:
        return None
    found = find(error, asyncssh.SFTPError)
    return None if found is None else int(found.code)


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
    ssh = _ssh(error)
    if ssh is not None:
        return issubclass(ssh[0], ConnectionError)
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
    ssh = _ssh(error)
    if ssh is not None:
        return ssh
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


#: Builtin types a backend may raise as they are, once they name their path.
_OURS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    TimeoutError,
    ConnectionError,
)


#: The errno of a builtin error made with none (``FileNotFoundError(path)``).
_ERRNO: dict[type[OSError], int] = {
    FileNotFoundError: errno.ENOENT,
    FileExistsError: errno.EEXIST,
    IsADirectoryError: errno.EISDIR,
    NotADirectoryError: errno.ENOTDIR,
    PermissionError: errno.EACCES,
    TimeoutError: errno.ETIMEDOUT,
    ConnectionError: errno.ECONNABORTED,
}


def as_builtin(error: Exception, path: str) -> Exception:
    """Return the builtin exception that reports a client's ``error`` on ``path``.

    An error that is already a builtin ``OSError`` is kept, with ``path`` added
    when it names none; any other (``ftplib.error_perm``, asyncssh's
    ``SFTPError`` …) becomes the builtin type that fits, naming ``path``.
    Credentials seen so far are masked from the text.
    """
    if type(error) in _OURS or type(error) is OSError:
        os_error: OSError = error  # type: ignore[assignment]
        if os_error.filename is not None:
            return error
        text = os_error.strerror or str(error) or type(error).__name__
        number = os_error.errno or _ERRNO.get(type(os_error), errno.EIO)
        return type(error)(number, SCRUBBER.scrub(text), path)
    kind, code, text = describe(error)
    if kind in (ValueError, TypeError, NotImplementedError):
        return kind(f"{SCRUBBER.scrub(text)}: {path}")
    return kind(code, SCRUBBER.scrub(text), path)
