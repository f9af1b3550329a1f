"""What object stores (S3, GCS, Azure Blob) share.

Each object store gives three asynchronous primitives: a read that returns
the bytes with their version token in one request, a conditional write
(create-only, or replace-if-version), and a delete. This class builds every
backend operation on them, and runs bulk operations as concurrent requests
on the filesystem's event loop. The subclasses map their service's errors to
``FileNotFoundError``, ``FileExistsError`` and :class:`VersionConflict`, so
the store sees one set of errors whatever the service.
"""

from __future__ import annotations

import asyncio
import errno
import io
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import IO, Any, TypeVar

from fsspec.asyn import sync
from typing_extensions import override

from .base import Backend
from .common import BLOCK_SIZE, COPY_BUFFER, NotStored, SizedReader, Temporary, VersionConflict

__all__ = ["CONCURRENCY", "ObjectBackend", "PinnedReader"]

T = TypeVar("T")

#: Requests in flight at once in a bulk call.
CONCURRENCY = 32


class ObjectBackend(Backend):
    """Base of the object-store backends: conditional writes on the service itself."""

    detects_concurrent_updates = True
    pins_stream_reads = True
    needs_parents = False  # no directories: a key needs nothing before it

    # -- the service's primitives -----------------------------------------------

    async def _get(self, path: str) -> tuple[bytes, str]:
        """Bytes and version token in one request; FileNotFoundError if missing."""
        raise NotImplementedError

    async def _put(self, path: str, data: bytes, token: str | None) -> str:
        """Write if the stored version is ``token`` (None: only if nothing is stored).

        Returns the new version token. Raises FileExistsError (create of an
        existing object), VersionConflict (stale token) or FileNotFoundError
        (replace of a missing object).
        """
        raise NotImplementedError

    async def _delete(self, path: str) -> None:
        """Delete one object; a missing one is not an error."""
        raise NotImplementedError

    async def _first(self, path: str, length: int) -> tuple[bytes, int, str, int]:
        """Read up to ``length`` bytes of an object, with its version and size, in one request.

        Returns ``(data, start, token, size)``: ``data`` begins at byte
        ``start``, and is the whole object when ``size <= length``.
        FileNotFoundError if missing.
        """
        raise NotImplementedError

    async def _range(self, path: str, token: str, start: int, end: int) -> bytes:
        """Bytes ``start:end`` of version ``token``.

        Raises VersionConflict or FileNotFoundError once that version is gone.
        """
        raise NotImplementedError

    # -- what crashed writers leave with the service ------------------------------

    def unfinished_uploads(self) -> list[Temporary]:
        """Unfinished uploads below the root, which only the service can list.

        Their parts are stored, and billed, though no listing of the bucket
        shows them. Empty by default: a service whose uploads cannot be
        listed, or that keeps none, has nothing to show.
        """
        return []

    def discard_uploads(self, uploads: Sequence[Temporary]) -> None:
        """Abort uploads :meth:`unfinished_uploads` returned; ones already gone are no error."""
        if uploads:
            raise TypeError(f"{type(self).__name__} has no unfinished uploads")

    def _below_root(self) -> tuple[str, str]:
        """Return the root's bucket (or container) and the key prefix of all below it."""
        bucket, key, _ = self.fs.split_path(self.root)
        key = key.strip("/")
        return bucket, f"{key}/" if key else ""

    # -- running them -----------------------------------------------------------

    def _run(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        # The client's own errors (botocore's, the Azure SDK's) leave as the
        # builtin exceptions that fit, naming the path; ours pass as they are.
        where = args[0] if args and isinstance(args[0], str) else self.root
        with self._errors(where):
            result: T = sync(self.fs.loop, func, *args)
        return result

    async def _gather(self, awaitables: list[Awaitable[T]]) -> list[T | BaseException]:
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(awaitable: Awaitable[T]) -> T:
            async with limit:
                return await awaitable

        return await asyncio.gather(*(one(a) for a in awaitables), return_exceptions=True)

    async def _exists(self, path: str) -> bool:
        # Not the client's _isfile, which answers False for any error, a
        # failure to reach the service too.
        try:
            info = await self.fs._info(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return bool(info.get("type") == "file")

    @override
    def exists(self, path: str) -> bool:
        return self._run(self._exists, path)

    async def _missing_or_conflict(self, path: str) -> BaseException:
        # Services answer "precondition failed" both for a stale version and
        # for a missing object: one more request tells which, on this rare path.
        if await self._exists(path):
            return VersionConflict(path)
        return FileNotFoundError(path)

    # -- backend operations -----------------------------------------------------

    @override
    def read(self, path: str) -> tuple[bytes, str]:
        return self._run(self._get, path)

    @override
    def create(self, path: str, data: bytes) -> str:
        try:
            return self._run(self._put, path, data, None)
        except FileExistsError:
            token = self._landed(path, data)
            if token is None:
                raise
            return token

    @override
    def replace(self, path: str, data: bytes, token: str) -> str:
        try:
            return self._run(self._put, path, data, token)
        except VersionConflict:
            landed = self._landed(path, data)
            if landed is None:
                raise
            return landed

    def _landed(self, path: str, data: bytes) -> str | None:
        """Return the version token at ``path`` if it holds ``data``, the write's own; else None.

        The clients retry a conditional write whose reply was lost (a dropped
        connection, a timeout), and the retry then finds the first try's own
        write: it must not pass for another writer's. Job documents carry a
        fresh revision, so equal bytes are this write's.
        """
        try:
            stored, token = self.read(path)
        except FileNotFoundError:
            return None
        return token if stored == data else None

    @override
    def delete(self, path: str) -> bool:
        # A client's retry of a delete whose reply was lost finds nothing:
        # the delete must still count as done, so no second look is taken.
        if not self.exists(path):
            return False
        self._run(self._delete, path)
        return True

    @override
    def read_many(self, paths: list[str]) -> dict[str, tuple[bytes, str]]:
        results = self._run(self._gather, [self._get(p) for p in paths])
        found: dict[str, tuple[bytes, str]] = {}
        for path, result in zip(paths, results, strict=True):
            if isinstance(result, FileNotFoundError):
                continue  # deleted since it was listed
            if isinstance(result, BaseException):
                raise result
            found[path] = result
        return found

    @override
    def create_many(self, items: Mapping[str, bytes]) -> tuple[dict[str, str], list[str]]:
        paths = list(items)
        results = self._run(self._gather, [self._put(p, items[p], None) for p in paths])
        tokens: dict[str, str] = {}
        existing: list[str] = []
        for path, result in zip(paths, results, strict=True):
            if isinstance(result, FileExistsError):
                landed = self._landed(path, items[path])
                if landed is None:
                    existing.append(path)
                else:
                    tokens[path] = landed
            elif isinstance(result, BaseException):
                raise result
            else:
                tokens[path] = result
        return tokens, existing

    @override
    def delete_many(self, paths: list[str]) -> None:
        if not paths:
            return
        for result in self._run(self._gather, [self._delete(p) for p in paths]):
            if isinstance(result, BaseException):
                raise result

    @override
    def copy_many(self, pairs: Sequence[tuple[str, int, str]]) -> None:
        # By the service, concurrently on the client's event loop.
        if pairs:
            with self._errors(pairs[0][2]):
                self.fs.copy([s for s, _, _ in pairs], [p for _, _, p in pairs])

    @override
    def prune(self, directory: str) -> None:
        """Nothing: a folder of an object store is a prefix, gone with its last key.

        Asking would cost requests (s3fs's ``rmdir`` sends a HEAD and a LIST)
        on every ``delete_job``, for nothing to remove.
        """

    @override
    def open_read(self, path: str) -> IO[bytes]:
        # The first block comes with the version and the size in one request,
        # so a small object is read whole at once: old content or new, never
        # an error because it was replaced meanwhile.
        try:
            block, start, token, size = self._run(self._first, path, BLOCK_SIZE)
        except FileNotFoundError as exc:
            raise NotStored(path) from exc
        if len(block) >= size:
            return io.BytesIO(block)
        # A block from the end (GCS) is not kept: held to the end of a long
        # stream, it would double what the stream holds.
        reader = PinnedReader(self, path, token, size, (start, block) if start == 0 else (0, b""))
        return io.BufferedReader(reader, BLOCK_SIZE)

    @override
    def upload(self, local_path: str, path: str) -> None:
        with open(local_path, "rb") as source:
            if os.fstat(source.fileno()).st_size <= BLOCK_SIZE:
                self.write(path, source.read())
            else:
                self.write_stream(path, source)

    @override
    def prepare(self, create: bool = False) -> None:
        if not create:
            return
        bucket = self.root.split("/", 1)[0]
        if not self.fs.exists(bucket):
            self.fs.mkdir(bucket)

    def _commit_stream(self, path: str, source: IO[bytes], **open_kwargs: Any) -> None:
        """Upload through an fsspec file opened with ``autocommit=False``."""
        target = self.fs.open(path, "wb", autocommit=False, block_size=BLOCK_SIZE, **open_kwargs)
        try:
            shutil.copyfileobj(source, target, COPY_BUFFER)
            target.close()
            target.commit()
        except BaseException:
            target.discard()
            raise


class PinnedReader(SizedReader):
    """A read-only stream of one version of an object, one block of it already read.

    Every range request names that version, so a reader never mixes
    versions: once the object is replaced, reading on raises ``OSError``.
    """

    def __init__(
        self, backend: ObjectBackend, path: str, token: str, size: int, block: tuple[int, bytes]
    ) -> None:
        super().__init__(size)
        self._backend, self._path, self._token = backend, path, token
        self._block_start, self._block = block

    @override
    def readall(self) -> bytes:
        # io's default reads 8 KiB at a time: one request each.
        parts = []
        while part := self.read(BLOCK_SIZE):
            parts.append(part)
        return b"".join(parts)

    @override
    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        start, block = self._block_start, self._block
        end = min(self._size, self._pos + len(view))
        if end <= self._pos:
            return 0
        if start <= self._pos < start + len(block):
            end = min(end, start + len(block))
            data = block[self._pos - start : end - start]
            if end == start + len(block):
                self._block = b""  # all served: memory stays one block per stream
        else:
            if self._pos < start:
                end = min(end, start)  # the rest comes from the block already read
            try:
                data = self._backend._run(
                    self._backend._range, self._path, self._token, self._pos, end
                )
            except (VersionConflict, FileNotFoundError):
                raise OSError(
                    errno.ESTALE, "the file changed while it was being read", self._path
                ) from None
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)
