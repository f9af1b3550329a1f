"""Jobs: create, load, update, delete, list and batch, on every backend."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from .. import (
    ConcurrentFileModificationException,
    JobDescription,
    JobStore,
    NoSuchJobException,
)
from ..errors import InvalidIDError
from ..maintenance import summary
from .base import ContractBase
from .raw import raw_keys, raw_read
from .target import Target

BAD_JOB_IDS: list[object] = [
    "",
    "..",
    "../escape",
    "a/b",
    "/abs",
    ".hidden",
    "_reserved",
    "a\x00b",
    "x" * 129,
    "sp ace",
    None,
    123,
]


def new_job(name: str = "job", **requirements: object) -> JobDescription:
    return JobDescription(
        requirements={"memory": 2**30, "cores": 2, "disk": 2**31, "preemptible": True}
        | requirements,
        jobName=name,
        unitName=f"{name}-unit",
    )


class JobsContract(ContractBase):
    """Jobs: create, load, update, delete, list and batch."""

    def test_create_assigns_id_and_returns_same_object(
        self, store: JobStore, reader: JobStore
    ) -> None:
        job = new_job()
        assert job.jobStoreID is None
        created = store.create_job(job)
        assert created is job
        assert isinstance(job.jobStoreID, str)
        assert reader.job_exists(job.jobStoreID)

    def test_create_keeps_an_assigned_id(self, store: JobStore, reader: JobStore) -> None:
        job = new_job()
        job_id = store.assign_job_id(job)
        assert job.jobStoreID == job_id
        assert not reader.job_exists(job_id)
        store.create_job(job)
        assert job.jobStoreID == job_id
        assert reader.job_exists(job_id)
        mine = JobDescription(jobName="named", jobStoreID="my-job.1")
        store.create_job(mine)
        assert reader.load_job("my-job.1").jobName == "named"

    def test_round_trip_through_second_store(self, store: JobStore, reader: JobStore) -> None:
        job = new_job("round", gpus=[{"kind": "a100", "count": 1}])
        job.completed = True
        job.notes = {"nested": [1, 2.5, None, "x"]}
        store.create_job(job)
        loaded = reader.load_job(job.jobStoreID or "")
        assert loaded == job
        assert loaded.requirements == job.requirements
        assert (loaded.memory, loaded.cores, loaded.disk, loaded.preemptible) == (
            2**30,
            2.0,
            2**31,
            True,
        )
        assert (loaded.jobName, loaded.unitName, loaded.displayName) == (
            "round",
            "round-unit",
            "round",
        )
        assert loaded.completed is True
        assert loaded.notes == {"nested": [1, 2.5, None, "x"]}

    def test_stored_as_json_not_pickle(self, store: JobStore) -> None:
        job = store.create_job(new_job("plain"))
        doc = json.loads(raw_read(store, f"jobs/{job.jobStoreID}.json"))
        assert doc["jobName"] == "plain"
        assert doc["requirements"]["cores"] == 2

    def test_try_count_defaults_from_config(self, target: Target) -> None:
        from fsjobstore import Config

        store = target.open()
        store.initialize(Config(retryCount=5))
        assert store.create_job(new_job()).remainingTryCount == 6
        explicit = new_job()
        explicit.remainingTryCount = 1
        assert store.create_job(explicit).remainingTryCount == 1
        assert JobDescription().remainingTryCount == 2

    def test_update_round_trips(self, store: JobStore, reader: JobStore) -> None:
        job = store.create_job(new_job())
        job.remainingTryCount = 0
        job.completed = True
        store.update_job(job)
        job.jobName = "renamed"
        store.update_job(job)  # the object's version follows its own writes
        loaded = reader.load_job(job.jobStoreID or "")
        assert (loaded.remainingTryCount, loaded.completed, loaded.jobName) == (0, True, "renamed")

    def test_big_job_grows_and_shrinks_without_stale_bytes(
        self, store: JobStore, reader: JobStore
    ) -> None:
        job = store.create_job(new_job())
        job.payload = "x" * 500_000
        store.update_job(job)
        assert len(reader.load_job(job.jobStoreID or "").payload) == 500_000
        job.payload = "small"
        store.update_job(job)
        assert reader.load_job(job.jobStoreID or "").payload == "small"
        assert len(raw_read(store, f"jobs/{job.jobStoreID}.json")) < 1000

    def test_missing_job(self, store: JobStore) -> None:
        ghost = JobDescription(jobName="ghost", jobStoreID="ghost")
        with pytest.raises(NoSuchJobException, match="ghost") as info:
            store.load_job("ghost")
        assert isinstance(info.value, FileNotFoundError)
        assert store.job_exists("ghost") is False
        with pytest.raises(NoSuchJobException):
            store.update_job(ghost)
        with pytest.raises(NoSuchJobException):
            store.delete_job("ghost")
        store.delete_job("ghost", missing_ok=True)
        assert not store.job_exists("ghost")

    @pytest.mark.parametrize("bad", BAD_JOB_IDS)
    def test_malformed_job_ids_are_rejected_before_io(self, store: JobStore, bad: object) -> None:
        before = raw_keys(store)
        calls: list[Callable[[Any], object]] = [store.load_job, store.job_exists, store.delete_job]
        for call in calls:
            with pytest.raises(InvalidIDError) as info:
                call(bad)
            assert isinstance(info.value, ValueError)
            assert repr(bad) in str(info.value)
        job = new_job()
        job.jobStoreID = bad  # type: ignore[assignment]
        with pytest.raises(InvalidIDError):
            store.update_job(job)
        if bad is not None:  # None means "assign one" and "no owner" to these
            with pytest.raises(InvalidIDError):
                store.create_job(job)
            with pytest.raises(InvalidIDError), store.write_file_stream(bad):  # type: ignore[arg-type]
                pass
        assert raw_keys(store) == before

    def test_update_without_id_is_rejected(self, store: JobStore) -> None:
        with pytest.raises(InvalidIDError, match="create it first"):
            store.update_job(new_job())

    def test_unserializable_attribute_writes_nothing(
        self, store: JobStore, reader: JobStore
    ) -> None:
        job = new_job()
        job.handle = threading.Lock()
        before = raw_keys(store)
        with pytest.raises(TypeError, match="'handle'"):
            store.create_job(job)
        assert raw_keys(store) == before
        del job.handle
        store.create_job(job)
        job.when = {1, 2}
        with pytest.raises(TypeError, match="'when'"):
            store.update_job(job)
        assert not hasattr(reader.load_job(job.jobStoreID or ""), "when")

    def test_concurrent_update_is_detected(self, store: JobStore, reader: JobStore) -> None:
        if not store.detects_concurrent_updates:
            pytest.skip(f"{type(store.fs).__name__} has no conditional writes: last writer wins")
        job = store.create_job(new_job())
        mine = store.load_job(job.jobStoreID or "")
        theirs = reader.load_job(job.jobStoreID or "")
        theirs.jobName = "theirs"
        reader.update_job(theirs)
        mine.jobName = "mine"
        with pytest.raises(ConcurrentFileModificationException, match="load it again"):
            store.update_job(mine)
        assert reader.load_job(job.jobStoreID or "").jobName == "theirs"
        fresh = store.load_job(job.jobStoreID or "")
        fresh.jobName = "mine"
        store.update_job(fresh)
        assert reader.load_job(job.jobStoreID or "").jobName == "mine"

    def test_update_after_delete_raises(self, store: JobStore, reader: JobStore) -> None:
        job = store.create_job(new_job())
        reader.delete_job(job.jobStoreID or "")
        with pytest.raises(NoSuchJobException):
            store.update_job(job)
        assert not reader.job_exists(job.jobStoreID or "")

    def test_create_never_overwrites(self, store: JobStore, reader: JobStore) -> None:
        first = store.create_job(new_job("first"))
        clash = JobDescription(jobName="clash", jobStoreID=first.jobStoreID)
        with pytest.raises(ConcurrentFileModificationException, match="already stored"):
            reader.create_job(clash)
        assert store.load_job(first.jobStoreID or "").jobName == "first"

    def test_threads_racing_one_job_one_wins_per_round(
        self, store: JobStore, target: Target
    ) -> None:
        if not store.detects_concurrent_updates:
            pytest.skip(f"{type(store.fs).__name__} has no conditional writes: last writer wins")
        job = store.create_job(new_job())
        job.counter = 0
        store.update_job(job)
        stores = [target.open() for _ in range(4)]
        for s in stores:
            s.resume()
        for _ in range(5):
            copies = [s.load_job(job.jobStoreID or "") for s in stores]
            barrier = threading.Barrier(len(stores))
            outcomes: list[str] = []

            def attempt(
                s: JobStore,
                copy: JobDescription,
                barrier: threading.Barrier = barrier,
                outcomes: list[str] = outcomes,
            ) -> None:
                copy.counter += 1
                barrier.wait()
                try:
                    s.update_job(copy)
                    outcomes.append("won")
                except ConcurrentFileModificationException:
                    outcomes.append("lost")

            threads = [
                threading.Thread(target=attempt, args=pair)
                for pair in zip(stores, copies, strict=True)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(outcomes) == ["lost"] * (len(stores) - 1) + ["won"]
        assert store.load_job(job.jobStoreID or "").counter == 5

    def test_jobs_lists_every_job(self, store: JobStore, reader: JobStore) -> None:
        created = {store.create_job(new_job(f"j{i}")).jobStoreID for i in range(25)}
        assert {j.jobStoreID for j in reader.jobs()} == created
        gone = sorted(i or "" for i in created)[:5]
        for job_id in gone:
            store.delete_job(job_id)
        assert {j.jobStoreID for j in reader.jobs()} == created - set(gone)

    def test_jobs_lists_more_than_a_page(self, store: JobStore, reader: JobStore) -> None:
        # Object stores list 1,000 keys per page, and delete at most 1,000 per request.
        with store.batch():
            created = {store.create_job(new_job(f"p{i}")).jobStoreID for i in range(1005)}
        assert {j.jobStoreID for j in reader.jobs()} == created
        owner = sorted(i or "" for i in created)[0]
        files = [store.get_empty_file_store_id(owner, cleanup=True) for _ in range(3)]
        reader.delete_job(owner)
        assert not any(reader.file_exists(f) for f in files)
        assert summary(reader)["jobs"] == 1004

    def test_listed_jobs_can_be_updated(self, store: JobStore, reader: JobStore) -> None:
        store.create_job(new_job())
        (listed,) = list(reader.jobs())
        listed.remainingTryCount = 0
        reader.update_job(listed)
        assert store.load_job(listed.jobStoreID or "").remainingTryCount == 0

    def test_batch_writes_on_exit(self, store: JobStore, reader: JobStore) -> None:
        with store.batch():
            jobs = [store.create_job(new_job(f"b{i}")) for i in range(100)]
            assert not reader.job_exists(jobs[0].jobStoreID or "")
            with store.batch():  # nested batches join the outer one
                jobs.append(store.create_job(new_job("nested")))
            assert not reader.job_exists(jobs[-1].jobStoreID or "")
        assert all(reader.job_exists(j.jobStoreID or "") for j in jobs)
        assert len(list(reader.jobs())) == 101
        jobs[0].jobName = "updated after batch"
        store.update_job(jobs[0])
        assert reader.load_job(jobs[0].jobStoreID or "").jobName == "updated after batch"

    def test_batch_body_raising_writes_nothing(self, store: JobStore) -> None:
        before = raw_keys(store)
        with pytest.raises(RuntimeError, match="body failed"), store.batch():
            for i in range(10):
                store.create_job(new_job(f"b{i}"))
            raise RuntimeError("body failed")
        assert raw_keys(store) == before
        assert list(store.jobs()) == []

    def test_batch_with_an_existing_id(self, store: JobStore, reader: JobStore) -> None:
        existing = store.create_job(new_job("existing"))
        with pytest.raises(ConcurrentFileModificationException, match=existing.jobStoreID or ""):
            with store.batch():
                fresh = store.create_job(new_job("fresh"))
                store.create_job(JobDescription(jobName="dup", jobStoreID=existing.jobStoreID))
        assert reader.load_job(existing.jobStoreID or "").jobName == "existing"
        assert reader.job_exists(fresh.jobStoreID or "")

    @pytest.mark.parametrize("count", [1, 9, 10, 11, 20])
    def test_delete_job_deletes_its_cleanup_files(
        self, store: JobStore, reader: JobStore, count: int
    ) -> None:
        job = store.create_job(new_job())
        job_id = job.jobStoreID or ""
        doomed = []
        for i in range(count):
            with store.write_file_stream(job_id, cleanup=True, basename=f"c{i}") as (out, fid):
                out.write(b"temp")
            doomed.append(fid)
        with store.write_file_stream(job_id, cleanup=False, basename="keep") as (out, kept):
            out.write(b"keep")
        unowned = store.get_empty_file_store_id()
        reader.delete_job(job_id)
        assert not store.job_exists(job_id)
        assert not any(store.file_exists(f) for f in doomed)
        assert store.file_exists(kept)
        assert store.file_exists(unowned)
        assert set(store.get_all_file_ids()) == {kept, unowned}
