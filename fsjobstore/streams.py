"""Small helpers around handles and lists; no storage I/O."""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from typing import IO, Any

__all__ = [
    "check_text_args",
    "chunks",
    "is_executable",
    "make_executable",
    "regular_file",
    "text_mode",
]


def check_text_args(encoding: str | None, errors: str | None) -> None:
    """Refuse ``errors=`` without ``encoding=``, before any I/O."""
    if encoding is None and errors is not None:
        raise ValueError("errors= applies to text mode only: give encoding= too")


@contextmanager
def text_mode(raw: IO[bytes], encoding: str | None, errors: str | None) -> Iterator[IO[Any]]:
    """Yield ``raw``, or a text wrapper over it when ``encoding`` is given.

    The wrapper is detached on exit (flushing it), so whoever opened ``raw``
    still decides whether to commit or discard it.
    """
    if encoding is None:
        yield raw
        return
    text = io.TextIOWrapper(raw, encoding=encoding, errors=errors)
    try:
        yield text
    finally:
        text.detach()


def chunks(items: list[str], size: int = 1000) -> Iterator[list[str]]:
    """Split ``items`` into lists of at most ``size``: bounded bulk calls."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def regular_file(local_path: str) -> os.stat_result:
    """Return the status of a local file that can be stored, refusing anything else.

    A regular file can, and so can a device that reads to an end (Toil
    stores ``/dev/null`` as an empty file).

    Raises
    ------
    IsADirectoryError
        ``local_path`` is a directory.
    OSError
        It is a FIFO or a socket, whose reading could block forever, or is
        missing.
    """
    status = os.stat(local_path)
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, "a directory cannot be stored as a file", local_path)
    if stat.S_ISFIFO(status.st_mode) or stat.S_ISSOCK(status.st_mode):
        raise OSError(errno.EINVAL, "a FIFO or a socket cannot be stored", local_path)
    return status


def is_executable(local_path: str) -> bool:
    """Whether the owner may execute a local file."""
    return bool(os.stat(local_path).st_mode & stat.S_IXUSR)


def make_executable(local_path: str) -> None:
    """Like ``chmod +x`` under the usual umask: execute wherever read is allowed."""
    mode = os.stat(local_path).st_mode
    os.chmod(local_path, mode | ((mode & 0o444) >> 2))
