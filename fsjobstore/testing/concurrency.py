"""Concurrency between processes: separate interpreters, each with its own store object.

Threads share one client, one connection pool and, on the memory backend, one
lock; processes share nothing but the storage itself, as the workers of a real
workflow do. Every child is a ``spawn``-ed interpreter running
:mod:`fsjobstore.testing.workers`; the pool is started once per test class.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .. import JobDescription, JobStore
from . import workers
from .base import ContractBase
from .target import Target

#: Processes racing each other.
N = 4
#: Rounds of the one-winner race.
ROUNDS = 5
#: Increments per process in the lost-update test.
INCREMENTS = 10
#: Log messages the readers race for.
MESSAGES = 200


def racing_pool(pool: workers.Pool, target: Target, store: JobStore) -> workers.Pool:
    """Return the pool, once every child has opened its own store on the target.

    Skips where processes cannot share a store, or where the backend cannot
    detect a concurrent writer.
    """
    if not target.processes:
        pytest.skip(f"separate processes cannot share a {target.backend} store")
    if not store.detects_concurrent_updates:
        pytest.skip(f"{type(store.fs).__name__} has no conditional writes: last writer wins")
    seen = pool.run("describe", target.locator, target.options)
    # Each child reached the store through the same filesystem and backend as
    # this process (a client may pick another class by environment).
    expected = {"fs": type(store.fs).__name__, "backend": type(store._backend).__name__}
    assert seen == [expected] * N
    return pool


class ConcurrencyContract(ContractBase):
    """Writers in separate processes: one winner per race, no lost update."""

    @pytest.fixture(scope="class")
    @classmethod
    def pool(cls) -> Iterator[workers.Pool]:
        """N spawned children, started on first use and shared by this class's tests."""
        children = workers.Pool(N)
        yield children
        children.close()

    def test_one_update_wins_per_round(
        self, pool: workers.Pool, target: Target, store: JobStore, reader: JobStore
    ) -> None:
        children = racing_pool(pool, target, store)
        job = JobDescription(jobName="contested")
        job.history = []
        store.create_job(job)
        job_id = job.jobStoreID or ""
        outcomes = children.run(
            "race_updates", target.locator, target.options, job_id=job_id, rounds=ROUNDS
        )
        winners = []
        for round_ in range(ROUNDS):
            results = [outcomes[child][round_] for child in range(N)]
            assert sorted(results) == ["lost"] * (N - 1) + ["won"], f"round {round_}: {results}"
            winners.append(results.index("won"))
        # The stored job is each round's winner's version, built on the one before.
        assert reader.load_job(job_id).history == winners

    def test_no_update_is_lost(
        self, pool: workers.Pool, target: Target, store: JobStore, reader: JobStore
    ) -> None:
        children = racing_pool(pool, target, store)
        job = JobDescription(jobName="counter")
        job.counter = 0
        store.create_job(job)
        job_id = job.jobStoreID or ""
        conflicts = children.run(
            "increment", target.locator, target.options, job_id=job_id, times=INCREMENTS
        )
        assert all(isinstance(c, int) and c >= 0 for c in conflicts)
        assert reader.load_job(job_id).counter == N * INCREMENTS, f"retries per child: {conflicts}"

    def test_one_create_wins(
        self, pool: workers.Pool, target: Target, store: JobStore, reader: JobStore
    ) -> None:
        children = racing_pool(pool, target, store)
        job_ids = [f"contested-{i}" for i in range(ROUNDS)]
        outcomes = children.run("race_creates", target.locator, target.options, job_ids=job_ids)
        for number, job_id in enumerate(job_ids):
            results = [outcomes[child][number] for child in range(N)]
            assert sorted(results) == ["lost"] * (N - 1) + ["won"], f"{job_id}: {results}"
            # The stored job is the winner's, not a loser's written over it.
            assert reader.load_job(job_id).jobName == f"worker-{results.index('won')}"
        assert {j.jobStoreID for j in reader.jobs()} == set(job_ids)

    def test_readers_at_once_deliver_each_message_once(
        self, pool: workers.Pool, target: Target, store: JobStore, reader: JobStore
    ) -> None:
        children = racing_pool(pool, target, store)
        messages = {f"message {i}" for i in range(MESSAGES)}
        for message in sorted(messages):
            store.write_logs(message)
        delivered = children.run("read_logs", target.locator, target.options)
        every = [message for batch in delivered for message in batch]
        assert sorted(every) == sorted(messages), "a message was lost or delivered twice"
        assert reader.read_logs(lambda handle: None) == 0
        assert reader.read_logs(lambda handle: None, read_all=True) == MESSAGES
