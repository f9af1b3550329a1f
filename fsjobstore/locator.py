"""Turn a job store locator into an fsspec URL and storage options.

Pure: no I/O, no fsspec calls. The store hands the result to
:func:`fsspec.core.url_to_fs`.

Accepted forms
--------------
========================================  ===========================================
locator                                   resolves to
========================================  ===========================================
``/abs/path``, ``rel/path``               local directory (made absolute)
``file:/abs/path``, ``file:rel/path``     local directory
``file:///abs/path``                      local directory
``aws:REGION:BUCKET[:PREFIX]``            ``s3://BUCKET/PREFIX`` in REGION
``gce:REGION:BUCKET[:PREFIX]``            ``gs://BUCKET/PREFIX`` (``google:`` alike)
``PROTOCOL://PATH``                       any fsspec URL: ``s3://``, ``gs://``,
                                          ``az://``, ``memory://``, chained URLs
========================================  ===========================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidLocatorError
from .protocols import FAMILIES, facts

__all__ = ["FAMILIES", "Locator", "merge_options", "parse_locator"]

_URL = re.compile(r"(?P<protocol>[A-Za-z][A-Za-z0-9+.-]*)://(?P<path>.*)", re.DOTALL)
_TYPED = re.compile(r"(?P<kind>[A-Za-z][A-Za-z0-9+.-]+):(?P<rest>.*)", re.DOTALL)
_REGION = re.compile(r"[a-z0-9][a-z0-9-]*")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_PREFIX_PART = re.compile(r"[A-Za-z0-9._-]+")
# Patterns are used with fullmatch: "$" would also accept a trailing newline.


@dataclass(frozen=True)
class Locator:
    """A parsed locator.

    Attributes
    ----------
    text
        The locator as the user wrote it.
    url
        What to give :func:`fsspec.core.url_to_fs`.
    protocol
        The storage protocol (the innermost one of a chained URL).
    region
        The region of an ``aws:``/``gce:`` locator, else None.
    storage_options
        Options implied by the locator itself (e.g. the AWS region).
    """

    text: str
    url: str
    protocol: str
    region: str | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        """``"file"``, ``"aws"``, ``"google"``, ``"azure"``, ``"sftp"``, else the protocol."""
        return facts(self.protocol).family or self.protocol


def parse_locator(locator: str) -> Locator:
    """Parse a locator string.

    Parameters
    ----------
    locator
        See the module docstring for the accepted forms.

    Returns
    -------
    Locator

    Raises
    ------
    InvalidLocatorError
        The locator is empty, not a string, or malformed; the message names it.
    """
    if isinstance(locator, os.PathLike):
        locator = os.fspath(locator)
    if not isinstance(locator, str):
        raise InvalidLocatorError(locator, f"expected a string, got {type(locator).__name__}")
    if not locator.strip():
        raise InvalidLocatorError(locator, "it is empty")
    if "\x00" in locator:
        raise InvalidLocatorError(locator, "it contains a NUL character")

    if "::" in locator or "://" in locator:
        return _parse_url(locator)
    typed = _TYPED.fullmatch(locator)
    if typed is None:
        return _local(locator, locator)
    kind, rest = typed["kind"].lower(), typed["rest"]
    if kind == "file":
        if not rest.strip():
            raise InvalidLocatorError(locator, "'file:' needs a path after it")
        return _local(locator, rest)
    if kind in ("aws", "gce", "google"):
        return _parse_cloud(locator, kind, rest)
    raise InvalidLocatorError(
        locator,
        f"unknown locator type {kind!r}: use a path, 'file:PATH', "
        "'aws:REGION:BUCKET[:PREFIX]', 'gce:REGION:BUCKET[:PREFIX]' or an fsspec URL "
        "such as 's3://bucket/prefix' (write './' before a relative path with a colon)",
    )


def _local(text: str, path: str) -> Locator:
    absolute = os.path.abspath(path)
    if os.path.dirname(absolute) == absolute:
        # Everything on the machine would be "inside" such a store.
        raise InvalidLocatorError(text, "the root of the filesystem cannot hold a job store")
    return Locator(text=text, url=absolute, protocol="file")


def _parse_url(text: str) -> Locator:
    # The storage is the last link of a chain ("simplecache::s3://b/p").
    match = _URL.fullmatch(text.rsplit("::", 1)[-1])
    if match is None:
        raise InvalidLocatorError(text, "expected PROTOCOL://PATH")
    protocol = match["protocol"].lower()
    path = match["path"]
    if not path.strip("/"):
        raise InvalidLocatorError(text, f"'{protocol}://' needs a path (a bucket, folder or name)")
    if protocol in FAMILIES["file"]:
        return Locator(text=text, url=text, protocol="file")
    return Locator(text=text, url=text, protocol=protocol)


def _parse_cloud(text: str, kind: str, rest: str) -> Locator:
    parts = rest.split(":", 2)
    if len(parts) < 2:
        raise InvalidLocatorError(text, f"expected '{kind}:REGION:BUCKET[:PREFIX]'")
    region, bucket = parts[0], parts[1]
    prefix = parts[2] if len(parts) == 3 else ""
    if not _REGION.fullmatch(region):
        raise InvalidLocatorError(text, f"region {region!r} is not a region name")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise InvalidLocatorError(
            text,
            f"bucket {bucket!r} is not a valid bucket name "
            "(3-222 characters: lower-case letters, digits, '.', '-', '_')",
        )
    segments = [s for s in prefix.strip("/").split("/") if s] if prefix else []
    for segment in segments:
        if not _PREFIX_PART.fullmatch(segment) or segment in (".", ".."):
            raise InvalidLocatorError(
                text, f"prefix segment {segment!r} may use only letters, digits, '.', '-', '_'"
            )
    path = "/".join([bucket, *segments])
    if kind == "aws":
        return Locator(
            text=text,
            url=f"s3://{path}",
            protocol="s3",
            region=region,
            storage_options={"client_kwargs": {"region_name": region}},
        )
    return Locator(text=text, url=f"gs://{path}", protocol="gs", region=region)


def merge_options(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge storage-option mappings, later ones winning.

    Nested mappings (``client_kwargs``, ``config_kwargs`` …) are merged one
    level deep, so a user's ``client_kwargs={"endpoint_url": …}`` keeps the
    region a locator implied.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            old = merged.get(key)
            if isinstance(old, Mapping) and isinstance(value, Mapping):
                merged[key] = {**old, **value}
            else:
                merged[key] = value
    return merged
