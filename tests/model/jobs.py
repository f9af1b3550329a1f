"""The machine's rules on jobs."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import MultipleResults, multiple, rule

from fsjobstore import ConcurrentFileModificationException, NoSuchJobException, layout

from .base import MachineBase, counted, handles, job_ids
from .model import (
    JOB_IDS,
    BodyFailed,
    Handle,
    JobChange,
    JobSpec,
    job_changes,
    job_specs,
    public,
    vias,
)


class JobRules(MachineBase):
    """The machine's rules on jobs."""

    @rule(target=handles, job_id=st.none() | st.sampled_from(JOB_IDS), spec=job_specs)
    @counted
    def create_job(self, job_id: str | None, spec: JobSpec) -> Handle | MultipleResults[Handle]:
        job = spec.make(job_id)
        if job_id is not None and job_id in self.jobs:
            with pytest.raises(ConcurrentFileModificationException, match="already stored"):
                self.writer.create_job(job)
            self.note("create of a stored ID refused")
            return multiple()
        assert self.writer.create_job(job) is job
        new_id = job.jobStoreID
        assert new_id is not None
        if job_id is None:
            assert layout.check_job_id(new_id) == new_id
            assert new_id not in self.jobs
        else:
            assert new_id == job_id
        expected = spec.expected(new_id, self.retry_count)
        assert public(job) == expected
        return self._written(job, expected)

    @rule(
        target=handles,
        entries=st.lists(
            st.tuples(st.none() | st.sampled_from(JOB_IDS), job_specs), min_size=1, max_size=4
        ),
        body_raises=st.booleans(),
        nested=st.booleans(),
    )
    @counted
    def create_batch(
        self, entries: list[tuple[str | None, JobSpec]], body_raises: bool, nested: bool
    ) -> MultipleResults[Handle]:
        jobs = [spec.make(job_id) for job_id, spec in entries]
        explicit = [job_id for job_id, _ in entries if job_id is not None]
        twice = len(explicit) != len(set(explicit))
        clashing = {job_id for job_id in explicit if job_id in self.jobs}
        outcome = "written"
        try:
            with self.writer.batch():
                for i, job in enumerate(jobs):
                    # A nested batch joins the outer one: the outermost writes.
                    with self.writer.batch() if nested and i % 2 else contextlib.nullcontext():
                        self.writer.create_job(job)
                    job_id = job.jobStoreID
                    assert job_id is not None
                    if job_id not in clashing:
                        assert not self.reader.job_exists(job_id), "visible before the batch ends"
                if body_raises:
                    raise BodyFailed("batch body failed")
        except BodyFailed:
            outcome = "body raised"
        except ConcurrentFileModificationException as exc:
            outcome = "twice" if "twice" in str(exc) else "clash"
        if twice:
            # The second create of one ID raises inside the body: nothing is written.
            assert outcome == "twice"
            self.note("batch: one ID twice, nothing written")
            return multiple()
        if body_raises:
            assert outcome == "body raised"
            self.note("batch: body raised, nothing written")
            return multiple()
        # An ID already stored is refused when the batch ends; the rest is written.
        assert outcome == ("clash" if clashing else "written")
        if clashing:
            self.note("batch: stored ID refused, rest written")
        written = []
        for (job_id, spec), job in zip(entries, jobs, strict=True):
            if job_id in clashing:
                continue
            assert job.jobStoreID is not None
            expected = spec.expected(job.jobStoreID, self.retry_count)
            assert public(job) == expected
            written.append(self._written(job, expected))
        return multiple(*written)

    @rule(target=handles, job_id=job_ids, via=vias)
    @counted
    def load_job(self, job_id: str, via: str) -> Handle | MultipleResults[Handle]:
        assert self.store(via).job_exists(job_id) == (job_id in self.jobs)
        if job_id not in self.jobs:
            with pytest.raises(NoSuchJobException):
                self.store(via).load_job(job_id)
            return multiple()
        job = self.store(via).load_job(job_id)
        assert public(job) == self.jobs[job_id]
        return Handle(job, self.revisions[job_id])

    @rule(target=handles)
    @counted
    def list_jobs(self) -> MultipleResults[Handle]:
        listed = list(self.reader.jobs())
        assert {h.jobStoreID: public(h) for h in listed} == self.jobs
        return multiple(*(Handle(job, self.revisions[job.jobStoreID or ""]) for job in listed))

    def _update(self, handle: Handle, change: JobChange) -> None:
        """Update through ``handle``, as the model says it must go."""
        job_id = handle.job_id
        change.apply(handle.job)
        if job_id not in self.jobs:
            with pytest.raises(NoSuchJobException):
                self.writer.update_job(handle.job)
            self.note("update of a deleted job refused")
        elif handle.revision is not None and handle.revision != self.revisions[job_id]:
            with pytest.raises(ConcurrentFileModificationException, match="load it again"):
                self.writer.update_job(handle.job)
            self.note("stale update refused")
        else:
            self.writer.update_job(handle.job)
            handle.revision = self._written(handle.job, public(handle.job)).revision
            self.note("update written")

    @rule(handle=handles, change=job_changes)
    @counted
    def update_job(self, handle: Handle, change: JobChange) -> None:
        self._update(handle, change)

    @rule(target=handles, job_id=job_ids, change=job_changes)
    @counted
    def update_fresh_job(self, job_id: str, change: JobChange) -> Handle | MultipleResults[Handle]:
        if job_id not in self.jobs:
            with pytest.raises(NoSuchJobException):
                self.writer.load_job(job_id)
            return multiple()
        handle = Handle(self.writer.load_job(job_id), self.revisions[job_id])
        self._update(handle, change)
        return handle

    @rule(target=handles, job_id=job_ids, first=job_changes, second=job_changes)
    @counted
    def update_two_copies(
        self, job_id: str, first: JobChange, second: JobChange
    ) -> MultipleResults[Handle]:
        # Two copies of one job, as two processes load it: the first update
        # is written, the second is stale and refused (on every backend).
        if job_id not in self.jobs:
            with pytest.raises(NoSuchJobException):
                self.reader.load_job(job_id)
            return multiple()
        theirs = Handle(self.reader.load_job(job_id), self.revisions[job_id])
        mine = Handle(self.writer.load_job(job_id), self.revisions[job_id])
        self._update(theirs, first)
        self._update(mine, second)
        return multiple(theirs, mine)

    @rule(job_id=job_ids, spec=job_specs)
    @counted
    def update_unread_job(self, job_id: str, spec: JobSpec) -> None:
        # A job object that was never read or written: no version to be stale against.
        self._update(Handle(spec.make(job_id), None), JobChange(None, None, None, {}, frozenset()))

    @rule(job_id=job_ids, missing_ok=st.booleans())
    @counted
    def delete_job(self, job_id: str, missing_ok: bool) -> None:
        if job_id not in self.jobs and not missing_ok:
            with pytest.raises(NoSuchJobException):
                self.writer.delete_job(job_id)
            return
        self.writer.delete_job(job_id, missing_ok=missing_ok)
        self.jobs.pop(job_id, None)
        # With the job go the files written for it with cleanup=True, and no others.
        doomed = [f for f, m in self.files.items() if m.owner == job_id and m.cleanup]
        for file_id in doomed:
            del self.files[file_id]
        if doomed:
            self.note("delete_job took cleanup files")
        if any(m.owner == job_id for m in self.files.values()):
            self.note("delete_job kept files without cleanup")
