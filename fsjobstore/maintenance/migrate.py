"""Copy a whole store to another location, every ID preserved, resumably.

Every key of a store follows from an ID (:mod:`fsjobstore.layout`), so a store
copied key for key is the same store: the same job IDs, file IDs (with their
owners and flags, which the IDs carry), shared file names and log messages,
pending and archived. The copy goes in four steps:

1. **claim** the destination: it must be empty, or hold an unfinished
   migration from this same source; a *migration record*
   (``.fsjobstore-migration.json``, naming the source without credentials and
   a digest of its marker) is written first;
2. **copy** what the destination lacks: each key whose object is missing, or
   differs in size or checksum, is copied (objects already there and
   identical are not); keys the source no longer has are deleted;
3. **verify**: the destination is listed again, and every key must be there
   with the source's size, and the same MD5 digest where both services
   report one (local files are hashed where the other side has a digest);
4. **finish**: the destination's marker is written last (the source's
   config, naming the destination), then the record is deleted.

Until step 4 the destination is no store (it has no marker), so nothing can
open it half-copied; an interrupted migration (a crash, Ctrl-C, a failed
verification) is finished by running it again, which copies only what is
missing or different. A destination holding anything else is refused.

Where both stores are on one object store with the same options (one S3
endpoint and account, one GCS or Azure account), objects are copied by the
service (``CopyObject``, rewrite, a blob copy) and never pass through this
process; otherwise they are read and written concurrently,
small ones in bulk calls and large ones as streams.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .. import layout
from ..backends import Backend
from ..backends.common import BLOCK_SIZE, Entry, same_service
from ..errors import JobStoreError
from ..job import Config, encode_config
from ..redaction import redact
from ..store import JobStore
from ._access import (
    data_backend,
    holds_data,
    marker_backend,
    open_backends,
)
from .lifecycle import MIGRATION_RECORD, STORE_PREFIXES, delete_all, open_store

__all__ = ["MIGRATION_RECORD", "MigrationRefused", "MigrationReport", "migrate"]

#: What is copied: everything below these prefixes (not tmp/, not the marker).
_PREFIXES = STORE_PREFIXES
#: Objects up to this size are copied in bulk calls, many at once.
_SMALL = 1024 * 1024
#: A bulk call holds at most this many bytes (and objects) in memory; small
#: calls keep an interruption (Ctrl-C) quick and the progress bar moving.
_BULK_BYTES = 64 * 1024 * 1024
_BULK_COUNT = 32
#: Copies (bulk calls or single objects) in flight at once.
CONCURRENCY = 8


class MigrationRefused(JobStoreError):
    """The destination of a migration holds something else; nothing was written."""


@dataclass
class MigrationReport:
    """What :func:`migrate` did.

    Attributes
    ----------
    source, destination
        The locators, without credentials.
    objects
        Objects the store holds (jobs, files, shared files, log messages).
    copied
        Objects copied by this run.
    skipped
        Objects already at the destination and identical (an earlier,
        interrupted run copied them).
    removed
        Objects at the destination that the source no longer has.
    bytes
        Bytes copied by this run.
    server_side
        Whether the service copied the objects itself.
    resumed
        Whether this run finished an interrupted migration.
    checksums
        Objects whose checksums were compared in the verification (all of
        them were compared by size).
    seconds
        How long the run took.
    """

    source: str
    destination: str
    objects: int
    copied: int
    skipped: int
    removed: int
    bytes: int
    server_side: bool
    resumed: bool
    checksums: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        """Return the report as a JSON object."""
        return asdict(self)


def migrate(
    source: str,
    destination: str,
    *,
    source_options: Mapping[str, Any] | None = None,
    destination_options: Mapping[str, Any] | None = None,
    callback: Callback = DEFAULT_CALLBACK,
    concurrency: int = CONCURRENCY,
) -> MigrationReport:
    """Copy the store at ``source`` to ``destination``, every ID preserved.

    Safe to interrupt at any point, and to run again: a second run finishes
    the first without copying again what is already there and identical.
    Run it while nothing writes to the source: what is written during a run
    may or may not be copied (a later run copies it), and a verification
    that finds the source changed under it fails, to be run again.

    Parameters
    ----------
    source
        The locator of an existing store.
    destination
        Where the copy goes: an empty location, or the destination of an
        unfinished migration from the same source.
    source_options, destination_options
        Storage options of each side (never stored).
    callback
        An fsspec callback: told the number of objects to copy, then one
        step per object copied.
    concurrency
        Copies in flight at once (each bulk call sends more requests of its own).

    Returns
    -------
    MigrationReport
        What was done.

    Raises
    ------
    NoSuchJobStoreException
        No store at ``source``.
    MigrationRefused
        The destination holds a store, other data, or an unfinished
        migration from another source; nothing was written.
    JobStoreError
        The verification found objects that differ (run it again).
    ValueError
        Source and destination are the same place, or one is inside the other.
    """
    started = time.monotonic()
    src = open_store(source, **dict(source_options or {}))
    src_data = data_backend(src)
    marker, _ = marker_backend(src).read(f"{marker_backend(src).root}/{layout.MARKER}")
    dst = JobStore(destination, **dict(destination_options or {}))
    config = Config(**src.config._public())
    config.jobStore = redact(dst.locator)
    dst_plain, dst_data = open_backends(dst, config)
    server_side = _same_service(src_data, dst_data, config)
    _check_apart(src, dst, src_data, dst_data)
    identity = {"source": redact(src.locator), "marker": hashlib.sha256(marker).hexdigest()}
    resumed = _claim(dst, dst_plain, identity)
    dst_data.prepare()

    wanted = _listing(src_data)
    present = _listing(dst_data)
    hashes = _Hashes()
    todo = [
        key
        for key, entry in wanted.items()
        if _compare(src_data, dst_data, key, entry, present.get(key), hashes=hashes) == "differs"
    ]
    extra = [key for key in present if key not in wanted]
    delete_all(dst_data, [f"{dst_data.root}/{key}" for key in extra])

    callback.set_size(len(todo))
    copier = _Copier(src_data, dst_data, server_side, callback)
    copier.run({key: wanted[key].size for key in todo}, concurrency)

    checked = _verify(src_data, dst_data, wanted, _listing(dst_data), hashes)
    dst_plain.write(f"{dst_plain.root}/{layout.MARKER}", encode_config(config))
    dst_plain.delete_many([f"{dst_plain.root}/{MIGRATION_RECORD}"])
    return MigrationReport(
        source=redact(src.locator),
        destination=redact(dst.locator),
        objects=len(wanted),
        copied=len(todo),
        skipped=len(wanted) - len(todo),
        removed=len(extra),
        bytes=sum(wanted[key].size for key in todo),
        server_side=server_side,
        resumed=resumed,
        checksums=checked,
        seconds=round(time.monotonic() - started, 3),
    )


# -- the destination --------------------------------------------------------------


def _claim(dst: JobStore, plain: Backend, identity: dict[str, str]) -> bool:
    """Make ``dst`` this migration's, or find it is already; return whether it was."""
    where = redact(dst.locator)
    record_path = f"{plain.root}/{MIGRATION_RECORD}"
    try:
        data, _ = plain.read(record_path)
    except (FileNotFoundError, NotADirectoryError):
        data = None
    if data is not None:
        try:
            record = json.loads(data)
        except ValueError:
            record = {}
        # The marker's digest says which store it is (a marker names its own
        # locator); the source's locator may be spelled another way this time.
        if not isinstance(record, dict) or record.get("marker") != identity["marker"]:
            other = record.get("source") if isinstance(record, dict) else None
            raise MigrationRefused(
                f"migration to {where!r} refused: it holds an unfinished migration from "
                f"{other!r}, not from this store"
            )
        return True
    if plain.exists(f"{plain.root}/{layout.MARKER}"):
        raise MigrationRefused(f"migration to {where!r} refused: a job store is there already")
    if holds_data(dst):
        raise MigrationRefused(f"migration to {where!r} refused: it holds other data")
    plain.prepare(create=True)
    record = {
        **identity,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        plain.create(record_path, json.dumps(record).encode())
    except FileExistsError:
        raise MigrationRefused(
            f"migration to {where!r} refused: another migration started there meanwhile"
        ) from None
    return False


def _same_service(src: Backend, dst: Backend, config: Config) -> bool:
    if config.sseKeyFile:
        # A copy by the service would need the customer key for both sides,
        # which the clients' copy calls do not pass.
        return False
    a, b = src.filesystem, dst.filesystem
    if not getattr(b, "async_impl", False):
        # Local disk, SFTP, FTP, memory: the bytes pass through this process
        # whatever the call, and each backend writes only below its own root.
        return False
    return same_service(a, b)


def _check_apart(src: JobStore, dst: JobStore, a: Backend, b: Backend) -> None:
    if type(a.filesystem) is not type(b.filesystem):
        return
    one, two = a.root.rstrip("/") + "/", b.root.rstrip("/") + "/"
    if one.startswith(two) or two.startswith(one):
        raise ValueError(
            f"cannot migrate {redact(src.locator)!r} to {redact(dst.locator)!r}: "
            "they are the same place, or one is inside the other"
        )


# -- listings and checksums -------------------------------------------------------


def _listing(backend: Backend) -> dict[str, Entry]:
    """Key (below the root) → size and MD5 of every object the migration copies."""
    skip = len(backend.root) + 1
    listing = {}
    for page in backend.listing(backend.root):
        for entry in page:
            key = entry.path[skip:]
            # A log reader's lease is a live process's, not the store's data.
            if key.startswith(_PREFIXES) and key != layout.READER:
                listing[key] = entry
    return dict(sorted(listing.items()))


class _Hashes:
    """MD5 digests of files on backends whose reads are local, each computed at most once."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}

    def of(self, backend: Backend, key: str, entry: Entry) -> str | None:
        if entry.md5 is not None or not backend.local_reads:
            return entry.md5
        path = f"{backend.root}/{key}"
        if path not in self._known:
            try:
                self._known[path] = backend.md5(path)
            except FileNotFoundError:
                return None
        return self._known[path]


def _compare(
    src: Backend, dst: Backend, key: str, a: Entry, b: Entry | None, *, hashes: _Hashes
) -> str:
    """Compare two objects: ``"differs"``, or how they were found the same.

    ``"checksum"`` when both sides give an MD5 digest (local files are hashed
    where the other side gives one), ``"size"`` when only sizes compare.
    """
    if b is None or a.size != b.size:
        return "differs"
    if a.md5 is None and b.md5 is None:
        return "size"  # all either side tells
    one, two = hashes.of(src, key, a), hashes.of(dst, key, b)
    if one is None or two is None:
        return "size"
    return "checksum" if one == two else "differs"


def _verify(
    src: Backend,
    dst: Backend,
    wanted: Mapping[str, Entry],
    present: Mapping[str, Entry],
    hashes: _Hashes,
) -> int:
    """Check the destination holds every object, identical; return how many by checksum."""
    found = {
        key: _compare(src, dst, key, entry, present.get(key), hashes=hashes)
        for key, entry in wanted.items()
    }
    wrong = [key for key, how in found.items() if how == "differs"]
    if wrong:
        shown = ", ".join(repr(k) for k in wrong[:3])
        raise JobStoreError(
            f"migration verification failed: {len(wrong)} object(s) at the destination differ "
            f"from the source ({shown}{', …' if len(wrong) > 3 else ''}); run it again to copy them"
        )
    return sum(1 for how in found.values() if how == "checksum")


# -- copying ----------------------------------------------------------------------


class _Copier:
    """Copies objects from one backend to another, concurrently."""

    def __init__(self, src: Backend, dst: Backend, server_side: bool, callback: Callback) -> None:
        self._src, self._dst = src, dst
        self._server_side = server_side
        self._callback = callback
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._size_of: dict[str, int] = {}

    def run(self, sizes: Mapping[str, int], concurrency: int) -> None:
        self._size_of = dict(sizes)
        tasks = list(self._tasks(sizes))
        if not tasks:
            return
        pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="fsjobstore-migrate")
        try:
            futures: list[Future[int]] = [pool.submit(self._one, task) for task in tasks]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    raise error
        finally:
            # Ctrl-C or a failure: nothing more starts; copies in flight are
            # atomic, so they finish or leave nothing at their key.
            self._stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def _one(self, task: Callable[[], int]) -> int:
        if self._stop.is_set():
            return 0
        count = task()
        with self._lock:
            self._callback.relative_update(count)
        return count

    def _tasks(self, sizes: Mapping[str, int]) -> Iterator[Callable[[], int]]:
        # An async client (the object stores) copies a batch concurrently on
        # its event loop: by the service (no bytes held here), or read and
        # written in bulk calls for small objects.
        by_service = self._server_side  # only ever on async clients: see _same_service
        batch: list[str] = []
        held = 0
        for key, size in sizes.items():
            if by_service:
                batch.append(key)
            elif size > _SMALL:
                yield self._single(key, size)
                continue
            else:
                batch.append(key)
                held += size
            if len(batch) >= _BULK_COUNT or held >= _BULK_BYTES:
                yield self._by_service(batch) if by_service else self._bulk(batch)
                batch, held = [], 0
        if batch:
            yield self._by_service(batch) if by_service else self._bulk(batch)

    def _sizes(self, keys: list[str]) -> list[int]:
        return [self._size_of[key] for key in keys]

    def _by_service(self, keys: list[str]) -> Callable[[], int]:
        def copy() -> int:
            sources = [f"{self._src.root}/{key}" for key in keys]
            targets = [f"{self._dst.root}/{key}" for key in keys]
            self._dst.copy_many(list(zip(sources, self._sizes(keys), targets, strict=True)))
            return len(keys)

        return copy

    def _bulk(self, keys: list[str]) -> Callable[[], int]:
        def copy() -> int:
            paths = {f"{self._src.root}/{key}": f"{self._dst.root}/{key}" for key in keys}
            found = self._src.read_many(list(paths))
            missing = [p for p in paths if p not in found]
            if missing:
                raise FileNotFoundError(
                    f"deleted from the source during the migration: {missing[0]}"
                )
            self._dst.write_many({paths[p]: data for p, (data, _) in found.items()})
            return len(keys)

        return copy

    def _single(self, key: str, size: int) -> Callable[[], int]:
        source, target = f"{self._src.root}/{key}", f"{self._dst.root}/{key}"

        def copy() -> int:
            if size <= BLOCK_SIZE:
                self._dst.write(target, self._src.read(source)[0])
            else:
                with self._src.open_read(source) as handle:
                    self._dst.write_stream(target, handle)
            return 1

        return copy
