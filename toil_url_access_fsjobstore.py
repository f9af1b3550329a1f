"""Toil's URL-access plug-in, at the top of the wheel as ``toil_url_access_fsjobstore``.

Toil imports every installed module named ``toil_url_access_*`` the first
time it looks a URL scheme up. This one registers
:class:`fsjobstore.toil.urls.FsspecURLAccess` for each scheme fsspec knows
that Toil does not open itself, and, for ``s3`` and ``gs``, a factory that
gives Toil's own class when it can be imported (Toil's ``aws`` and
``google`` extras) and fsjobstore's otherwise. Classes are imported only
when a URL of their scheme is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fsspec  # Toil imports it already: this costs nothing more
from toil.lib import url as toil_url
from toil.lib.plugins import register_plugin

#: Schemes Toil's own URL access handles. For ``s3`` and ``gs`` Toil needs its
#: ``aws`` and ``google`` extras; without them the plug-in serves those too.
TOIL_SCHEMES = frozenset({"file", "http", "https", "ftp", "s3", "gs"})

#: Toil's own factories for the schemes it may lack the clients for.
_TOIL_FACTORIES = {"s3": "aws_job_store_factory", "gs": "google_job_store_factory"}


def _ours() -> Any:
    from fsjobstore.toil.urls import FsspecURLAccess

    return FsspecURLAccess


def _toil_first(toil_factory: Callable[[], Any]) -> Callable[[], Any]:
    def factory() -> Any:
        try:
            return toil_factory()
        except ImportError:
            return _ours()

    return factory


def plugin_schemes() -> list[str]:
    """Return the schemes served outright: fsspec's, less Toil's own."""
    return sorted(set(fsspec.available_protocols()) - TOIL_SCHEMES)


def register() -> list[str]:
    """Register the plug-in's factories; return the schemes they serve.

    Nothing of fsjobstore is imported here: only when a URL of one of these
    schemes is used.
    """
    schemes = plugin_schemes()
    for scheme in schemes:
        register_plugin("url_access", scheme, _ours)
    for scheme, name in _TOIL_FACTORIES.items():
        toil_factory = getattr(toil_url, name, None)
        register_plugin("url_access", scheme, _toil_first(toil_factory) if toil_factory else _ours)
        schemes.append(scheme)
    return schemes


register()
