"""The ``fsjobstore`` command: ``demo`` and ``status``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence

from .errors import JobStoreError, NoSuchJobStoreException
from .job import Config, JobDescription
from .store import JobStore

__all__ = ["main"]

DEFAULT_DEMO_STORE = "./fsjobstore-demo"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="fsjobstore", description="A workflow job store on any fsspec filesystem."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="walk through the job store API on a fresh store")
    demo.add_argument(
        "locator",
        nargs="?",
        default=DEFAULT_DEMO_STORE,
        help=f"where to put the demo store (default: {DEFAULT_DEMO_STORE})",
    )
    status = commands.add_parser("status", help="count what a job store holds")
    status.add_argument("locator", help="the job store's locator")
    status.add_argument("--json", action="store_true", help="print a JSON object")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return run_demo(args.locator)
        return run_status(args.locator, as_json=args.json)
    except (JobStoreError, OSError, ValueError, ImportError) as exc:
        print(f"fsjobstore: error: {exc}", file=sys.stderr)
        return 1


def run_demo(locator: str) -> int:
    """Walk through the seed's file job store example on a fresh store."""
    store = JobStore(locator)
    # destroy() deletes only a job store (it refuses anything without the
    # marker), so this removes an earlier demo and nothing else.
    store.destroy()
    config = Config(jobStore=store.locator)
    store.initialize(config)
    say = print
    say(
        f"initialized a job store at {store.locator} ({type(store.fs).__name__}, root {store.root})"
    )

    job = store.create_job(
        JobDescription(
            requirements={"memory": 1024**3, "cores": 1, "disk": 1024**3},
            jobName="test_job",
            unitName="test_unit",
        )
    )
    say(f"created job {job.jobStoreID} (remainingTryCount={job.remainingTryCount})")
    job.remainingTryCount = 2
    store.update_job(job)
    loaded = store.load_job(job.jobStoreID or "")
    say(f"updated and reloaded it: remainingTryCount={loaded.remainingTryCount}")

    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "input.txt")
        with open(source, "w") as handle:
            handle.write("test data")
        file_id = store.write_file(source, job_id=job.jobStoreID, cleanup=True)
        say(f"wrote input.txt as file {file_id} ({file_id.size} bytes)")
        output = os.path.join(tmp, "output.txt")
        store.read_file(file_id, output)
        with open(output) as handle:
            say(f"read it back: {handle.read()!r}")

    with store.write_shared_file_stream("demo-notes.txt", encoding="utf-8") as shared:
        shared.write("shared files have well-known names\n")
    store.write_logs("the demo job ran")
    kept = store.create_job(JobDescription(requirements={"cores": 1}, jobName="kept_job"))
    with store.write_file_stream(kept.jobStoreID, basename="result.txt") as (out, result_id):
        out.write(b"a result that outlives its job\n")
    say(f"created job {kept.jobStoreID} with file {result_id}")

    store.delete_job(job.jobStoreID or "")
    say(f"deleted job {job.jobStoreID} and its cleanup file: exists={store.file_exists(file_id)}")
    say(f"left the store at {store.locator}: see it with 'fsjobstore status {store.locator}'")
    return 0


def run_status(locator: str, *, as_json: bool) -> int:
    """Print what a store holds."""
    store = JobStore(locator)
    try:
        store.resume()
    except NoSuchJobStoreException as exc:
        print(f"fsjobstore: {exc}", file=sys.stderr)
        return 1
    counts = store.summary()
    if as_json:
        print(json.dumps({"locator": store.locator, **counts}))
    else:
        width = max(len(k) for k in counts)
        print(f"job store {store.locator}")
        for key, value in counts.items():
            print(f"  {key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
