"""Processes killed with SIGKILL in the middle of a store operation: both sides.

The child side
--------------
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
own events.

The parent side
---------------
:class:`Crasher` starts children from a fork server that has imported this
module (and with it fsjobstore and the storage clients) once: a child is a
real process of its own, forked in about 20 ms instead of the second or two
a fresh interpreter takes here, so a test can afford many kills.
:meth:`Crasher.kill` waits until the child has finished a chosen number of
steps, then lets a chosen fraction of one step's duration pass (both drawn
from the crasher's seeded random generator) and kills the child with
SIGKILL: the kill lands at a point spread over the next step, inside its
store call most of the time.

Contents are self-describing (:func:`content`): a header names the content's
tag and size, so any stored bytes can be checked whole on their own
(:func:`tag_of`), without knowing which write they came from.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import multiprocessing
import os
import random
import signal
import statistics
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import IO, Any, Protocol

from fsjobstore import JobDescription, JobStore

__all__ = [
    "Crasher",
    "MiB",
    "Round",
    "Torn",
    "child",
    "content",
    "digest",
    "tag_of",
    "text",
]

MiB = 1024 * 1024
#: Seconds a child may take to reach the point where it is to be killed.
TIMEOUT = 120.0
#: Seconds between two looks at a child's report.
POLL = 0.001


# -- contents: self-describing, so that part of one is told from the whole ---------------


class Torn(AssertionError):
    """Stored bytes that are not one whole content written by a child."""


def content(tag: str, size: int) -> bytes:
    """Return the content of ``size`` bytes named ``tag``.

    A header line ``crash TAG SIZE`` then bytes that follow from the tag, so
    contents with different tags differ everywhere, and a truncated or mixed
    one fails :func:`tag_of`.

    Parameters
    ----------
    tag
        A name with no whitespace.
    size
        The content's length in bytes, header included.

    Returns
    -------
    bytes
        The content.
    """
    head = f"crash {tag} {size}\n".encode()
    if size < len(head):
        raise ValueError(f"{size} bytes cannot hold the header {head!r}")
    block = hashlib.sha256(tag.encode()).digest() * 32  # 1 KiB
    body = size - len(head)
    return head + (block * (body // len(block) + 1))[:body]


def tag_of(data: bytes) -> str:
    """Return the tag of ``data`` if it is one whole :func:`content`.

    Raises
    ------
    Torn
        ``data`` is not a whole content: truncated, extended, mixed or foreign.
    """
    head, _, _ = data[:200].partition(b"\n")
    parts = head.split(b" ")
    if len(parts) != 3 or parts[0] != b"crash" or not parts[2].isdigit():
        raise Torn(f"no content header in {data[:60]!r} ({len(data)} bytes)")
    tag = parts[1].decode()
    if content(tag, int(parts[2])) != data:
        raise Torn(f"content {tag!r} of {int(parts[2])} bytes stored as {len(data)} other bytes")
    return tag


def digest(data: bytes) -> str:
    """Return a short digest of ``data``."""
    return hashlib.sha256(data).hexdigest()[:20]


def text(tag: str, length: int = 2048) -> str:
    """Return a job's payload: ``length`` characters that follow from ``tag``."""
    seed = hashlib.sha256(tag.encode()).hexdigest()
    return (seed * (length // len(seed) + 1))[:length]


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


# -- the parent's side -------------------------------------------------------------------

Event = dict[str, Any]


@functools.cache
def _context() -> ForkServerContext:
    """The fork server children come from, started once, with this module imported."""
    context = multiprocessing.get_context("forkserver")
    # Only heeded if no fork server runs yet; children import what is missing
    # otherwise, which is slower but the same.
    context.set_forkserver_preload([__name__, "s3fs"])
    return context


class _Report:
    """A child's report file, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        new = [json.loads(line) for line in lines]
        self.events += new
        return new


@dataclass
class Round:
    """One child, killed: what it reported, and where the kill was aimed.

    Attributes
    ----------
    number
        The round's number within its test.
    after
        Finished steps the kill waited for.
    fraction
        How far into the next step (as a fraction of one step's duration)
        the kill was aimed.
    events
        Everything the child reported, in order (a line cut by the kill is
        not one).
    cycle
        Seconds one step took (the median of this round's, or the estimate given).
    late
        Seconds the kill came after the point aimed at (this process learns
        of a finished step a little after the child reports it).
    """

    number: int
    after: int
    fraction: float
    events: list[Event] = field(default_factory=list)
    cycle: float = 0.0
    late: float = 0.0

    def of(self, kind: str) -> list[Event]:
        """The events of one kind, in order."""
        return [e for e in self.events if e["e"] == kind]

    @property
    def done(self) -> list[Event]:
        """The steps the child finished."""
        return self.of("done")

    @property
    def in_flight(self) -> Event | None:
        """The ``begin`` event of the step the kill interrupted, if one had begun."""
        finished = {e["step"] for e in self.events if e["e"] in ("done", "archived")}
        begun = [e for e in self.of("begin") if e["step"] not in finished]
        assert len(begun) <= 1, f"more than one step in flight: {begun}"
        return begun[0] if begun else None

    @property
    def idle(self) -> bool:
        """Whether the child ran out of work before the kill."""
        return bool(self.of("idle"))

    def short(self) -> str:
        """Where the kill was aimed and where it landed, in a few characters."""
        landed = "in" if self.in_flight else "idle" if self.idle else "between"
        return f"{self.after}+{self.fraction:.2f}:{len(self.done)}/{landed}/{self.late * 1e3:.0f}ms"

    def describe(self) -> str:
        """Where the kill was aimed, for failure messages."""
        return (
            f"round {self.number}: killed {self.fraction:.2f} of a step "
            f"({self.cycle * 1000:.1f} ms) after step {self.after}, {self.late * 1000:.1f} ms "
            "late; "
            f"{len(self.done)} finished, in flight: {self.in_flight}"
        )


@dataclass
class Crasher:
    """Runs children on one store and kills them at seeded random points.

    Parameters
    ----------
    locator, options
        The store the children open.
    scratch
        A folder for the children's report files.
    seed
        Seeds the random generator that picks every kill point.
    """

    locator: str
    options: dict[str, Any]
    scratch: Path
    seed: str
    rounds: list[Round] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.scratch.mkdir(parents=True, exist_ok=True)

    def kill(
        self,
        op: str,
        params: dict[str, Any],
        *,
        after: Iterable[int] | int,
        cycle: float | None = None,
        fraction: float | None = None,
        locator: str | None = None,
    ) -> Round:
        """Start a child running ``op``, kill it, and return what it reported.

        Parameters
        ----------
        op
            The operation (see :func:`child`).
        params
            Its keyword arguments.
        after
            The finished steps to wait for, or a choice of them (drawn at random).
        cycle
            A step's duration in seconds; by default the median of this
            round's finished steps, or where none finished the last round's
            (50 ms for the first).
        fraction
            How far into the next step to aim, as a fraction of ``cycle``;
            drawn from [0, 1) by default.
        locator
            Another store than the crasher's (or none, for ``initialize``).

        Returns
        -------
        Round
            The child's events, up to the kill.
        """
        choices = [after] if isinstance(after, int) else list(after)
        chosen = Round(len(self.rounds), self.rng.choice(choices), self.rng.random())
        if fraction is not None:
            chosen.fraction = fraction
        report = self.scratch / f"{op}-{chosen.number}.jsonl"
        process = _context().Process(
            target=child,
            args=(op, locator or self.locator, self.options, str(report), params),
            name=f"fsjobstore-crash-{op}-{chosen.number}",
            daemon=True,
        )
        watch = _Report(report)
        process.start()
        try:
            anchor = self._wait(process, watch, chosen.after)
            last = self.rounds[-1].cycle if self.rounds else 0.05
            chosen.cycle = cycle or _cycle(watch.events) or last
            aim = anchor["t"] + chosen.fraction * chosen.cycle
            if aim > time.monotonic():
                time.sleep(aim - time.monotonic())
            process.kill()
            chosen.late = max(0.0, time.monotonic() - aim)
        finally:
            process.kill()  # (again, if the wait failed: it is not reaped before the join)
            process.join(30)
        watch.poll()
        chosen.events = watch.events
        assert process.exitcode == -signal.SIGKILL, f"{op}: exit code {process.exitcode}"
        self.rounds.append(chosen)
        return chosen

    def _wait(self, process: Any, watch: _Report, after: int) -> Event:
        """Wait for ``after`` finished steps (or the loop's end); return the event to time from."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in watch.poll():
                if event["e"] == "error":
                    raise AssertionError(f"the child failed:\n{event['trace']}")
                if event["e"] == "idle":
                    return event
            done = [e for e in watch.events if e["e"] == "done"]
            if after == 0 and watch.events:
                return watch.events[0]  # "ready"
            if after and len(done) >= after:
                return done[after - 1]
            assert process.is_alive(), f"the child died: exit code {process.exitcode}"
            assert time.monotonic() < deadline, f"no step {after} in {TIMEOUT:.0f} s"
            time.sleep(POLL)

    def summary(self) -> str:
        """How many kills there were, how many interrupted a step, and each one's point."""
        mid = sum(r.in_flight is not None for r in self.rounds)
        each = ", ".join(r.short() for r in self.rounds)
        return f"{len(self.rounds)} kills (seed {self.seed!r}), {mid} inside a step [{each}]"


def _cycle(events: list[Event]) -> float | None:
    """The median time between two finished steps (from ``ready`` for the first), if any."""
    times = [e["t"] for e in events if e["e"] in ("ready", "done")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return statistics.median(gaps) if gaps else None
