"""The bench crash tests run on: a store under kills, and what must be there after each.

:class:`Bench` is one store on one backend with the crasher that kills its
children (see :mod:`tests.crashes`); :class:`Ledger`, :func:`verify`,
:func:`settle` and :func:`finish` check what a fresh store object finds
after each kill and after ``clean``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from fsjobstore import JobDescription, JobStore
from fsjobstore import layout as layout_
from fsjobstore.maintenance import clean
from fsjobstore.testing import Target
from fsjobstore.testing.raw import raw_keys

from .contents import MiB, Torn, digest, tag_of, text
from .crasher import Crasher, Round

BACKENDS = ["file", "s3"]
SEED = os.environ.get("FSJOBSTORE_CRASH_SEED", "crash-1")
#: Kills per operation and backend, by variant.
ROUNDS = {"default": 5, "long": 15}
#: Sizes of contents: small ones, and streams over the 8 MiB spool block.
SMALL = (200, 256 * 1024)
BIG = (9 * MiB, 11 * MiB)
#: Over the 50 MiB part size: a multipart upload on S3 (long variant only).
HUGE = (60 * MiB, 64 * MiB)
EMPTY = digest(b"")
#: Small steps finished before a kill, at most: every one is read back after each kill.
MANY = {"file": range(0, 40), "s3": range(0, 25)}


# -- one store under crashes ---------------------------------------------------------


@dataclass
class Bench:
    """A store on one backend, the crasher that kills its children, and what they left."""

    target: Target
    store: JobStore
    crasher: Crasher
    rounds: int
    variant: str
    tmp_path: Path
    #: Temporaries seen in raw storage after each kill (cumulative, by path).
    leftovers: set[str] = field(default_factory=set)
    #: Temporaries clean removed.
    reclaimed: int = 0
    #: Requests of killed children that moto was still serving after the kill.
    served_late: int = 0
    #: What the test found worth telling, beside the kills.
    notes: list[str] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return self.target.backend

    def fresh(self, locator: str | None = None) -> JobStore:
        """A new store object on the same location, opened."""
        store = self.open(locator)
        store.resume()
        return store

    def open(self, locator: str | None = None) -> JobStore:
        """A new store object on the bench's location (or ``locator``), not opened."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return JobStore(locator or self.target.locator, **self.target.options)

    def temporaries(self, store: JobStore | None = None) -> set[str]:
        """What raw storage holds of unfinished writes: tmp/ files, or multipart uploads."""
        store = store or self.store
        if self.backend == "file":
            tmp = Path(store.root, "tmp")
            return {str(p) for p in tmp.iterdir()} if tmp.exists() else set()
        bucket, prefix = store.root.split("/", 1)
        found: set[str] = set()
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{prefix}/"}
        while True:
            response = store.fs.call_s3("list_multipart_uploads", **request)
            found |= {f"{bucket}/{u['Key']}#{u['UploadId']}" for u in response.get("Uploads", [])}
            if not response.get("IsTruncated"):
                return found
            request["KeyMarker"] = response["NextKeyMarker"]
            request["UploadIdMarker"] = response["NextUploadIdMarker"]

    def note_leftovers(self, locator: str | None = None) -> None:
        self.leftovers |= self.temporaries(self.fresh(locator) if locator else None)

    def kill(self, op: str, params: dict[str, Any], **how: Any) -> Round:
        """Kill a child running ``op`` (see :meth:`Crasher.kill`); on S3, let moto settle."""
        r = self.crasher.kill(op, params, **how)
        if self.backend == "s3":
            # Requests the child sent before it died are still served: their
            # writes take effect after the kill. Checks start once they are done.
            self.served_late += _moto_settled()
        return r

    def report(self) -> None:
        """Print what was done (shown with ``pytest -s`` or ``-rP``)."""
        print(
            f"{self.crasher.summary()}; temporaries left by kills: {len(self.leftovers)}, "
            f"reclaimed by clean: {self.reclaimed}"
            + (f"; requests served after the kill: {self.served_late}" if self.served_late else "")
            + "".join(f"; {note}" for note in self.notes)
        )


def _moto_settled(quiet: float = 0.2, timeout: float = 60.0) -> int:
    """Wait until moto, served by threads of this process, has served no request for a while.

    A request is being served while its thread runs werkzeug's ``run_wsgi``
    (idle keep-alive connections wait outside it). Returns how many were at
    most being served at once: right after a kill, the killed child's.
    """
    me, most = threading.get_ident(), 0
    calm, deadline = time.monotonic(), time.monotonic() + timeout
    while True:
        busy = sum(_serving(frame) for ident, frame in sys._current_frames().items() if ident != me)
        most, now = max(most, busy), time.monotonic()
        if busy:
            calm = now
        elif now - calm >= quiet:
            return most
        assert now < deadline, f"moto still serving {busy} requests after {timeout:.0f} s"
        time.sleep(0.005)


def _serving(frame: FrameType | None) -> bool:
    while frame is not None:
        code = getattr(frame, "f_code", None)
        if code is None:
            # The thread ran on while its stack was walked, and the frame is
            # gone: counted as busy, so the next look decides.
            return True
        if code.co_name == "run_wsgi" and "werkzeug" in code.co_filename:
            return True
        frame = frame.f_back
    return False


@contextmanager
def checking(where: Round | str) -> Iterator[None]:
    """Name the round (and where its kill was aimed) in any failure inside."""
    try:
        yield
    except AssertionError as exc:
        what = where.describe() if isinstance(where, Round) else where
        raise AssertionError(f"{what}\n{exc}") from exc


# -- what must be there, and what may -------------------------------------------------


@dataclass
class Ledger:
    """What the store must hold after a kill, and what it may.

    Jobs are checked by the tag stored with them (``job.tag``, the payload
    following from it); files and shared files by the digest of their
    content. Anything listed that is in none of these is a failure.
    """

    #: Job ID -> tags one of which it must hold.
    jobs: dict[str, set[str]] = field(default_factory=dict)
    #: Job ID -> tags it may hold, if it is there at all (a step in flight).
    maybe_jobs: dict[str, set[str]] = field(default_factory=dict)
    #: File ID -> digests one of which it must hold.
    files: dict[str, set[str]] = field(default_factory=dict)
    #: File ID -> digests it may hold, if it is there at all.
    maybe_files: dict[str, set[str]] = field(default_factory=dict)
    #: Digests a file with an ID never reported may hold (the write in flight): at most one.
    unknown: set[str] = field(default_factory=set)
    #: Shared file name -> digests one of which it must hold.
    shared: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Seen:
    """What a check found: each job's tag, each file's digest (where read), each shared file's."""

    jobs: dict[str, str]
    files: set[str]
    digests: dict[str, str]
    shared: dict[str, str]


def _read(store: JobStore, file_id: str) -> bytes:
    with store.read_file_stream(file_id) as handle:
        data: bytes = handle.read()
    return data


def _whole(data: bytes, allowed: set[str], what: str) -> str:
    found = digest(data)
    if found not in allowed:
        try:
            tag = tag_of(data) if data else "(empty)"
        except Torn as exc:
            raise AssertionError(f"{what} is torn: {exc}") from None
        raise AssertionError(f"{what} holds {tag!r} ({len(data)} bytes), none of those written")
    return found


def verify(store: JobStore, ledger: Ledger, read: set[str] | None = None) -> Seen:
    """Check ``store`` against ``ledger``; read the files in ``read`` (all if None).

    Files in flight and files never reported are always read.
    """
    jobs: dict[str, str] = {}
    for job in store.jobs():  # each decoded: a torn document raises CorruptStoreError
        job_id = str(job.jobStoreID)
        allowed = ledger.jobs.get(job_id, ledger.maybe_jobs.get(job_id))
        assert allowed is not None, f"job {job_id} is listed but was never written (or deleted)"
        tag = getattr(job, "tag", None)
        assert tag in allowed, f"job {job_id} holds {tag!r}, not one of {sorted(allowed)}"
        assert job.payload == text(tag), f"job {job_id}: its payload is not {tag!r}'s"
        jobs[job_id] = tag
    missing = sorted(set(ledger.jobs) - set(jobs))
    assert not missing, f"finished jobs missing: {missing}"
    # A few jobs in flight and a few finished ones, one at a time as well.
    for job_id in [*sorted(ledger.maybe_jobs)[:3], *sorted(ledger.jobs)[:3]]:
        assert store.job_exists(job_id) == (job_id in jobs), f"job {job_id}: exists?"
        if job_id in jobs:
            assert store.load_job(job_id).tag == jobs[job_id]

    listed = set(store.get_all_file_ids())
    missing = sorted(set(ledger.files) - listed)
    assert not missing, f"finished files missing: {missing}"
    unknown = listed - set(ledger.files) - set(ledger.maybe_files)
    assert len(unknown) <= (1 if ledger.unknown else 0), f"files never written: {sorted(unknown)}"
    for file_id in ledger.maybe_files:
        assert store.file_exists(file_id) == (file_id in listed), f"file {file_id}: exists?"
    digests: dict[str, str] = {}
    for file_id in sorted(listed):
        if read is None or file_id in read or file_id not in ledger.files:
            allowed = ledger.files.get(file_id, ledger.maybe_files.get(file_id, ledger.unknown))
            digests[file_id] = _whole(_read(store, file_id), allowed, f"file {file_id}")

    shared: dict[str, str] = {}
    for name, allowed in ledger.shared.items():
        with store.read_shared_file_stream(name) as handle:
            shared[name] = _whole(handle.read(), allowed, f"shared file {name!r}")

    # Nothing in raw storage that the store does not list (temporaries and logs aside).
    accounted = {layout_.MARKER, layout_.READER}
    accounted |= {layout_.job_key(j) for j in jobs}
    accounted |= {layout_.parse_file_id(f).key for f in listed}
    accounted |= {layout_.shared_key(n) for n in ledger.shared}
    hidden = sorted(
        k
        for k in raw_keys(store) - accounted
        if not k.startswith((layout_.TMP, layout_.INBOX, layout_.ARCHIVE))
    )
    assert not hidden, f"stored but not listed: {hidden}"
    return Seen(jobs, listed, digests, shared)


def settle(ledger: Ledger, seen: Seen) -> None:
    """Take what the check found as what must stay: in-flight steps are over."""
    for job_id in list(ledger.maybe_jobs):
        allowed = ledger.maybe_jobs.pop(job_id)
        if job_id in seen.jobs:
            ledger.jobs[job_id] = allowed
    for job_id, tag in seen.jobs.items():
        ledger.jobs[job_id] = {tag}
    for file_id in list(ledger.maybe_files):
        ledger.maybe_files.pop(file_id)
        if file_id in seen.files:
            ledger.files[file_id] = {seen.digests[file_id]}
    for file_id, found in seen.digests.items():
        ledger.files[file_id] = {found}
    ledger.unknown = set()
    for name, found in seen.shared.items():
        ledger.shared[name] = {found}


def finish(
    bench: Bench, ledger: Ledger, orphans: set[str] | None = None, locator: str | None = None
) -> None:
    """Reclaim what the kills left with ``clean``, then check that every finished write stays.

    ``orphans``: the files ``clean`` is to delete as orphans (files of jobs
    that were deleted, whose ``cleanup`` flag was off); none by default.
    ``locator``: another store than the bench's.
    """
    store = bench.fresh(locator)
    left = bench.temporaries(store)
    seen = {p for p in bench.leftovers if p.startswith(f"{store.root}/")}
    assert left == seen, "temporaries came or went between the kills and clean"
    dry = clean(store, older_than=0, dry_run=True)
    report = clean(store, older_than=0)
    if bench.backend == "file":
        removed = {t.path for t in report.temporaries}
        tmp = f"{store.root}/{layout_.TMP}"
        assert all(t.kind == "file" and t.path.startswith(tmp) for t in report.temporaries)
    else:
        removed = {f"{t.path}#{t.upload_id}" for t in report.temporaries}
        assert all(t.kind == "upload" for t in report.temporaries), report.temporaries
    assert removed == left, f"clean removed {sorted(removed)}, raw storage had {sorted(left)}"
    assert [t.path for t in dry.temporaries] == [t.path for t in report.temporaries]
    assert {f.id for f in report.orphans} == (orphans or set())
    assert bench.temporaries(store) == set(), "temporaries left after clean"
    for file_id in orphans or set():
        ledger.files.pop(file_id, None)
    # Nothing clean removed was a finished write: everything is still there, whole.
    verify(bench.fresh(locator), ledger)
    bench.reclaimed += len(removed)


def _owner(store: JobStore, ledger: Ledger) -> str:
    job = JobDescription(jobName="owner")
    job_id = store.assign_job_id(job)
    job.tag, job.payload = job_id, text(job_id)
    store.create_job(job)
    ledger.jobs[job_id] = {job_id}
    return job_id


# -- stores of their own ------------------------------------------------------------


def _place(bench: Bench, name: str) -> str:
    if bench.backend == "file":
        return str(bench.tmp_path / "places" / name)
    return f"{bench.target.locator}-{name}"
