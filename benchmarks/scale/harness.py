"""The scale-out harness: many worker processes on simulated hosts, one storage server.

:func:`run_scale` builds a :class:`netns.Topology` (a server namespace and
``hosts`` host namespaces on one bridge), starts a leader and ``per_host``
worker processes in each host (``worker.py``; they live for the whole run,
so that their start-up, about a second of CPU each, is paid once), and then,
per backend, starts its emulator and the delay proxies in the server
namespace (``serve.py``) and measures each point: ``n`` workers (spread over
the hosts first: 1, 2, 4 hosts, then more workers per host) running the
workflow loop for ``seconds``, on a fresh store, while the leader reads the
log messages; then the leader checks the store (``verify.py``) and destroys
it. The points run in rotating order within each repetition.

Per point the result has the store calls and HTTP requests per second,
latency percentiles per kind of call and over all calls, and the CPU each
part used while the point ran, as a share of one core: the emulator (its
process tree), the proxy, the workers and the leader (each process's own
CPU clock), and the machine as a whole (``/proc/stat``). CPU per request
follows from those and the requests the clients counted.
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]

from netns import Topology  # noqa: E402

BUCKET = "fsjobstore-scale"
SCHEMES = {"s3": "s3", "gcs": "gs", "azure": "az"}
SERVED_BY = {"s3": "moto", "gcs": "fake-gcs-server", "azure": "Azurite"}
#: Seconds a process may take to start (imports) or a command to answer beyond its work.
SLACK = 180.0


def progress(line: str) -> None:
    """Report progress on stderr."""
    print(line, file=sys.stderr, flush=True)


# -- processes ------------------------------------------------------------------------


class Proc:
    """A child speaking one JSON line per command on its standard input and output."""

    def __init__(self, argv: list[str], name: str) -> None:
        self.name = name
        self.popen = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def readline(self, timeout: float) -> str:
        """The next line of output; RuntimeError if none comes within ``timeout``."""
        assert self.popen.stdout is not None
        ready, _, _ = select.select([self.popen.stdout], [], [], timeout)
        line = self.popen.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"{self.name}: no answer (exit status {self.popen.poll()})")
        return line

    def send(self, command: dict[str, Any]) -> None:
        """Send one command."""
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(command) + "\n")
        self.popen.stdin.flush()

    def answer(self, timeout: float) -> dict[str, Any]:
        """The answer to the last command; RuntimeError if it says it failed."""
        answer: dict[str, Any] = json.loads(self.readline(timeout))
        if "failed" in answer:
            raise RuntimeError(f"{self.name}: {answer['failed']}")
        return answer

    def stop(self) -> None:
        """Close its input (it exits), kill it if it lingers."""
        with suppress(OSError):
            assert self.popen.stdin is not None
            self.popen.stdin.close()
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used by ``pid`` and its descendants still alive."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += used.get(current, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from ``/proc/stat``."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values) - idle) / tick, sum(values) / tick


@dataclass
class Pool:
    """The leader (in the first host) and the workers, ``workers[host][k]``."""

    leader: Proc
    workers: list[list[Proc]]

    def pick(self, n: int) -> list[Proc]:
        """``n`` workers, spread over the hosts first."""
        hosts = len(self.workers)
        return [self.workers[i % hosts][i // hosts] for i in range(n)]

    def all(self) -> list[Proc]:
        """Every process."""
        return [self.leader, *(w for host in self.workers for w in host)]


@contextmanager
def pool(topo: Topology, per_host: int) -> Iterator[Pool]:
    """Start the leader and ``per_host`` workers per host; stop them all afterwards."""
    python = [sys.executable, str(HERE / "worker.py")]
    procs: list[Proc] = []
    try:
        leader = Proc(topo.exec_argv(topo.hosts[0], python), "leader")
        procs.append(leader)
        workers: list[list[Proc]] = []
        for h, ns in enumerate(topo.hosts):
            workers.append([Proc(topo.exec_argv(ns, python), f"h{h}w{k}") for k in range(per_host)])
            procs.extend(workers[-1])
        for proc in procs:
            if proc.readline(SLACK).strip() != "READY":
                raise RuntimeError(f"{proc.name} did not start")
        yield Pool(leader, workers)
    finally:
        for proc in procs:
            proc.stop()


@contextmanager
def server(topo: Topology, backend: str, delays: list[float]) -> Iterator[dict[str, Any]]:
    """Start ``backend``'s emulator and the delay proxies in the server namespace."""
    argv = [sys.executable, str(HERE / "serve.py"), backend, "--delays", *map(repr, delays)]
    proc = Proc(topo.exec_argv(topo.server, argv), f"{backend} server")
    try:
        yield json.loads(proc.readline(SLACK))
    finally:
        proc.stop()


# -- one point --------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"calls": len(ordered), "p50 ms": at(0.50), "p99 ms": at(0.99)}


def run_point(
    pool_: Pool,
    *,
    backend: str,
    served: dict[str, Any],
    delay: float,
    n: int,
    seconds: float,
) -> dict[str, Any]:
    """``n`` workers for ``seconds`` on a fresh store; the measures and the checks."""
    endpoint = served["endpoints"][repr(delay)]
    base = {
        "locator": f"{SCHEMES[backend]}://{BUCKET}/{uuid.uuid4().hex}",
        "options": endpoint["options"],
    }
    leader, workers = pool_.leader, pool_.pick(n)
    leader.send(base | {"op": "setup", "shared": max(1, n // 4)})
    shared = leader.answer(SLACK)["shared"]
    for index, proc in enumerate(workers):
        proc.send(base | {"op": "run", "worker": index, "shared": shared})
    leader.send(base | {"op": "read", "every": 0.25, "shared": shared})
    for proc in [*workers, leader]:
        proc.answer(SLACK)  # ready: warmed up
    start = time.time() + 0.2
    for proc in [*workers, leader]:
        proc.send({"start": start, "deadline": start + seconds})
    time.sleep(max(0.0, start - time.time()))
    pids = {"server": served["server_pid"], "proxy": endpoint["pid"]}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    busy0, total0 = machine_busy()
    wall0 = time.perf_counter()
    results = [proc.answer(seconds + SLACK) for proc in workers]
    logs = leader.answer(seconds + SLACK)
    wall = time.perf_counter() - wall0
    busy1, total1 = machine_busy()
    used = {name: (cpu_seconds(pid) - before[name]) / wall for name, pid in pids.items()}
    point = _measures(results, logs, wall, used)
    busy = (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1)
    point["machine busy (cores)"] = round(busy, 2)
    # The machine is shared: what neither the emulator, the proxy nor our
    # clients used went to other work, and was not there for this point.
    point["others (cores)"] = round(max(0.0, busy - sum(point["cpu (cores)"].values())), 2)
    point["load average"] = os.getloadavg()[0]
    point |= {"workers": n, "hosts": min(n, len(pool_.workers)), "delay ms": delay * 1000}
    leader.send(base | {"op": "verify"} | _expected(results, logs))
    point["checks"] = leader.answer(SLACK)
    return point


def _measures(
    results: list[dict[str, Any]], logs: dict[str, Any], wall: float, used: dict[str, float]
) -> dict[str, Any]:
    seconds = max(r["seconds"] for r in results)
    by_kind: dict[str, list[float]] = {}
    for r in results:
        for kind, values in r["latency"].items():
            by_kind.setdefault(kind, []).extend(values)
    every = [v for values in by_kind.values() for v in values]
    requests = sum(r["requests"] for r in results)
    client_cpu = sum(r["cpu"] for r in results)
    all_requests = requests + logs["requests"]
    updates = len(by_kind.get("load+update shared", []))
    return {
        "seconds": round(seconds, 2),
        "calls/s": round(len(every) / seconds, 1),
        "jobs/s": round(sum(r["created"] for r in results) / seconds, 1),
        "requests/s": round(requests / seconds, 1),
        "latency": _percentiles(every),
        "by kind": {kind: _percentiles(values) for kind, values in sorted(by_kind.items())},
        "read_logs": _percentiles(logs["latency"].get("read_logs", [])),
        "conflicts per shared update": round(
            sum(r["conflicts"] for r in results) / max(1, updates), 3
        ),
        "cpu (cores)": {
            "server": round(used["server"], 2),
            "proxy": round(used["proxy"], 2),
            "workers": round(client_cpu / wall, 2),
            "leader": round(logs["cpu"] / wall, 2),
        },
        "client cpu ms per request": round(client_cpu / max(1, requests) * 1000, 3),
        "server cpu ms per request": round(used["server"] * wall / max(1, all_requests) * 1000, 3),
        "proxy cpu ms per request": round(used["proxy"] * wall / max(1, all_requests) * 1000, 3),
        "requests per call": round(requests / max(1, len(every)), 2),
    }


def _expected(results: list[dict[str, Any]], logs: dict[str, Any]) -> dict[str, Any]:
    increments: dict[str, int] = {}
    kept: dict[str, dict[str, int]] = {}
    for r in results:
        for job, count in r["increments"].items():
            increments[job] = increments.get(job, 0) + count
        kept |= r["kept"]
    return {
        "increments": increments,
        "kept": kept,
        "deleted_files": [f for r in results for f in r["deleted_files"]],
        "logs": [f"{r['worker']}:{i}" for r in results for i in range(r["logs"])],
        "delivered": logs["messages"],
        "conflicts": sum(r["conflicts"] for r in results),
        "errors": [e for r in [*results, logs] for e in r["errors"]],
    }


# -- the whole run ------------------------------------------------------------------------


def run_scale(
    topo: Topology,
    *,
    per_host: int,
    backends: list[str],
    delays: list[float],
    workers: list[int],
    seconds: float,
    repeats: int,
) -> dict[str, Any]:
    """Every point of every backend, ``repeats`` times in rotating order; the JSON result."""
    out: dict[str, Any] = {
        "hosts": len(topo.hosts),
        "workers per host": per_host,
        "seconds per point": seconds,
        "repeats": repeats,
        "backends": {},
    }
    started = time.perf_counter()
    with pool(topo, per_host) as procs:
        progress(
            f"scale: {len(procs.all())} processes started in {time.perf_counter() - started:.0f} s"
        )
        for backend in backends:
            began = time.perf_counter()
            runs: dict[str, list[dict[str, Any]]] = {}
            try:
                with server(topo, backend, delays) as served:
                    points = [(d, n) for d in delays for n in workers]
                    for rep in range(repeats):
                        shift = rep % len(points)
                        for delay, n in points[shift:] + points[:shift]:
                            key = f"{delay * 1000:g} ms, {n} workers"
                            try:
                                point = run_point(
                                    procs,
                                    backend=backend,
                                    served=served,
                                    delay=delay,
                                    n=n,
                                    seconds=seconds,
                                )
                            except RuntimeError as exc:
                                point = {"workers": n, "delay ms": delay * 1000, "error": str(exc)}
                            runs.setdefault(key, []).append(point)
                            progress(f"scale: {backend} {key}: {_brief(point)}")
            except RuntimeError as exc:
                out["backends"][backend] = {"error": str(exc)}
                continue
            out["backends"][backend] = {
                "served by": SERVED_BY[backend],
                "points": {key: summarize(ps) for key, ps in runs.items()},
                "seconds": round(time.perf_counter() - began, 1),
            }
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _brief(point: dict[str, Any]) -> str:
    if "error" in point:
        return f"error: {point['error'][:200]}"
    ok = "ok" if point["checks"]["ok"] else f"FAILED {point['checks']['failed checks']}"
    return (
        f"{point['calls/s']} calls/s, p50 {point['latency'].get('p50 ms')} ms,"
        f" p99 {point['latency'].get('p99 ms')} ms, cpu {point['cpu (cores)']}, checks {ok}"
    )


#: The figures :func:`summarize` gives the median and range of.
_HEADLINE = (
    "calls/s",
    "p50 ms",
    "p99 ms",
    "server cores",
    "proxy cores",
    "client cores",
    "client cpu ms per request",
    "server cpu ms per request",
    "requests/s",
    "conflicts per shared update",
    "machine busy (cores)",
    "others (cores)",
)


def _headline(point: dict[str, Any], name: str) -> float:
    cpu = point["cpu (cores)"]
    if name in ("p50 ms", "p99 ms"):
        return float(point["latency"][name])
    if name == "client cores":
        return float(cpu["workers"] + cpu["leader"])
    if name in ("server cores", "proxy cores"):
        return float(cpu[name.split(maxsplit=1)[0]])
    return float(point[name])


def summarize(points: list[dict[str, Any]]) -> dict[str, Any]:
    """One point's repetitions, each kept, with the median and range of each headline figure."""
    good = [p for p in points if "error" not in p]
    summary: dict[str, Any] = {"repetitions": points}
    for name in _HEADLINE:
        values = [_headline(p, name) for p in good if p.get("latency")]
        if values:
            summary[name] = {
                "median": round(statistics.median(values), 3),
                "min": min(values),
                "max": max(values),
            }
    summary["checks ok"] = bool(good) and all(p["checks"]["ok"] for p in good)
    summary["errors"] = len(points) - len(good)
    return summary
