"""A filesystem that fails a fraction of its calls, as its client fails in production.

:func:`faulty` makes a subclass of a real fsspec filesystem class (sshfs's,
fsspec's FTP, kvfs …) and registers it with fsspec under a protocol of its
own. Being a subclass, it keeps fsjobstore's backend selection (the registry
matches classes through their MRO, so SFTP still gets ``SFTPBackend``), and
its ``protocol`` attribute starts with the wrapped class's, so fsjobstore
keeps the protocol's facts (atomic renames, one connection per thread …).

A call that is picked to fail raises what that client really raises when
its connection drops or times out: ``ftplib.error_temp("421 …")``,
``ConnectionResetError``, ``TimeoutError``, asyncssh's ``ConnectionLost`` and
``SFTPNoConnection``. Half the faults strike before the call reaches the
server (nothing happened), half after it (it happened, the reply was lost).
A fault that stands for a dropped connection really drops it (the FTP
control socket is shut, the SSH connection closed), so the filesystem
object is unusable afterwards, as it would be: whoever retries must open a
new one. Open files fail the same way on reads, writes and closes.

Which calls fail is decided by a hash of the seed, the call and its path,
and how many times that call was made on that path, so a run is
reproducible, and a retry gets a draw of its own.
"""

from __future__ import annotations

import collections
import ftplib
import functools
import hashlib
import inspect
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.asyn import AsyncFileSystem, sync

__all__ = ["FaultPlan", "errors_of", "faulty"]

#: Calls of a synchronous filesystem that may fail.
_SYNC = ("cat_file", "pipe_file", "info", "ls", "mv", "rm_file", "makedirs", "mkdir", "rmdir")
#: Coroutines of an asynchronous filesystem that may fail (its sync calls run them).
_ASYNC = tuple(f"_{name}" for name in _SYNC)


@dataclass
class FaultPlan:
    """How often calls fail, and what was injected.

    Attributes
    ----------
    fraction
        Share of calls that fail (0 to 1).
    seed
        Seed of the draws.
    counts
        Faults injected so far, by the error's name and ``before``/``after``.
    calls
        Calls seen so far.
    """

    fraction: float = 0.0
    seed: int = 0
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    calls: int = 0
    _seen: collections.Counter[str] = field(default_factory=collections.Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def draw(self, what: str, menu: int) -> tuple[int, bool] | None:
        """Whether call ``what`` fails: ``(index into the error menu, after)`` or None."""
        with self._lock:
            self.calls += 1
            if self.fraction <= 0:
                return None
            self._seen[what] += 1
            digest = hashlib.blake2b(
                f"{self.seed}|{what}|{self._seen[what]}".encode(), digest_size=12
            ).digest()
            draw, pick, when = struct.unpack(">III", digest)
            if draw / 2**32 >= self.fraction:
                return None
            return pick % menu, bool(when % 2)

    def count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    @property
    def injected(self) -> int:
        """Faults injected so far."""
        return sum(v for k, v in self.counts.items() if k.startswith(("before:", "after:")))


def errors_of(cls: type) -> list[Callable[[], BaseException]]:
    """The errors a client of ``cls`` raises when its connection fails."""
    names = {c.__module__.split(".")[0] for c in cls.__mro__}
    if "sshfs" in names:
        import asyncssh

        return [
            lambda: asyncssh.ConnectionLost("Connection lost"),
            lambda: asyncssh.SFTPNoConnection("No connection"),
            lambda: TimeoutError("timed out"),
        ]
    if cls.__module__ == "fsspec.implementations.ftp" or any(
        c.__name__ == "FTPFileSystem" for c in cls.__mro__
    ):
        return [
            lambda: ftplib.error_temp("421 Service not available, closing control connection."),
            lambda: ConnectionResetError(104, "Connection reset by peer"),
            lambda: TimeoutError("timed out"),
        ]
    return [
        lambda: ConnectionResetError(104, "Connection reset by peer"),
        lambda: TimeoutError("timed out"),
    ]


def _drop_connection(fs: Any, in_loop: bool) -> None:
    """Break ``fs``'s connection for good, as a network failure would."""
    ftp = getattr(fs, "ftp", None)
    if isinstance(ftp, ftplib.FTP):
        if ftp.sock is not None:
            try:
                ftp.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return
    client = getattr(type(fs), "client", None)
    if isinstance(client, property) and isinstance(fs, AsyncFileSystem):  # sshfs

        async def close() -> None:
            fs.client.close()

        if in_loop:
            fs.client.close()
        else:
            sync(fs.loop, close)


class _Injector:
    """Decides and raises faults for one faulty class."""

    def __init__(self, plan: FaultPlan, errors: list[Callable[[], BaseException]]) -> None:
        self.plan, self.errors = plan, errors

    def pick(self, name: str, path: Any) -> tuple[BaseException, bool] | None:
        drawn = self.plan.draw(f"{name} {path}", len(self.errors))
        if drawn is None:
            return None
        index, after = drawn
        error = self.errors[index]()
        self.plan.count(f"{'after' if after else 'before'}:{type(error).__name__}")
        return error, after

    def fail(self, fs: Any, error: BaseException, in_loop: bool) -> BaseException:
        if not isinstance(error, TimeoutError) or isinstance(error, ftplib.Error):
            _drop_connection(fs, in_loop)
        return error


def _sync_call(injector: _Injector, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        fault = injector.pick(name, args[0] if args else "")
        if fault is None:
            return method(self, *args, **kwargs)
        error, after = fault
        if after:
            _discard(method(self, *args, **kwargs))
        raise injector.fail(self, error, in_loop=False)

    return call


def _async_call(injector: _Injector, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        fault = injector.pick(name, args[0] if args else "")
        if fault is None:
            return await method(self, *args, **kwargs)
        error, after = fault
        if after:
            _discard(await method(self, *args, **kwargs))
        raise injector.fail(self, error, in_loop=True)

    return call


def _discard(result: Any) -> None:
    """Forget what a call returned before its reply was "lost": an open file too.

    Marked closed, not closed: closing a file opened for writing would upload
    it, and one left open would flush when garbage collected.
    """
    if hasattr(result, "close") and hasattr(result, "closed"):
        try:
            result.closed = True
        except AttributeError:
            result.close()


class _FaultyFile:
    """An open file of a faulty filesystem: reads, writes and closes may fail."""

    def __init__(self, fs: Any, injector: _Injector, path: str, handle: Any) -> None:
        self._fs, self._injector, self._path, self._handle = fs, injector, path, handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    # As on the real file: marking it closed stops a buffered file from
    # committing on close or when garbage collected.
    @property
    def closed(self) -> bool:
        return bool(self._handle.closed)

    @closed.setter
    def closed(self, value: bool) -> None:
        self._handle.closed = value

    def _do(self, name: str, *args: Any) -> Any:
        fault = self._injector.pick(f"file.{name}", self._path)
        if fault is None:
            return getattr(self._handle, name)(*args)
        error, after = fault
        if after:
            getattr(self._handle, name)(*args)
        raise self._injector.fail(self._fs, error, in_loop=False)

    def read(self, size: int = -1) -> Any:
        return self._do("read", size)

    def write(self, data: Any) -> Any:
        return self._do("write", data)

    def close(self) -> None:
        if self._handle.closed:
            return
        fault = self._injector.pick("file.close", self._path)
        if fault is None:
            self._handle.close()
            return
        error, after = fault
        if after:
            self._handle.close()
        else:
            # As fsspec's buffered files do when their upload fails: nothing
            # was sent, and the file is closed all the same.
            try:
                self._handle.closed = True
            except AttributeError:
                pass
        raise self._injector.fail(self._fs, error, in_loop=False)

    def __enter__(self) -> _FaultyFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def faulty(cls: Any, protocol: str, plan: FaultPlan) -> type:
    """Return a subclass of ``cls`` failing calls by ``plan``, registered as ``protocol``.

    Parameters
    ----------
    cls
        The real filesystem class.
    protocol
        The protocol to register it under (``faultysftp`` …); replaces any
        class registered under it before.
    plan
        How often calls fail; it counts what was injected.
    """
    injector = _Injector(plan, errors_of(cls))
    own = cls.protocol if isinstance(cls.protocol, str) else cls.protocol[0]
    namespace: dict[str, Any] = {"protocol": (own, protocol), "plan": plan}
    is_async = issubclass(cls, AsyncFileSystem)
    for name in _ASYNC if is_async else _SYNC:
        method = getattr(cls, name, None)
        if method is None:
            continue
        if is_async and inspect.iscoroutinefunction(method):
            namespace[name] = _async_call(injector, name.lstrip("_"), method)
        elif not is_async:
            namespace[name] = _sync_call(injector, name, method)
    real_open = cls._open

    def _open(self: Any, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        fault = injector.pick("open", path)
        if fault is not None and not fault[1]:
            raise injector.fail(self, fault[0], in_loop=False)
        handle = real_open(self, path, mode, *args, **kwargs)
        if fault is not None:  # opened, and the reply lost
            try:
                handle.close()
            finally:
                raise injector.fail(self, fault[0], in_loop=False)
        return _FaultyFile(self, injector, path, handle)

    namespace["_open"] = _open
    subclass = type(f"Faulty{cls.__name__}", (cls,), namespace)
    fsspec.register_implementation(protocol, subclass, clobber=True)
    return subclass
