"""The import hook that ``fsjobstore-toil.pth`` installs at every interpreter start.

Shipped at the top level of the wheel as ``_fsjobstore_toil`` and run by
Python's ``site`` module from a ``.pth`` file, so it must be tiny: it imports
only :mod:`sys` and :mod:`os` (both loaded already by ``site``), never raises, and does
nothing but put one finder on :data:`sys.meta_path`. That finder answers for
the module ``toil.common`` alone: it lets the other finders find it, and once
Toil's code has run, calls :func:`fsjobstore.toil.activation.activate` on it.

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


def run_activation(module: ModuleType) -> None:
    """Activate fsjobstore on ``module``; on failure, warn and leave Toil as it is."""
    try:
        from fsjobstore.toil.activation import activate

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
