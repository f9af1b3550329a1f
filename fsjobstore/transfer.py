"""Import and export: any URL, through fsspec, one code path.

Every scheme goes through :func:`fsspec.core.url_to_fs`. Local files take the
backend's fast path (a server-side or ``sendfile`` copy); everything else is
streamed in bounded memory. Errors name the URL, with credentials removed.
"""

from __future__ import annotations

import errno
import posixpath
import re
import shutil
from collections.abc import Mapping
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from .backends import Backend
from .backends.base import COPY_BUFFER
from .streams import is_executable, make_executable

__all__ = ["copy_in", "copy_out", "is_local", "open_url", "redact", "source_info"]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


def redact(url: str) -> str:
    """Remove ``user:password@`` from a URL, for messages and logs."""
    return _USERINFO.sub(r"\g<scheme>***@", url)


def open_url(
    url: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[AbstractFileSystem, str]:
    """Return the filesystem and path of an import or export URL.

    Raises
    ------
    ValueError
        The URL is empty, or its scheme is not a known fsspec protocol.
    ImportError
        The scheme's fsspec package is not installed; the message names it.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"expected a URL or path, got {url!r}")
    try:
        fs, path = url_to_fs(url, **dict(storage_options or {}))
    except ValueError as exc:
        raise ValueError(f"cannot open {redact(url)!r}: {exc}") from None
    except ImportError as exc:
        raise ImportError(f"cannot open {redact(url)!r}: {exc}") from None
    return fs, str(path)


def is_local(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is the local disk, so plain file calls apply."""
    return isinstance(fs, LocalFileSystem)


def source_info(fs: AbstractFileSystem, src: str, url: str) -> tuple[int, bool]:
    """Size and executable bit of an import source.

    Raises
    ------
    FileNotFoundError
        Nothing at ``url``.
    IsADirectoryError
        ``url`` is a directory.
    """
    try:
        info = fs.info(src)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such file to import", redact(url)) from None
    if info.get("type") == "directory":
        raise IsADirectoryError(errno.EISDIR, "cannot import a directory", redact(url))
    return int(info["size"]), is_local(fs) and is_executable(src)


def copy_in(backend: Backend, fs: AbstractFileSystem, src: str, path: str) -> None:
    """Copy ``src`` on ``fs`` into the store at ``path``, atomically."""
    if is_local(fs):
        backend.upload(src, path)
        return
    with fs.open(src, "rb") as source, backend.open_write(path) as target:
        shutil.copyfileobj(source, target, COPY_BUFFER)


def copy_out(
    backend: Backend, path: str, fs: AbstractFileSystem, dst: str, *, executable: bool
) -> None:
    """Copy the stored ``path`` to ``dst`` on ``fs``.

    Raises
    ------
    NotStored
        Nothing is stored at ``path``.
    """
    if is_local(fs):
        fs.makedirs(posixpath.dirname(dst), exist_ok=True)
        backend.download(path, dst)
        if executable:
            make_executable(dst)
        return
    with backend.open_read(path) as source, fs.open(dst, "wb") as target:
        shutil.copyfileobj(source, target, COPY_BUFFER)
