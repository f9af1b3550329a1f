"""One holder at a time among every client of a store: a lease object, kept fresh.

``read_logs`` delivers each pending message once even when two readers run
at once, because only the holder of the store's reader lease delivers. The
lease is an object in the store, made with the backend's exclusive create;
its holder rewrites it (a conditional replace) every :data:`REFRESH` seconds
while it works, and removes it when done. A reader that finds the lease held
waits; if it sees the same version of the lease object for :data:`STALE`
seconds, its holder has died (a killed process leaves its lease behind), and
the waiter takes it over with a conditional replace, which only one waiter
can win. Messages the dead holder delivered but had not archived are
delivered again: at least once across crashes, exactly once otherwise.

Where the backend has no conditional writes (the generic path), two readers
starting at the same moment can both take the lease.
"""

from __future__ import annotations

import secrets
import time
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from .common import VersionConflict

if TYPE_CHECKING:
    from .base import Backend

__all__ = ["REFRESH", "STALE", "Holder", "Lease"]

#: Seconds a lease object may stay unchanged before a waiter takes it over.
STALE = 30.0
#: Seconds between rewrites of a held lease, well inside :data:`STALE`.
REFRESH = STALE / 3
#: Seconds between looks at a held lease: doubling from the first, up to the last.
_PAUSES = (0.01, 0.5)


class Holder(Protocol):
    """What the holder of a lease does while it works."""

    def refresh(self) -> None:
        """Show the lease is still held (cheap: it acts only every so often)."""


class Lease:
    """The lease object at ``path`` on ``backend``; a context manager that holds it.

    Parameters
    ----------
    backend
        The store's backend.
    path
        Where the lease object lives.
    """

    def __init__(self, backend: Backend, path: str) -> None:
        self._backend, self._path = backend, path
        self._token = ""
        self._renewed = 0.0

    def __enter__(self) -> Lease:
        pause = _PAUSES[0]
        seen, since = "", time.monotonic()
        while True:
            try:
                self._hold(self._backend.create(self._path, _stamp()))
                return self
            except FileExistsError:
                pass
            try:
                _, token = self._backend.read(self._path)
            except FileNotFoundError:
                continue  # released meanwhile: take it now
            now = time.monotonic()
            if token != seen:
                seen, since = token, now
            elif now - since >= STALE:
                try:  # its holder is gone: take it over, if no other waiter did
                    self._hold(self._backend.replace(self._path, _stamp(), token))
                    return self
                except (VersionConflict, FileNotFoundError):
                    continue
            time.sleep(pause)
            pause = min(2 * pause, _PAUSES[1])

    def _hold(self, token: str) -> None:
        self._token, self._renewed = token, time.monotonic()

    def refresh(self) -> None:
        """Show the lease is still held, if it was last shown long enough ago."""
        if time.monotonic() - self._renewed < REFRESH:
            return
        try:
            self._hold(self._backend.replace(self._path, _stamp(), self._token))
        except (VersionConflict, FileNotFoundError):
            # Taken over while this holder was stopped: the other reader may
            # deliver what this one has not archived yet (at least once).
            self._renewed = time.monotonic()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            _, token = self._backend.read(self._path)
        except FileNotFoundError:
            return
        if token == self._token:  # still ours: another holder's stays
            self._backend.delete_many([self._path])


def _stamp() -> bytes:
    # A new value each time, so the version changes with every rewrite.
    return secrets.token_hex(16).encode()
