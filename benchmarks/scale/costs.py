"""Costs that grow with a workflow: whole-store operations against the number of items.

``python costs.py [--quick] [--only BACKEND ...]`` fills one store per backend
and size N with N jobs, N files (one owned by each job, deleted with it) and N
log messages, then measures ``jobs()``, ``get_all_file_ids()``,
``fsjobstore.maintenance.summary()`` (what ``fsjobstore status`` prints), ``read_logs()``,
``delete_job`` and ``destroy()``: wall time, this process's CPU, HTTP
requests, and memory. Each (backend, N) runs in a fresh process
(``costs.py --one``) with a fresh emulator of its own, so that what one size
left in the allocator or the emulator does not colour the next.

Requests are counted twice on S3: by the client (every aiohttp request;
s3fs, gcsfs and adlfs all send through aiohttp) and at the moto server, as
``cloud.py`` does (moto runs in a child process that records what it
receives and reports the count when asked). GCS and Azure have the client's
count only.

Memory is measured two ways: the peak resident set added while the
operation ran (sampled every 5 ms; the allocator may reuse memory an earlier
operation freed, so this can under-state), and the peak of Python
allocations under ``tracemalloc`` in a second, untimed pass (``read_logs``
there runs with ``read_all=True``, since the first pass emptied the inbox).

Filling uses ``batch()`` for jobs and, on object stores, fsspec's bulk
``pipe`` for files and log messages at the keys the store's own layout gives
them (one request each, many in flight); on local disk it uses
``write_file_stream`` and ``write_logs``. Filling is timed and reported too.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("NO_GCE_CHECK", "true")

import aiohttp  # noqa: E402
from harness import cpu_seconds  # noqa: E402

from fsjobstore import JobDescription, JobStore, layout  # noqa: E402
from fsjobstore.maintenance import summary  # noqa: E402

MiB = 1024 * 1024
CHUNK = 1000
#: Jobs deleted one by one with ``delete_job`` at each size (each owns one file).
DELETES = 100
REQUIREMENTS = {"memory": 2**30, "cores": 1, "disk": 2**30, "preemptible": False}
#: Sizes per backend: full and quick runs.
LADDERS = {
    "full": {
        "local": [1000, 10_000, 100_000],
        "s3": [1000, 3000, 10_000],
        "gcs": [1000, 3000],
        "azure": [300, 1000, 3000],
    },
    "quick": {"local": [300, 3000], "s3": [100, 300], "gcs": [100, 300], "azure": [100, 300]},
}

_REQUESTS = [0]


def _count_requests() -> None:
    original = aiohttp.ClientSession._request

    async def counted(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> Any:
        _REQUESTS[0] += 1
        return await original(self, *args, **kwargs)

    aiohttp.ClientSession._request = counted  # type: ignore[method-assign]


def _loopback_only(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and isinstance(args[1], tuple) and args[1]:
        host = str(args[1][0])
        if not host.startswith("127.") and host != "::1":
            raise PermissionError(f"costs: refused a connection to {args[1]!r}")


# -- emulators, in child processes -------------------------------------------------------

_MOTO_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.servers import s3_server
with s3_server() as server:
    print(json.dumps(server.storage_options()), flush=True)
    for line in sys.stdin:
        print(len(server.requests.snapshot()), flush=True)
        server.requests.clear()
"""


class Emulator:
    """The backend's emulator, out of this process; ``counted()`` asks moto for its count."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._moto: subprocess.Popen[str] | None = None
        self._handle: Any = None
        if backend == "s3":
            self._moto = subprocess.Popen(
                [sys.executable, "-c", _MOTO_CHILD, str(HERE.parents[1])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self._moto.stdout is not None
            self.options: dict[str, Any] = json.loads(self._moto.stdout.readline())
        elif backend in ("gcs", "azure"):
            from tests import servers

            start = servers.start_gcs_server if backend == "gcs" else servers.start_azure_server
            self._handle = start()
            self.options = self._handle.storage_options()
        else:
            self.options = {}
        #: The emulator's process (None on local disk), for its CPU time.
        self.pid: int | None = (
            self._moto.pid
            if self._moto is not None
            else self._handle._process.popen.pid
            if self._handle is not None
            else None
        )

    def cpu_seconds(self) -> float:
        """CPU seconds the emulator (and its children) used so far; 0 on local disk."""
        return 0.0 if self.pid is None else cpu_seconds(self.pid)

    def counted(self) -> int | None:
        """Requests moto received since the last call (None if not S3)."""
        if self._moto is None:
            return None
        assert self._moto.stdin is not None
        assert self._moto.stdout is not None
        self._moto.stdin.write("count\n")
        self._moto.stdin.flush()
        return int(self._moto.stdout.readline())

    def stop(self) -> None:
        """Stop the emulator."""
        if self._moto is not None:
            with contextlib.suppress(OSError):
                assert self._moto.stdin is not None
                self._moto.stdin.close()
            self._moto.wait(30)
        if self._handle is not None:
            self._handle.stop()


# -- measuring -------------------------------------------------------------------------


def current_mib() -> float:
    """This process's resident set now."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


class Sampler(threading.Thread):
    """The largest resident set seen while running, sampled every 5 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.largest = current_mib()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.largest = max(self.largest, current_mib())


def measure(call: Callable[[], Any], emulator: Emulator, trace: bool = False) -> dict[str, Any]:
    """Run ``call`` once: wall and CPU time, requests, peak RSS added, what it returned.

    With ``trace``, under tracemalloc too (its peak is then in the result).
    """
    gc.collect()
    emulator.counted()
    if trace:
        tracemalloc.start()
    sampler = Sampler()
    before = current_mib()
    server0 = emulator.cpu_seconds()
    requests0, cpu0, start = _REQUESTS[0], time.process_time(), time.perf_counter()
    sampler.start()
    try:
        result = call()
    finally:
        sampler.done.set()
        sampler.join()
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
    out: dict[str, Any] = {
        "seconds": round(time.perf_counter() - start, 4),
        "cpu seconds": round(time.process_time() - cpu0, 4),
        "emulator cpu seconds": round(emulator.cpu_seconds() - server0, 3),
        "requests": _REQUESTS[0] - requests0,
        "peak RSS added MiB": round(max(0.0, sampler.largest - before), 1),
        "result": result,
    }
    if trace:
        out["tracemalloc peak MiB"] = round(peak / MiB, 2)
    server = emulator.counted()
    if server is not None:
        out["requests at moto"] = server
    return out


def traced_mib(call: Callable[[], Any]) -> float:
    """Peak Python allocations (MiB) while ``call`` runs, under tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        call()
        return round(tracemalloc.get_traced_memory()[1] / MiB, 2)
    finally:
        tracemalloc.stop()


def profiled(call: Callable[[], Any], top: int = 12) -> list[str]:
    """The ``top`` functions by own time while ``call`` runs, under cProfile."""
    profile = cProfile.Profile()
    profile.runcall(call)
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(top)
    return [line for line in text.getvalue().splitlines() if line.strip()][-top - 1 :]


# -- one store of N items -----------------------------------------------------------------


def _open(locator: str, options: dict[str, Any]) -> JobStore:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return JobStore(locator, **options)


def fill(store: JobStore, n: int, local: bool) -> list[str]:
    """N jobs, N files (one per job, cleanup) and N log messages; return the job IDs."""
    ids: list[str] = []
    for first in range(0, n, CHUNK):
        jobs = [
            JobDescription(dict(REQUIREMENTS), jobName="j", unitName="u")
            for _ in range(min(CHUNK, n - first))
        ]
        with store.batch():
            for job in jobs:
                store.create_job(job)
        ids.extend(str(j.jobStoreID) for j in jobs)
        if local:
            for job_id in ids[first:]:
                with store.write_file_stream(job_id, cleanup=True) as (handle, _):
                    handle.write(b"x" * 64)
                store.write_logs(b"m" * 64)
            continue
        items: dict[str, bytes] = {}
        for job_id in ids[first:]:
            file_id = layout.new_file_id(job_id, cleanup=True, executable=False, basename="f")
            items[f"{store.root}/{layout.parse_file_id(file_id).key}"] = b"x" * 64
            items[f"{store.root}/{layout.new_log_key()}"] = b"m" * 64
        store.fs.pipe(items)
    return ids


def one(backend: str, n: int, profile: bool) -> dict[str, Any]:
    """Fill a fresh store of ``n`` items on ``backend``; measure every operation."""
    _count_requests()
    sys.addaudithook(_loopback_only)
    emulator = Emulator(backend)
    work = tempfile.mkdtemp(prefix="fsjobstore-costs-")
    try:
        if backend == "local":
            locator = f"{work}/store"
        else:
            scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[backend]
            locator = f"{scheme}://fsjobstore-costs/run{n}"
        store = _open(locator, emulator.options)
        store.initialize()
        out: dict[str, Any] = {
            "backend": backend,
            "n": n,
            "rss at start MiB": round(current_mib(), 1),
        }
        out["fill"] = measure(lambda: len(fill(store, n, backend == "local")), emulator)
        reader = _open(locator, emulator.options)
        reader.resume()

        def delivered(read_all: bool = False) -> int:
            return reader.read_logs(lambda h: h.read(), read_all=read_all)

        reads: dict[str, Callable[[], Any]] = {
            "jobs()": lambda: sum(1 for _ in reader.jobs()),
            "get_all_file_ids()": lambda: len(reader.get_all_file_ids()),
            "summary()": lambda: summary(reader)["jobs"],
            "read_logs()": delivered,
        }
        # On local disk the operations are CPU-bound, and tracemalloc would
        # double their time: memory is traced in a second pass there. On
        # object stores the emulator's time dominates, and a second pass
        # would double the run: memory is traced in the one timed pass.
        inline = backend != "local"
        ops = {name: measure(call, emulator, trace=inline) for name, call in reads.items()}
        if not inline:
            # On a shared 2-core machine a run can lose the CPU to other work;
            # the listings that change nothing run twice more, and the
            # fastest run is kept (all three times are in "runs").
            for name in ("jobs()", "get_all_file_ids()", "summary()"):
                runs = [ops[name], *(measure(reads[name], emulator) for _ in range(2))]
                ops[name] = min(runs, key=lambda r: r["seconds"]) | {
                    "runs": [r["seconds"] for r in runs]
                }
        reads["read_logs()"] = lambda: delivered(read_all=True)
        for name, call in reads.items():
            if not inline:
                ops[name]["tracemalloc peak MiB"] = traced_mib(call)
            if profile:
                ops[name]["profile"] = profiled(call)
        victims = [str(j.jobStoreID) for _, j in zip(range(DELETES), reader.jobs(), strict=False)]
        deleted = measure(
            lambda: [reader.delete_job(v) for v in victims] and len(victims), emulator
        )
        deleted["per call seconds"] = round(deleted["seconds"] / len(victims), 6)
        deleted["requests per call"] = round(deleted["requests"] / len(victims), 2)
        ops[f"delete_job (x{len(victims)})"] = deleted
        ops["destroy()"] = measure(
            lambda: reader.destroy() or 3 * n - 2 * len(victims), emulator, trace=True
        )
        out["operations"] = ops
        out["rss at end MiB"] = round(current_mib(), 1)
        return out
    finally:
        emulator.stop()
        subprocess.run(["rm", "-rf", work], check=False)


# -- the whole ladder -----------------------------------------------------------------------


def run_costs(
    quick: bool, backends: list[str], profile: bool, timeout: float = 3600
) -> dict[str, Any]:
    """Every size of every backend, each in a fresh process; growth verdicts per operation."""
    ladders = LADDERS["quick" if quick else "full"]
    out: dict[str, Any] = {"backends": {}}
    started = time.perf_counter()
    for backend in backends:
        rows: list[dict[str, Any]] = []
        for n in ladders[backend]:
            argv = [sys.executable, __file__, "--one", backend, str(n)]
            if profile:
                argv.append("--profile")
            began = time.perf_counter()
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
            if done.returncode:
                rows.append({"n": n, "error": done.stderr.strip().splitlines()[-3:]})
            else:
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(
                f"costs: {backend} n={n}: {time.perf_counter() - began:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        out["backends"][backend] = {"sizes": rows, "growth": growth(rows)}
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _exponent(a: float, b: float, na: int, nb: int) -> float | None:
    import math

    if a <= 0 or b <= 0:
        return None
    return round(math.log(b / a) / math.log(nb / na), 2)


def growth(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per operation: how time, requests and memory grow between the two largest sizes.

    The exponent k in cost ~ N**k: 1 is linear, 0 flat; time is noisy at
    small sizes, so the verdict reads the largest step only.
    """
    good = [r for r in rows if "operations" in r]
    if len(good) < 2:
        return {}
    small, large = good[-2], good[-1]
    na, nb = small["n"], large["n"]
    out: dict[str, Any] = {}
    for name, big in large["operations"].items():
        little = small["operations"].get(name)
        if little is None:
            continue
        key = "per call seconds" if "per call seconds" in big else "seconds"
        time_k = _exponent(little[key], big[key], na, nb)
        memory_k = _exponent(
            little.get("tracemalloc peak MiB", 0), big.get("tracemalloc peak MiB", 0), na, nb
        )
        cpu_k = _exponent(little["cpu seconds"], big["cpu seconds"], na, nb)
        server_k = _exponent(
            little.get("emulator cpu seconds", 0), big.get("emulator cpu seconds", 0), na, nb
        )
        requests_k = _exponent(little["requests"] or 0, big["requests"] or 0, na, nb)
        out[name] = {
            "sizes": [na, nb],
            "time exponent": time_k,
            "client cpu exponent": cpu_k,
            "requests exponent": requests_k,
            "emulator cpu exponent": server_k,
            "memory exponent": memory_k,
            "time": _verdict(time_k, per_call=key != "seconds"),
            "client": _verdict(max(cpu_k or 0, requests_k or 0), per_call=key != "seconds"),
            "memory": "bounded"
            if memory_k is None or memory_k < 0.3
            else f"grows with N (~N^{memory_k})",
        }
    return out


def _verdict(k: float | None, per_call: bool) -> str:
    if k is None:
        return "unmeasured"
    # Thresholds leave room for noise: one run per size, on a shared machine.
    if per_call:
        return "flat per call" if k < 0.3 else f"per call grows ~N^{k}"
    if k <= 1.25:
        return "linear or better"
    return f"superlinear (~N^{k})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", nargs=2, metavar=("BACKEND", "N"))
    parser.add_argument("--profile", action="store_true", help="cProfile each listing")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", default=["local", "s3", "gcs", "azure"])
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.profile)))
        return 0
    print(json.dumps(run_costs(args.quick, args.only, args.profile), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
