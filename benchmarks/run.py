"""Benchmarks: fsjobstore against the plain-Python floor, and S3 requests per operation.

Run with ``nox -s bench`` (or ``python benchmarks/run.py [--quick]``). Times are
medians of several repetitions after a warm-up, reported as ratios to a floor
measured in the same run: plain Python doing the least work with the same
guarantee (write a temporary file and ``os.replace`` it; ``open``/``read``;
``os.remove``). Request counts are counted at the S3 server (moto), so they do
not depend on the machine. Results go to ``benchmarks/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fsjobstore import JobDescription, JobStore

RESULTS = Path(__file__).parent / "results"
KiB = 1024
MiB = 1024 * KiB


def timed(body: Callable[[], Any], count: int, repeats: int) -> dict[str, float]:
    """Median, min and max microseconds per operation over ``repeats`` runs of ``count``."""
    body()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        body()
        samples.append((time.perf_counter() - start) / count * 1e6)
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def floor_ops(root: Path, n: int, payload: bytes) -> dict[str, Callable[[], Any]]:
    """The same operations in plain Python, with the same atomicity."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / "tmp"
    tmp.mkdir(exist_ok=True)

    def write_all() -> None:
        for i in range(n):
            t = tmp / uuid.uuid4().hex
            t.write_bytes(payload)
            os.replace(t, root / f"f{i}")

    def read_all() -> None:
        for i in range(n):
            (root / f"f{i}").read_bytes()

    def remove_all() -> None:
        for i in range(n):
            os.remove(root / f"f{i}")

    def write_then_remove() -> None:
        write_all()
        remove_all()

    return {"write": write_all, "read": read_all, "write+remove": write_then_remove}


def store_ops(
    store: JobStore, n: int, payload: bytes, workdir: Path
) -> dict[str, Callable[[], Any]]:
    """The operations under test; each runs ``n`` times."""
    local = workdir / "payload.bin"
    local.write_bytes(payload)
    out = workdir / "out.bin"
    jobs: list[JobDescription] = []
    files: list[str] = []

    def create() -> None:
        jobs.clear()
        jobs.extend(store.create_job(JobDescription(jobName=f"j{i}")) for i in range(n))

    def update() -> None:
        for job in jobs:
            job.remainingTryCount = 1
            store.update_job(job)

    def load() -> None:
        for job in jobs:
            store.load_job(job.jobStoreID or "")

    def listing() -> None:
        for _ in store.jobs():
            pass

    def delete() -> None:
        for job in jobs:
            store.delete_job(job.jobStoreID or "")

    def create_delete() -> None:
        create()
        delete()

    def write_files() -> None:
        files.clear()
        files.extend(store.write_file(local) for _ in range(n))

    def read_files() -> None:
        for file_id in files:
            store.read_file(file_id, out)

    def stream_files() -> None:
        for file_id in files:
            with store.read_file_stream(file_id) as handle:
                handle.read()

    def write_delete_files() -> None:
        write_files()
        for file_id in files:
            store.delete_file(file_id)

    def shared() -> None:
        for i in range(n):
            with store.write_shared_file_stream(f"s{i % 10}") as handle:
                handle.write(payload)

    def logs() -> None:
        for i in range(n):
            store.write_logs(f"message {i}")
        store.read_logs(lambda handle: handle.read())

    return {
        "create_job": create,
        "update_job": update,
        "load_job": load,
        "jobs() per job": listing,
        "create+delete_job": create_delete,
        "write_file 4 KiB": write_files,
        "read_file 4 KiB": read_files,
        "read_file_stream 4 KiB": stream_files,
        "write+delete_file 4 KiB": write_delete_files,
        "shared file write": shared,
        "write_logs+read_logs": logs,
    }


def local_benchmarks(name: str, base: Path, n: int, repeats: int) -> dict[str, Any]:
    """Ratios to the floor on one local filesystem (disk or tmpfs)."""
    payload = os.urandom(4 * KiB)
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        store = JobStore(str(work / "store"))
        store.initialize()
        floors = {k: timed(f, n, repeats) for k, f in floor_ops(work / "floor", n, payload).items()}
        ops = store_ops(store, n, payload, work)
        floor_for = {
            "create_job": "write",
            "update_job": "write",
            "load_job": "read",
            "jobs() per job": "read",
            "create+delete_job": "write+remove",
            "write_file 4 KiB": "write",
            "read_file 4 KiB": "write",  # a copy is a read plus an atomic write
            "read_file_stream 4 KiB": "read",
            "write+delete_file 4 KiB": "write+remove",
            "shared file write": "write",
            "write_logs+read_logs": "write+remove",
        }
        results = {}
        for op, body in ops.items():
            if op == "jobs() per job":
                # Per job means over exactly n stored jobs: clear what earlier runs left.
                for job in list(store.jobs()):
                    store.delete_job(job.jobStoreID or "")
            if op in ("update_job", "load_job", "jobs() per job"):
                ops["create_job"]()
            if op in ("read_file 4 KiB", "read_file_stream 4 KiB"):
                ops["write_file 4 KiB"]()
            measured = timed(body, n, repeats)
            floor = floors[floor_for[op]]["median"]
            results[op] = {**measured, "floor": floor, "ratio": measured["median"] / floor}
        results["stream 256 MiB"] = stream_benchmark(store, work)
        return {"backend": name, "path": str(base), "operations": results}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stream_benchmark(store: JobStore, work: Path) -> dict[str, float]:
    """MB/s of a 256 MiB stream write and read, against plain file I/O."""
    block = os.urandom(MiB)
    size = 256

    def plain() -> float:
        start = time.perf_counter()
        with open(work / "plain.bin", "wb") as handle:
            for _ in range(size):
                handle.write(block)
        os.replace(work / "plain.bin", work / "plain2.bin")
        with open(work / "plain2.bin", "rb") as handle:
            while handle.read(MiB):
                pass
        return time.perf_counter() - start

    def ours() -> float:
        start = time.perf_counter()
        with store.write_file_stream() as (handle, file_id):
            for _ in range(size):
                handle.write(block)
        with store.read_file_stream(file_id) as handle:
            while handle.read(MiB):
                pass
        store.delete_file(file_id)
        return time.perf_counter() - start

    floor = min(plain() for _ in range(3))
    measured = min(ours() for _ in range(3))
    return {
        "MB/s": 2 * size / measured,
        "floor MB/s": 2 * size / floor,
        "ratio": measured / floor,
    }


def s3_request_counts() -> dict[str, int]:
    """Requests per operation, counted at a moto server on 127.0.0.1."""
    from tests.servers import s3_server

    counts: dict[str, int] = {}
    with s3_server() as server, tempfile.TemporaryDirectory() as tmp:
        options = server.storage_options()
        store = JobStore(f"s3://fsjobstore-bench/{uuid.uuid4().hex}", **options)
        store.initialize()
        local = Path(tmp) / "payload.bin"
        local.write_bytes(os.urandom(4 * KiB))

        def count(name: str, body: Callable[[], Any]) -> Any:
            server.requests.clear()
            result = body()
            counts[name] = len(server.requests.snapshot())
            return result

        job = count("create_job", lambda: store.create_job(JobDescription(jobName="j")))
        job_id = job.jobStoreID or ""
        count("load_job", lambda: store.load_job(job_id))
        count("update_job", lambda: store.update_job(job))
        file_id = count("write_file 4 KiB", lambda: store.write_file(local))
        count("read_file 4 KiB", lambda: store.read_file(file_id, Path(tmp) / "out"))

        def shared_write() -> None:
            with store.write_shared_file_stream("s") as handle:
                handle.write(b"x" * 4 * KiB)

        def shared_read() -> None:
            with store.read_shared_file_stream("s") as handle:
                handle.read()

        count("shared file write 4 KiB", shared_write)
        count("shared file read 4 KiB", shared_read)
        for i in range(20):
            with store.write_file_stream(job_id, cleanup=True, basename=f"c{i}") as (out, _):
                out.write(b"x")
        count("delete_job with 20 cleanup files", lambda: store.delete_job(job_id))
        store.destroy()
    return counts


def main() -> int:
    """Run the benchmarks, print a table, write ``results/latest.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer operations, for a smoke run")
    args = parser.parse_args()
    n, repeats = (50, 3) if args.quick else (500, 7)
    report: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "n": n,
        "repeats": repeats,
        "local": [],
    }
    bases = [("disk", Path(tempfile.gettempdir()))]
    if Path("/dev/shm").is_dir():
        bases.append(("tmpfs", Path("/dev/shm")))
    for name, base in bases:
        result = local_benchmarks(name, base, n, repeats)
        report["local"].append(result)
        print(f"\n{name} ({base}): fsjobstore / floor, median of {repeats} runs of {n}")
        for op, value in result["operations"].items():
            print(f"  {op:<28} {value['ratio']:6.2f}x")
    report["s3_requests"] = s3_request_counts()
    print("\nS3 requests per operation (counted at the server):")
    for op, value in report["s3_requests"].items():
        print(f"  {op:<36} {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
