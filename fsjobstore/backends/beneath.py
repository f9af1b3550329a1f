"""Paths below a local root, opened folder by folder, following no symbolic link.

A store on local disk is shared storage: whoever can write below its root
can plant a symbolic link where the store keeps a folder or a file. Every
path of the store is therefore opened one component at a time from a
descriptor of the root, with ``O_NOFOLLOW``, and every operation (open,
stat, unlink, rename, link, mkdir, listing) goes through the descriptor of
the folder it acts in (the ``*at`` system calls). A link met on the way
raises :class:`~fsjobstore.errors.UnsafeLinkError` naming it, before
anything is read, written, moved or deleted; there is no window between a
check and a use. The root itself may be a link: it is the caller's choice.

The descriptors of the store's own folders (the root, ``jobs/``, ``tmp/`` …)
are kept open between calls, so a call opens one folder at most (a job's
own below ``files/``). Each is checked before use: a folder removed since
(a destroyed store) has no links left, and is opened again from the root,
which fails if the store is gone, so a write into a destroyed store fails
instead of making its folders again, and a store made again in its place is
the one written to. A folder renamed since is still the folder it was,
below the root; a link put in its place is never followed.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import weakref
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from ..errors import UnsafeLinkError

__all__ = ["Beneath", "Spot"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
# What an *at call answers when it meets a symbolic link it may not follow.
_LINK_ERRORS = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


class Spot:
    """A name in an open folder: where one operation of the store acts."""

    def __init__(self, beneath: Beneath, folder: int, parts: Sequence[str], name: str) -> None:
        self.beneath, self.folder, self.parts, self.name = beneath, folder, parts, name

    @property
    def path(self) -> str:
        """Return the full path, for messages."""
        return self.beneath.path([*self.parts, self.name])

    def fail(self, exc: OSError) -> OSError:
        """Return ``exc`` for this spot: a link named as such, any other error with its path."""
        if exc.errno in _LINK_ERRORS and self.is_link():
            return UnsafeLinkError(self.path)
        return type(exc)(exc.errno, exc.strerror, self.path)

    def is_link(self) -> bool:
        """Whether a symbolic link is at this spot."""
        try:
            return stat.S_ISLNK(
                os.stat(self.name, dir_fd=self.folder, follow_symlinks=False).st_mode
            )
        except OSError:
            return False

    def open(self, flags: int, mode: int = 0o666) -> int:
        """Open the file here without following a link; a folder here is ``IsADirectoryError``."""
        try:
            fd = os.open(self.name, flags | _NOFOLLOW, mode, dir_fd=self.folder)
        except OSError as exc:
            raise self.fail(exc) from None
        if flags & (os.O_WRONLY | os.O_RDWR) == 0 and not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)  # a read-only open of a folder succeeds; reading it would not
            raise IsADirectoryError(errno.EISDIR, "a folder, not a file", self.path)
        return fd

    def lstat(self) -> os.stat_result:
        """Return the status of what is here: a link's own, if it is one."""
        try:
            return os.stat(self.name, dir_fd=self.folder, follow_symlinks=False)
        except OSError as exc:
            raise self.fail(exc) from None

    def unlink(self) -> None:
        """Remove the file (or link) here; a folder is ``IsADirectoryError``."""
        try:
            os.unlink(self.name, dir_fd=self.folder)
        except OSError as exc:
            raise self.fail(exc) from None


class Beneath:
    """Opens paths below ``root`` folder by folder, following no link.

    Parameters
    ----------
    root
        The root directory (a link to one is followed: the caller chose it).
    kept
        Folders (as parts below the root) whose descriptors are kept open
        between calls; the root's always is.
    """

    def __init__(self, root: str, kept: Collection[Sequence[str]] = ()) -> None:
        self.root = root
        self._kept = {(), *(tuple(parts) for parts in kept)}
        self._open: dict[tuple[str, ...], int] = {}
        # Descriptors replaced while another thread may still use them are
        # closed only with the whole object, never under a user's feet.
        self._retired: list[int] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._open, self._retired)

    def path(self, parts: Sequence[str]) -> str:
        """Return the full path of ``parts`` below the root."""
        return "/".join([self.root, *parts])

    def split(self, path: str) -> tuple[list[str], str]:
        """Split a full path below the root into its folders and its name."""
        if not path.startswith(f"{self.root}/"):
            raise ValueError(f"{path!r} is not below the store's root {self.root!r}")
        *parts, name = path[len(self.root) + 1 :].split("/")
        return parts, name

    @contextmanager
    def folder(self, parts: Sequence[str], *, make_last: bool = False) -> Iterator[int]:
        """Yield a descriptor of the folder ``parts`` below the root.

        With ``make_last``, the last folder is made if it is missing (a job's
        own folder below ``files/``); no other is ever made, so a store whose
        folders are gone stays gone.

        Raises
        ------
        UnsafeLinkError
            A folder on the way is a symbolic link.
        FileNotFoundError
            A folder on the way is missing (the store was destroyed, say).
        """
        base = max(
            (depth for depth in range(len(parts) + 1) if tuple(parts[:depth]) in self._kept),
            default=0,
        )
        if base == len(parts):  # a kept folder: not closed after use
            yield self._kept_folder(tuple(parts))
            return
        fd = os.dup(self._kept_folder(tuple(parts[:base])))
        try:
            for depth in range(base + 1, len(parts) + 1):
                child = self._child(fd, parts[:depth], make=make_last and depth == len(parts))
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _kept_folder(self, parts: tuple[str, ...]) -> int:
        fd = self._open.get(parts)
        if fd is not None and os.fstat(fd).st_nlink > 0:
            return fd
        # Not opened yet, or removed since (the store was destroyed): open it
        # anew from the root, which fails if the store is gone.
        with self._lock:
            fd = self._open.get(parts)
            if fd is not None and os.fstat(fd).st_nlink > 0:
                return fd  # another thread did
            fresh = self._open_path(parts)
            if fd is not None:
                self._retired.append(fd)
            self._open[parts] = fresh
            return fresh

    def _open_path(self, parts: tuple[str, ...]) -> int:
        fd = os.open(self.root, _DIR)
        try:
            for depth in range(1, len(parts) + 1):
                child = self._child(fd, parts[:depth], make=False)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _child(self, fd: int, parts: Sequence[str], *, make: bool) -> int:
        name = parts[-1]
        spot = Spot(self, fd, parts[:-1], name)
        try:
            return os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fd)
        except FileNotFoundError as exc:
            if not make:
                raise spot.fail(exc) from None
        except OSError as exc:
            raise spot.fail(exc) from None
        try:
            os.mkdir(name, dir_fd=fd)
        except FileExistsError:
            pass  # another writer made it meanwhile: as good
        except OSError as exc:
            raise spot.fail(exc) from None
        try:
            return os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            raise spot.fail(exc) from None

    @contextmanager
    def spot(self, path: str, *, make_folder: bool = False) -> Iterator[Spot]:
        """Yield the :class:`Spot` of a full path, its folder open."""
        parts, name = self.split(path)
        with self.folder(parts, make_last=make_folder and bool(parts)) as fd:
            yield Spot(self, fd, parts, name)

    def walk(
        self, parts: Sequence[str], *, details: bool = False
    ) -> Iterator[tuple[str, os.stat_result | None]]:
        """Every file (or link) below the folder ``parts``, recursively, as it is read.

        Yields its full path, and with ``details`` its own status (a link's,
        not its target's). Nothing is held but the folders being read; a
        folder that disappears meanwhile is skipped, and so is a file.
        """
        try:
            with self.folder(parts) as kept, _listing(kept) as fd:
                yield from self._walk(fd, list(parts), details)
        except (FileNotFoundError, NotADirectoryError):
            return

    def _walk(
        self, fd: int, parts: list[str], details: bool
    ) -> Iterator[tuple[str, os.stat_result | None]]:
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    try:
                        child = self._child(fd, [*parts, entry.name], make=False)
                    except FileNotFoundError:
                        continue  # removed since it was listed
                    try:
                        yield from self._walk(child, [*parts, entry.name], details)
                    finally:
                        os.close(child)
                    continue
                try:
                    status = entry.stat(follow_symlinks=False) if details else None
                except FileNotFoundError:
                    continue  # removed since it was listed
                yield self.path([*parts, entry.name]), status

    def names(self, parts: Sequence[str]) -> list[str]:
        """Names directly inside the folder ``parts``; [] if it is missing."""
        try:
            with self.folder(parts) as kept, _listing(kept) as fd:
                return os.listdir(fd)
        except FileNotFoundError:
            return []

    def remove_empty(self, parts: Sequence[str] = ()) -> None:
        """Remove the empty folders below ``parts``, deepest first, then ``parts`` itself.

        Folders that hold anything, and links, stay.
        """
        try:
            with self.folder(parts) as kept, _listing(kept) as fd:
                self._remove_empty_below(fd)
        except (FileNotFoundError, NotADirectoryError, UnsafeLinkError):
            return
        if parts:
            with self.folder(parts[:-1]) as parent:
                self._rmdir(parent, parts[-1])
        else:
            try:
                os.rmdir(self.root)
            except OSError:
                pass  # not empty: something not the store's stays, and so does the root

    def _remove_empty_below(self, fd: int) -> None:
        with os.scandir(fd) as entries:
            folders = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        for name in folders:
            try:
                child = os.open(name, _DIR | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:
                continue
            try:
                self._remove_empty_below(child)
            finally:
                os.close(child)
            self._rmdir(fd, name)

    @staticmethod
    def _rmdir(fd: int, name: str) -> None:
        try:
            os.rmdir(name, dir_fd=fd)
        except OSError:
            # Not empty, or a writer's file just arrived; EBUSY and ENOTEMPTY
            # (NFS keeps .nfsXXXX files of open ones) too: a later call
            # finishes the job.
            pass


@contextmanager
def _listing(fd: int) -> Iterator[int]:
    """Yield a descriptor of the folder ``fd`` with a reading position of its own.

    A listing moves the position of the descriptor it reads (and of any
    ``dup`` of it): a kept descriptor, which threads share, is never read.
    """
    own = os.open(".", _DIR, dir_fd=fd)
    try:
        yield own
    finally:
        os.close(own)


def _close_all(open_folders: dict[tuple[str, ...], int], retired: list[int]) -> None:
    for fd in [*open_folders.values(), *retired]:
        try:
            os.close(fd)
        except OSError:
            pass
