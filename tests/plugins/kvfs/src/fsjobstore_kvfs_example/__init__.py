"""``kvfs``: an object-store-like fsspec protocol kept on local disk.

A test fixture of fsjobstore, and the worked example of docs/extending.md:
a plain filesystem that knows nothing of fsjobstore, registered with fsspec
through the ``fsspec.specs`` entry point of this distribution.

It behaves as an object store does:

* keys are flat: ``kvfs://bucket/a/b`` is the key ``bucket/a/b``.  A
  "directory" exists while some key lies below it; ``mkdir`` and
  ``makedirs`` do nothing;
* a write replaces the whole object at once (a PUT): readers see the old
  object or the new one, never a mix;
* ``mv`` is fsspec's default, copy then delete: not atomic;
* there is no append and no exclusive create (modes ``ab`` and ``xb``).

Objects live in the directory given by the storage option ``base`` (so
separate processes share a store), one file per key, named by the key
percent-encoded.  An encoded key longer than a file name may be is cut into
pieces of 200 characters, each but the last a directory whose name ends in
``+`` (a character the encoding never leaves), so keys of any length fit;
such directories stay behind, empty, when their keys are deleted.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

__all__ = ["KVFile", "KVFileSystem"]

#: Characters of an encoded key per file name (most file systems allow 255 bytes).
_PIECE = 200


def _encode(key: str) -> str:
    # Dots too: no name can then be "." or "..", and names starting with "."
    # are free for this filesystem's own use (.tmp).
    return quote(key, safe="").replace(".", "%2E")


class KVFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """An object store whose objects are files in the directory ``base``.

    Parameters
    ----------
    base : str
        Directory holding the objects; made if missing.  Every filesystem
        object on the same ``base``, in any process, sees the same store.
    **kwargs
        fsspec's own options (``skip_instance_cache``, ...).
    """

    protocol = "kvfs"
    root_marker = ""

    def __init__(self, base: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = Path(base)
        self._tmp = self.base / ".tmp"  # same disk as the objects: os.replace is atomic
        self._tmp.mkdir(parents=True, exist_ok=True)

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        stripped: str = super()._strip_protocol(path)
        return stripped.strip("/")

    def _file(self, key: str) -> Path:
        """The file holding ``key``."""
        if not key:
            raise IsADirectoryError(f"the root is not an object: {key!r}")
        name = _encode(key)
        pieces = [name[i : i + _PIECE] for i in range(0, len(name), _PIECE)]
        return self.base.joinpath(*(piece + "+" for piece in pieces[:-1]), pieces[-1])

    def _objects(self, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
        """Every ``(key, stat)`` whose key starts with ``prefix``: a LIST request."""
        wanted = _encode(prefix)

        def scan(directory: Path, done: str) -> Iterator[tuple[str, os.stat_result]]:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue  # uploads in progress
                    if entry.name.endswith("+"):  # a long name continues below
                        text = done + entry.name[:-1]
                        if text.startswith(wanted) or wanted.startswith(text):
                            yield from scan(Path(entry.path), text)
                    elif (done + entry.name).startswith(wanted):
                        try:
                            yield unquote(done + entry.name), entry.stat()
                        except FileNotFoundError:
                            pass  # deleted since the directory was read

        return scan(self.base, "")

    @staticmethod
    def _details(key: str, stat: os.stat_result) -> dict[str, Any]:
        modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
        return {"name": key, "size": stat.st_size, "type": "file", "mtime": modified}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """List the objects and pseudo-directories right below ``path``."""
        path = self._strip_protocol(path)
        prefix = f"{path}/" if path else ""
        found: dict[str, dict[str, Any]] = {}
        for key, stat in self._objects(prefix):
            if key == path:
                continue  # an object named like the directory: not its child
            child, sep, _ = key[len(prefix) :].partition("/")
            if sep:
                name = prefix + child
                found[name] = {"name": name, "size": 0, "type": "directory"}
            else:
                found[key] = self._details(key, stat)
        if not found and path:
            found[path] = self.info(path)  # ls of an object lists itself, else raises
        entries = sorted(found.values(), key=lambda entry: str(entry["name"]))
        return entries if detail else [entry["name"] for entry in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """An object's size and time, or a pseudo-directory's existence."""
        path = self._strip_protocol(path)
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        try:
            return self._details(path, self._file(path).stat())
        except FileNotFoundError:
            pass
        for _ in self._objects(f"{path}/"):
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(errno.ENOENT, "no such object or directory", path)

    def created(self, path: str) -> datetime:
        """When the object was last written: a PUT creates it anew."""
        return self.modified(path)

    def modified(self, path: str) -> datetime:
        """When the object was last written."""
        info = self.info(path)
        if info["type"] != "file":
            raise IsADirectoryError(path)
        when: datetime = info["mtime"]
        return when

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Nothing: directories exist only through the keys below them."""

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Nothing: directories exist only through the keys below them."""

    def cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        """The object's bytes from ``start`` to ``end`` (negative: from the end)."""
        key = self._strip_protocol(path)
        try:
            handle = self._file(key).open("rb")
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "no such object", key) from None
        with handle:
            size = os.fstat(handle.fileno()).st_size
            first = 0 if start is None else start if start >= 0 else max(0, size + start)
            last = size if end is None else end if end >= 0 else size + end
            handle.seek(first)
            return handle.read(max(0, last - first))

    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> None:
        """Store ``value`` as the whole object at ``path`` in one step."""
        if mode == "create" and self.exists(path):
            raise FileExistsError(path)  # fsspec's own check: not atomic
        handle = self.open(path, "wb")
        try:
            handle.write(value)
            handle.close()
        except BaseException:
            # Marked closed, not closed: closing (here, or when garbage
            # collected) would commit what the failed write left.
            handle.discard()
            handle.closed = True
            raise

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> KVFile:
        if mode not in ("rb", "wb"):
            raise NotImplementedError(f"kvfs opens objects to read or replace, not {mode!r}")
        return KVFile(self, self._strip_protocol(path), mode, **kwargs)

    def _rm(self, path: str) -> None:
        """Delete the object at ``path`` if there is one, as an object store's DELETE."""
        try:
            self._file(self._strip_protocol(path)).unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            pass  # nothing stored under this exact key

    def rm_file(self, path: str) -> None:
        """Delete the object at ``path``."""
        key = self._strip_protocol(path)
        try:
            self._file(key).unlink()
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "no such object", key) from None

    def rm(
        self, path: str | list[str], recursive: bool = False, maxdepth: int | None = None
    ) -> None:
        """Delete objects, and with ``recursive`` every object below a prefix.

        A missing key is no error, as on an object store; pseudo-directories
        go with their last key.
        """
        for found in reversed(self.expand_path(path, recursive=recursive, maxdepth=maxdepth)):
            self._rm(found)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        """Copy one object: a server-side COPY, whole and at once."""
        try:
            data = self.cat_file(path1)
        except FileNotFoundError:
            if self.isdir(path1):
                return  # a recursive copy passes directories: they need no copy
            raise
        self.pipe_file(path2, data)

    def _commit(self, key: str, upload: Path) -> None:
        """Put the finished upload in place of the object ``key``: the PUT."""
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(upload, target)


class KVFile(AbstractBufferedFile):  # type: ignore[misc]
    """An object opened to read (ranged reads) or to replace (committed at close)."""

    fs: KVFileSystem

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self.fs.cat_file(self.path, start, end)

    def _initiate_upload(self) -> None:
        # Parts go to a temporary file beside the objects, invisible to
        # readers until _upload_chunk(final=True) commits it whole.
        handle, name = tempfile.mkstemp(dir=self.fs._tmp)
        self._upload = Path(name)
        self._parts = os.fdopen(handle, "wb")

    def _upload_chunk(self, final: bool = False) -> bool:
        try:
            self._parts.write(self.buffer.getvalue())
            if final:
                self._parts.close()
                self.fs._commit(self.path, self._upload)
        except BaseException:
            self.discard()
            raise
        return True

    def discard(self) -> None:
        """Drop an upload that was begun, leaving the object as it was."""
        if hasattr(self, "_parts"):
            self._parts.close()
            self._upload.unlink(missing_ok=True)
