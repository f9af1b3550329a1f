"""Local disk: atomic renames, exclusive hard links, a lock on the marker, and no links followed.

Writes go to a temporary file in ``<root>/tmp/`` (the same filesystem as the
target) and are renamed into place, so readers see the old or the new
content, never part of one. Creates hard-link the temporary file to the
target, which fails if the target exists: exclusive with no lock. Updates
and deletes serialise on an ``flock`` of the store's marker file, which is
never replaced, goes last in ``destroy()``, and so needs no lock file of its
own. Each call opens its own descriptor, so threads exclude each other too.

Every path below the root is opened folder by folder with ``O_NOFOLLOW``
(:mod:`.beneath`): a symbolic link planted in the store raises
:class:`~fsjobstore.errors.UnsafeLinkError` and is never followed. Writes
make no folder but a job's own below ``files/``, so a write into a store that
was destroyed fails instead of bringing its folders back.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import stat
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import IO

from fsspec import AbstractFileSystem
from typing_extensions import override

from ..layout import FOLDERS, MARKER
from .base import Backend
from .beneath import Beneath, Spot
from .common import Entry, NotStored, VersionConflict, content_token, local_temp, pages_of
from .lease import Holder

__all__ = ["LocalBackend"]

# Errors of os.link that mean "this filesystem cannot hard-link here".
_NO_LINKS = {errno.EPERM, errno.EMLINK, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP}
# Errors of an O_TMPFILE open, or of linking one, that mean "not here" (NFS,
# no /proc): the copy takes a named temporary file instead.
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT, errno.EACCES}
# FICLONE (linux/fs.h): make a file share another's blocks, copy-on-write.
_FICLONE = 0x40049409
# Errors of FICLONE that mean "no clone here" (another filesystem, one that
# cannot share blocks, or no such ioctl): the bytes are copied instead.
_NO_CLONE = {errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS}
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = 1 << 20
_TMP = ("tmp",)


class LocalBackend(Backend):
    """Backend for :class:`fsspec.implementations.local.LocalFileSystem`."""

    detects_concurrent_updates = True
    pins_stream_reads = True
    local_reads = True

    def __init__(self, fs: AbstractFileSystem, root: str) -> None:
        super().__init__(fs, root)
        self._beneath = Beneath(root, kept=[folder.split("/") for folder in FOLDERS])

    # -- where things go -------------------------------------------------------

    @contextmanager
    def _at(self, path: str) -> Iterator[Spot]:
        """Yield the spot of a stored path; a job's folder below ``files/`` is made on first use."""
        parts, _ = self._beneath.split(path)
        with self._beneath.spot(path, make_folder=len(parts) == 2 and parts[0] == "files") as spot:
            yield spot

    def _stash(self, tmp: int, data: bytes) -> str:
        """Write ``data`` to a new temporary file in ``tmp/``; return its name."""
        # Bare descriptors: job documents are small, and io.open's buffer
        # objects cost as much as the write itself.
        name = secrets.token_hex(16)
        fd = os.open(name, _NEW, 0o666, dir_fd=tmp)
        try:
            written = 0
            while written < len(data):  # a regular file takes it all at once
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)
        return name

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # O_RDWR: NFS emulates flock with POSIX locks, which need write access.
        with self._beneath.folder(()) as root:
            try:
                fd = Spot(self._beneath, root, (), MARKER).open(os.O_RDWR)
            except FileNotFoundError:
                # No marker, no store: nobody updates what is left of one.
                yield
                return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- single small objects -----------------------------------------------------

    @override
    def read(self, path: str) -> tuple[bytes, str]:
        with self._beneath.spot(path) as spot:
            fd = spot.open(os.O_RDONLY)
        try:
            parts = []
            while part := os.read(fd, _READ):
                parts.append(part)
        finally:
            os.close(fd)
        data = b"".join(parts)
        return data, content_token(data)

    @override
    def create(self, path: str, data: bytes) -> str:
        with self._beneath.folder(_TMP) as tmp, self._at(path) as spot:
            name = self._stash(tmp, data)
            try:
                os.link(name, spot.name, src_dir_fd=tmp, dst_dir_fd=spot.folder)
            except FileExistsError:
                raise FileExistsError(errno.EEXIST, "already stored", spot.path) from None
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise spot.fail(exc) from None
                # No hard links here: claim the name exclusively, then rename
                # the content over the (briefly empty) claim.
                os.close(spot.open(os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                os.replace(name, spot.name, src_dir_fd=tmp, dst_dir_fd=spot.folder)
            finally:
                with suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=tmp)
        return content_token(data)

    @override
    def replace(self, path: str, data: bytes, token: str) -> str:
        with self._beneath.folder(_TMP) as tmp, self._at(path) as spot:
            # Written outside the lock, so the lock is held for a read and a rename.
            name = self._stash(tmp, data)
            try:
                with self._locked():
                    if self.read(path)[1] != token:
                        raise VersionConflict(path)
                    os.replace(name, spot.name, src_dir_fd=tmp, dst_dir_fd=spot.folder)
            except BaseException:
                with suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=tmp)
                raise
        return content_token(data)

    @override
    def write(self, path: str, data: bytes) -> None:
        with self._beneath.folder(_TMP) as tmp, self._at(path) as spot:
            self._settle(tmp, self._stash(tmp, data), spot)

    @staticmethod
    def _settle(tmp: int, name: str, spot: Spot) -> None:
        """Rename the temporary file ``name`` over ``spot``; remove it if that fails."""
        try:
            os.replace(name, spot.name, src_dir_fd=tmp, dst_dir_fd=spot.folder)
        except BaseException as exc:
            with suppress(FileNotFoundError):
                os.unlink(name, dir_fd=tmp)
            if isinstance(exc, OSError):
                raise spot.fail(exc) from None
            raise

    # -- many small objects ---------------------------------------------------------

    @override
    def read_many(self, paths: list[str]) -> dict[str, tuple[bytes, str]]:
        return self.read_each(paths)

    @override
    def create_many(self, items: Mapping[str, bytes]) -> tuple[dict[str, str], list[str]]:
        tokens, existing = {}, []
        for path, data in items.items():
            try:
                tokens[path] = self.create(path, data)
            except FileExistsError:
                existing.append(path)
        return tokens, existing

    @override
    def write_many(self, items: Mapping[str, bytes]) -> None:
        for path, data in items.items():
            self.write(path, data)

    @override
    def delete_many(self, paths: list[str]) -> None:
        if not paths:
            return
        by_folder: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for path in paths:
            folders, name = self._beneath.split(path)
            by_folder[tuple(folders)].append(name)
        with self._locked():
            for parts, names in by_folder.items():
                try:
                    with self._beneath.folder(parts) as fd:
                        for name in names:
                            with suppress(FileNotFoundError):
                                Spot(self._beneath, fd, parts, name).unlink()
                except FileNotFoundError:
                    continue  # the folder is gone, and its files with it

    @override
    def delete(self, path: str) -> bool:
        # Files are last-writer-wins, so no lock: one unlink says it all.
        try:
            with self._beneath.spot(path) as spot:
                spot.unlink()
        except FileNotFoundError:
            return False
        return True

    @override
    def move_many(self, moves: Mapping[str, tuple[str, bytes]]) -> None:
        # A rename is cheaper than writing the content again.
        for source, (target, _) in moves.items():
            with self._beneath.spot(source) as src, self._at(target) as dst:
                try:
                    os.replace(src.name, dst.name, src_dir_fd=src.folder, dst_dir_fd=dst.folder)
                except OSError as exc:
                    raise src.fail(exc) from None

    @override
    def pages(self, prefix: str) -> Iterator[list[str]]:
        # Names only: no status asked of each file.
        yield from pages_of(path for path, _ in self._beneath.walk(self._parts(prefix)))

    @override
    def listing(self, prefix: str) -> Iterator[list[Entry]]:
        walked = self._beneath.walk(self._parts(prefix), details=True)
        yield from pages_of(
            Entry(path, status.st_size, None, status.st_mtime)
            for path, status in walked
            if status is not None and stat.S_ISREG(status.st_mode)
        )

    def _parts(self, folder: str) -> list[str]:
        folder = folder.rstrip("/")
        if folder == self.root:
            return []
        parts, name = self._beneath.split(folder)
        return [*parts, name]

    @override
    def exists(self, path: str) -> bool:
        try:
            with self._beneath.spot(path) as spot:
                return stat.S_ISREG(spot.lstat().st_mode)  # a link is not a stored file
        except (FileNotFoundError, NotADirectoryError):
            return False

    @override
    def size(self, path: str) -> int:
        with self._beneath.spot(path) as spot:
            mode = spot.lstat().st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, "a folder, not a file", spot.path)
            if stat.S_ISLNK(mode):
                raise spot.fail(OSError(errno.ELOOP, "a link"))
            return spot.lstat().st_size

    # -- streams and local files ------------------------------------------------------

    @override
    def open_read(self, path: str) -> IO[bytes]:
        try:
            with self._beneath.spot(path) as spot:
                fd = spot.open(os.O_RDONLY)
        except FileNotFoundError as exc:
            raise NotStored(path) from exc
        return open(fd, "rb")

    @override
    @contextmanager
    def open_write(self, path: str) -> Iterator[IO[bytes]]:
        with self._staged(path) as new, open(new, "wb") as handle:
            yield handle

    @override
    def upload(self, local_path: str, path: str) -> None:
        with self._staged(path) as new, open(local_path, "rb") as source:
            _copy_into(source.fileno(), new)

    @contextmanager
    def _staged(self, path: str) -> Iterator[int]:
        """Give a new file in ``tmp/`` (its descriptor) to fill, then put it at ``path``.

        The caller closes the descriptor. If the block fails, the file is
        removed and nothing reaches ``path``.
        """
        with self._beneath.folder(_TMP) as tmp:
            name = secrets.token_hex(16)
            try:
                yield os.open(name, _NEW, 0o666, dir_fd=tmp)
            except BaseException:
                with suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=tmp)
                raise
            with self._at(path) as spot:
                self._settle(tmp, name, spot)

    @override
    def copy(self, source: str, path: str) -> None:
        with self.open_read(source) as src, self.open_write(path) as dst:
            shutil.copyfileobj(src, dst, _READ)

    @override
    def download(self, path: str, local_path: str, *, symlink: bool = False) -> None:
        # The destination never holds part of a file. It is unlinked just
        # before the copy takes its name: renaming over an existing file
        # makes ext4 flush the new one to disk (auto_da_alloc), measured at
        # 2x a plain copy. The destination is missing for a moment, never partial.
        try:
            with self._beneath.spot(path) as spot:
                if symlink:
                    mode = spot.lstat().st_mode
                    if stat.S_ISLNK(mode):
                        raise spot.fail(OSError(errno.ELOOP, "a link"))
                    if not stat.S_ISREG(mode):
                        raise IsADirectoryError(errno.EISDIR, "a folder, not a file", spot.path)
                    _link_to(path, local_path)
                    return
                src = spot.open(os.O_RDONLY)
        except FileNotFoundError as exc:
            raise NotStored(path) from exc
        try:
            _copy_to(src, local_path)
        finally:
            os.close(src)

    # -- whole-store operations --------------------------------------------------------

    @override
    def prepare(self, create: bool = False) -> None:
        os.makedirs(self.root, exist_ok=True)
        for folder in FOLDERS:
            *parents, name = folder.split("/")
            with self._beneath.folder(parents) as fd:
                try:
                    os.mkdir(name, dir_fd=fd)
                except FileExistsError:
                    # A link, or a file, where the folder must be is refused now.
                    with self._beneath.folder([*parents, name]):
                        pass

    @override
    @contextmanager
    def lease(self, path: str) -> Iterator[Holder]:
        # A lock the kernel keeps and frees: a killed holder releases it at
        # once, and it needs no refreshing. The file itself stays.
        with self._at(path) as spot:
            fd = spot.open(os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield _Kept()
        finally:
            os.close(fd)

    @override
    def prune(self, directory: str) -> None:
        with suppress(OSError), self._beneath.spot(directory.rstrip("/")) as spot:
            os.rmdir(spot.name, dir_fd=spot.folder)  # not empty, or a writer's: both fine

    @override
    def remove_root(self) -> None:
        # Only empty folders go; anything a foreign writer left stays.
        self._beneath.remove_empty()

    @override
    def entries(self, directory: str) -> list[str]:
        if directory == self.root:
            return self._beneath.names(())
        parts, name = self._beneath.split(directory)
        return self._beneath.names([*parts, name])


class _Kept:
    """A lock that needs no refreshing."""

    def refresh(self) -> None:
        """Do nothing: the kernel keeps the lock while its holder lives."""


def _copy_into(src: int, fd: int) -> None:
    """Copy the open file ``src`` into the new file ``fd``, then close ``fd``.

    Where the filesystem can share blocks (XFS, Btrfs, bcachefs, OCFS2) the
    copy is a clone: no bytes move, and a later write to either file copies
    only what it changes, so the two stay independent as any copy would.
    """
    try:
        try:
            fcntl.ioctl(fd, _FICLONE, src)
            return
        except OSError as exc:
            if exc.errno not in _NO_CLONE:
                raise
        offset = 0
        try:
            while sent := os.sendfile(fd, src, offset, _READ):
                offset += sent
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or offset:
                raise
            with open(src, "rb", closefd=False) as source, open(fd, "wb", closefd=False) as dst:
                shutil.copyfileobj(source, dst)
    finally:
        os.close(fd)


def _copy_to(src: int, local_path: str) -> None:
    """Copy the open file ``src`` to ``local_path``, which never holds part of it.

    The copy is made in a file with no name (``O_TMPFILE``), which a crash
    leaves nowhere, and linked under the destination's name once complete.
    Where that cannot be done (NFS, no ``/proc``), a named temporary file
    beside the destination is renamed instead.
    """
    head, name = os.path.split(local_path)
    folder = os.open(head or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = _nameless(folder)
        if fd is None:
            temp = os.path.basename(local_temp(local_path))
            try:
                _copy_into(src, os.open(temp, _NEW, 0o666, dir_fd=folder))
                _take_name(
                    folder,
                    name,
                    lambda: os.rename(temp, name, src_dir_fd=folder, dst_dir_fd=folder),
                )
            except BaseException:
                with suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=folder)
                raise
            return
        try:
            _copy_into(src, os.dup(fd))
            # linkat() with AT_SYMLINK_FOLLOW through /proc names the nameless file.
            _take_name(
                folder, name, lambda: os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder)
            )
        finally:
            os.close(fd)
    finally:
        os.close(folder)


def _link_to(path: str, local_path: str) -> None:
    """Make ``local_path`` a symbolic link to the stored file ``path``."""
    head, name = os.path.split(local_path)
    folder = os.open(head or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _take_name(folder, name, lambda: os.symlink(path, name, dir_fd=folder))
    finally:
        os.close(folder)


def _nameless(folder: int) -> int | None:
    """Open a new file with no name in ``folder``; None where there can be none."""
    if not os.path.isdir("/proc/self/fd"):  # naming it needs /proc
        return None
    try:
        return os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666, dir_fd=folder)
    except OSError as exc:
        if exc.errno not in _NO_TMPFILE:
            raise
        return None


def _take_name(folder: int, name: str, make: Callable[[], None]) -> None:
    """Unlink ``name`` in ``folder`` and make it anew with ``make()``, once more if raced."""
    for attempt in range(2):
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)
        try:
            make()
            return
        except FileExistsError:
            if attempt:
                raise  # another writer keeps putting a file there
