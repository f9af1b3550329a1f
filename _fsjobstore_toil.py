"""The import hook that ``fsjobstore-toil.pth`` installs at every interpreter start.

Shipped at the top level of the wheel as ``_fsjobstore_toil`` and run by
Python's ``site`` module from a ``.pth`` file, so it must be tiny: it imports
only :mod:`sys` and :mod:`os` (both loaded already by ``site``), never raises,
and does nothing but put one finder on :data:`sys.meta_path`. That finder
answers for the module ``toil.common`` alone: it lets the other finders find
it, and once Toil's code has run, calls :func:`activate` on it.

:func:`activate` wraps the one class method ``Toil.getJobStore``: a locator
``fsjobstore:REST`` gives a ``fsjobstore.toil.ToilJobStore`` on ``REST``, and
every other locator goes to Toil's own method, unchanged. It imports nothing
(not even fsjobstore) until a ``fsjobstore:`` locator is used: a Toil run that
uses none pays nothing, and ``toil.common`` may be imported halfway through
importing Toil's job stores, which fsjobstore's store needs.

Set ``FSJOBSTORE_TOIL_HOOK=0`` to turn it off.
"""

from __future__ import annotations

import os
import sys

# Not typing.TYPE_CHECKING: importing typing would cost every interpreter
# start milliseconds. Type checkers treat this name as true all the same.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

#: The module whose import triggers the activation.
TARGET = "toil.common"


class Finder:
    """A meta-path finder that wraps the loader of one module, found by the others."""

    #: Marks this hook's finders, whichever copy of this module made them
    #: (the wheel's top-level one, the package's own): they skip each other,
    #: where asking one another would recurse without end.
    fsjobstore_toil_hook = True

    def __init__(self, target: str = TARGET) -> None:
        self.target = target

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        """Find ``fullname`` with the other finders; wrap its loader if it is the target."""
        if fullname != self.target:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if getattr(finder, "fsjobstore_toil_hook", False) or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):
                    spec.loader = Loader(spec.loader)
                return spec
        return None


class Loader:
    """Runs a module's own loader, then the activation; everything else is the loader's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def create_module(self, spec: Any) -> ModuleType | None:
        """Return the inner loader's module (None: the default one)."""
        create = getattr(self.inner, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        """Run the module, then activate fsjobstore on it (never failing Toil's import)."""
        self.inner.exec_module(module)
        run_activation(module)

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename, is_package …: inspect and tracebacks use them.
        return getattr(self.inner, name)


#: The job store type in a Toil locator.
PREFIX = "fsjobstore"
#: Marks Toil's method once wrapped (by any copy of this module).
_MARK = "__fsjobstore_wrapped__"


def activate(common: ModuleType | None = None) -> None:
    """Make ``Toil.getJobStore`` accept ``fsjobstore:`` locators; idempotent.

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
        import importlib

        common = importlib.import_module(TARGET)
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
            from fsjobstore.toil.store import ToilJobStore

            return ToilJobStore(rest)
        return toil_get(cls, locator)

    getJobStore.__doc__ = toil_get.__doc__
    getJobStore.__wrapped__ = toil_get  # type: ignore[attr-defined]
    setattr(getJobStore, _MARK, True)
    toil_class.getJobStore = classmethod(getJobStore)  # type: ignore[union-attr]


def is_active() -> bool:
    """Whether this process's Toil (if imported) accepts ``fsjobstore:`` locators."""
    common = sys.modules.get(TARGET)
    toil_class = getattr(common, "Toil", None)
    method = vars(toil_class).get("getJobStore") if toil_class is not None else None
    return isinstance(method, classmethod) and bool(getattr(method.__func__, _MARK, False))


def run_activation(module: ModuleType) -> None:
    """Activate fsjobstore on ``module``; on failure, warn and leave Toil as it is."""
    try:
        activate(module)
    except Exception as exc:
        import warnings

        warnings.warn(
            f"fsjobstore could not add the 'fsjobstore:' job store type to Toil: {exc}",
            RuntimeWarning,
            stacklevel=2,
        )


def install() -> None:
    """Put the finder on :data:`sys.meta_path` (once); never raises."""
    try:
        if os.environ.get("FSJOBSTORE_TOIL_HOOK", "1").strip() in ("0", "false", "no", "off"):
            return
        module = sys.modules.get(TARGET)
        if module is not None:  # imported before the hook: activate it now
            run_activation(module)
        elif not any(getattr(f, "fsjobstore_toil_hook", False) for f in sys.meta_path):
            sys.meta_path.insert(0, Finder())
    except Exception:
        pass
