"""What the child processes of the contract suite run, and the pool that starts them.

Children are started with multiprocessing's ``spawn`` context: fresh
interpreters that import this module by name, open their own
:class:`~fsjobstore.JobStore` on the locator they are sent, and run the named
task on it. A :class:`Pool` starts its children once and reuses them for every
task, so only its first task pays their start-up. Every child shares one barrier,
passed when it starts (multiprocessing shares synchronisation primitives only
by inheritance), so a task can make the children act at once.

Children inherit the parent's environment, so settings a test suite makes
there (emulator endpoints, client switches) reach them. The ``describe``
task reports what a child sees, for the tests to check.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import queue
import time
import traceback
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import IO, Any

from .. import ConcurrentFileModificationException, JobDescription, JobStore

#: Seconds a child waits at the barrier, and a task may take, before giving up.
TIMEOUT = 120.0
#: Attempts at one increment before a child decides it never wins.
MAX_ATTEMPTS = 1000
MiB = 1024 * 1024

#: (task name, locator, storage options, keyword arguments); None stops a child.
Task = tuple[str, str, dict[str, Any], dict[str, Any]]
#: (child index, error traceback or None, the task's result).
Result = tuple[int, str | None, Any]


class WorkerError(RuntimeError):
    """A child process failed a task; the message holds its traceback."""


# -- tasks: each runs in a child, on its own store object ---------------------------


def describe(index: int, store: JobStore, barrier: Barrier) -> dict[str, str]:
    """Report what this child sees: its filesystem and backend classes."""
    del index, barrier
    return {"fs": type(store.fs).__name__, "backend": type(store._backend).__name__}


def race_updates(
    index: int, store: JobStore, barrier: Barrier, *, job_id: str, rounds: int
) -> list[str]:
    """Each round: load the job, wait for every child, update it; "won" or "lost"."""
    outcomes = []
    for _ in range(rounds):
        job = store.load_job(job_id)
        job.history = [*job.history, index]
        barrier.wait(TIMEOUT)  # every child holds the same version now
        try:
            store.update_job(job)
            outcomes.append("won")
        except ConcurrentFileModificationException:
            outcomes.append("lost")
        barrier.wait(TIMEOUT)  # every update is done before the next load
    return outcomes


def increment(index: int, store: JobStore, barrier: Barrier, *, job_id: str, times: int) -> int:
    """Add 1 to the job's counter ``times`` times, retrying on conflicts; return the retries."""
    del index
    conflicts = 0
    barrier.wait(TIMEOUT)
    for _ in range(times):
        for _attempt in range(MAX_ATTEMPTS):
            job = store.load_job(job_id)
            job.counter += 1
            try:
                store.update_job(job)
                break
            except ConcurrentFileModificationException:
                conflicts += 1
        else:
            raise RuntimeError(f"no update won in {MAX_ATTEMPTS} attempts")
    return conflicts


def race_creates(index: int, store: JobStore, barrier: Barrier, *, job_ids: list[str]) -> list[str]:
    """For each ID: wait for every child, then create a job with it; "won" or "lost"."""
    outcomes = []
    for job_id in job_ids:
        job = JobDescription(jobName=f"worker-{index}", jobStoreID=job_id)
        barrier.wait(TIMEOUT)
        try:
            store.create_job(job)
            outcomes.append("won")
        except ConcurrentFileModificationException:
            outcomes.append("lost")
    return outcomes


def read_logs(index: int, store: JobStore, barrier: Barrier) -> list[str]:
    """Wait for every child, then deliver the pending log messages; return what came."""
    del index
    delivered: list[str] = []
    barrier.wait(TIMEOUT)
    store.read_logs(lambda handle: delivered.append(handle.read().decode()))
    return delivered


def chunks(total: int, seed: str, chunk: int = MiB) -> Iterator[bytes]:
    """``total`` bytes in ``chunk``-sized pieces, each distinct, never all held at once."""
    base = hashlib.sha256(seed.encode()).digest() * (chunk // 32)
    for number, start in enumerate(range(0, total, chunk)):
        yield (number.to_bytes(8, "big") + base[8:])[: min(chunk, total - start)]


@contextmanager
def _traced(peaks: dict[str, int], step: str) -> Iterator[None]:
    """Record in ``peaks[step]`` tracemalloc's peak, in bytes, over the block."""
    tracemalloc.start()
    try:
        yield
        peaks[step] = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _digest(handle: IO[bytes], chunk: int) -> str:
    digest = hashlib.sha256()
    while data := handle.read(chunk):
        digest.update(data)
    return digest.hexdigest()


def measure_memory(
    index: int, store: JobStore, barrier: Barrier, *, op: str, size: int, chunk: int, scratch: str
) -> dict[str, Any]:
    """Move ``size`` bytes through the store with operation ``op``, tracing memory.

    ``op`` is "stream" (write and read a stream), "update" (update a stream)
    or "local" (write and read a local file in ``scratch``). Returns the peak
    of each step in bytes, the digest of what went in and of what came back.
    """
    del index, barrier
    sent = hashlib.sha256()
    peaks: dict[str, int] = {}

    def stream_in(handle: IO[bytes]) -> None:
        for data in chunks(size, op, chunk):
            handle.write(data)
            sent.update(data)

    if op == "stream":
        with _traced(peaks, "write_file_stream"), store.write_file_stream() as (handle, file_id):
            stream_in(handle)
        with _traced(peaks, "read_file_stream"), store.read_file_stream(file_id) as handle:
            received = _digest(handle, chunk)
    elif op == "update":
        with store.write_file_stream() as (handle, file_id):
            handle.write(b"old content")
        with _traced(peaks, "update_file_stream"), store.update_file_stream(file_id) as handle:
            stream_in(handle)
        with store.read_file_stream(file_id) as handle:
            received = _digest(handle, chunk)
    elif op == "local":
        source, copy = os.path.join(scratch, "in.bin"), os.path.join(scratch, "out.bin")
        with open(source, "wb") as out:
            stream_in(out)
        with _traced(peaks, "write_file"):
            file_id = store.write_file(source)
        with _traced(peaks, "read_file"):
            store.read_file(file_id, copy)
        with open(copy, "rb") as back:
            received = _digest(back, chunk)
    else:
        raise ValueError(f"unknown operation {op!r}")
    return {"peaks": peaks, "sent": sent.hexdigest(), "received": received}


TASKS: dict[str, Callable[..., Any]] = {
    "describe": describe,
    "race_updates": race_updates,
    "increment": increment,
    "race_creates": race_creates,
    "read_logs": read_logs,
    "measure_memory": measure_memory,
}


# -- the child's loop -----------------------------------------------------------


def serve(index: int, barrier: Barrier, tasks: Queue[Task | None], results: Queue[Result]) -> None:
    """Run tasks from ``tasks`` until None arrives, putting each outcome on ``results``."""
    stores: dict[tuple[str, str], JobStore] = {}
    while (task := tasks.get()) is not None:
        name, locator, options, kwargs = task
        # The same locator with other options (another test's base, say) is
        # another place.
        place = (locator, json.dumps(options, sort_keys=True, default=repr))
        try:
            store = stores.get(place)
            if store is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    store = JobStore(locator, **options)
                store.resume()
                stores[place] = store
            results.put((index, None, TASKS[name](index, store, barrier, **kwargs)))
        except BaseException:  # reported to the parent, which fails the test
            results.put((index, traceback.format_exc(), None))


# -- the parent's side ------------------------------------------------------------


class Pool:
    """``size`` spawned children, started on first use and reused for every task."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._context = multiprocessing.get_context("spawn")
        self._barrier: Barrier | None = None
        self._tasks: list[Queue[Task | None]] = []
        self._results: Queue[Result] | None = None
        self._children: list[SpawnProcess] = []

    def _start(self) -> tuple[Barrier, Queue[Result]]:
        if self._barrier is None or self._results is None:
            self._barrier = self._context.Barrier(self.size)
            self._results = self._context.Queue()
            self._tasks = [self._context.Queue() for _ in range(self.size)]
            self._children = [
                self._context.Process(
                    target=serve,
                    args=(i, self._barrier, self._tasks[i], self._results),
                    name=f"fsjobstore-test-worker-{i}",
                    daemon=True,
                )
                for i in range(self.size)
            ]
            for child in self._children:
                child.start()
        return self._barrier, self._results

    def run(self, task: str, locator: str, options: dict[str, Any], **kwargs: Any) -> list[Any]:
        """Run ``task`` in every child at once; return the results in child order.

        Raises
        ------
        WorkerError
            A child raised (its traceback is in the message) or took too long.
        """
        barrier, results = self._start()
        for tasks in self._tasks:
            tasks.put((task, locator, options, kwargs))
        found: dict[int, Any] = {}
        errors: list[str] = []
        deadline = time.monotonic() + TIMEOUT
        while len(found) + len(errors) < self.size:
            try:
                index, error, result = results.get(timeout=1.0)
            except queue.Empty:
                dead = [c.exitcode for c in self._children if not c.is_alive()]
                if dead or time.monotonic() > deadline:
                    self.close()  # a child still busy would answer the next task
                    why = f"exit codes {dead}" if dead else f"no answer in {TIMEOUT:.0f} s"
                    raise WorkerError(f"{task}: {why}") from None
                continue
            if error is None:
                found[index] = result
            else:
                errors.append(f"child {index}:\n{error}")
                barrier.abort()  # children waiting for the failed one give up now
        if errors:
            barrier.reset()  # ready for the next task
            raise WorkerError("\n".join(errors))
        return [found[i] for i in range(self.size)]

    def close(self) -> None:
        """Stop the children: ask each, then terminate any that lingers."""
        for tasks in self._tasks:
            tasks.put(None)
        for child in self._children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)
        self._children, self._tasks, self._barrier, self._results = [], [], None, None
