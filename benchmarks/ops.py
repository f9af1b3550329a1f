"""The operations measured, written once against ``systems.System``.

Each operation gets a fresh store per system (``setup``), then each repetition
calls ``prepare`` (not timed) and times ``body``, taking turns between the
systems; the time is divided by the number of operations the body did.
Streams are timed the same way and reported in MB/s.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from systems import MiB, System

Prepared = Any


@dataclass
class Op:
    """One measured operation: ``body(system, prepared)`` does ``count`` operations."""

    name: str
    body: Callable[[System, Prepared], Any]
    count: int
    prepare: Callable[[System], Prepared] = lambda system: None
    setup: Callable[[System], None] = lambda system: None
    small: bool = True  # a small-object operation (the 2x-of-floor target on tmpfs)
    mb: float = 0.0  # megabytes moved by body, for streams (reported in MB/s)


def _sample(op: Op, system: System) -> float:
    prepared = op.prepare(system)
    start = time.perf_counter()
    op.body(system, prepared)
    elapsed = time.perf_counter() - start
    return op.mb / elapsed if op.mb else elapsed / op.count * 1e6


def _summary(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        kind: {"median": statistics.median(s), "min": min(s), "max": max(s)}
        for kind, s in samples.items()
    }


def _orders(kinds: list[str], repeats: int) -> Iterator[tuple[int, list[str]]]:
    # Round 0 is the warm-up; each round starts one system later than the last.
    for rep in range(repeats + 1):
        yield rep, kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]


def timed(systems: dict[str, System], op: Op, repeats: int) -> dict[str, dict[str, float]]:
    """Median, min and max of µs per operation (or MB/s) per system, after a warm-up.

    The systems take turns within each repetition, in a rotating order, so a
    drift of the machine (writeback, a neighbour's load) hits them alike.
    """
    for system in systems.values():
        op.setup(system)
    samples: dict[str, list[float]] = {kind: [] for kind in systems}
    for rep, order in _orders(list(systems), repeats):
        for kind in order:
            sample = _sample(op, systems[kind])
            if rep:
                samples[kind].append(sample)
    return _summary(samples)


def timed_fresh(
    build: Callable[[list[str]], AbstractContextManager[dict[str, System]]],
    kinds: list[str],
    op: Op,
    repeats: int,
) -> dict[str, dict[str, float]]:
    """As :func:`timed`, on fresh systems each repetition, made in the rotating order too.

    On local disk (ext4 on a virtual disk), writes into the store made first
    ran up to 5x faster than the same writes into one made next, whichever
    system it was: ``build(order)`` makes them in ``order``, so each system is
    made first as often as the others.
    """
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for rep, order in _orders(kinds, repeats):
        with build(order) as systems:
            for kind in order:
                op.setup(systems[kind])
            for kind in order:
                sample = _sample(op, systems[kind])
                if rep:
                    samples[kind].append(sample)
    return _summary(samples)


def operations(n: int, batch: int, stream_mib: int, work: Path) -> list[Op]:  # noqa: PLR0915
    """Every operation, ``n`` at a time (``batch`` jobs in one batch())."""
    payload = work / "payload.bin"
    payload.write_bytes(os.urandom(4096))
    local = str(payload)
    # A destination per system: sharing one, a system would replace the file
    # (or link) the one before made, and pay for its writeback.
    outs: dict[System, str] = {}

    def out(system: System) -> str:
        path = outs.get(system)
        if path is None:  # made once: building it costs as much as a small read
            path = outs[system] = str(work / f"out-{len(outs)}.bin")
        return path

    block = os.urandom(MiB)
    # Keyed by the system itself: an id() is reused once a system is freed.
    held: dict[System, list[str]] = {}

    def create_n(system: System, count: int = n) -> list[str]:
        return [system.create(system.new_job()) for _ in range(count)]

    def create_only(system: System) -> None:
        create_n(system)

    def create_held(system: System) -> None:
        held[system] = create_n(system)

    def write_held(system: System) -> None:
        held[system] = [system.write_file(local) for _ in range(n)]

    def new_jobs(system: System, count: int = n) -> list[Any]:
        return [system.new_job() for _ in range(count)]

    def create(system: System, jobs: list[Any]) -> None:
        for job in jobs:
            system.create(job)

    def batched(system: System, jobs: list[Any]) -> None:
        with system.batch():
            for job in jobs:
                system.create(job)

    def created(system: System) -> list[Any]:
        return [system.load(job_id) for job_id in create_n(system)]

    def update(system: System, jobs: list[Any]) -> None:
        for job in jobs:
            system.update(job)

    def load(system: System, _: None) -> None:
        for job_id in held[system]:
            system.load(job_id)

    def listing(system: System, _: None) -> None:
        assert system.list_jobs() == n

    def delete(system: System, job_ids: list[str]) -> None:
        for job_id in job_ids:
            system.delete(job_id)

    cleanup_jobs = max(n // 10, 5)

    def with_cleanup_files(system: System) -> list[str]:
        job_ids = create_n(system, cleanup_jobs)
        for job_id in job_ids:
            for _i in range(20):
                system.write_file(local, job_id, cleanup=True)
        return job_ids

    def write_files(system: System, _: None) -> None:
        for _i in range(n):
            system.write_file(local)

    def read_files(system: System, _: None) -> None:
        for file_id in held[system]:
            system.read_file(file_id, out(system))

    def link_files(system: System, _: None) -> None:
        for file_id in held[system]:
            system.read_link(file_id, out(system))

    def stream_files(system: System, _: None) -> None:
        for file_id in held[system]:
            system.read_stream(file_id)

    def fresh_files(system: System) -> list[str]:
        return [system.write_file(local) for _ in range(n)]

    def delete_files(system: System, file_ids: list[str]) -> None:
        for file_id in file_ids:
            system.delete_file(file_id)

    data = payload.read_bytes()

    def shared_write(system: System, _: None) -> None:
        for i in range(n):
            system.write_shared(f"s{i % 10}", data)

    def shared_setup(system: System) -> None:
        for i in range(10):
            system.write_shared(f"s{i}", data)

    def shared_read(system: System, _: None) -> None:
        for i in range(n):
            system.read_shared(f"s{i % 10}")

    def write_logs(system: System, _: None) -> None:
        for i in range(n):
            system.write_logs(f"message {i}: {'x' * 60}")

    def logged(system: System) -> None:
        write_logs(system, None)

    def read_logs(system: System, _: None) -> None:
        assert system.read_logs() == n

    def logged_and_read(system: System) -> None:
        write_logs(system, None)
        system.read_logs()

    def read_all_logs(system: System, _: None) -> None:
        assert system.read_logs(read_all=True) == n

    def stream_write(system: System, _: None) -> None:
        held[system] = [system.stream_write(block, stream_mib)]

    def stream_written(system: System) -> None:
        held[system] = [system.stream_write(block, stream_mib)]

    def stream_read(system: System, _: None) -> None:
        system.stream_read(held[system][0])

    def drop_streams(system: System) -> None:
        for file_id in held.pop(system, []):
            system.delete_file(file_id)

    mb = stream_mib * MiB / 1e6
    return [
        Op("create_job", create, n, prepare=new_jobs),
        Op("update_job", update, n, prepare=created),
        Op("load_job", load, n, setup=create_held),
        Op("jobs() per job", listing, n, setup=create_only),
        Op("delete_job", delete, n, prepare=create_n),
        Op("delete_job, 20 cleanup files", delete, cleanup_jobs, prepare=with_cleanup_files),
        Op(f"batch() of {batch} creates", batched, batch, prepare=lambda s: new_jobs(s, batch)),
        Op("write_file 4 KiB", write_files, n),
        Op("read_file 4 KiB", read_files, n, setup=write_held),
        Op("read_file 4 KiB, symlink=True", link_files, n, setup=write_held),
        Op("read_file_stream 4 KiB", stream_files, n, setup=write_held),
        Op("delete_file 4 KiB", delete_files, n, prepare=fresh_files),
        Op("shared file write 4 KiB", shared_write, n),
        Op("shared file read 4 KiB", shared_read, n, setup=shared_setup),
        Op("write_logs", write_logs, n),
        Op("read_logs", read_logs, n, prepare=logged),
        Op("read_logs(read_all=True)", read_all_logs, n, setup=logged_and_read),
        Op(
            f"stream write {stream_mib} MiB",
            stream_write,
            1,
            prepare=drop_streams,
            small=False,
            mb=mb,
        ),
        Op(
            f"stream read {stream_mib} MiB",
            stream_read,
            1,
            setup=stream_written,
            small=False,
            mb=mb,
        ),
    ]
