"""Resolve import and export URLs to fsspec filesystems.

Every scheme goes through :func:`fsspec.core.url_to_fs`; this module only
turns its failures into errors that name the URL, with credentials removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fsspec import AbstractFileSystem
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

__all__ = ["is_local", "open_url", "redact"]

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
