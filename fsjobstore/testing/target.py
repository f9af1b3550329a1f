"""Where a store under test lives: a locator, its options, and what it can do."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from ..store import JobStore

__all__ = ["Target"]


@dataclass
class Target:
    """One place a store can live, empty when a test starts.

    Attributes
    ----------
    backend
        A short name for reports and skips (``"file"``, ``"s3"``, ``"myfs"``).
    locator
        The store's locator; nothing may be stored there yet.
    options
        Storage options a store on ``locator`` needs (endpoints, credentials).
    env
        Environment variables that reach the same storage with no storage
        options, as a user's own script would (the seed's samples pass none).
    config
        fsspec configuration (``fsspec.config.conf``, by protocol) that does
        the same where environment variables cannot.
    processes
        Whether separate processes can open the same store (not on
        ``memory://``, which lives inside one process).
    """

    backend: str
    locator: str
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes: bool = True

    def open(self) -> JobStore:
        """Return a new, unopened store object on this location."""
        with warnings.catch_warnings():
            # A backend without conditional writes says so once per store.
            warnings.simplefilter("ignore", RuntimeWarning)
            return JobStore(self.locator, **self.options)
