"""Concurrency on object stores, behind a cloud-like round trip.

On loopback the emulators are CPU-bound, so concurrency cannot show there.
Here each store's filesystem talks to its emulator through ``proxy.py``, a TCP
proxy that adds 10 ms each way (a 20 ms round trip per request, as from a VM
to a bucket in the same cloud region), and each operation is measured three
ways, against the same emulator, in the same run:

``sequential``
    One request at a time: the job store API called once per object, or
    (for ``jobs()``, which has no one-at-a-time form) one listing and then
    one raw ``fs.cat_file`` per job.
``fsjobstore``
    fsjobstore's concurrent form: ``jobs()``, ``batch()``, ``import_files``.
``floor bulk``
    The concurrent floor: fsspec's own bulk call on the same filesystem
    object (``fs.cat(keys)``, ``fs.pipe({key: bytes})``, ``fs.put(local,
    remote)``); for ``batch()`` and the import, ``floor sequential`` is the
    raw one-call-per-object floor (``pipe_file``, ``put_file``).

Operations: ``jobs()`` over 1,000 stored jobs; ``batch()`` of 1,000
``create_job`` calls; ``import_files`` of 100 local 4 KiB files (200 jobs and
50 files in quick mode). The target is fsjobstore's concurrent form at least
10 times faster than one request at a time. Each operation runs on a fresh
store; what a form wrote is deleted (untimed) before the next form runs,
because fake-gcs-server's writes get slower as its bucket fills (measured:
0.7 ms per upload into an empty bucket, 4.7 ms with 3,000 objects, 12.8 ms
with 9,000).

One request at a time costs the same for every object (the round trip, and
the emulator's own time), so the sequential forms time a sample of the
objects (50; 40 in quick mode) and scale it to all of them (``jobs()``: its
listing once, plus the sample times n / sample). Every figure is the median
of 5 repetitions after a warm-up round, with min and max (2 in quick mode);
the forms take turns within each repetition, in a rotating order. Each form
also records the share of one CPU that the client (this process), the
emulator and the proxy used while it ran (``cpu client`` ...), and the
report the load average: on a 2-core machine shared with other work, a form
whose processes are all well below 1.0 is waiting, not computing.

Servers. S3 is moto, run as a subprocess (``python -m moto.server``) rather
than in this process as ``tests.servers.s3_server`` does: moto spends more
CPU per request than the client (about 3 ms against 2 ms here), and
in-process it takes it from the measured client's GIL (``--moto thread``
runs it in-process, for comparison). moto's server (werkzeug's) also closes
the connection after every response, so each S3 request opens a new
connection (the proxy does not delay connection set-up, so that costs CPU
here, not round trips). GCS is fake-gcs-server, a Go binary, much cheaper per
request, which keeps connections open. The proxy runs in a subprocess
(``--proxy-thread`` runs it in-process). Everything listens on 127.0.0.1.

What the clients do per object, through the proxy: s3fs's ``cat_file``
sends a HEAD (for the size) before its GET unless ``max_concurrency=1``, so
the S3 floor reads pass that (one GET per object, as fsjobstore's reads);
S3 PUTs wait for ``100 Continue`` (botocore sends ``Expect: 100-continue``
with every ``PutObject``), so each costs two round trips, whoever sends it.
``--s3-pool N`` sets s3fs's ``max_pool_connections``; fsjobstore's default
is 32, the requests its bulk calls keep in flight (botocore's own is 10,
which capped every bulk call here, fsspec's too, at 10 at a time).

``python benchmarks/concurrency.py [--quick] [--only s3|gcs] [--json PATH]``
prints the table and writes ``results/concurrency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

from delay_emulators import emulator  # noqa: E402
from proxy import DEFAULT_DELAY, DelayProxy  # noqa: E402
from systems import machine  # noqa: E402

# Nothing here imports gcsfs before tests.servers sets GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT.
from fsjobstore import Config, JobDescription, JobStore  # noqa: E402
from fsjobstore.job import encode_job  # noqa: E402
from tests.servers._process import HOST  # noqa: E402

RESULTS = HERE / "results"
BUCKET = "fsjobstore-bench"
KiB = 1024
#: fsjobstore's concurrent form must be at least this many times faster.
TARGET = 10.0
REQUIREMENTS = {"memory": 2**30, "cores": 1, "disk": 2**30, "preemptible": False}


# -- timing ---------------------------------------------------------------------------


@dataclass
class Form:
    """One way of doing an operation.

    ``body(prepared)`` does it; it may return the seconds to report (a
    sampled sequential form scales its own time), else its run time counts.
    """

    body: Callable[[Any], float | None]
    prepare: Callable[[], Any] = lambda: None


@dataclass
class Operation:
    """An operation, measured in several forms; ``sequential`` is the one-at-a-time form.

    ``cleanup()`` runs, untimed, after each form: it deletes what the form
    wrote, so every repetition finds the bucket as the first one did
    (fake-gcs-server's writes slow down as its bucket fills).
    """

    name: str
    count: int
    forms: dict[str, Form]
    notes: dict[str, Any] = field(default_factory=dict)
    cleanup: Callable[[], None] = lambda: None


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far; this one if ``pid`` is None."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(op: Operation, repeats: int, pids: dict[str, int]) -> dict[str, dict[str, float]]:
    """Median, min and max seconds per form, after one warm-up round.

    Also the median share of one CPU each process used while the form ran
    (``cpu <name>``): the client (this process) and each process in ``pids``.
    """
    samples: dict[str, list[float]] = {label: [] for label in op.forms}
    busy: dict[str, dict[str, list[float]]] = {
        label: {name: [] for name in ["client", *pids]} for label in op.forms
    }
    labels = list(op.forms)
    for rep in range(repeats + 1):
        for label in labels[rep % len(labels) :] + labels[: rep % len(labels)]:
            form = op.forms[label]
            prepared = form.prepare()
            before = {name: cpu_seconds(pid) for name, pid in [("client", None), *pids.items()]}
            start = time.perf_counter()
            reported = form.body(prepared)
            elapsed = time.perf_counter() - start
            after = {name: cpu_seconds(pid) for name, pid in [("client", None), *pids.items()]}
            op.cleanup()
            if rep:  # the first round is the warm-up
                samples[label].append(elapsed if reported is None else reported)
                for name, used in before.items():
                    busy[label][name].append((after[name] - used) / elapsed)
    return {
        label: {"median": statistics.median(s), "min": min(s), "max": max(s)}
        | {f"cpu {name}": round(statistics.median(b), 2) for name, b in busy[label].items()}
        for label, s in samples.items()
    }


# -- the operations -------------------------------------------------------------------


def new_jobs(store: JobStore, count: int) -> list[JobDescription]:
    """``count`` job descriptions with IDs, as a workflow makes them."""
    jobs = []
    for _ in range(count):
        job = JobDescription(requirements=dict(REQUIREMENTS), jobName="j", unitName="u")
        store.assign_job_id(job)
        jobs.append(job)
    return jobs


@dataclass
class Setting:
    """What the operations of one backend share."""

    one_get: dict[str, Any]  # fs.cat_file keywords for a one-request read
    n_jobs: int
    sample: int  # objects a sampled sequential form does
    n_files: int
    work: Path  # a local scratch directory


def snapshot(direct: JobStore) -> Callable[[], None]:
    """A cleanup that deletes every object under the store's root written after now."""
    fs = direct.fs
    baseline = set(fs.find(direct.root))

    def cleanup() -> None:
        extra = sorted(set(fs.find(direct.root)) - baseline)
        if extra:
            fs.rm(extra)

    return cleanup


def listing_op(direct: JobStore, store: JobStore, s: Setting) -> Operation:
    """``jobs()`` over ``n_jobs`` stored jobs."""
    fs, n_jobs, sample = store.fs, s.n_jobs, s.sample
    jobs_dir = f"{store.root}/jobs"
    with direct.batch():
        for job in new_jobs(direct, n_jobs):
            direct.create_job(job)

    def listed() -> list[str]:
        return sorted(fs.find(jobs_dir))

    assert len(listed()) == n_jobs

    def sequential(_: None) -> float:
        start = time.perf_counter()
        keys = listed()
        listing = time.perf_counter() - start
        start = time.perf_counter()
        for key in keys[:sample]:
            fs.cat_file(key, **s.one_get)
        return listing + (time.perf_counter() - start) * len(keys) / sample

    def ours(_: None) -> None:
        assert sum(1 for _ in store.jobs()) == n_jobs

    def floor(_: None) -> None:
        assert len(fs.cat(listed(), **s.one_get)) == n_jobs

    return Operation(
        f"jobs() over {n_jobs} jobs",
        n_jobs,
        {"sequential": Form(sequential), "fsjobstore": Form(ours), "floor bulk": Form(floor)},
        {
            "sequential": f"one listing + fs.cat_file of {sample} jobs, scaled to {n_jobs}",
            "floor bulk": "one listing + fs.cat(keys)",
        },
        snapshot(direct),
    )


def create_op(direct: JobStore, store: JobStore, s: Setting) -> Operation:
    """``batch()`` of ``n_jobs`` creates."""
    fs, n_jobs, sample = store.fs, s.n_jobs, s.sample
    data = encode_job(new_jobs(direct, 1)[0])  # a job's bytes, for the raw floor

    def keys(count: int) -> list[str]:
        prefix = f"{store.root}/floor/{uuid.uuid4().hex}"
        return [f"{prefix}-{i}" for i in range(count)]

    def sequential(jobs: list[JobDescription]) -> float:
        start = time.perf_counter()
        for job in jobs:
            store.create_job(job)
        return (time.perf_counter() - start) * n_jobs / len(jobs)

    def ours(jobs: list[JobDescription]) -> None:
        with store.batch():
            for job in jobs:
                store.create_job(job)

    def floor_sequential(paths: list[str]) -> float:
        start = time.perf_counter()
        for path in paths:
            fs.pipe_file(path, data)
        return (time.perf_counter() - start) * n_jobs / len(paths)

    def floor(paths: list[str]) -> None:
        fs.pipe(dict.fromkeys(paths, data))

    return Operation(
        f"batch() of {n_jobs} creates",
        n_jobs,
        {
            "sequential": Form(sequential, lambda: new_jobs(store, sample)),
            "fsjobstore": Form(ours, lambda: new_jobs(store, n_jobs)),
            "floor sequential": Form(floor_sequential, lambda: keys(sample)),
            "floor bulk": Form(floor, lambda: keys(n_jobs)),
        },
        {
            "sequential": f"create_job of {sample} jobs outside batch(), scaled to {n_jobs}",
            "floor sequential": f"fs.pipe_file of {sample} objects, scaled to {n_jobs}",
            "floor bulk": "fs.pipe({key: bytes})",
        },
        snapshot(direct),
    )


def import_op(direct: JobStore, store: JobStore, s: Setting) -> Operation:
    """``import_files`` of ``n_files`` local files of 4 KiB."""
    fs, n_files = store.fs, s.n_files
    local_dir = Path(tempfile.mkdtemp(dir=s.work))
    files = []
    for i in range(n_files):
        path = local_dir / f"input-{i}.bin"
        path.write_bytes(os.urandom(4 * KiB))
        files.append(str(path))

    def keys() -> list[str]:
        prefix = f"{store.root}/floor/{uuid.uuid4().hex}"
        return [f"{prefix}-{i}" for i in range(n_files)]

    def sequential(_: None) -> float:
        start = time.perf_counter()
        for path in files[: s.sample]:
            store.import_file(path)
        return (time.perf_counter() - start) * n_files / min(s.sample, n_files)

    def ours(_: None) -> None:
        assert len(store.import_files(files)) == n_files

    def floor_sequential(paths: list[str]) -> float:
        start = time.perf_counter()
        for local, remote in list(zip(files, paths, strict=True))[: s.sample]:
            fs.put_file(local, remote)
        return (time.perf_counter() - start) * n_files / min(s.sample, n_files)

    def floor(paths: list[str]) -> None:
        fs.put(files, paths)

    return Operation(
        f"import of {n_files} files of 4 KiB",
        n_files,
        {
            "sequential": Form(sequential),
            "fsjobstore": Form(ours),
            "floor sequential": Form(floor_sequential, keys),
            "floor bulk": Form(floor, keys),
        },
        {
            "sequential": f"import_file of {min(s.sample, n_files)} files, scaled to {n_files}",
            "floor sequential": f"fs.put_file of {min(s.sample, n_files)} files, scaled",
            "floor bulk": "fs.put(local paths, keys)",
        },
        snapshot(direct),
    )


OPERATIONS = (listing_op, create_op, import_op)


def run_backend(
    name: str,
    *,
    quick: bool,
    repeats: int,
    moto: str,
    proxy_in_process: bool,
    delay: float,
    s3_pool: int | None = None,
) -> dict[str, Any]:
    """Every operation on one backend, each on a fresh store, through a delay proxy."""
    counts = (200, 40, 50) if quick else (1000, 50, 100)
    out: dict[str, Any] = {"operations": {}}
    with (
        emulator(name, moto, s3_pool) as emu,
        DelayProxy(emu.port, delay, in_process=proxy_in_process) as proxy,
        tempfile.TemporaryDirectory() as tmp,
    ):
        out["server"] = emu.server
        out["proxy"] = "thread of this process" if proxy_in_process else "subprocess"
        setting = Setting(emu.one_get, *counts, Path(tmp))
        # Subprocesses' CPU is counted apart; in-process ones count as the client's.
        found = {"server": emu.pid, "proxy": proxy.pid}
        pids = {k: v for k, v in found.items() if v is not None}
        out["cpu"] = "share of one CPU used while each form ran (median); client: " + (
            "this process" + "".join(f" + {k}" for k, v in found.items() if v is None)
        )
        for make in OPERATIONS:
            # A fresh store per operation: set up and cleaned directly, measured
            # through the proxy (a second store object on the same locator).
            locator = f"{emu.scheme}://{BUCKET}/{uuid.uuid4().hex}"
            direct = JobStore(locator, **emu.options(f"http://{HOST}:{emu.port}"))
            direct.initialize(Config())
            try:
                store = JobStore(locator, **emu.options(proxy.url))
                store.resume()
                op = make(direct, store, setting)
                row: dict[str, Any] = {"count": op.count, "notes": op.notes}
                row["forms"] = forms = timed(op, repeats, pids)
            finally:
                direct.destroy()
            seq = forms["sequential"]["median"]
            row["speedup"] = {
                label: seq / forms[label]["median"] for label in ("fsjobstore", "floor bulk")
            }
            row["fsjobstore/floor bulk"] = (
                forms["fsjobstore"]["median"] / forms["floor bulk"]["median"]
            )
            out["operations"][op.name] = row
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 5's concurrency target, per backend and operation."""
    checks = []
    for backend, body in result["backends"].items():
        for name, row in body["operations"].items():
            value = row["speedup"]["fsjobstore"]
            checks.append(
                {
                    "target": f"{backend}: {name}: sequential / fsjobstore",
                    "value": round(value, 2),
                    "limit": TARGET,
                    "met": value >= TARGET,
                }
            )
    return checks


def run(
    quick: bool,
    *,
    backends: tuple[str, ...] = ("s3", "gcs"),
    moto: str = "subprocess",
    proxy_in_process: bool = False,
    delay: float = DEFAULT_DELAY,
    s3_pool: int | None = None,
) -> dict[str, Any]:
    """Measure every backend; return a JSON-serialisable report.

    Parameters
    ----------
    quick : bool
        Fewer jobs and files, fewer repetitions: a smoke run.
    backends : tuple of str, optional
        ``s3`` and/or ``gcs``.
    moto : str, optional
        ``subprocess`` (default) or ``thread``: where moto runs.
    proxy_in_process : bool, optional
        Run the delay proxy in a thread of this process, not a subprocess.
    delay : float, optional
        Seconds the proxy adds each way.
    s3_pool : int, optional
        s3fs's ``max_pool_connections`` (fsjobstore's default, 32, if None).

    Returns
    -------
    dict
        The machine, the settings, per backend and operation the median,
        min and max seconds of each form and the speedups, and ``targets``.
    """
    repeats = 2 if quick else 5
    started = time.perf_counter()
    result: dict[str, Any] = {
        "machine": machine() | {"load average before": os.getloadavg()},
        "mode": "quick" if quick else "full",
        "repeats": repeats,
        "delay each way (s)": delay,
        "s3 max_pool_connections": s3_pool or "fsjobstore default (32)",
        "backends": {},
    }
    for name in backends:
        result["backends"][name] = run_backend(
            name,
            quick=quick,
            repeats=repeats,
            moto=moto,
            proxy_in_process=proxy_in_process,
            delay=delay,
            s3_pool=s3_pool,
        )
    result["targets"] = targets(result)
    result["machine"]["load average after"] = os.getloadavg()
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def print_table(result: dict[str, Any]) -> None:
    """Print the report: seconds per form (median [min-max]), speedups, CPU shares."""
    print(
        f"\n{result['mode']} mode, {result['repeats']} repetitions after a warm-up, "
        f"{result['delay each way (s)'] * 1000:.0f} ms added each way; "
        f"seconds per operation, median [min-max]"
    )
    labels = ("sequential", "fsjobstore", "floor sequential", "floor bulk")
    for backend, body in result["backends"].items():
        print(f"\n{backend}: {body['server']}; proxy in a {body['proxy']}")
        heads = ("operation", "sequential", "fsjobstore", "floor seq", "floor bulk", "seq/fsj")
        print("  {:<27} {:>21} {:>21} {:>21} {:>21} {:>7}".format(*heads))
        for name, row in body["operations"].items():
            cells = []
            for label in labels:
                f = row["forms"].get(label)
                cells.append(
                    "-" if f is None else f"{f['median']:.3f} [{f['min']:.3f}-{f['max']:.3f}]"
                )
            print(
                f"  {name:<27} {cells[0]:>21} {cells[1]:>21} {cells[2]:>21} {cells[3]:>21}"
                f" {row['speedup']['fsjobstore']:7.1f}"
            )
        print(f"  {body['cpu']}")
        for name, row in body["operations"].items():
            shares = "; ".join(
                f"{label} "
                + " ".join(
                    f"{k[4:]} {v:.2f}" for k, v in row["forms"][label].items() if k[:4] == "cpu "
                )
                for label in labels
                if label in row["forms"]
            )
            print(
                f"  {name}: seq/floor bulk {row['speedup']['floor bulk']:.1f}, "
                f"fsjobstore/floor bulk {row['fsjobstore/floor bulk']:.2f}; CPU: {shares}"
            )
    missed = [t for t in result["targets"] if not t["met"]]
    print(f"\ntargets: {len(result['targets']) - len(missed)} met, {len(missed)} missed")
    for t in result["targets"]:
        verdict = "met   " if t["met"] else "MISSED"
        print(f"  {verdict} {t['target']}: {t['value']} (limit {t['limit']})")
    loads = [result["machine"][f"load average {w}"][0] for w in ("before", "after")]
    print(
        f"\n{result['seconds']} s; load average (1 min) {loads[0]:.1f} before, {loads[1]:.1f} after"
    )


def main() -> int:
    """Run, print the table, write ``results/concurrency.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run, under a minute")
    parser.add_argument("--only", choices=("s3", "gcs"), help="one backend only")
    parser.add_argument("--moto", choices=("subprocess", "thread"), default="subprocess")
    parser.add_argument("--proxy-thread", action="store_true", help="the proxy in-process")
    parser.add_argument("--delay", type=float, default=DEFAULT_DELAY, help="seconds each way")
    parser.add_argument("--s3-pool", type=int, help="s3fs max_pool_connections")
    parser.add_argument("--json", type=Path, default=RESULTS / "concurrency.json")
    args = parser.parse_args()
    backends = (args.only,) if args.only else ("s3", "gcs")
    result = run(
        args.quick,
        backends=backends,
        moto=args.moto,
        proxy_in_process=args.proxy_thread,
        delay=args.delay,
        s3_pool=args.s3_pool,
    )
    result["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
