"""Toil on fsjobstore: a real workflow's wall time, and the Toil layer's per-operation costs.

Two measurements, each against Toil's own stores on the same machine:

1. The seven-job workflow of ``tests/toil/workflow.py`` through Toil's
   command line with the single-machine batch system, on Toil's
   ``FileJobStore`` (``file:``), on fsjobstore on local disk
   (``fsjobstore:file:``) and on fsjobstore on S3 (moto, ``fsjobstore:s3://``).
   Toil's ``AWSJobStore`` cannot run a workflow on moto: it needs an
   in-process patch of its encryption set-up (``cloud_systems.py``), which
   worker processes would not have.
2. Job store calls Toil makes for every job, in this process, on Toil's
   ``FileJobStore`` and on ``ToilJobStore`` (local disk), with Toil's own
   ``JobDescription`` objects: create, load, update, delete, a small file
   written and read, and a shared file written and read.

Workers need the ``fsjobstore:`` type; where fsjobstore is installed
editable (``nox -s bench``), the wheel's start-up hook is not, so the runs
put an equivalent ``sitecustomize`` on ``PYTHONPATH`` that installs the same
hook from the source tree.

``python benchmarks/toil_workflow.py [--quick] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

WORKFLOW = ROOT / "tests" / "toil" / "workflow.py"
TEXT = "the quick brown fox jumps over the lazy dog again and again\n" * 100
_SITECUSTOMIZE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from fsjobstore.toil import _hook
_hook.install()
"""


@contextmanager
def _moto() -> Iterator[dict[str, str]]:
    from tests.servers import s3_server

    with s3_server() as server:
        yield {
            "AWS_ENDPOINT_URL": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": server.KEY,
            "AWS_SECRET_ACCESS_KEY": server.SECRET,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def _workflow_once(locator: str, work: Path, env: dict[str, str]) -> float:
    shutil.copy(WORKFLOW, work / "workflow.py")
    (work / "text.txt").write_text(TEXT)
    (work / "greeting.txt").write_text("hello\n")
    args = [sys.executable, str(work / "workflow.py"), locator]
    args += ["--batchSystem", "single_machine", "--workDir", str(work)]
    args += [
        "--text",
        f"file://{work / 'text.txt'}",
        "--greeting",
        f"file://{work / 'greeting.txt'}",
    ]
    args += ["--output", f"file://{work / 'out.txt'}", "--runs", str(work / "runs.txt")]
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"workflow on {locator} failed:\n{done.stderr[-3000:]}")
    return elapsed


def workflow_times(repeats: int) -> dict[str, dict[str, float]]:
    """Median, min and max wall time of the workflow per job store, in seconds."""
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="fsjobstore-toil-bench-") as tmp, _moto() as s3env:
        base = Path(tmp)
        (base / "site").mkdir()
        (base / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        env = {**os.environ, **s3env}
        env["PYTHONPATH"] = os.pathsep.join([str(base / "site"), env.get("PYTHONPATH", "")])
        env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
        import s3fs

        fs = s3fs.S3FileSystem(
            key=s3env["AWS_ACCESS_KEY_ID"],
            secret=s3env["AWS_SECRET_ACCESS_KEY"],
            client_kwargs={"endpoint_url": s3env["AWS_ENDPOINT_URL"]},
        )
        fs.mkdir("toil-bench")
        stores: dict[str, Callable[[Path], str]] = {
            "Toil FileJobStore": lambda w: f"file:{w / 'store'}",
            "fsjobstore, local disk": lambda w: f"fsjobstore:file:{w / 'store'}",
            "fsjobstore, S3 (moto)": lambda w: f"fsjobstore:s3://toil-bench/{uuid.uuid4().hex}",
        }
        for name, locator in stores.items():
            times = []
            for i in range(repeats):
                work = base / f"{len(results)}-{i}"
                work.mkdir()
                times.append(_workflow_once(locator(work), work, env))
            results[name] = {
                "median": statistics.median(times),
                "min": min(times),
                "max": max(times),
            }
    return results


def _timed(func: Callable[[], Any], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        func()
    return (time.perf_counter() - start) / count * 1e6


def _costs(store: Any, count: int, local: Path, dest: Path) -> dict[str, float]:
    from toil.common import Config
    from toil.job import JobDescription

    store.initialize(Config())
    jobs = [
        JobDescription(
            requirements={"memory": 1, "cores": 1, "disk": 1, "preemptible": False}, jobName="b"
        )
        for _ in range(count)
    ]
    for j in jobs:
        store.assign_job_id(j)
    it = iter(jobs)
    row = {"create_job": _timed(lambda: store.create_job(next(it)), count)}
    it = iter(jobs)
    row["load_job"] = _timed(lambda: store.load_job(next(it).jobStoreID), count)
    it = iter(jobs)
    row["update_job"] = _timed(lambda: store.update_job(next(it)), count)
    ids: list[str] = []
    row["write_file (1 kB)"] = _timed(lambda: ids.append(store.write_file(str(local))), count)
    files = iter(ids)
    row["read_file (1 kB)"] = _timed(lambda: store.read_file(next(files), str(dest)), count)

    def shared_write() -> None:
        with store.write_shared_file_stream("bench") as f:
            f.write(b"y" * 100)

    def shared_read() -> None:
        with store.read_shared_file_stream("bench") as f:
            f.read()

    row["write_shared_file_stream"] = _timed(shared_write, count)
    row["read_shared_file_stream"] = _timed(shared_read, count)
    it = iter(jobs)
    row["delete_job"] = _timed(lambda: store.delete_job(next(it).jobStoreID), count)
    store.destroy()
    return row


def operation_costs(count: int) -> dict[str, dict[str, float]]:
    """Microseconds per call on Toil's FileJobStore and on ToilJobStore, local disk."""
    from toil.jobStores.fileJobStore import FileJobStore

    from fsjobstore.toil import ToilJobStore

    with tempfile.TemporaryDirectory(prefix="fsjobstore-toil-ops-") as tmp:
        local = Path(tmp) / "small.txt"
        local.write_bytes(b"x" * 1000)
        dest = Path(tmp) / "read"
        return {
            "Toil FileJobStore": _costs(FileJobStore(f"{tmp}/toil"), count, local, dest),
            "fsjobstore": _costs(ToilJobStore(f"file:{tmp}/ours"), count, local, dest),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one workflow run each, fewer calls")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    ops = operation_costs(50 if args.quick else 300)
    print("| call | Toil FileJobStore (us) | fsjobstore (us) | ratio |")
    print("|---|---|---|---|")
    for call, toil_us in ops["Toil FileJobStore"].items():
        ours = ops["fsjobstore"][call]
        print(f"| {call} | {toil_us:.0f} | {ours:.0f} | {ours / toil_us:.2f} |")
    flows = workflow_times(1 if args.quick else 3)
    print("\n| job store | workflow wall time, median (min-max) s |")
    print("|---|---|")
    for name, t in flows.items():
        print(f"| {name} | {t['median']:.1f} ({t['min']:.1f}-{t['max']:.1f}) |")
    if args.json:
        args.json.write_text(json.dumps({"operations": ops, "workflow": flows}, indent=2))


if __name__ == "__main__":
    main()
