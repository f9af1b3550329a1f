"""The foreign side of one transfer: its filesystem, its attempts, its errors."""

from __future__ import annotations

import inspect
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import fsspec
from fsspec import AbstractFileSystem
from fsspec.callbacks import Callback
from fsspec.core import split_protocol, url_to_fs
from fsspec.implementations.local import LocalFileSystem
from typing_extensions import override

from ..backends.failures import describe, find, leaks, transient
from ..redaction import SCRUBBER, redact, secrets_of

__all__ = [
    "ATTEMPTS",
    "BACKOFF",
    "BLOCK",
    "CHUNK",
    "CallbackFailed",
    "Foreign",
    "Progress",
    "Remote",
    "check_scheme",
]

T = TypeVar("T")
logger = logging.getLogger("fsjobstore.transfer")

#: Attempts at one transfer whose foreign side fails in a way that may pass.
ATTEMPTS = 3
#: Seconds before the second attempt; doubled before each further one.
BACKOFF = 0.25
#: Bytes read from or written to a foreign file at a time.
CHUNK = 1024 * 1024
#: Block size of the foreign files a transfer opens: S3's smallest part. A
#: part on its way costs several times its size (buffer, request body,
#: checksums), so the part size bounds a transfer's memory.
BLOCK = 5 * 1024 * 1024


class Foreign(Exception):
    """An error of the foreign side of a transfer, to be retried or reported."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class CallbackFailed(Exception):
    """The caller's progress callback raised: re-raised as it is, never retried."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class Progress(Callback):  # type: ignore[misc]
    """Passes progress to the caller's callback, marking what that raises."""

    def __init__(self, inner: Callback) -> None:
        super().__init__()
        self.inner = inner

    def _pass(self, method: Callable[..., Any], *args: Any) -> None:
        try:
            method(*args)
        except Exception as exc:
            raise CallbackFailed(exc) from exc

    @override
    def set_size(self, size: int | None) -> None:
        self._pass(self.inner.set_size, size)

    @override
    def relative_update(self, inc: int = 1) -> None:
        self._pass(self.inner.relative_update, inc)

    @override
    def absolute_update(self, value: int) -> None:
        self._pass(self.inner.absolute_update, value)


class Remote:
    """The foreign side of one transfer: its filesystem and path, and its failures."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None, verb: str) -> None:
        self.url, self.verb, self.shown = url, verb, redact(url)
        options = dict(storage_options or {})
        method = options.pop("method", None)  # an upload option, not the filesystem's
        self.put_options: dict[str, Any] = {}
        secrets = secrets_of(url, options)
        SCRUBBER.learn(secrets)
        check_scheme(url, verb)
        self.fs, self.path = self.attempt(lambda: self.call(_resolve, url, options))
        if method is not None and verb == "export":
            upload = self.fs._put_file if self.fs.async_impl else self.fs.put_file
            if "method" not in inspect.signature(upload).parameters:
                raise ValueError(
                    f"cannot export to {self.shown!r}: storage option 'method' applies to "
                    f"HTTP(S) uploads, not to {type(self.fs).__name__}"
                )
            self.put_options["method"] = method
        http_fs = sys.modules.get("fsspec.implementations.http")
        if verb == "export" and http_fs and isinstance(self.fs, http_fs.HTTPFileSystem):
            # fsspec turns an upload's 404 into a bare FileNotFoundError; have
            # aiohttp raise first, with the status, so the message can name it.
            self.put_options["raise_for_status"] = True

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func``, marking its errors as the foreign side's."""
        try:
            return func(*args, **kwargs)
        except (Foreign, CallbackFailed):
            raise
        except Exception as exc:
            failed = find(exc, CallbackFailed)
            if failed is not None:
                raise failed from None
            raise Foreign(exc) from exc

    def attempt(self, func: Callable[[], T]) -> T:
        """Run ``func`` until it succeeds, fails for good, or runs out of attempts."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return func()
            except Foreign as failure:
                error = failure.error
                if attempt < ATTEMPTS and transient(error):
                    logger.info(
                        "%s of %s failed (%s); attempt %d of %d in %.2f s",
                        self.verb,
                        self.shown,
                        SCRUBBER.scrub(describe(error)[2]),
                        attempt + 1,
                        ATTEMPTS,
                        BACKOFF * 2 ** (attempt - 1),
                    )
                    time.sleep(BACKOFF * 2 ** (attempt - 1))
                    continue
                report = self.failure(error, attempt)
                if leaks(error):
                    raise report from None
                raise report from error
            except CallbackFailed as failed:
                raise failed.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def failure(self, error: Exception, attempts: int) -> Exception:
        """Return the exception to raise for ``error``: a builtin type, naming the URL."""
        kind, code, text = describe(error)
        text = SCRUBBER.scrub(text)
        if attempts > 1:
            text += f" (after {attempts} attempts)"
        if kind in (ValueError, TypeError, NotImplementedError):
            return kind(f"cannot {self.verb} {self.shown!r}: {text}")
        return kind(code, f"cannot {self.verb}: {text}", self.shown)


def _resolve(url: str, options: dict[str, Any]) -> tuple[AbstractFileSystem, str]:
    fs, path = url_to_fs(url, **options)
    return fs, str(path)


def _protocols(url: str) -> list[str]:
    parts = url.split("::")
    found = []
    for i, part in enumerate(parts):
        if i < len(parts) - 1 and "://" not in part:
            found.append(part)  # a chained URL's outer layers are bare names
        else:
            protocol = split_protocol(part)[0]
            found.append(protocol or "file")
    return found


def check_scheme(url: object, verb: str) -> type[AbstractFileSystem]:
    """Return the filesystem class of ``url``'s scheme, found with no I/O.

    Raises
    ------
    ValueError
        ``url`` is empty, or no fsspec filesystem is known for its scheme.
    ImportError
        The scheme's package is not installed; the message names it.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"expected a URL or path to {verb}, got {url!r}")
    shown = redact(url)
    cls: type[AbstractFileSystem] = LocalFileSystem
    for protocol in _protocols(url):
        try:
            cls = fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise ValueError(
                f"cannot {verb} {shown!r}: unknown URL scheme {protocol!r}; no fsspec "
                f"filesystem is registered for it: install the package that provides the "
                f"{protocol!r} protocol"
            ) from None
        except ImportError as exc:
            raise ImportError(
                f"cannot {verb} {shown!r}: the {protocol!r} scheme needs a package that is "
                f"not installed ({exc})"
            ) from None
    return cls
