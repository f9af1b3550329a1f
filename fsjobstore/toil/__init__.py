"""fsjobstore for Toil: any fsspec URL as a Toil job store (``pip install "fsjobstore[toil]"``).

- :class:`ToilJobStore`: Toil's ``AbstractJobStore`` on :class:`fsjobstore.JobStore`;
- :func:`activate`: teaches ``Toil.getJobStore`` the ``fsjobstore:`` locator type
  (done for you in every process, leader and workers, by the import hook the
  wheel installs);
- :class:`FsspecURLAccess`: Toil's URL-access plug-in for every fsspec scheme
  Toil does not handle itself (``az://``, ``sftp://``, ``memory://`` …).

Nothing here is imported eagerly: :func:`activate` runs while ``toil.common``
is being imported, before Toil's job stores can be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .activation import PREFIX, activate, is_active

if TYPE_CHECKING:
    from .store import ToilJobStore
    from .urls import FsspecURLAccess

__all__ = ["PREFIX", "FsspecURLAccess", "ToilJobStore", "activate", "is_active"]


def __getattr__(name: str) -> Any:
    if name == "ToilJobStore":
        from .store import ToilJobStore

        return ToilJobStore
    if name == "FsspecURLAccess":
        from .urls import FsspecURLAccess

        return FsspecURLAccess
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
