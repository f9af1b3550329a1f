"""A workflow-shaped workload, run under faults, and the checks of what it left."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field

from fsjobstore import ConcurrentFileModificationException, JobDescription, JobStore
from fsjobstore.testing import raw_keys, raw_read

__all__ = ["Expected", "check", "run"]

#: A stream above the spool block (8 MiB): it goes up in parts, or through local disk.
BIG = 9 * 1024 * 1024


def content(size: int, tag: str) -> bytes:
    """``size`` bytes that differ by ``tag``, cheaply."""
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


@dataclass
class Expected:
    """What the workload stored, to check against."""

    jobs: dict[str, int] = field(default_factory=dict)  # job ID → its counter
    deleted_jobs: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # file ID → content
    deleted_files: list[str] = field(default_factory=list)
    shared: dict[str, bytes] = field(default_factory=dict)
    logs: list[bytes] = field(default_factory=list)
    delivered: list[bytes] = field(default_factory=list)
    conflicts: int = 0


def _update(store: JobStore, job_id: str, expected: Expected) -> None:
    """Add one to a job's counter, reloading on a conflict as a Toil worker does."""
    for _ in range(20):
        job = store.load_job(job_id)
        job.counter += 1
        try:
            store.update_job(job)
        except ConcurrentFileModificationException:
            expected.conflicts += 1
            continue
        expected.jobs[job_id] = job.counter
        return
    raise AssertionError(f"job {job_id}: 20 conflicts in a row")


def run(store: JobStore, *, jobs: int = 4, updates: int = 2, big: bool = True) -> Expected:
    """Create, update and delete jobs, write, replace and delete files, shared files and logs."""
    expected = Expected()
    made = []
    for number in range(jobs):
        job = JobDescription(jobName=f"job-{number}")
        job.counter = 0
        store.create_job(job)
        made.append(job.jobStoreID or "")
        expected.jobs[made[-1]] = 0
    with store.batch():
        for number in range(2):
            job = JobDescription(jobName=f"batched-{number}")
            job.counter = 0
            store.create_job(job)
            made.append(job.jobStoreID or "")
            expected.jobs[made[-1]] = 0
    for _ in range(updates):
        for job_id in made:
            _update(store, job_id, expected)
    owner = made[0]
    sizes = [1000, 64 * 1024] + ([BIG] if big else [])
    for size in sizes:
        data = content(size, f"file-{size}")
        with store.write_file_stream(owner) as (stream, file_id):
            stream.write(data)
        expected.files[file_id] = data
    first = next(iter(expected.files))
    replaced = content(5000, "replaced")
    with store.update_file_stream(first) as stream:
        stream.write(replaced)
    expected.files[first] = replaced
    for stored, data in expected.files.items():
        with store.read_file_stream(stored) as stream:
            assert stream.read() == data, f"file {stored} read back torn"
    gone = list(expected.files)[1]
    store.delete_file(gone)
    expected.deleted_files.append(gone)
    del expected.files[gone]
    for name, size in (("config.json", 300), ("big.bin", 70 * 1024)):
        data = content(size, name)
        with store.write_shared_file_stream(name) as stream:
            stream.write(data)
        expected.shared[name] = data
    for number in range(5):
        message = f"log message {number}".encode()
        store.write_logs(message)
        expected.logs.append(message)
    store.read_logs(lambda stream: expected.delivered.append(stream.read()))
    victim = made[-1]
    store.delete_job(victim)
    expected.deleted_jobs.append(victim)
    del expected.jobs[victim]
    return expected


def check(store: JobStore, expected: Expected) -> None:
    """Check through a store with no faults, and raw storage, that nothing was lost or torn."""
    for job_id, counter in expected.jobs.items():
        assert store.load_job(job_id).counter == counter, f"job {job_id} lost an update"
    for job_id in expected.deleted_jobs:
        assert not store.job_exists(job_id), f"deleted job {job_id} is back"
    assert sorted(j.jobStoreID or "" for j in store.jobs()) == sorted(expected.jobs)
    for file_id, data in expected.files.items():
        with store.read_file_stream(file_id) as stream:
            assert stream.read() == data, f"file {file_id} lost or torn"
    for file_id in expected.deleted_files:
        assert not store.file_exists(file_id), f"deleted file {file_id} is back"
    for name, data in expected.shared.items():
        with store.read_shared_file_stream(name) as stream:
            assert stream.read() == data, f"shared file {name} lost or torn"
    # Delivered once each: a lost reply must not deliver a message twice or never.
    assert sorted(expected.delivered) == sorted(expected.logs), expected.delivered
    assert store.read_logs(lambda stream: None) == 0
    # Raw storage: every job document whole, every stored file one of the written ones.
    keys = raw_keys(store)
    known = set(expected.files.values()) | set(expected.shared.values())
    for key in keys:
        if key.startswith("jobs/"):
            json.loads(raw_read(store, key))
        elif key.startswith("files/"):
            data = raw_read(store, key)
            assert data in known or not data, f"{key} holds bytes nobody wrote"


def leftovers(store: JobStore) -> list[str]:
    """Temporaries left in ``tmp/`` (reclaimable by the store's clean-up)."""
    return sorted(k for k in raw_keys(store) if k.startswith("tmp/"))


def stream_of(data: bytes) -> io.BytesIO:
    """A readable stream of ``data``."""
    return io.BytesIO(data)
