"""Retries where the client has none: one policy per client, on tenacity.

s3fs, gcsfs and adlfs retry transient failures themselves (botocore's retry
handler and s3fs's own loop, gcsfs's ``retry_request``, the Azure SDK's
``ExponentialRetry``); fsjobstore never retries on top of them, which would
multiply their attempts. (The S3 backend asks again for a ``GetObject`` body
that broke off midway: s3fs retries the request, not the body read after
it.) FTP, SFTP and any other fsspec client get :data:`DEFAULT`: a few
attempts with jittered exponential waits, on the errors
:func:`~.failures.transient` calls transient. Local disk and memory
get none: nothing there passes by trying again.

A filesystem whose client has no retries is wrapped (:func:`retrying`) so
that each call the backend makes is tried again, in a way that is safe to
repeat even when the failed attempt did its work and only the reply was
lost:

* reads, overwriting writes and ``makedirs`` are repeated as they are;
* a delete that finds nothing on a later attempt succeeded on an earlier one;
* a rename whose source is gone on a later attempt, and whose target is
  there, succeeded on an earlier one (sources are fsjobstore's own
  temporaries, which nothing else moves);
* a stream being written is kept aside as it goes (in memory while small,
  then on local disk), so that after a failure it is written again whole;
* a stream being read is reopened at the offset reached, if the file's size
  and modification time are still the ones it was opened with;
* an exclusive create (``open(path, "xb")``) is repeated only while it fails
  transiently: once it reports that the file exists, that may be the
  earlier attempt's own file, and the caller sees ``FileExistsError`` as for
  any other holder (the SFTP backend then waits for its lock to be
  abandoned).

Clients that hold a connection (FTP's control connection, SSH) cannot use
it again once it dropped, so before the next attempt the wrapper opens a new
filesystem object with the same arguments.
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import tenacity
from fsspec import AbstractFileSystem

from ..redaction import SCRUBBER
from .failures import describe, transient

__all__ = ["DEFAULT", "POLICIES", "RetryPolicy", "policy_for", "retrying", "unwrapped"]

T = TypeVar("T")
logger = logging.getLogger("fsjobstore.retries")

#: Bytes of a stream being written that are kept in memory; more goes to disk.
_SPOOL = 8 * 1024 * 1024
#: Bytes written at a time when a stream is written again.
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and after how long a wait, a failed call is tried again.

    Attributes
    ----------
    attempts
        Tries in all, the first included.
    first_wait
        Seconds before the second try; each wait after it doubles, plus up
        to ``first_wait`` of random jitter, so that clients failed by the
        same outage do not come back all at once.
    max_wait
        Longest wait between two tries, in seconds.
    """

    attempts: int = 6
    first_wait: float = 0.2
    max_wait: float = 5.0

    def retrying(
        self,
        what: str,
        retry_on: Callable[[BaseException], bool] = lambda e: (
            isinstance(e, Exception) and transient(e)
        ),
        before: Callable[[tenacity.RetryCallState], None] | None = None,
        log: logging.Logger = logger,
    ) -> tenacity.Retrying:
        """Return a tenacity ``Retrying`` that tries ``what`` under this policy.

        Parameters
        ----------
        what
            What is tried, for the log (credentials are masked).
        retry_on
            Which exceptions are worth another try; by default the transient ones.
        before
            Called before each try (to renew a connection that dropped).
        log
            Where each retry is told, at INFO level.
        """

        def tell(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            error = getattr(error, "error", error)  # a transfer's wrapped foreign error
            reason = describe(error)[2] if isinstance(error, Exception) else "?"
            wait = state.next_action.sleep if state.next_action else 0.0
            log.info(
                "%s failed (%s); attempt %d of %d in %.2f s",
                SCRUBBER.scrub(what),
                SCRUBBER.scrub(reason),
                state.attempt_number + 1,
                self.attempts,
                wait,
            )

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential(multiplier=self.first_wait, max=self.max_wait)
            + tenacity.wait_random(0, self.first_wait),
            retry=tenacity.retry_if_exception(retry_on),
            before=before if before is not None else tenacity.before_nothing,
            before_sleep=tell,
            reraise=True,
        )


#: The policy of clients that have no retries of their own.
DEFAULT = RetryPolicy()

#: Each client's policy, by protocol; None where fsjobstore adds no retries.
#: A protocol missing here gets :data:`DEFAULT`.
POLICIES: Mapping[str, RetryPolicy | None] = {
    # The client retries itself: retrying on top would multiply its attempts.
    **dict.fromkeys(("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"), None),
    # Nothing there fails in a way that passes by trying again.
    **dict.fromkeys(("file", "local", "memory"), None),
    "ftp": DEFAULT,
    "sftp": DEFAULT,
    "ssh": DEFAULT,
    "http": DEFAULT,
    "https": DEFAULT,
}


def policy_for(protocol: str) -> RetryPolicy | None:
    """Return the retry policy fsjobstore adds to a client of ``protocol`` (lower case)."""
    return POLICIES.get(protocol, DEFAULT)


def retrying(fs: AbstractFileSystem, protocol: str) -> AbstractFileSystem:
    """Return ``fs`` with its calls retried by :func:`policy_for`'s policy, or ``fs`` itself.

    The result answers to every attribute of ``fs``; the calls a backend
    makes (reads, writes, deletes, renames, listings, ``open``) are retried.
    """
    policy = policy_for(protocol)
    if policy is None:
        return fs
    return _Retrying(fs, policy)


def unwrapped(fs: AbstractFileSystem) -> AbstractFileSystem:
    """Return the filesystem a :func:`retrying` result calls (its current one), or ``fs``."""
    return fs._fs if isinstance(fs, _Retrying) else fs


#: Calls that may be repeated as they are.
_REPEATABLE = frozenset(
    {
        "cat_file",
        "info",
        "ls",
        "find",
        "glob",
        "walk",
        "size",
        "modified",
        "pipe_file",
        "pipe",
        "put_file",
        "cp_file",
        "makedirs",
        "mkdir",
    }
)
#: Calls that remove something: finding it gone on a later try is success.
_REMOVING = frozenset({"rm_file", "rm", "rmdir"})


class _Retrying:
    """A filesystem whose calls are retried; see the module's notes."""

    def __init__(self, fs: AbstractFileSystem, policy: RetryPolicy) -> None:
        self._fs = fs
        self._policy = policy
        self._lock = threading.Lock()
        self._broken: AbstractFileSystem | None = None

    def __getattr__(self, name: str) -> Any:
        if name in _REPEATABLE or name in _REMOVING or name == "mv":
            return lambda *args, **kwargs: self._call(name, args, kwargs)
        return getattr(self._fs, name)

    def _renew(self, state: tenacity.RetryCallState) -> None:
        """Before another try: replace a filesystem whose connection dropped."""
        del state
        with self._lock:
            broken, self._broken = self._broken, None
            if broken is None or broken is not self._fs:
                return  # another thread renewed it already
            self._fs = type(broken)(
                *broken.storage_args, **{**broken.storage_options, "skip_instance_cache": True}
            )

    def _attempts(self, what: str) -> tenacity.Retrying:
        return self._policy.retrying(what, before=self._renew)

    def _failed(self, fs: AbstractFileSystem, error: BaseException) -> None:
        if isinstance(error, Exception) and transient(error):
            with self._lock:
                if fs is self._fs:
                    self._broken = fs

    def run(self, what: str, call: Callable[[AbstractFileSystem], T]) -> T:
        """Run ``call(fs)`` until it succeeds or fails for good, renewing ``fs`` as needed."""
        for attempt in self._attempts(what):
            with attempt:
                fs = self._fs
                try:
                    return call(fs)
                except BaseException as exc:
                    self._failed(fs, exc)
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        what = f"{name} {args[0] if args else ''}"
        failed_once = False

        def call(fs: AbstractFileSystem) -> Any:
            nonlocal failed_once
            try:
                return getattr(fs, name)(*args, **kwargs)
            except Exception as exc:
                if failed_once and describe(exc)[0] is FileNotFoundError:
                    # (FTP reports a missing file as a 550 reply, not FileNotFoundError.)
                    if name in _REMOVING and isinstance(args[0], str):
                        return None  # removed by the try whose reply was lost
                    if name == "mv" and self._kind(args[1]) is not None:
                        return None  # renamed by the try whose reply was lost
                failed_once = failed_once or transient(exc)
                raise

        return self.run(what, call)

    def pipe(self, path: Any, value: Any = None, **kwargs: Any) -> None:
        """Write one path, or each of a mapping's: a failure repeats one write, not all."""
        items = path if isinstance(path, dict) else {path: value}
        for key, data in items.items():
            self._call("pipe_file", (key, data), kwargs)

    def cat(self, path: Any, on_error: str = "raise", **kwargs: Any) -> Any:
        """Read many paths; with ``on_error="return"``, transient failures are read again."""
        found = self._call("cat", (path,), {"on_error": on_error, **kwargs})
        if on_error != "return" or not isinstance(found, dict):
            return found
        for key, value in found.items():
            if isinstance(value, Exception) and transient(value):
                self._failed(self._fs, value)
                try:
                    found[key] = self._call("cat_file", (key,), {})
                except Exception as exc:  # reported per path, as the caller asked
                    found[key] = exc
        return found

    # fsspec's own isfile, isdir and exists answer False for any error, a
    # dropped connection too: asked through info, only a missing path is False.

    def _kind(self, path: str) -> str | None:
        try:
            info = self._call("info", (path,), {})
        except (FileNotFoundError, NotADirectoryError):
            return None
        return str(info.get("type"))

    def isfile(self, path: str) -> bool:
        """Whether ``path`` is a file; errors other than its absence are raised."""
        return self._kind(path) == "file"

    def isdir(self, path: str) -> bool:
        """Whether ``path`` is a directory; errors other than its absence are raised."""
        return self._kind(path) == "directory"

    def exists(self, path: str) -> bool:
        """Whether anything is at ``path``; errors other than its absence are raised."""
        return self._kind(path) is not None

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        """Open ``path``; reads resume and writes replay after a transient failure."""
        handle = self.run(f"open {path}", lambda fs: fs.open(path, mode, **kwargs))
        if mode == "rb":
            return _Resuming(self, path, handle, kwargs)
        if mode == "wb":
            return _Replaying(self, path, handle, kwargs)
        if mode == "xb":
            return _Claimed(self, handle)
        return handle


class _Resuming(io.RawIOBase):
    """A file being read that reopens at its offset after a transient failure."""

    def __init__(self, owner: _Retrying, path: str, handle: Any, kwargs: dict[str, Any]) -> None:
        super().__init__()
        self._owner, self._path, self._handle, self._kwargs = owner, path, handle, kwargs
        self._pos = 0
        details = getattr(handle, "details", None)
        if not isinstance(details, dict):
            # Asked once, so that a reopened read can tell the file is the same.
            details = owner.run(f"info {path}", lambda fs: fs.info(path))
        self._identity = _identity(details)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        def read(fs: AbstractFileSystem) -> bytes:
            if self._handle is None:
                self._reopen(fs)
            try:
                data: bytes = self._handle.read(size)
            except Exception:
                self._drop()
                raise
            return data

        data = self._owner.run(f"read {self._path}", read)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _reopen(self, fs: AbstractFileSystem) -> None:
        if self._pos and _identity(fs.info(self._path)) != self._identity:
            raise OSError(116, "the file changed while it was being read", self._path)
        handle = fs.open(self._path, "rb", **self._kwargs)
        handle.seek(self._pos)
        self._handle = handle

    def _drop(self) -> None:
        _abandon(self._handle)
        self._handle = None

    def close(self) -> None:
        if not self.closed:
            self._drop()
        super().close()


class _Claimed(io.RawIOBase):
    """A file made by an exclusive create: made once the open succeeded.

    Closing it can fail after the file was made; if nothing was written to
    it, there is nothing to lose, and the claim stands.
    """

    def __init__(self, owner: _Retrying, handle: Any) -> None:
        super().__init__()
        self._owner, self._handle, self._written = owner, handle, 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written: int = self._handle.write(data)
        self._written += written
        return written

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._handle.close()
        except Exception as exc:
            if self._written or not transient(exc):
                raise
            self._owner._failed(self._owner._fs, exc)
        finally:
            super().close()


def _abandon(handle: Any, *, writing: bool = False) -> None:
    """Let go of a file whose call failed, so that it never tries again.

    A file being read is closed. A file being written is not: closing
    commits it (fsspec's buffered files upload what they hold on close, in
    place where the filesystem has no atomic rename), and what it holds is
    stale or partial once the write is replayed. It is marked closed
    instead, which also stops fsspec's buffered files from flushing when
    garbage collected, possibly after a newer write. A file that cannot be
    marked (``closed`` is read-only on unbuffered files, whose writes are
    already on the server) is closed to release it.
    """
    if handle is None:
        return
    if writing:
        try:
            handle.closed = True
        except AttributeError:
            pass
        else:
            return
    try:
        handle.close()
    except Exception:
        # fsspec's buffered files flush again on garbage collection unless closed.
        try:
            handle.closed = True
        except AttributeError:
            pass


def _identity(details: dict[str, Any]) -> tuple[Any, Any]:
    return details.get("size"), details.get("mtime", details.get("modified"))


class _Replaying(io.RawIOBase):
    """A file being written that keeps what it was given, to write it again after a failure."""

    def __init__(self, owner: _Retrying, path: str, handle: Any, kwargs: dict[str, Any]) -> None:
        super().__init__()
        self._owner, self._path, self._handle, self._kwargs = owner, path, handle, kwargs
        # Closed in close(), which every user of a file calls.
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        data = bytes(data)
        self._spool.write(data)
        if self._handle is not None:
            try:
                self._handle.write(data)
            except Exception as exc:
                if not transient(exc):
                    raise
                self._owner._failed(self._handle_fs(), exc)
                self._drop()  # written again whole, from the spool, on close
        return len(data)

    def _handle_fs(self) -> AbstractFileSystem:
        return self._owner._fs

    def _drop(self) -> None:
        _abandon(self._handle, writing=True)
        self._handle = None

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._owner.run(f"write {self._path}", self._finish)
        finally:
            self._spool.close()
            super().close()

    def _finish(self, fs: AbstractFileSystem) -> None:
        handle, self._handle = self._handle, None
        try:
            if handle is None:
                handle = fs.open(self._path, "wb", **self._kwargs)
                self._spool.seek(0)
                shutil.copyfileobj(self._spool, handle, _CHUNK)
            handle.close()
        except BaseException:
            _abandon(handle, writing=True)
            raise
