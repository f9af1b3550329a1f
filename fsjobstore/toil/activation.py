"""Teach Toil the ``fsjobstore:`` job store type, in every process that imports Toil.

Toil picks a job store from a fixed list of locator types in
``Toil.getJobStore``, in the leader and in every worker (which calls
``Toil.resumeJobStore`` before any plug-in registry is consulted). Job stores
are not a Toil plug-in type (as of Toil 9.6). So :func:`activate` wraps that
one class method: a locator ``fsjobstore:REST`` gives a
:class:`~fsjobstore.toil.ToilJobStore` on ``REST``, and every other locator
goes to Toil's own method, unchanged.

The import hook that fsjobstore installs at interpreter start (see
``docs/toil.md``) calls :func:`activate` right after ``toil.common`` is
imported, so it reaches workers too. It imports nothing of Toil's job
stores, and nothing of fsjobstore's store, until a ``fsjobstore:`` locator is
used: ``toil.common`` may be imported halfway through importing those.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

__all__ = ["PREFIX", "activate", "is_active"]

#: The job store type in a Toil locator.
PREFIX = "fsjobstore"
#: Marks Toil's method once wrapped, so activation is idempotent.
_MARK = "__fsjobstore_wrapped__"


def activate(common: ModuleType | None = None) -> None:
    """Make ``Toil.getJobStore`` accept ``fsjobstore:`` locators.

    Parameters
    ----------
    common
        The ``toil.common`` module; imported when not given.

    Raises
    ------
    RuntimeError
        ``toil.common`` has no ``Toil.getJobStore`` class method (a Toil
        release this fsjobstore does not know).
    """
    if common is None:
        common = importlib.import_module("toil.common")
    toil_class = getattr(common, "Toil", None)
    original = vars(toil_class).get("getJobStore") if toil_class is not None else None
    if not isinstance(original, classmethod):
        raise RuntimeError(
            "this Toil has no Toil.getJobStore class method; fsjobstore cannot add its job "
            "store type to it (see fsjobstore's docs/toil.md for the Toil versions it knows)"
        )
    if getattr(original.__func__, _MARK, False):
        return
    toil_get = original.__func__

    def getJobStore(cls: Any, locator: str) -> Any:
        name, rest = cls.parseLocator(locator)
        if name == PREFIX:
            from .store import ToilJobStore

            return ToilJobStore(rest)
        return toil_get(cls, locator)

    getJobStore.__doc__ = toil_get.__doc__
    getJobStore.__wrapped__ = toil_get  # type: ignore[attr-defined]
    setattr(getJobStore, _MARK, True)
    toil_class.getJobStore = classmethod(getJobStore)  # type: ignore[union-attr]


def is_active() -> bool:
    """Whether this process's Toil (if imported) accepts ``fsjobstore:`` locators."""
    common = sys.modules.get("toil.common")
    toil_class = getattr(common, "Toil", None)
    method = vars(toil_class).get("getJobStore") if toil_class is not None else None
    return isinstance(method, classmethod) and bool(getattr(method.__func__, _MARK, False))
