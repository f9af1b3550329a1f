"""The state machine's base: its state, the rules' bookkeeping, and its invariants."""

from __future__ import annotations

import functools
import itertools
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from fsjobstore import Config, FileID, JobDescription, JobStore, layout

from .model import (
    JOB_IDS,
    Content,
    Handle,
    JobSpec,
    ModelFile,
    Site,
    contents,
    data_of,
    job_specs,
    public,
)

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound="MachineBase")

# ---------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------


#: Every rule of the machine, by name.
RULES: list[str] = []


def counted(
    method: Callable[Concatenate[M, P], R],
) -> Callable[Concatenate[M, P], R]:
    """Count each run of a rule in the run's tally (under @rule, so hypothesis sees it)."""
    RULES.append(method.__name__)

    @functools.wraps(method)
    def run(self: M, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.note(f"rule {method.__name__}")
        return method(self, *args, **kwargs)

    return run


handles: Bundle[Handle] = Bundle("handles")
file_ids: Bundle[FileID] = Bundle("file_ids")
#: Job IDs: the explicit ones, and those the store assigned.
job_ids = st.sampled_from(JOB_IDS) | handles.map(lambda handle: handle.job_id)
owners = st.none() | job_ids


class MachineBase(RuleBasedStateMachine):
    """The machine's state: the store objects, the model, and the checks after every step.

    The rules are in mixins (:mod:`tests.model.jobs`, :mod:`tests.model.files`,
    :mod:`tests.model.shared_and_logs`), put together in
    :class:`tests.model.test_store.JobStoreMachine`.
    """

    #: The backend's run; each test sets it on a subclass of its own.
    site: ClassVar[Site]

    def __init__(self) -> None:
        super().__init__()
        self.target = self.site.fresh()
        self.writer = self.target.open()
        self.reader = self.target.open()
        self.opened = False
        self.local = Path(tempfile.mkdtemp(prefix="fsjobstore-model-"))
        self.local_names = itertools.count()
        self.retry_count = 0
        self.big_writes_left = self.site.budget.big_writes
        # The model.
        self.jobs: dict[str, dict[str, Any]] = {}
        self.revisions: dict[str, int] = {}
        self.files: dict[str, ModelFile] = {}
        self.shared: dict[str, bytes] = {}
        self.pending: set[bytes] = set()
        self.archived: set[bytes] = set()
        self.numbers = itertools.count(1)  # job revisions and log message numbers

    def teardown(self) -> None:
        try:
            if self.opened:
                self.writer.destroy()
                fs, root = self.reader.fs, self.reader.root
                assert not fs.exists(root) or not fs.find(root), "destroy() left data"
        finally:
            shutil.rmtree(self.local, ignore_errors=True)

    def note(self, event: str) -> None:
        """Count an outcome of interest for the run's tally."""
        self.site.tally[event] += 1

    def store(self, via: str) -> JobStore:
        """The writer, the reader, or a new reader (then the reader from now on)."""
        if via == "writer":
            return self.writer
        if via == "new reader":
            # As a new process would: a new store object, resumed from the marker.
            self.reader = self.target.open()
            self.reader.resume()
            assert self.reader.config.retryCount == self.retry_count
            assert self.reader.config.jobStore == self.writer.locator
        return self.reader

    def local_file(self, name: str, data: bytes, executable: bool = False) -> Path:
        """A new local file holding ``data``, in a folder of its own."""
        folder = self.local / f"src-{next(self.local_names)}"
        folder.mkdir()
        path = folder / (name or "unnamed")
        path.write_bytes(data)
        if executable:
            path.chmod(0o755)
        return path

    @initialize(
        target=handles,
        retry_count=st.integers(0, 3),
        jobs=st.lists(job_specs, max_size=3),
        files=st.lists(st.tuples(st.booleans(), contents), max_size=3),
    )
    @counted
    def open_store(
        self, retry_count: int, jobs: list[JobSpec], files: list[tuple[bool, Content]]
    ) -> MultipleResults[Handle]:
        # A store with a few jobs and files of theirs already in it: short
        # examples (on the servers) then still update, delete and clean up.
        self.retry_count = retry_count
        self.writer.initialize(Config(retryCount=retry_count))
        self.opened = True
        self.reader.resume()
        handles = []
        for spec in jobs:
            job = self.writer.create_job(spec.make(None))
            assert job.jobStoreID is not None
            handles.append(self._written(job, spec.expected(job.jobStoreID, retry_count)))
        for i, (cleanup, content) in enumerate(files if handles else []):
            owner = handles[i % len(handles)].job_id
            data = data_of(content)
            with self.writer.write_file_stream(owner, cleanup) as (out, file_id):
                out.write(data)
            self.files[file_id] = ModelFile(data, owner, cleanup, executable=False)
        return multiple(*handles)

    @precondition(lambda self: self.jobs or self.files or self.shared)
    @rule(retry_count=st.integers(0, 3))
    @counted
    def destroy_and_initialize_again(self, retry_count: int) -> None:
        self.writer.destroy()
        fs, root = self.reader.fs, self.reader.root
        assert not fs.exists(root) or not fs.find(root), "destroy() left data"
        # Everything is gone. Revisions stay: a copy read before the destroy is
        # stale if a job of its ID is created again.
        self.jobs.clear()
        self.files.clear()
        self.shared.clear()
        self.pending.clear()
        self.archived.clear()
        self.writer.initialize(Config(retryCount=retry_count))
        self.retry_count = retry_count
        self.store("new reader")

    def _written(self, job: JobDescription, expected: dict[str, Any]) -> Handle:
        """Record that ``job`` is now stored as ``expected``; return its up-to-date handle."""
        job_id = job.jobStoreID
        assert job_id is not None
        self.jobs[job_id] = expected
        self.revisions[job_id] = next(self.numbers)
        return Handle(job, self.revisions[job_id])

    # -- after every step ----------------------------------------------------------------

    @invariant()
    def reader_sees_the_model(self) -> None:
        listed = list(self.reader.jobs())
        jobs = {job.jobStoreID: public(job) for job in listed}
        assert len(jobs) == len(listed), "a job listed twice"
        assert jobs == self.jobs
        file_ids = self.reader.get_all_file_ids()
        assert sorted(file_ids) == sorted(self.files)
        for file_id, model in self.files.items():
            assert self.reader.get_file_size(file_id) == len(model.data), file_id

    @invariant()
    def raw_storage_holds_nothing_else(self) -> None:
        # Exactly the model's keys: no temporary, lock or half-written object.
        # The log reader's lease stays on local disk, as the file its lock
        # is taken on (removing it would race the next reader).
        fs, root = self.reader.fs, self.reader.root
        keys = {path[len(root) + 1 :] for path in fs.find(root)} - {layout.READER}
        inbox = {k for k in keys if k.startswith(layout.INBOX)}
        archive = {k for k in keys if k.startswith(layout.ARCHIVE)}
        expected = {
            layout.MARKER,
            *(layout.job_key(job_id) for job_id in self.jobs),
            *(layout.parse_file_id(file_id).key for file_id in self.files),
            *(layout.shared_key(name) for name in self.shared),
        }
        assert keys - inbox - archive == expected
        assert (len(inbox), len(archive)) == (len(self.pending), len(self.archived))
