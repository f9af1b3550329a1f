"""One worker process of the scale-out harness, run inside a simulated host.

``ip netns exec HOST python worker.py`` imports everything, prints ``READY``
and then takes one JSON command a line on standard input, answering each
with one JSON line on standard output:

``{"op": "setup", ...}`` (the leader)
    Initialize the store and create the shared counter jobs; answer their IDs.
``{"op": "run", ...}``
    Run the workflow-shaped loop (:func:`work`) until the deadline; answer
    what was done, every latency, and this process's CPU and HTTP requests.
``{"op": "read", ...}`` (the leader)
    Read log messages with ``read_logs`` until the deadline, as a leader does.
``{"op": "verify", ...}`` (the leader)
    Check the store against what the workers said they did (:mod:`verify`),
    then destroy it.

The process exits when its standard input closes. An audit hook refuses any
connection but to the server's namespace address and loopback.
"""

from __future__ import annotations

import io
import json
import os
import random
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("NO_GCE_CHECK", "true")

import aiohttp  # noqa: E402
from netns import SERVER_ADDRESS  # noqa: E402
from verify import verify  # noqa: E402

from fsjobstore import (  # noqa: E402
    ConcurrentFileModificationException,
    JobDescription,
    JobStore,
)

#: Jobs created per ``batch()``.
BATCH = 4
SMALL = os.urandom(4 * 1024)
LARGE = os.urandom(1024 * 1024)
REQUIREMENTS = {"memory": 2**30, "cores": 1, "disk": 2**30, "preemptible": False}
T = TypeVar("T")
#: Attempts at one contended update before the worker gives up on it (and says so).
MAX_ATTEMPTS = 200

# -- what this process sends ------------------------------------------------------------

_REQUESTS = [0]


def _count_requests() -> None:
    """Count every HTTP request this process sends (s3fs, gcsfs and adlfs all use aiohttp)."""
    original = aiohttp.ClientSession._request

    async def counted(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> Any:
        _REQUESTS[0] += 1
        return await original(self, *args, **kwargs)

    aiohttp.ClientSession._request = counted  # type: ignore[method-assign]


def _only_our_hosts(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook: refuse a TCP connection anywhere but the server namespace or loopback."""
    if event != "socket.connect":
        return
    address = args[1]
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host != SERVER_ADDRESS and not host.startswith("127.") and host != "::1":
            raise PermissionError(f"scale worker: refused a connection to {address!r}")


# -- the store --------------------------------------------------------------------------


def open_store(command: dict[str, Any]) -> JobStore:
    """A store object on the command's locator, resumed unless ``fresh``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        store = JobStore(command["locator"], **command["options"])
    if not command.get("fresh"):
        store.resume()
    return store


def setup(command: dict[str, Any]) -> dict[str, Any]:
    """Initialize the store; create ``shared`` counter jobs every worker updates."""
    store = open_store(command | {"fresh": True})
    store.initialize()
    shared = []
    with store.batch():
        for index in range(command["shared"]):
            job = JobDescription(dict(REQUIREMENTS), jobName=f"shared-{index}", unitName="u")
            job.counter = 0
            store.create_job(job)
            shared.append(job.jobStoreID)
    return {"shared": shared}


class Recorder:
    """Latencies by kind of call, and the calls that failed unexpectedly."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {}
        self.errors: list[str] = []

    def timed(self, kind: str, call: Callable[..., T], *args: Any) -> T:
        """Run ``call(*args)``, recording its latency under ``kind``."""
        start = time.perf_counter()
        result = call(*args)
        self.latency.setdefault(kind, []).append(time.perf_counter() - start)
        return result


def _write(store: JobStore, job_id: str, data: bytes) -> tuple[str, int]:
    with store.write_file_stream(job_id, cleanup=True) as (handle, file_id):
        handle.write(data)
    return str(file_id), len(data)


def _ready(store: JobStore, job_id: str) -> dict[str, float]:
    """Warm up, say so, and wait for the start: the clock starts with every process ready.

    The first calls of a process import parts of its client and open its
    first connections, which would otherwise fall into the measured window
    (for a short window, all of it).
    """
    store.load_job(job_id)
    print(json.dumps({"ready": True}), flush=True)
    when: dict[str, float] = json.loads(sys.stdin.readline())
    while time.time() < when["start"]:
        time.sleep(0.001)
    return when


def _create(store: JobStore, jobs: list[JobDescription]) -> None:
    """Create ``jobs`` in one ``batch()``, as a leader schedules a job's successors."""
    with store.batch():
        for job in jobs:
            store.create_job(job)


def _touch(store: JobStore, job_id: str) -> None:
    """Load a job of this worker's own and update it (nobody else writes it)."""
    job = store.load_job(job_id)
    job.remainingTryCount -= 1
    store.update_job(job)


def _bump(store: JobStore, job_id: str, conflicts: list[int]) -> None:
    """Load a shared job and add one to its counter, again on each conflict."""
    for _ in range(MAX_ATTEMPTS):
        job = store.load_job(job_id)
        job.counter += 1
        try:
            store.update_job(job)
            return
        except ConcurrentFileModificationException:
            conflicts[0] += 1
    raise RuntimeError(f"{job_id}: no update went through in {MAX_ATTEMPTS} attempts")


def work(command: dict[str, Any]) -> dict[str, Any]:
    """The workflow-shaped loop, until ``deadline`` (epoch seconds).

    Each round: create ``BATCH`` jobs in one ``batch()``; write a 4 KiB file
    owned by each (cleanup) and one 1 MiB file; load and update one of them;
    load and update a shared counter job, retrying on
    ``ConcurrentFileModificationException``; write a log message; delete the
    previous round's jobs (and so their cleanup files). The last round's
    jobs are kept, for the leader to check.
    """
    store = open_store(command)
    worker, shared = command["worker"], command["shared"]
    rng = random.Random(worker)
    rec = Recorder()
    increments = dict.fromkeys(shared, 0)
    conflicts = [0]
    logs = 0
    previous: list[str] = []
    kept: dict[str, dict[str, int]] = {}  # job -> its files and their sizes
    gone: list[str] = []  # the files of deleted jobs
    created = deleted = 0
    when = _ready(store, shared[0])
    cpu0, requests0, started = time.process_time(), _REQUESTS[0], time.perf_counter()
    while time.time() < when["deadline"]:
        try:
            jobs = [
                JobDescription(dict(REQUIREMENTS), jobName="w", unitName="u") for _ in range(BATCH)
            ]

            rec.timed("create batch", _create, store, jobs)
            created += len(jobs)
            ids = [str(j.jobStoreID) for j in jobs]
            files: dict[str, dict[str, int]] = {i: {} for i in ids}
            for job_id in ids:
                fid, size = rec.timed("write 4 KiB", _write, store, job_id, SMALL)
                files[job_id][fid] = size
            fid, size = rec.timed("write 1 MiB", _write, store, ids[0], LARGE)
            files[ids[0]][fid] = size

            rec.timed("load+update", _touch, store, ids[-1])
            target = rng.choice(shared)
            rec.timed("load+update shared", _bump, store, target, conflicts)
            increments[target] += 1
            rec.timed("write_logs", store.write_logs, f"{worker}:{logs}")
            logs += 1
            for job_id in previous:
                rec.timed("delete_job", store.delete_job, job_id)
                gone.extend(kept.pop(job_id))
                deleted += 1
            previous = ids
            kept.update(files)
        except Exception as exc:  # every unexpected failure is reported, never hidden
            rec.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            if len(rec.errors) > 20:
                break
    seconds = time.perf_counter() - started
    return {
        "worker": worker,
        "seconds": seconds,
        "cpu": time.process_time() - cpu0,
        "requests": _REQUESTS[0] - requests0,
        "latency": rec.latency,
        "errors": rec.errors,
        "increments": increments,
        "conflicts": conflicts[0],
        "logs": logs,
        "created": created,
        "deleted": deleted,
        "kept": kept,
        "deleted_files": gone,
    }


def read(command: dict[str, Any]) -> dict[str, Any]:
    """Read log messages as a leader does, every ``every`` seconds until ``deadline``."""
    store = open_store(command)
    got: list[str] = []
    rec = Recorder()

    def take(handle: io.BytesIO | Any) -> None:
        got.append(handle.read().decode())

    when = _ready(store, command["shared"][0])
    cpu0, requests0, started = time.process_time(), _REQUESTS[0], time.perf_counter()
    while time.time() < when["deadline"]:
        try:
            rec.timed("read_logs", store.read_logs, take)
        except Exception as exc:
            rec.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        time.sleep(command["every"])
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu0,
        "requests": _REQUESTS[0] - requests0,
        "latency": rec.latency,
        "errors": rec.errors,
        "messages": got,
    }


def main() -> int:
    _count_requests()
    sys.addaudithook(_only_our_hosts)
    print("READY", flush=True)
    handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "setup": setup,
        "run": work,
        "read": read,
        "verify": lambda c: verify(open_store(c), c),
    }
    for line in sys.stdin:
        command = json.loads(line)
        try:
            answer = handlers[command["op"]](command)
        except Exception as exc:
            answer = {"failed": f"{type(exc).__name__}: {exc}"[:1000]}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
