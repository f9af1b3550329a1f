"""A model of the job store, checked step by step on every backend.

A hypothesis :class:`~hypothesis.stateful.RuleBasedStateMachine` drives a
real :class:`~fsjobstore.JobStore` (the writer) with random sequences of
calls on jobs, files, shared files and log messages, and keeps a plain
Python model of what the store must then hold. After every step a second
store object on the same locator (the reader) must see exactly the model:
the same jobs with the same attributes, the same file IDs and sizes, the
same shared files and log counts, and in raw storage nothing else at all (no
temporary, lock or partial object left behind by a write).

Each hypothesis example gets a fresh store at its own location below the
test's :class:`~fsjobstore.testing.Target` (``<locator>/model-<n>``), made
by the ``initialize`` rule (with a few jobs and files of theirs in it, so
that even a short example updates and deletes) and destroyed at teardown,
after which nothing may be left there.

What the model expects of a stale copy
--------------------------------------
Every ``JobDescription`` the machine holds (from ``create_job``,
``load_job``, ``jobs()`` or a successful ``update_job``) remembers the
model's revision of the job it was read or written at. ``update_job`` of a
copy whose revision is no longer the job's raises
``ConcurrentFileModificationException`` and writes nothing, on **every**
backend. Where ``store.detects_concurrent_updates`` is true that is the
backend's conditional write; on the others (FTP, and any fsspec filesystem
on the generic path, here kvfs) ``docs/backends.md`` says an update "is a
read, a comparison and a write": a stale copy is refused there too, and
what those backends cannot promise is only the case of two writers between
that read and that write, which a sequential machine never makes (the
contract suite's concurrency tests cover it where it is promised). A copy
that was never read or written (a ``JobDescription`` built with the ID of a
stored job) has no version to be stale against: its update overwrites.

Examples and reproducibility
----------------------------
Each backend's run has a fixed seed (a CRC of the backend's name) and no
example database: CI runs the same examples every time, so a failure
reproduces by running the test again and a red run is never a matter of
luck. The examples change only with hypothesis's version or this file. A
seed rather than ``derandomize=True``: derandomizing seeds from the test
function, which for a state machine is hypothesis's own runner, the same
for every backend, so each backend would replay the same few sequences; a
seed per backend gives each its own, and the run as a whole covers more.
The price of fixed examples is that a run explores nothing new: to hunt for
bugs, set ``FSJOBSTORE_MODEL_EXPLORE=N`` for random examples (pytest's
``--hypothesis-seed=S`` picks them), N times as many.

The examples on the emulated object stores and the network servers are
fewer and shorter than on local disk and in memory (``BUDGETS``), and each
example makes at most one or two writes of a few MiB (``BIG_SIZES``), so
the module runs in about a minute and a half on CI's two cores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import os
import shutil
import stat
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Concatenate, ParamSpec, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
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
    run_state_machine_as_test,
)

from fsjobstore import (
    ConcurrentFileModificationException,
    Config,
    FileID,
    JobDescription,
    JobStore,
    NoSuchFileException,
    NoSuchJobException,
    layout,
)
from fsjobstore.backends.common import BLOCK_SIZE
from fsjobstore.testing import Target

from .conftest import BACKENDS, make_target

MiB = 1024 * 1024
P = ParamSpec("P")
R = TypeVar("R")


# ---------------------------------------------------------------------------------------
# How much each backend runs
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """How many examples of how many steps a backend runs, and its big writes."""

    examples: int
    steps: int
    #: Writes of a few MiB (across the 8 MiB spool boundary) allowed per example.
    big_writes: int
    #: Whether a failing example is shrunk. Shrinking runs examples by the
    #: thousand, for up to five minutes per test: on the servers, a failure is
    #: reported as found (a dozen steps), and local disk shrinks the same bug.
    shrink: bool = False


#: Measured on the 2-core CI machine: a step on an emulated object store costs
#: ten times one on local disk (each check after it makes a few requests).
BUDGETS = {
    "memory": Budget(examples=100, steps=30, big_writes=2, shrink=True),
    "file": Budget(examples=50, steps=30, big_writes=2, shrink=True),
    "kvfs": Budget(examples=25, steps=20, big_writes=1, shrink=True),
    "gcs": Budget(examples=12, steps=15, big_writes=1),
    "sftp": Budget(examples=12, steps=15, big_writes=1),
    "ftp": Budget(examples=12, steps=15, big_writes=1),
    "s3": Budget(examples=10, steps=12, big_writes=1),
    "azure": Budget(examples=10, steps=12, big_writes=1),
}
#: Sizes of the big writes: below, at and just above BLOCK_SIZE (where a stream
#: stops being spooled in memory and goes up from a local file).
BIG_SIZES = [3 * MiB + 5, BLOCK_SIZE, BLOCK_SIZE + 1]


def explore_factor() -> int:
    """``FSJOBSTORE_MODEL_EXPLORE``: 0 for CI's fixed examples, N for N times as many random."""
    return int(os.environ.get("FSJOBSTORE_MODEL_EXPLORE", "0") or 0)


def machine_settings(budget: Budget) -> settings:
    """Hypothesis settings for one backend's run."""
    factor = explore_factor()
    return settings(
        max_examples=budget.examples * max(factor, 1),
        stateful_step_count=budget.steps,
        deadline=None,
        database=None,
        # A step talks to a server; hypothesis's data never is the slow part.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        print_blob=factor > 0,
        phases=[p for p in Phase if budget.shrink or factor > 0 or p is not Phase.shrink],
    )


# ---------------------------------------------------------------------------------------
# What the rules draw
# ---------------------------------------------------------------------------------------

#: Explicit job IDs: few, so creates collide and deletes find what they name.
JOB_IDS = ["a", "job-1", "x.y_z", "b.json", "9" * 128]
#: Attributes a job may carry besides the seed's fields (some named as the stored
#: document's own keys: they must not get mixed up).
EXTRA_NAMES = ["command", "predecessors", "completed", "format", "revision", "attributes"]
SHARED_NAMES = ["config.json", "leader.pid", "a-b_c.2"]
#: Local basenames for write_file and write_file_stream (sanitized into the ID).
BASENAMES = ["input.fastq", "with space.txt", "ünï.bin", "x" * 140 + ".tar.gz", ""]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
requirements = st.fixed_dictionaries(
    {},
    optional={
        "memory": st.integers(0, 2**40),
        "cores": st.floats(0, 64),
        "disk": st.integers(0, 2**40),
        "preemptible": st.booleans(),
    },
)
extras = st.dictionaries(st.sampled_from(EXTRA_NAMES), json_values, max_size=2)


@dataclass(frozen=True)
class JobSpec:
    """A new job's attributes, as drawn."""

    jobName: str
    unitName: str
    displayName: str | None
    requirements: dict[str, Any]
    remainingTryCount: int | None
    extras: dict[str, Any]

    def make(self, job_id: str | None) -> JobDescription:
        """Return the JobDescription these attributes describe."""
        job = JobDescription(
            self.requirements,
            self.jobName,
            self.unitName,
            self.displayName,
            jobStoreID=job_id,
            remainingTryCount=self.remainingTryCount,
        )
        for name, value in self.extras.items():
            setattr(job, name, value)
        return job

    def expected(self, job_id: str, retry_count: int) -> dict[str, Any]:
        """Public attributes of the job once stored, as documented, not as computed."""
        tries = retry_count + 1 if self.remainingTryCount is None else self.remainingTryCount
        return {
            "requirements": dict(self.requirements),
            "jobName": self.jobName,
            "unitName": self.unitName,
            "displayName": self.jobName if self.displayName is None else self.displayName,
            "jobStoreID": job_id,
            "remainingTryCount": tries,
            **self.extras,
        }


job_specs = st.builds(
    JobSpec,
    jobName=st.text(max_size=10),
    unitName=st.text(max_size=6),
    displayName=st.none() | st.text(max_size=6),
    requirements=requirements,
    remainingTryCount=st.none() | st.integers(0, 5),
    extras=extras,
)


@dataclass(frozen=True)
class JobChange:
    """Changes an update makes to a job object before storing it."""

    jobName: str | None
    remainingTryCount: int | None
    requirements: dict[str, Any] | None
    set_extras: dict[str, Any]
    drop_extras: frozenset[str]

    def apply(self, job: JobDescription) -> None:
        """Change ``job`` in place."""
        if self.jobName is not None:
            job.jobName = self.jobName
        if self.remainingTryCount is not None:
            job.remainingTryCount = self.remainingTryCount
        if self.requirements is not None:
            job.requirements = dict(self.requirements)
        for name in self.drop_extras:
            if name in vars(job):
                delattr(job, name)
        for name, value in self.set_extras.items():
            setattr(job, name, value)


job_changes = st.builds(
    JobChange,
    jobName=st.none() | st.text(max_size=10),
    remainingTryCount=st.none() | st.integers(0, 5),
    requirements=st.none() | requirements,
    set_extras=extras,
    drop_extras=st.frozensets(st.sampled_from(EXTRA_NAMES), max_size=2),
)


@dataclass(frozen=True)
class Pattern:
    """Content too long to draw byte by byte: ``size`` bytes made from ``seed``."""

    size: int
    seed: int

    def data(self) -> bytes:
        """The bytes."""
        block = hashlib.sha256(f"{self.seed}:{self.size}".encode()).digest() * 2048  # 64 KiB
        return (block * (self.size // len(block) + 1))[: self.size]


Content = bytes | Pattern


def data_of(content: Content) -> bytes:
    """The bytes of drawn content."""
    return content if isinstance(content, bytes) else content.data()


#: Small content, drawn as bytes (0 included), or a few KiB up to a MiB.
contents = st.binary(max_size=300) | st.builds(
    Pattern, st.sampled_from([4096, 65537, MiB + 3]), st.integers(0, 9)
)
big_contents = st.builds(Pattern, st.sampled_from(BIG_SIZES), st.integers(0, 9))
#: Which store object reads: the writer, the reader, or a new one (as a new process).
vias = st.sampled_from(["reader", "writer", "new reader"])
#: How a stream is written or read: in pieces of this many bytes (None: at once).
chunkings = st.sampled_from([None, 1, 7, 4096, MiB])


class BodyFailed(Exception):
    """Raised on purpose inside a ``with`` body: what it started must not be kept."""


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------


def public(job: JobDescription) -> dict[str, Any]:
    """A job object's stored attributes: every one not starting with ``_``."""
    return {k: v for k, v in vars(job).items() if not k.startswith("_")}


@dataclass
class Handle:
    """A job object the caller holds, and the model revision it was read or written at.

    ``revision`` is None for an object that was never read or written: its
    update is unconditional.
    """

    job: JobDescription
    revision: int | None

    @property
    def job_id(self) -> str:
        """The job's ID."""
        assert self.job.jobStoreID is not None
        return self.job.jobStoreID

    def __repr__(self) -> str:
        return f"Handle({self.job_id!r}, revision={self.revision})"


@dataclass(frozen=True)
class ModelFile:
    """What the store must hold for one file ID."""

    data: bytes
    owner: str | None
    cleanup: bool
    executable: bool


@dataclass
class Site:
    """One backend's run: where each example's store goes, and what it did."""

    target: Target
    budget: Budget
    #: How often each rule ran, and notable outcomes (stale update refused …).
    tally: Counter[str] = field(default_factory=Counter)
    _numbers: Iterator[int] = field(default_factory=itertools.count)

    def fresh(self) -> Target:
        """A new, empty location below the test's own, one per example."""
        return dataclasses.replace(
            self.target, locator=f"{self.target.locator}/model-{next(self._numbers)}"
        )


#: At most this many pieces per stream: 1-byte pieces of a MiB would take seconds.
MAX_PIECES = 256


def piece_size(chunking: int | None, total: int) -> int | None:
    """The drawn piece size, made large enough for ``total`` bytes to take few pieces."""
    return None if chunking is None else max(chunking, -(-total // MAX_PIECES))


def chunked(data: bytes, chunking: int | None) -> Iterator[bytes]:
    """``data`` in pieces (at once for None; a b"" piece for no data)."""
    size = piece_size(chunking, len(data))
    if size is None or not data:
        yield data
        return
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read_all(handle: IO[bytes], chunking: int | None, expected: int) -> bytes:
    """Read a handle to its end in pieces (at once for None), ``expected`` bytes long."""
    size = piece_size(chunking, expected)
    if size is None:
        data = handle.read()
        assert isinstance(data, bytes)
        return data
    pieces = []
    while piece := handle.read(size):
        assert len(piece) <= size
        pieces.append(piece)
    return b"".join(pieces)


class Collector:
    """A ``read_logs`` callback that keeps each message, failing after some if asked."""

    def __init__(self, fail_after: int | None) -> None:
        self.messages: list[bytes] = []
        self.fail_after = fail_after

    def __call__(self, handle: IO[bytes]) -> None:
        if self.fail_after is not None and len(self.messages) == self.fail_after:
            raise BodyFailed("leader crashed")
        data = handle.read()
        assert isinstance(data, bytes)
        self.messages.append(data)


# ---------------------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------------------


#: Every rule of the machine, by name.
RULES: list[str] = []


def counted(
    method: Callable[Concatenate[JobStoreMachine, P], R],
) -> Callable[Concatenate[JobStoreMachine, P], R]:
    """Count each run of a rule in the run's tally (under @rule, so hypothesis sees it)."""
    RULES.append(method.__name__)

    @functools.wraps(method)
    def run(self: JobStoreMachine, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.note(f"rule {method.__name__}")
        return method(self, *args, **kwargs)

    return run


class JobStoreMachine(RuleBasedStateMachine):
    """Jobs, files, shared files and logs of one store, against a plain model."""

    handles: Bundle[Handle] = Bundle("handles")
    file_ids: Bundle[FileID] = Bundle("file_ids")
    #: Job IDs: the explicit ones, and those the store assigned.
    job_ids = st.sampled_from(JOB_IDS) | handles.map(lambda handle: handle.job_id)
    owners = st.none() | job_ids

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

    # -- jobs ---------------------------------------------------------------------------

    def _written(self, job: JobDescription, expected: dict[str, Any]) -> Handle:
        """Record that ``job`` is now stored as ``expected``; return its up-to-date handle."""
        job_id = job.jobStoreID
        assert job_id is not None
        self.jobs[job_id] = expected
        self.revisions[job_id] = next(self.numbers)
        return Handle(job, self.revisions[job_id])

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

    # -- files ---------------------------------------------------------------------------

    def _new_file(
        self, write: Callable[[], FileID], data: bytes, owner: str | None, cleanup: bool
    ) -> FileID | MultipleResults[FileID]:
        """Write a new file with ``write``, as the model says it must go."""
        if cleanup and owner is None:
            with pytest.raises(ValueError, match="cleanup=True needs a job_id"):
                write()
            return multiple()
        file_id = write()
        assert isinstance(file_id, FileID)
        assert file_id.size == len(data)
        assert file_id not in self.files
        ref = layout.parse_file_id(file_id)
        assert (ref.owner, ref.cleanup) == (owner, cleanup)
        assert self.writer.get_file_job_association(file_id) == owner
        self.files[file_id] = ModelFile(data, owner, cleanup, file_id.executable)
        return file_id

    def _write_stream(
        self,
        owner: str | None,
        cleanup: bool,
        basename: str,
        data: bytes,
        *,
        chunking: int | None,
        fails: bool,
    ) -> FileID | MultipleResults[FileID]:
        started: list[FileID] = []

        def write() -> FileID:
            with self.writer.write_file_stream(owner, cleanup, basename or None) as (out, fid):
                started.append(fid)
                for piece in chunked(data, chunking):
                    out.write(piece)
                if fails:
                    raise BodyFailed("writer failed")
            assert fid.endswith(layout.sanitize_basename(basename))
            return fid

        if not fails or (cleanup and owner is None):
            return self._new_file(write, data, owner, cleanup)
        with pytest.raises(BodyFailed):
            write()
        # A failed stream leaves nothing (the invariant checks raw storage too).
        for fid in started:
            assert not self.reader.file_exists(fid)
        self.note("failed stream write left nothing")
        return multiple()

    @rule(
        target=file_ids,
        owner=owners,
        cleanup=st.booleans(),
        executable=st.booleans(),
        basename=st.sampled_from(BASENAMES),
        content=contents,
    )
    @counted
    def write_file(
        self, owner: str | None, cleanup: bool, executable: bool, basename: str, content: Content
    ) -> FileID | MultipleResults[FileID]:
        data = data_of(content)
        src = self.local_file(basename, data, executable)

        def write() -> FileID:
            fid = self.writer.write_file(src, owner, cleanup)
            assert fid.executable == executable
            assert fid.endswith(layout.sanitize_basename(src.name))
            return fid

        return self._new_file(write, data, owner, cleanup)

    @rule(
        target=file_ids,
        owner=owners,
        cleanup=st.booleans(),
        basename=st.sampled_from(BASENAMES),
        content=contents,
        chunking=chunkings,
        fails=st.booleans(),
    )
    @counted
    def write_file_stream(
        self,
        *,
        owner: str | None,
        cleanup: bool,
        basename: str,
        content: Content,
        chunking: int | None,
        fails: bool,
    ) -> FileID | MultipleResults[FileID]:
        data = data_of(content)
        return self._write_stream(owner, cleanup, basename, data, chunking=chunking, fails=fails)

    @rule(target=file_ids, owner=owners, cleanup=st.booleans(), text=st.text(max_size=40))
    @counted
    def write_text_file_stream(
        self, owner: str | None, cleanup: bool, text: str
    ) -> FileID | MultipleResults[FileID]:
        def write() -> FileID:
            with self.writer.write_file_stream(owner, cleanup, encoding="utf-8") as (out, fid):
                out.write(text)
            return fid

        return self._new_file(write, text.encode("utf-8"), owner, cleanup)

    @rule(target=file_ids, owner=owners, cleanup=st.booleans())
    @counted
    def get_empty_file_store_id(
        self, owner: str | None, cleanup: bool
    ) -> FileID | MultipleResults[FileID]:
        return self._new_file(
            lambda: self.writer.get_empty_file_store_id(owner, cleanup), b"", owner, cleanup
        )

    @precondition(lambda self: self.big_writes_left > 0)
    @rule(
        target=file_ids,
        owner=owners,
        content=big_contents,
        through=st.sampled_from(["stream", "local file"]),
    )
    @counted
    def write_big_file(
        self, owner: str | None, content: Pattern, through: str
    ) -> FileID | MultipleResults[FileID]:
        self.big_writes_left -= 1
        self.note(f"big write of {content.size} bytes")
        data = content.data()
        if through == "stream":
            return self._write_stream(owner, False, "big.bin", data, chunking=MiB, fails=False)
        src = self.local_file("big.bin", data)
        return self._new_file(lambda: self.writer.write_file(src, owner), data, owner, False)

    def _check_file_missing(self, file_id: str, call: Callable[[], object]) -> bool:
        """If the model has no ``file_id``, check that ``call`` raises NoSuchFileException."""
        if file_id in self.files:
            return False
        with pytest.raises(NoSuchFileException):
            call()
        return True

    @rule(file_id=file_ids, via=vias, symlink=st.booleans())
    @counted
    def read_file(self, file_id: FileID, via: str, symlink: bool) -> None:
        # One destination for every read: each replaces the last, a copy or a link
        # (local disk links to the stored file with symlink=True; a later copy
        # must replace the link, never write through it into the store).
        out = self.local / "out"
        before = out.read_bytes() if out.exists() else None
        store = self.store(via)
        if self._check_file_missing(file_id, lambda: store.read_file(file_id, out, symlink)):
            # A failed read keeps what the destination held.
            assert (out.read_bytes() if out.exists() else None) == before
            return
        # A plain string works as well as the FileID (the executable bit is in the ID).
        store.read_file(str(file_id), out, symlink)
        model = self.files[file_id]
        assert out.read_bytes() == model.data
        assert bool(out.stat().st_mode & stat.S_IXUSR) == model.executable

    @rule(file_id=file_ids, chunking=chunkings, via=vias)
    @counted
    def read_file_stream(self, file_id: FileID, chunking: int | None, via: str) -> None:
        store = self.store(via)
        assert store.file_exists(file_id) == (file_id in self.files)

        def read(expected: bytes = b"") -> bytes:
            with store.read_file_stream(file_id) as handle:
                return read_all(handle, chunking, len(expected))

        if self._check_file_missing(file_id, read):
            with pytest.raises(NoSuchFileException):
                store.get_file_size(file_id)
            return
        expected = self.files[file_id].data
        assert store.get_file_size(file_id) == len(expected)
        assert read(expected) == expected

    def _update_file(self, file_id: FileID, data: bytes, chunking: int | None, fails: bool) -> None:
        def update() -> None:
            with self.writer.update_file_stream(file_id) as out:
                for piece in chunked(data, chunking):
                    out.write(piece)
                if fails:
                    raise BodyFailed("updater failed")

        if self._check_file_missing(file_id, update):
            return
        if fails:
            with pytest.raises(BodyFailed):
                update()
            self.note("failed update kept old content")
            return  # the old content stays: the invariant and reads check it
        update()
        self.files[file_id] = dataclasses.replace(self.files[file_id], data=data)

    @rule(file_id=file_ids, content=contents, chunking=chunkings, fails=st.booleans())
    @counted
    def update_file_stream(
        self, file_id: FileID, content: Content, chunking: int | None, fails: bool
    ) -> None:
        self._update_file(file_id, data_of(content), chunking, fails)

    @precondition(lambda self: self.big_writes_left > 0)
    @rule(file_id=file_ids, content=big_contents, fails=st.booleans())
    @counted
    def update_big_file(self, file_id: FileID, content: Pattern, fails: bool) -> None:
        self.big_writes_left -= 1
        self.note(f"big update of {content.size} bytes")
        self._update_file(file_id, content.data(), MiB, fails)

    @rule(file_id=file_ids, content=contents)
    @counted
    def update_file(self, file_id: FileID, content: Content) -> None:
        data = data_of(content)
        src = self.local_file("update.bin", data)
        if self._check_file_missing(file_id, lambda: self.writer.update_file(file_id, src)):
            return
        self.writer.update_file(file_id, src)
        self.files[file_id] = dataclasses.replace(self.files[file_id], data=data)

    @rule(file_id=file_ids, missing_ok=st.booleans())
    @counted
    def delete_file(self, file_id: FileID, missing_ok: bool) -> None:
        if not missing_ok and self._check_file_missing(
            file_id, lambda: self.writer.delete_file(file_id)
        ):
            return
        self.writer.delete_file(file_id, missing_ok=missing_ok)
        self.files.pop(file_id, None)

    # -- shared files --------------------------------------------------------------------

    @rule(
        name=st.sampled_from(SHARED_NAMES),
        content=contents,
        chunking=chunkings,
        fails=st.booleans(),
    )
    @counted
    def write_shared_file(
        self, name: str, content: Content, chunking: int | None, fails: bool
    ) -> None:
        data = data_of(content)
        with contextlib.suppress(BodyFailed):
            with self.writer.write_shared_file_stream(name) as out:
                for piece in chunked(data, chunking):
                    out.write(piece)
                if fails:
                    raise BodyFailed("shared writer failed")
            assert not fails
            if name in self.shared:
                self.note("shared file overwritten")
            self.shared[name] = data
            return
        self.note("failed shared write kept old content")

    @rule(name=st.sampled_from(SHARED_NAMES), via=vias)
    @counted
    def read_shared_file(self, name: str, via: str) -> None:
        store = self.store(via)
        if name not in self.shared:
            with pytest.raises(NoSuchFileException, match="no such shared file"):
                with store.read_shared_file_stream(name):
                    pass
            return
        with store.read_shared_file_stream(name) as handle:
            assert handle.read() == self.shared[name]

    # -- logs ----------------------------------------------------------------------------

    @rule(body=st.binary(max_size=40) | st.text(max_size=40))
    @counted
    def write_logs(self, body: bytes | str) -> None:
        # Numbered, so the model can tell every message apart.
        message: bytes | str
        number = next(self.numbers)
        if not body and b"" not in self.pending | self.archived:
            message = data = b""  # one empty message at a time: still told apart
        elif isinstance(body, str):
            message = f"{number}|{body}"
            data = message.encode()
        else:
            message = data = b"%d|" % number + body
        self.writer.write_logs(message)
        self.pending.add(data)

    @rule(
        via=vias,
        read_all=st.booleans(),
        fail_after=st.none() | st.integers(0, 3),
    )
    @counted
    def read_logs(self, via: str, read_all: bool, fail_after: int | None) -> None:
        collect = Collector(fail_after)
        deliverable = (self.archived if read_all else set()) | self.pending
        if fail_after is not None and fail_after < len(deliverable):
            with pytest.raises(BodyFailed):
                self.store(via).read_logs(collect, read_all=read_all)
            assert len(collect.messages) == fail_after
            self.note("log callback failed: taken ones archived, rest unread")
        else:
            assert self.store(via).read_logs(collect, read_all=read_all) == len(deliverable)
            assert len(collect.messages) == len(deliverable)
        delivered = set(collect.messages)
        assert len(delivered) == len(collect.messages), "a message delivered twice in one call"
        assert delivered <= deliverable
        if fail_after is None:
            assert delivered == deliverable
        taken = delivered & self.pending
        self.pending -= taken
        self.archived |= taken

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


# ---------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_behaves_like_the_model(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Random sequences of calls, each example on a fresh store; the reader sees the model."""
    budget = BUDGETS[backend]
    this_run = Site(make_target(request, backend, tmp_path), budget)

    class OnThisBackend(JobStoreMachine):
        site = this_run

    if explore_factor() == 0:
        seed(zlib.crc32(backend.encode()))(OnThisBackend)

    started = time.monotonic()
    run_state_machine_as_test(OnThisBackend, settings=machine_settings(budget))
    elapsed = time.monotonic() - started
    print(f"\n{backend}: {budget.examples} examples in {elapsed:.1f} s")
    for event, count in sorted(this_run.tally.items()):
        print(f"  {count:5d}  {event}")
    if budget.examples >= 50:
        # Enough steps that every rule runs: a rule that never can is a broken machine.
        assert {f"rule {name}" for name in RULES} <= set(this_run.tally)
