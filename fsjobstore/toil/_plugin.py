"""Toil's URL-access plug-in: shipped at the top level of the wheel as ``toil_url_access_fsjobstore``.

Toil imports every installed module named ``toil_url_access_*`` the first
time it looks a URL scheme up. This one registers
:class:`fsjobstore.toil.urls.FsspecURLAccess` for each scheme fsspec knows
that Toil does not open itself; the class is imported only when a URL of
one of those schemes is used.
"""

from __future__ import annotations

from typing import Any

from toil.lib.plugins import register_plugin


def _factory() -> Any:
    from fsjobstore.toil.urls import FsspecURLAccess

    return FsspecURLAccess


def register() -> list[str]:
    """Register the plug-in for its schemes; return them."""
    from fsjobstore.toil.urls import plugin_schemes

    schemes = plugin_schemes()
    for scheme in schemes:
        register_plugin("url_access", scheme, _factory)
    return schemes


register()
