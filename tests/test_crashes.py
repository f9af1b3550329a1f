"""Every writing operation, killed with SIGKILL at random points, on local disk and on S3.

Each test runs one operation in a loop in a child process (see
:mod:`tests.crashing`) that reports every step it finished, kills it at a
seeded random point spread over a step, and then checks with a **fresh**
store object, in this process, what ``docs/index.md`` ("After a crash")
promises:

- every step the child reported finished is there whole: jobs load and hold
  the payload written, files read back to the digest reported, a shared
  file holds one of the versions written, whole;
- nothing is half-visible: ``jobs()`` and ``get_all_file_ids()`` list only
  whole items, the step in flight left the old content or nothing (or, for a
  write with no ID yet, at most one new file, whole), and raw storage holds
  nothing outside ``tmp/`` that the store does not list;
- a killed ``batch()`` leaves any subset of its jobs, each whole;
- log messages are each delivered at least once in all, and again only if a
  killed reader had delivered them without archiving them;
- a killed ``initialize()`` can be re-run to success (or the store it made
  opens), a killed ``destroy()`` is finished by ``destroy()``, with or
  without the marker left, and the location is usable again;
- in the end ``fsjobstore.maintenance.clean(store, older_than=0)`` removes
  exactly the temporaries the kills left (files in ``tmp/`` on local disk,
  incomplete multipart uploads on S3, as raw storage and moto's
  ``ListMultipartUploads`` show them), leaves none, and every finished write
  is still there, whole.

Kill points are drawn from a random generator seeded with
``FSJOBSTORE_CRASH_SEED`` (``crash-1`` by default), the test's name and the
backend; the same seed aims the same kills, though where each lands also
depends on the machine's timing. A failure names the round and the point.
The ``long`` variants (``pytest -m long``) kill three times as often, with
other seeds, and add streams over 50 MiB (multipart uploads on S3).

Children are forked from a fork server that has imported fsjobstore and the
storage clients once (:mod:`tests.crashing`): a fresh interpreter takes one
to three seconds to start here, a fork about 20 ms. moto runs in this
process; requests a child had sent before it died are still served after
the kill, and take effect then, so on S3 every check waits until moto has
served them (:meth:`Bench.kill`; the number is reported). On S3 a killed log
reader's lease keeps the next reader waiting 30 seconds: the default run
kills one reader there (three in the long run), after one that is not killed.

Each test prints what its kills did (``pytest -rP``): per kill, the steps
waited for, the fraction of a step aimed at, the steps finished, whether a
step was in flight, and how late the kill came.
"""

from __future__ import annotations

import os
import posixpath
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

import pytest

from fsjobstore import JobDescription, JobStore, NoSuchJobStoreException
from fsjobstore import layout as layout_
from fsjobstore.errors import JobStoreExistsException
from fsjobstore.maintenance import clean
from fsjobstore.testing import Target
from fsjobstore.testing.raw import raw_keys, raw_read

from .conftest import make_target
from .crashing import Crasher, MiB, Round, Torn, content, digest, tag_of, text

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
        code = frame.f_code
        if code.co_name == "run_wsgi" and "werkzeug" in code.co_filename:
            return True
        frame = frame.f_back
    return False


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["default", pytest.param("long", marks=pytest.mark.long)])
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bench(
    request: pytest.FixtureRequest, backend: str, variant: str, tmp_path: Path
) -> Iterator[Bench]:
    target = make_target(request, backend, tmp_path)
    store = target.open()
    store.initialize()
    name = request.node.originalname
    crasher = Crasher(
        target.locator, target.options, tmp_path / "reports", f"{SEED}:{name}:{backend}:{variant}"
    )
    bench = Bench(target, store, crasher, ROUNDS[variant], variant, tmp_path)
    yield bench
    bench.report()


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


# -- jobs --------------------------------------------------------------------------------


def test_create_job(bench: Bench) -> None:
    ledger = Ledger()
    for _ in range(bench.rounds):
        r = bench.kill("create_job", {"count": 100_000}, after=MANY[bench.backend])
        with checking(r):
            ledger.jobs.update({e["id"]: {e["id"]} for e in r.done})
            if r.in_flight:
                ledger.maybe_jobs[r.in_flight["id"]] = {r.in_flight["id"]}
            settle(ledger, verify(bench.fresh(), ledger))
            bench.note_leftovers()
    finish(bench, ledger)


def test_batch(bench: Bench) -> None:
    """A killed batch of 200 creates leaves any subset of them, each whole.

    Each round has a store of its own, so that reading every job back after
    a kill stays quick on moto.
    """
    kept = []
    for number in range(bench.rounds):
        place = _place(bench, f"batch-{number}")
        bench.open(place).initialize()
        ledger = Ledger()
        params = {"count": 10, "size": 200}
        r = bench.kill("batch", params, after=range(0, BATCHES[bench.backend]), locator=place)
        with checking(r):
            begun = {e["step"]: e["ids"] for e in r.of("begin")}
            for e in r.done:
                ledger.jobs.update({i: {i} for i in begun[e["step"]]})
            if r.in_flight:
                ledger.maybe_jobs.update({i: {i} for i in r.in_flight["ids"]})
            seen = verify(bench.fresh(place), ledger)
            if r.in_flight:
                kept.append(len(set(r.in_flight["ids"]) & set(seen.jobs)))
            settle(ledger, seen)
            bench.note_leftovers(place)
            if number == bench.rounds - 1:
                finish(bench, ledger, locator=place)
            else:  # checked: only the last round's store is cleaned and read again
                bench.open(place).destroy()
    bench.notes.append(f"jobs kept of each killed batch of 200: {kept}")


#: A child finishes fewer batches than this before the kill (moto takes 1.5 s a batch).
BATCHES = {"file": 4, "s3": 2}


def test_update_job(bench: Bench) -> None:
    ledger = Ledger()
    job = JobDescription(jobName="updated")
    job_id = bench.store.assign_job_id(job)
    job.tag = f"{job_id}-0"
    job.payload = text(job.tag)
    bench.store.create_job(job)
    ledger.jobs[job_id] = {job.tag}
    version = 0
    for _ in range(bench.rounds):
        params = {"job_id": job_id, "start": version + 1, "count": 100_000}
        r = bench.kill("update_job", params, after=range(0, 20))
        with checking(r):
            if r.done:
                ledger.jobs[job_id] = {r.done[-1]["tag"]}
            if r.in_flight:
                ledger.jobs[job_id].add(r.in_flight["tag"])
            seen = verify(bench.fresh(), ledger)
            settle(ledger, seen)
            version = int(seen.jobs[job_id].rsplit("-", 1)[1])
            bench.note_leftovers()
    # The job is updated by a fresh store object after all the kills.
    store = bench.fresh()
    loaded = store.load_job(job_id)
    loaded.tag = f"{job_id}-{version + 1}"
    loaded.payload = text(loaded.tag)
    store.update_job(loaded)
    ledger.jobs[job_id] = {loaded.tag}
    finish(bench, ledger)


def test_delete_job(bench: Bench) -> None:
    """Deleting jobs that own files: two deleted with the job (cleanup), one that stays."""
    ledger, orphans = Ledger(), set[str]()
    owned: dict[str, tuple[list[str], str]] = {}  # job -> (cleanup files, the file that stays)
    for number in range(bench.rounds):
        store, ids = bench.fresh(), []
        for i in range(30 if bench.backend == "file" else 8):  # local deletes are quick
            job = JobDescription(jobName="doomed")
            job_id = store.assign_job_id(job)
            job.tag, job.payload = job_id, text(job_id)
            store.create_job(job)
            ledger.jobs[job_id] = {job_id}
            files: list[str] = []
            for cleanup in (True, True, False):
                data = content(f"r{number}-{i}-{len(files)}", 2000)
                with store.write_file_stream(job_id, cleanup=cleanup) as (out, new):
                    out.write(data)
                ledger.files[new] = {digest(data)}
                files.append(str(new))
            owned[job_id] = (files[:2], files[2])
            ids.append(job_id)
        r = bench.kill("delete_job", {"ids": ids}, after=range(0, 6))
        with checking(r):
            for e in r.done:
                del ledger.jobs[e["id"]]
                for file_id in owned[e["id"]][0]:
                    del ledger.files[file_id]
                orphans.add(owned[e["id"]][1])
            doomed = r.in_flight["id"] if r.in_flight else None
            if doomed:
                ledger.maybe_jobs[doomed] = ledger.jobs.pop(doomed)
                for file_id in owned[doomed][0]:
                    ledger.maybe_files[file_id] = ledger.files.pop(file_id)
            store = bench.fresh()
            seen = verify(store, ledger, read=set())
            if doomed:
                if doomed not in seen.jobs:  # files go first: none of them may be left
                    assert not set(owned[doomed][0]) & seen.files, "job deleted before its files"
                # Interrupted or not, the deletion is finished by another store object.
                store.delete_job(doomed, missing_ok=True)
                assert not store.job_exists(doomed)
                assert not set(owned[doomed][0]) & set(store.get_all_file_ids())
                del ledger.maybe_jobs[doomed]
                for file_id in owned[doomed][0]:
                    del ledger.maybe_files[file_id]
                orphans.add(owned[doomed][1])
            settle(ledger, verify(store, ledger, read=set()))
            bench.note_leftovers()
    finish(bench, ledger, orphans)


# -- files -------------------------------------------------------------------------------


def _writes(
    bench: Bench,
    op: str,
    *,
    sizes: list[tuple[int, int]],
    after: range,
    owner: bool,
    count: int,
    rounds: int | None = None,
) -> None:
    """Kill ``op`` (write_file or write_file_stream) at random, checking after each kill.

    The child makes the contents of ``count`` writes first, then writes them.
    """
    ledger = Ledger()
    job = _owner(bench.store, ledger) if owner else None
    for number in range(rounds or bench.rounds):
        params: dict[str, Any] = {"owner": job, "seed": f"r{number}", "sizes": sizes}
        params["count"] = count
        if op in ("write_file", "import_file"):
            params["scratch"] = str(bench.tmp_path / "scratch")
            os.makedirs(params["scratch"], exist_ok=True)
        r = bench.kill(op, params, after=after)
        with checking(r):
            for e in r.done:
                ledger.files[e["id"]] = {e["digest"]}
            if r.in_flight:
                ledger.unknown = {digest(content(r.in_flight["tag"], r.in_flight["size"]))}
            settle(ledger, verify(bench.fresh(), ledger, read={e["id"] for e in r.done}))
            bench.note_leftovers()
    finish(bench, ledger)


def test_write_file(bench: Bench) -> None:
    """Local files of up to 256 KiB, or over 8 MiB (one in three), some owned by a job."""
    _writes(bench, "write_file", sizes=[SMALL, SMALL, BIG], after=range(0, 6), owner=True, count=15)


def test_import_file(bench: Bench) -> None:
    """import_file of local files of up to 256 KiB, or over 8 MiB (one in three)."""
    sizes = [SMALL, SMALL, BIG]
    _writes(bench, "import_file", sizes=sizes, after=range(0, 6), owner=False, count=15)


def test_write_file_stream_small(bench: Bench) -> None:
    _writes(bench, "write_file_stream", sizes=[SMALL], after=range(0, 20), owner=False, count=80)


def test_write_file_stream_big(bench: Bench) -> None:
    """Streams over 8 MiB: spilled to local disk, then one upload (S3) or one rename."""
    _writes(bench, "write_file_stream", sizes=[BIG], after=range(0, 3), owner=False, count=6)


@pytest.mark.parametrize("variant", [pytest.param("long", marks=pytest.mark.long)])
def test_write_file_stream_huge(bench: Bench) -> None:
    """Streams over 50 MiB: multipart uploads on S3, which a kill leaves unfinished."""
    _writes(
        bench, "write_file_stream", sizes=[HUGE], after=range(0, 2), owner=False, count=3, rounds=4
    )


def test_get_empty_file_store_id(bench: Bench) -> None:
    ledger = Ledger()
    job = _owner(bench.store, ledger)
    for _ in range(bench.rounds):
        params = {"owner": job, "count": 100_000}
        r = bench.kill("get_empty_file_store_id", params, after=MANY[bench.backend])
        with checking(r):
            ledger.files.update({e["id"]: {EMPTY} for e in r.done})
            ledger.unknown = {EMPTY} if r.in_flight else set()
            settle(ledger, verify(bench.fresh(), ledger, read={e["id"] for e in r.done}))
            bench.note_leftovers()
    finish(bench, ledger)


def _versions(bench: Bench, op: str, name: str, ledger: Ledger, first: bytes) -> None:
    """Kill writes of new versions of one file (or shared file) ``name``, at random."""
    shared = op == "write_shared_file_stream"
    version, digests = 0, {digest(first): 0}
    for number in range(bench.rounds):
        params = {
            "name": name,
            "start": version + 1,
            "seed": f"r{number}",
            "sizes": [SMALL, BIG],
            "count": 12,
        }
        if op == "update_file":
            scratch = bench.tmp_path / "scratch"
            scratch.mkdir(exist_ok=True)
            params["scratch"] = str(scratch)
        r = bench.kill(op, params, after=range(0, 4))
        with checking(r):
            allowed = ledger.shared[name] if shared else ledger.files[name]
            if r.done:
                allowed.clear()
                allowed.add(r.done[-1]["digest"])
            for e in r.done:
                digests[e["digest"]] = int(e["tag"][1:])
            if r.in_flight:
                tag, size = r.in_flight["tag"], r.in_flight["size"]
                allowed.add(digest(content(tag, size)))
                digests[digest(content(tag, size))] = int(tag[1:])
            seen = verify(bench.fresh(), ledger, read={name})
            settle(ledger, seen)
            version = digests[seen.shared[name] if shared else seen.digests[name]]
            bench.note_leftovers()
    finish(bench, ledger)
    bench.notes.append(f"version {version} stored at the end")


def test_update_file_stream(bench: Bench) -> None:
    ledger = Ledger()
    first = content("v0", 1000)
    with bench.store.write_file_stream() as (out, file_id):
        out.write(first)
    ledger.files[file_id] = {digest(first)}
    _versions(bench, "update_file_stream", file_id, ledger, first)


def test_update_file(bench: Bench) -> None:
    """update_file from local files of up to 256 KiB or over 8 MiB."""
    ledger = Ledger()
    first = content("v0", 1000)
    with bench.store.write_file_stream() as (out, file_id):
        out.write(first)
    ledger.files[file_id] = {digest(first)}
    _versions(bench, "update_file", file_id, ledger, first)


def test_write_shared_file_stream(bench: Bench) -> None:
    """Overwrites of one shared file: it holds one of the versions written, whole."""
    ledger = Ledger()
    first = content("v0", 1000)
    with bench.store.write_shared_file_stream("crash.bin") as out:
        out.write(first)
    ledger.shared["crash.bin"] = {digest(first)}
    _versions(bench, "write_shared_file_stream", "crash.bin", ledger, first)


def test_delete_file(bench: Bench) -> None:
    ledger = Ledger()
    job = _owner(bench.store, ledger)
    for number in range(bench.rounds):
        store, ids = bench.fresh(), []
        for i in range(200 if bench.backend == "file" else 25):  # local deletes are quick
            data = content(f"r{number}-{i}", 500)
            owner = job if i % 2 else None
            with store.write_file_stream(owner, cleanup=owner is not None and i % 3 == 0) as (
                out,
                fid,
            ):
                out.write(data)
            ledger.files[fid] = {digest(data)}
            ids.append(str(fid))
        r = bench.kill("delete_file", {"ids": ids}, after=range(0, 20))
        with checking(r):
            for e in r.done:
                del ledger.files[e["id"]]
            if r.in_flight:
                ledger.maybe_files[r.in_flight["id"]] = ledger.files.pop(r.in_flight["id"])
            settle(ledger, verify(bench.fresh(), ledger, read=set()))
            bench.note_leftovers()
    finish(bench, ledger)


# -- logs --------------------------------------------------------------------------------


def _logs(store: JobStore, *, read_all: bool = False) -> list[bytes]:
    got: list[bytes] = []
    count = store.read_logs(lambda handle: got.append(handle.read()), read_all=read_all)
    assert count == len(got)
    return got


def test_write_logs(bench: Bench) -> None:
    """Every message written is delivered once, whole; the one in flight at most once."""
    written: set[str] = set()
    for number in range(bench.rounds):
        params = {"seed": f"r{number}", "sizes": [(100, 4000)], "count": 100_000}
        r = bench.kill("write_logs", params, after=range(0, 30))
        with checking(r):
            tags = [tag_of(data) for data in _logs(bench.fresh())]  # each whole
            assert len(tags) == len(set(tags)), "a message was delivered twice"
            done = {e["tag"] for e in r.done}
            assert done <= set(tags), f"finished messages not delivered: {done - set(tags)}"
            in_flight = {r.in_flight["tag"]} if r.in_flight else set()
            assert set(tags) <= done | in_flight, f"never written: {set(tags) - done - in_flight}"
            written |= set(tags)
            bench.note_leftovers()
    finish(bench, Ledger())
    # Everything delivered is archived, once.
    archived = [tag_of(data) for data in _logs(bench.fresh(), read_all=True)]
    assert sorted(archived) == sorted(written)


def _mailbox(store: JobStore) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Raw inbox and archive: tag -> the keys holding it (each checked whole)."""
    boxes: tuple[dict[str, list[str]], dict[str, list[str]]] = ({}, {})
    for box, prefix in zip(boxes, (layout_.INBOX, layout_.ARCHIVE), strict=True):
        for key in sorted(k for k in raw_keys(store) if k.startswith(prefix)):
            box.setdefault(tag_of(raw_read(store, key)), []).append(key)
    return boxes


def test_read_logs(bench: Bench) -> None:
    """Readers killed between delivery and archiving: at least once, duplicates only of those.

    A first reader runs to the end unkilled (exactly once, and the timing of
    delivery and archiving); then each round writes new messages and kills
    a reader at a random delivery or during the archiving that follows, and
    a fresh store's reader delivers what is left at the end. On S3 a killed
    reader leaves its lease behind, which the next reader takes over only
    after 30 seconds: S3 gets one killed reader (three in the long variant).
    """
    count = 40 if bench.backend == "s3" else 150
    kills = bench.rounds if bench.backend == "file" else bench.rounds // 5
    # Slower deliveries on S3, where the one kill must land inside the call.
    pause = 0.02 if bench.backend == "s3" else 0.002
    writer = bench.fresh()
    written: dict[str, str] = {}  # tag -> digest
    delivered: dict[str, int] = {}  # tag -> deliveries so far
    redeliverable: set[str] = set()  # delivered by a killed reader, not archived

    def post(number: int) -> None:
        for i in range(count):
            data = content(f"r{number}-{i}", 100 + 37 * i)
            writer.write_logs(data)
            written[f"r{number}-{i}"] = digest(data)

    def deliveries(r: Round) -> list[str]:
        tags = [e["tag"] for e in r.done]
        for e in r.done:
            assert written.get(e["tag"]) == e["digest"], f"delivered torn or foreign: {e}"
        assert len(tags) == len(set(tags)), "one reader delivered a message twice"
        again = {t for t in tags if t in delivered}
        assert again <= redeliverable, f"delivered again, though archived: {again - redeliverable}"
        for tag in tags:
            delivered[tag] = delivered.get(tag, 0) + 1
        return tags

    # The reader that is not killed: every message once, all archived; its timing.
    post(0)
    calm = bench.kill("read_logs", {"pause": pause}, after=count + 1, fraction=0.0)
    with checking(calm):
        assert calm.of("archived") and sorted(deliveries(calm)) == sorted(written)
        inbox, archive = _mailbox(bench.fresh())
        assert not inbox and sorted(archive) == sorted(written)
        archiving = calm.of("archived")[0]["t"] - calm.done[-1]["t"]
        delivery = (calm.done[-1]["t"] - calm.done[0]["t"]) / (len(calm.done) - 1)
    for number in range(1, kills + 1):
        post(number)
        pending = len(_mailbox(bench.fresh())[0])
        # Half the kills aim at a delivery, half at the last three deliveries and
        # the archiving after them (this process learns of a delivery late).
        # On S3 the first kill (the only one by default) aims at a delivery:
        # its archiving is over before this process, serving moto too, sees
        # the last delivery reported.
        delivering = bench.backend == "s3" and number == 1
        if delivering or bench.crasher.rng.random() < 0.5:
            r = bench.kill("read_logs", {"pause": pause}, after=range(1, pending))
        else:
            tail = 3 * delivery + archiving
            r = bench.kill("read_logs", {"pause": pause}, after=pending - 3, cycle=tail)
        with checking(r):
            tags = deliveries(r)
            inbox, archive = _mailbox(bench.fresh())
            assert set(inbox) | set(archive) == set(written), "a message was lost"
            assert set(archive) <= set(delivered), "archived without being delivered"
            assert all(len(keys) == 1 for keys in archive.values())
            redeliverable = (redeliverable | set(tags)) & set(inbox)
            bench.note_leftovers()
    # A fresh store's reader delivers exactly what is pending: each message once
    # more at most, and only those a killed reader left unarchived.
    store = bench.fresh()
    inbox, _ = _mailbox(store)
    last = [tag_of(data) for data in _logs(store)]
    assert sorted(last) == sorted(inbox), "the last reader did not deliver what was pending"
    assert {t for t in last if t in delivered} <= redeliverable
    for tag in last:
        delivered[tag] = delivered.get(tag, 0) + 1
    assert set(delivered) == set(written), "a message was never delivered"
    twice = sorted(t for t, n in delivered.items() if n > 1)
    inbox, archive = _mailbox(store)
    assert not inbox and set(archive) == set(written)
    finish(bench, Ledger())
    bench.notes.append(f"{len(written)} messages, {len(twice)} delivered twice")


# -- a store's lifecycle -----------------------------------------------------------------


def _place(bench: Bench, name: str) -> str:
    if bench.backend == "file":
        return str(bench.tmp_path / "places" / name)
    return f"{bench.target.locator}-{name}"


def _usable(bench: Bench, locator: str) -> None:
    """The store at ``locator`` opens, takes a job and a file, and holds nothing torn."""
    store = bench.fresh(locator)
    job = JobDescription(jobName="after")
    store.create_job(job)
    with store.write_file_stream(job.jobStoreID) as (out, file_id):
        out.write(b"after a crash")
    assert _read(bench.fresh(locator), file_id) == b"after a crash"
    clean(store, older_than=0)
    assert bench.temporaries(store) == set()


def test_initialize(bench: Bench) -> None:
    """A killed initialize() is re-run to success, or the store it made opens."""
    outcomes: list[str] = []
    for number in range(bench.rounds):
        places = [_place(bench, f"init-{number}-{k}") for k in range(30)]
        params = {"locators": places, "options": bench.target.options}
        r = bench.kill("initialize", params, after=range(0, 3), locator="-")
        with checking(r):
            for e in r.done:
                bench.fresh(e["locator"])
            if r.in_flight:
                place = r.in_flight["locator"]
                left = len(raw_keys(bench.open(place)))
                try:
                    bench.open(place).initialize()
                    outcomes.append(f"{left} keys, initialized again")
                except JobStoreExistsException:
                    outcomes.append(f"{left} keys, made")
                _usable(bench, place)
            begun = {e["locator"] for e in r.of("begin")}
            for place in places:
                if place not in begun:
                    untouched = bench.open(place)
                    with pytest.raises(NoSuchJobStoreException):
                        untouched.resume()
                    assert raw_keys(untouched) == set()
            for place in begun:
                bench.open(place).destroy()
    bench.notes.append(f"killed initialize(): {outcomes}")


#: Jobs in each store destroyed, and stores destroyed in a row (local deletes are quick:
#: more of them make a kill land inside one).
JOBS = {"file": 200, "s3": 12}
PLACES = {"file": 6, "s3": 4}


def _populate(bench: Bench, locator: str) -> dict[str, bytes]:
    """Make a store with jobs, files, a shared file and logs; return its files' contents."""
    store = bench.open(locator)
    store.initialize()
    jobs = [JobDescription(jobName=f"j{i}") for i in range(JOBS[bench.backend])]
    with store.batch():
        for job in jobs:
            store.create_job(job)
    files: dict[str, bytes] = {}
    for i in range(len(jobs) // 2):
        # Most with no job: one folder, so removing the emptied folders, last,
        # is quick, and more kills land while data is being deleted.
        owner = jobs[i].jobStoreID if i < 3 else None
        data = content(f"{posixpath.basename(locator)}-{i}", 3000)
        with store.write_file_stream(owner, cleanup=i == 0) as (out, fid):
            out.write(data)
        files[fid] = data
    with store.write_shared_file_stream("shared") as out:
        out.write(b"shared")
    for i in range(4):
        store.write_logs(f"message {i}")
    _logs(store)
    store.write_logs("pending")
    return files


def test_destroy(bench: Bench) -> None:
    """A killed destroy() is finished by destroy(), with or without the marker left."""
    outcomes: list[str] = []
    for number in range(bench.rounds):
        places = [_place(bench, f"gone-{number}-{k}") for k in range(PLACES[bench.backend])]
        stored = {place: _populate(bench, place) for place in places}
        params = {"locators": places, "options": bench.target.options}
        r = bench.kill("destroy", params, after=range(0, 2), locator="-")
        with checking(r):
            finished = {e["locator"] for e in r.done}
            killed = r.in_flight["locator"] if r.in_flight else None
            for place in places:
                store = bench.open(place)
                if place == killed:
                    left = raw_keys(store)
                    marked = layout_.MARKER in left
                    outcomes.append(f"{'marker' if marked else 'no marker'}, {len(left)} keys")
                    store.destroy()
                elif place in finished:
                    assert raw_keys(store) == set(), f"{place}: destroyed, yet holds data"
                else:  # not reached: whole
                    store.resume()
                    assert len(list(store.jobs())) == JOBS[bench.backend]
                    for file_id, data in stored[place].items():
                        assert _read(store, file_id) == data
                    store.destroy()
                assert raw_keys(store) == set()
                with pytest.raises(NoSuchJobStoreException):
                    bench.open(place).resume()
            if killed:  # the location is not wedged: a store can be made there again
                bench.open(killed).initialize()
                _usable(bench, killed)
                bench.open(killed).destroy()
    bench.notes.append(f"killed destroy(): {outcomes}")
