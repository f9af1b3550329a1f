"""Teach Toil the ``fsjobstore:`` job store type, in every process that imports Toil.

Toil picks a job store from a fixed list of locator types in
``Toil.getJobStore``, in the leader and in every worker (which calls
``Toil.resumeJobStore`` before any plug-in registry is consulted). Job stores
are not a Toil plug-in type (as of Toil 9.6). :func:`activate` wraps that one
class method; the import hook that the wheel installs at interpreter start
calls it right after ``toil.common`` is imported, so it reaches workers too
(see ``docs/toil.md``). The code lives in the hook's module, which must not
import this package: importing fsjobstore costs a Toil run that uses none of
it.
"""

from __future__ import annotations

from ._hook import PREFIX, activate, is_active

__all__ = ["PREFIX", "activate", "is_active"]
