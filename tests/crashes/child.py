"""Processes killed with SIGKILL in the middle of a store operation: the child's side.

:func:`child` runs in a process of its own: it opens a
:class:`~fsjobstore.JobStore` on the locator it is given and runs one
operation in a loop (:data:`OPERATIONS`), reporting to a file, one JSON line
per event, flushed by a single ``write`` before it goes on:

- ``ready``: the store is open, the loop starts;
- ``begin`` (with the step's number and what it is about to write: an ID, a
  tag, a size): the step's store call starts now;
- ``done`` (with the step's number, the ID the store gave, the content's
  digest): the call returned, the write is finished;
- ``archived`` (``read_logs`` only): ``read_logs`` returned;
- ``idle``: the loop ran out of work (the child then waits to be killed);
- ``error`` (with a traceback): the operation raised; the test fails.

Each event carries the child's ``time.monotonic()``, a clock shared by every
process of the machine, so the parent can time its kill from the child's
"""

from __future__ import annotations

import functools
import json
import os
import random
import time
import traceback
import warnings
from collections.abc import Callable
from typing import IO, Any, Protocol

from fsjobstore import JobDescription, JobStore

from .contents import MiB, content, digest, text

__all__ = ["OPERATIONS", "child"]

# -- the child's side ------------------------------------------------------------------


class Say(Protocol):
    """Report one event, flushed before the caller goes on."""

    def __call__(self, event: str, step: int | None = None, **data: Any) -> None: ...


def _sizes(rng: random.Random, ranges: list[tuple[int, int]]) -> int:
    low, high = rng.choice(ranges)
    return rng.randint(low, high)


def _stream_in(handle: IO[bytes], data: bytes) -> None:
    for start in range(0, len(data), MiB):  # a stream written as a program would
        handle.write(data[start : start + MiB])


def _create_job(store: JobStore, say: Say, *, count: int) -> None:
    for step in range(count):
        job = JobDescription(jobName="crash")
        job_id = store.assign_job_id(job)
        job.tag, job.payload = job_id, text(job_id)
        say("begin", step, id=job_id)
        store.create_job(job)
        say("done", step, id=job_id)


def _batch(store: JobStore, say: Say, *, count: int, size: int) -> None:
    for step in range(count):
        jobs = [JobDescription(jobName="crash") for _ in range(size)]
        for job in jobs:
            job_id = store.assign_job_id(job)
            job.tag, job.payload = job_id, text(job_id)
        say("begin", step, ids=[job.jobStoreID for job in jobs])
        with store.batch():
            for job in jobs:
                store.create_job(job)
        say("done", step)


def _update_job(store: JobStore, say: Say, *, job_id: str, start: int, count: int) -> None:
    job = store.load_job(job_id)
    for step in range(count):
        version = start + step
        job.tag = f"{job_id}-{version}"
        job.payload = text(job.tag)
        say("begin", step, tag=job.tag)
        store.update_job(job)
        say("done", step, tag=job.tag)


def _deleting(delete: Callable[[str], None]) -> Callable[..., None]:
    def run(store: JobStore, say: Say, *, ids: list[str]) -> None:
        del store
        for step, item in enumerate(ids):
            say("begin", step, id=item)
            delete(item)
            say("done", step, id=item)

    return run


def _contents(seed: str, sizes: list[tuple[int, int]], count: int) -> list[tuple[str, bytes]]:
    """The tags and contents of ``count`` writes, made before the loop starts.

    Made ahead, so that a step is the store call and little else, and a
    kill aimed at a step lands inside the call most of the time.
    """
    rng = random.Random(seed)
    tags = [f"{seed}-{step}" for step in range(count)]
    return [(tag, content(tag, _sizes(rng, sizes))) for tag in tags]


def _write_file(
    store: JobStore,
    say: Say,
    *,
    owner: str | None,
    seed: str,
    sizes: list[tuple[int, int]],
    count: int,
    scratch: str,
    via: str = "write_file",
) -> None:
    """Write files from local files, with ``write_file`` or ``import_file`` (``via``)."""
    made = []
    for tag, data in _contents(seed, sizes, count):
        local = os.path.join(scratch, f"{tag}.bin")
        with open(local, "wb") as out:
            out.write(data)
        made.append((tag, local, len(data), digest(data)))
    say("ready")
    for step, (tag, local, size, check) in enumerate(made):
        say("begin", step, tag=tag, size=size)
        cleanup = owner is not None and step % 2 == 0
        if via == "import_file":
            file_id = store.import_file(local)
        else:
            file_id = store.write_file(local, job_id=owner, cleanup=cleanup)
        say("done", step, id=str(file_id), digest=check)


def _write_file_stream(
    store: JobStore,
    say: Say,
    *,
    owner: str | None,
    seed: str,
    sizes: list[tuple[int, int]],
    count: int,
) -> None:
    made = [(tag, data, digest(data)) for tag, data in _contents(seed, sizes, count)]
    say("ready")
    for step, (tag, data, check) in enumerate(made):
        say("begin", step, tag=tag, size=len(data))
        cleanup = owner is not None and step % 2 == 0
        with store.write_file_stream(owner, cleanup=cleanup, basename="s.bin") as (
            handle,
            file_id,
        ):
            _stream_in(handle, data)
        say("done", step, id=str(file_id), digest=check)


def _versions(
    write: Callable[[JobStore, str, bytes], None],
) -> Callable[..., None]:
    """An operation that writes versions ``start``, ``start + 1`` … of one thing named ``name``."""

    def run(
        store: JobStore,
        say: Say,
        *,
        name: str,
        start: int,
        seed: str,
        sizes: list[tuple[int, int]],
        count: int,
    ) -> None:
        rng = random.Random(seed)
        made = []
        for version in range(start, start + count):
            data = content(f"v{version}", _sizes(rng, sizes))
            made.append((f"v{version}", data, digest(data)))
        say("ready")
        for step, (tag, data, check) in enumerate(made):
            say("begin", step, tag=tag, size=len(data))
            write(store, name, data)
            say("done", step, tag=tag, digest=check)

    return run


def _update_file(
    store: JobStore,
    say: Say,
    *,
    name: str,
    start: int,
    seed: str,
    sizes: list[tuple[int, int]],
    count: int,
    scratch: str,
) -> None:
    """Versions ``start``, ``start + 1`` … of the file ``name``, each from a local file."""
    rng = random.Random(seed)
    made = []
    for version in range(start, start + count):
        data = content(f"v{version}", _sizes(rng, sizes))
        local = os.path.join(scratch, f"{seed}-v{version}.bin")
        with open(local, "wb") as out:
            out.write(data)
        made.append((f"v{version}", local, len(data), digest(data)))
    say("ready")
    for step, (tag, local, size, check) in enumerate(made):
        say("begin", step, tag=tag, size=size)
        store.update_file(name, local)
        say("done", step, tag=tag, digest=check)


def _update_stream(store: JobStore, file_id: str, data: bytes) -> None:
    with store.update_file_stream(file_id) as handle:
        _stream_in(handle, data)


def _write_shared(store: JobStore, name: str, data: bytes) -> None:
    with store.write_shared_file_stream(name) as handle:
        _stream_in(handle, data)


def _get_empty(store: JobStore, say: Say, *, owner: str | None, count: int) -> None:
    for step in range(count):
        say("begin", step)
        cleanup = owner is not None and step % 2 == 0
        file_id = store.get_empty_file_store_id(owner, cleanup=cleanup, basename="empty")
        say("done", step, id=str(file_id))


def _write_logs(
    store: JobStore, say: Say, *, seed: str, sizes: list[tuple[int, int]], count: int
) -> None:
    rng = random.Random(seed)
    for step in range(count):
        tag = f"{seed}-{step}"
        data = content(tag, _sizes(rng, sizes))
        say("begin", step, tag=tag)
        store.write_logs(data)
        say("done", step, tag=tag)


def _read_logs(store: JobStore, say: Say, *, pause: float) -> None:
    delivered = 0

    def deliver(handle: IO[bytes]) -> None:
        nonlocal delivered
        data = handle.read()
        say("done", delivered, tag=data[:200].split(b" ")[1].decode(), digest=digest(data))
        delivered += 1
        time.sleep(pause)  # a consumer that does something with each message

    say("begin", -1)  # the call as a whole: "archived" ends it, each "done" is a delivery
    count = store.read_logs(deliver)
    say("archived", -1, count=count)


def _lifecycle(action: str) -> Callable[..., None]:
    def run(store: None, say: Say, *, locators: list[str], options: dict[str, Any]) -> None:
        del store
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            places = [JobStore(locator, **options) for locator in locators]
        say("ready")  # the store objects are made: a step is the call alone
        for step, (locator, place) in enumerate(zip(locators, places, strict=True)):
            say("begin", step, locator=locator)
            getattr(place, action)()
            say("done", step, locator=locator)

    return run


#: What a child can be asked to run, by name; each loops over steps, reporting each.
OPERATIONS: dict[str, Callable[..., None]] = {
    "create_job": _create_job,
    "batch": _batch,
    "update_job": _update_job,
    "write_file": _write_file,
    "import_file": functools.partial(_write_file, via="import_file"),
    "write_file_stream": _write_file_stream,
    "update_file": _update_file,
    "update_file_stream": _versions(_update_stream),
    "get_empty_file_store_id": _get_empty,
    "write_shared_file_stream": _versions(_write_shared),
    "write_logs": _write_logs,
    "read_logs": _read_logs,
    "initialize": _lifecycle("initialize"),
    "destroy": _lifecycle("destroy"),
}
#: Operations that make their contents first, and say "ready" when they have.
PREPARED = frozenset(
    {
        "write_file",
        "import_file",
        "write_file_stream",
        "update_file",
        "update_file_stream",
        "write_shared_file_stream",
        "initialize",
        "destroy",
    }
)
#: Operations whose store is not opened first: they make or remove stores themselves.
LIFECYCLE = frozenset({"initialize", "destroy"})


def child(
    op: str, locator: str, options: dict[str, Any], report: str, params: dict[str, Any]
) -> None:
    """Run operation ``op`` on the store at ``locator``, reporting each step to ``report``.

    Runs in the child process until it is killed: after the loop, it waits.

    Parameters
    ----------
    op
        A name in :data:`OPERATIONS`, or ``delete_job`` or ``delete_file``.
    locator, options
        The store's locator and storage options.
    report
        The file events are appended to, one JSON line each.
    params
        The operation's keyword arguments.
    """
    fd = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def say(event: str, step: int | None = None, **data: Any) -> None:
        line = {"e": event, "t": time.monotonic(), "step": step, **data}
        os.write(fd, (json.dumps(line) + "\n").encode())  # one write: whole lines only

    try:
        store: JobStore | None = None
        if op not in LIFECYCLE:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                store = JobStore(locator, **options)
            store.resume()
        operations = dict(OPERATIONS)
        if store is not None:
            operations["delete_job"] = _deleting(store.delete_job)
            operations["delete_file"] = _deleting(store.delete_file)
        if op not in PREPARED:
            say("ready")
        operations[op](store, say, **params)
        say("idle")
    except BaseException:
        say("error", trace=traceback.format_exc())
        raise
    while True:
        time.sleep(1)
