"""Open the filesystem a locator names, with the backend that knows it best.

This package is the one place that knows filesystems differ: the generic
path (:mod:`.base`) serves any fsspec filesystem, and the backends in the
registry (:mod:`.registry`) serve the filesystems they know better.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from ..errors import InvalidLocatorError
from ..locator import Locator, merge_options
from ..protocols import facts
from ..redaction import SCRUBBER, redact
from .base import Backend
from .common import NotStored, VersionConflict
from .registry import backend_class

__all__ = [
    "Backend",
    "NotStored",
    "VersionConflict",
    "backend_class",
    "backend_for",
    "connect",
    "default_options",
]


def backend_for(fs: fsspec.AbstractFileSystem, root: str) -> Backend:
    """Return the backend that knows ``fs`` best; the generic one otherwise."""
    return backend_class(type(fs))(fs, root)


def default_options(protocol: str, backend: type[Backend] | None = None) -> dict[str, Any]:
    """Storage options every store on ``protocol`` needs, before the user's own.

    Parameters
    ----------
    protocol
        The protocol, for its facts (a client that caches listings gets
        ``use_listings_cache=False``).
    backend
        The backend class, for its own defaults; by default, the one of the
        protocol's filesystem class.
    """
    if backend is None:
        backend = backend_class(fsspec.get_filesystem_class(protocol))
    options = {"use_listings_cache": False} if facts(protocol).caches_listings else {}
    return merge_options(options, backend.default_options())


def connect(
    locator: Locator,
    user_options: Mapping[str, Any],
    config_implied: Mapping[str, Any] | None = None,
) -> Backend:
    """Open the filesystem a locator names and return its backend.

    Options are layered: what every store on the protocol and backend needs
    (:func:`default_options`), what the config implies (the backend's
    ``config_options``), what the locator implies, and the caller's own,
    later ones winning. A chained URL (``simplecache::s3://…``) gets only the
    last three: its outer layer is what the store talks to.

    Raises
    ------
    InvalidLocatorError
        fsspec does not know the protocol (its message says so).
    ImportError
        The protocol's package is not installed (fsspec's message names it),
        or a registered backend cannot be loaded.
    """
    defaults: dict[str, Any] = {}
    try:
        if "::" not in locator.url:
            defaults = default_options(locator.protocol)
        fs, root = url_to_fs(
            locator.url,
            **merge_options(defaults, config_implied or {}, locator.storage_options, user_options),
        )
    except ValueError as exc:
        raise InvalidLocatorError(locator.text, SCRUBBER.scrub(str(exc))) from None
    except ImportError as exc:
        extra = facts(locator.protocol).extra
        hint = f" (pip install 'fsjobstore[{extra}]')" if extra else ""
        raise ImportError(f"job store {redact(locator.text)!r}: {exc}{hint}") from None
    root = root.rstrip("/")
    if not root.strip("/."):
        raise InvalidLocatorError(
            locator.text, "it names the root of its filesystem, which cannot hold a job store"
        )
    return backend_for(fs, root)
