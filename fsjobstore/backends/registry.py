"""Which backend serves a filesystem: one table, open to other packages.

The table maps a filesystem class, by its import path, to the backend class
that knows it best. A filesystem is matched by its class or, failing that,
by the nearest base class in the table, so a subclass of a known filesystem
gets that filesystem's backend; anything else gets the generic
:class:`~fsjobstore.backends.base.Backend`.

Other packages add rows through the ``fsjobstore.backends`` entry-point
group: the entry point's name is the import path of a filesystem class, its
value the backend class (``"package.module:BackendClass"``). An installed
entry point takes precedence over a built-in row for the same class, so a
package can improve on a built-in backend. Nothing is imported until a
filesystem of that class is met: neither the client library nor the backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points

from .base import Backend

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "backend_class", "table"]

#: The entry-point group other packages register backends in.
ENTRY_POINT_GROUP = "fsjobstore.backends"

#: Filesystem class (``module.QualName``) → backend class (``module:Name``).
BUILTIN: Mapping[str, str] = {
    "fsspec.implementations.local.LocalFileSystem": "fsjobstore.backends.local:LocalBackend",
    "fsspec.implementations.memory.MemoryFileSystem": "fsjobstore.backends.memory:MemoryBackend",
    "s3fs.core.S3FileSystem": "fsjobstore.backends.s3:S3Backend",
    "gcsfs.core.GCSFileSystem": "fsjobstore.backends.gcs:GCSBackend",
    "adlfs.spec.AzureBlobFileSystem": "fsjobstore.backends.azure:AzureBackend",
    "sshfs.spec.SSHFileSystem": "fsjobstore.backends.sftp:SFTPBackend",
}


@cache
def table() -> Mapping[str, str]:
    """Return the whole table: the built-in rows, then the installed entry points over them."""
    rows = dict(BUILTIN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        rows[entry.name] = entry.value
    return rows


def backend_class(filesystem: type) -> type[Backend]:
    """Return the backend class for a filesystem class.

    Raises
    ------
    ImportError
        The backend its row names cannot be imported; the message names it.
    TypeError
        The row names something that is not a :class:`Backend` subclass.
    """
    rows = table()
    for cls in filesystem.__mro__:
        spec = rows.get(f"{cls.__module__}.{cls.__qualname__}")
        if spec is not None:
            return _load(spec, cls)
    return Backend


@cache
def _load(spec: str, filesystem: type) -> type[Backend]:
    module_name, _, name = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ImportError(
            f"the fsjobstore backend {spec!r} registered for {filesystem.__qualname__} "
            f"cannot be loaded: {exc}"
        ) from exc
    if not (isinstance(found, type) and issubclass(found, Backend)):
        raise TypeError(
            f"the fsjobstore backend {spec!r} registered for {filesystem.__qualname__} "
            "is not a subclass of fsjobstore.backends.Backend"
        )
    return found
