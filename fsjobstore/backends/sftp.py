"""SFTP, through sshfs (fsspec's ``sftp``/``ssh`` protocols): locks, then rename.

Every write goes to a temporary file in ``<root>/tmp/`` and is renamed into
place with OpenSSH's ``posix-rename``, which replaces the target atomically,
so readers see the old content or the new. Reads go through one open handle,
which keeps the version it opened.

Conditional writes of job documents take a lock object first: an empty file
in ``<root>/tmp/`` named after the document, made with an exclusive create
(``open(path, "xb")``, ``O_CREAT|O_EXCL`` on the server), and removed when
done. Under the lock a create checks that the document is absent, and a
replace that the stored version is the caller's, before renaming. Deleting a
document takes the same lock, so a delete never loses to an update that had
already compared. Writers that bypass the lock (another program, not
fsjobstore) are not seen.

A process killed while holding a lock leaves it behind. A writer that finds
the same lock object, unchanged, for :data:`LOCK_ABANDONED` seconds of its
own waiting takes it as abandoned and breaks it; a live holder keeps a lock
for a few round trips. A holder stopped for longer than that (a suspended
machine) could find its lock broken: the one way two updates of a job could
both succeed.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from typing_extensions import override

from ..layout import JOBS
from .base import Backend
from .common import VersionConflict, content_token
from .failures import sftp_status

__all__ = ["LOCK_ABANDONED", "LOCK_WAIT", "SFTPBackend"]

#: Seconds a lock object may stay unchanged, while a writer waits for it,
#: before that writer takes it as left by a killed process and breaks it.
LOCK_ABANDONED = 30.0
#: Seconds a writer waits for a lock in all, before it gives up.
LOCK_WAIT = 2 * LOCK_ABANDONED
#: SFTP's status for an unspecified failure: how OpenSSH answers an exclusive
#: create of an existing file (SFTP version 3 has no "already exists").
_FAILURE = 4
#: Tries at an exclusive create that fails with no lock there to blame.
_CLAIMS = 3
#: Seconds between looks at a held lock: doubling from the first, up to the last.
_PAUSES = (0.002, 0.1)


class SFTPBackend(Backend):
    """Backend for :class:`sshfs.SSHFileSystem`."""

    detects_concurrent_updates = True
    pins_stream_reads = True  # an SFTP read goes through one open handle

    # -- writes -------------------------------------------------------------------

    @override
    def _pipe(self, path: str, data: bytes) -> None:
        # Not pipe_file: sshfs makes every parent directory first, a mkdir and
        # a stat per level of the path, on each write.
        def write() -> None:
            with self.fs.open(path, "wb") as handle:
                handle.write(data)

        self._in_folder(path, write)

    @override
    def create(self, path: str, data: bytes) -> str:
        temp = self._temp()
        self._pipe(temp, data)
        try:
            with self._locked(path):
                if self.exists(path):
                    raise FileExistsError(errno.EEXIST, "already stored", path)
                self._move(temp, path)
        except BaseException:
            self._discard(temp)
            raise
        return content_token(data)

    @override
    def replace(self, path: str, data: bytes, token: str) -> str:
        temp = self._temp()
        self._pipe(temp, data)  # outside the lock: it is held for a read and a rename
        try:
            with self._locked(path):
                if self.read(path)[1] != token:
                    raise VersionConflict(path)
                self._move(temp, path)
        except BaseException:
            self._discard(temp)
            raise
        return content_token(data)

    @override
    def delete_many(self, paths: list[str]) -> None:
        documents = f"{self.root}/{JOBS}"
        plain = [p for p in paths if not p.startswith(documents)]
        super().delete_many(plain)
        for path in paths:
            if path.startswith(documents):
                with self._locked(path):
                    super().delete(path)

    # -- locks --------------------------------------------------------------------

    @contextmanager
    def _locked(self, path: str) -> Iterator[None]:
        lock = f"{self.root}/tmp/{content_token(path.encode())}.lock"
        self._acquire(lock)
        try:
            yield
        finally:
            with suppress(FileNotFoundError):
                self._unlink(lock)

    def _acquire(self, lock: str) -> None:
        start = time.monotonic()
        pause = _PAUSES[0]
        seen: Any = None  # the held lock's identity (its modification time)
        seen_since = start
        while True:
            try:
                self._in_folder(lock, lambda: self._claim(lock))
                return
            except FileExistsError:
                pass
            now = time.monotonic()
            try:
                with self._errors(lock):
                    stamp = self.fs.info(lock).get("mtime")
            except FileNotFoundError:
                continue  # released meanwhile: claim it now
            if stamp != seen:
                seen, seen_since = stamp, now
            elif now - seen_since >= LOCK_ABANDONED:
                self._break(lock)
                continue
            if now - start >= LOCK_WAIT:
                raise TimeoutError(
                    errno.ETIMEDOUT,
                    f"another writer held this job's lock for over {LOCK_WAIT:.0f} s",
                    lock,
                )
            time.sleep(pause)
            pause = min(2 * pause, _PAUSES[1])

    def _claim(self, lock: str) -> None:
        for attempt in range(_CLAIMS):
            try:
                self.fs.open(lock, "xb").close()
                return
            except Exception as exc:
                if sftp_status(exc) != _FAILURE:
                    raise
                if self.fs.exists(lock):
                    raise FileExistsError(errno.EEXIST, "held by another writer", lock) from None
                # Gone already: its holder released it between the two calls.
                if attempt == _CLAIMS - 1:
                    raise

    def _break(self, lock: str) -> None:
        # Renamed aside first, so that of several writers breaking it at once
        # only one removes it; the others find it gone and claim anew.
        aside = f"{self._temp()}.broken"
        try:
            self._move(lock, aside)
        except FileNotFoundError:
            return
        self._discard(aside)

    def _unlink(self, path: str) -> None:
        with self._errors(path):
            self.fs.rm_file(path)
