"""What the model checks draw and hold: budgets, strategies, the plain model.

See :mod:`tests.model` for what the machine checks and how its examples are
chosen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from fsjobstore import JobDescription
from fsjobstore.backends.common import BLOCK_SIZE
from fsjobstore.testing import Target

MiB = 1024 * 1024


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
