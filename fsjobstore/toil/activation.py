"""Teach Toil the ``fsjobstore:`` job store type, in every process that imports Toil.

Toil picks a job store from a fixed list of locator types in
``Toil.getJobStore``, in the leader and in every worker (which calls
``Toil.resumeJobStore`` before any plug-in registry is consulted). Job stores
are not a Toil plug-in type (as of Toil 9.6). :func:`activate` wraps that one
class method; the import hook that the wheel installs at interpreter start
calls it right after ``toil.common`` is imported, so it reaches workers too
(see ``docs/toil.md``). The code lives in that hook's module,
``_fsjobstore_toil``, a top-level module of the wheel: it must not import this
package, whose import would cost every Toil run, even one that uses none of
fsjobstore.
"""

from __future__ import annotations

try:
    from _fsjobstore_toil import PREFIX, activate, is_active
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError(
        "fsjobstore's Toil hook module (_fsjobstore_toil) is missing: reinstall "
        '"fsjobstore[toil]" from its wheel'
    ) from exc

__all__ = ["PREFIX", "activate", "is_active"]
