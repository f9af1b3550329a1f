"""Benchmarks on object stores and in memory: the floor, Toil and fsjobstore, side by side.

``python benchmarks/cloud.py [--quick]`` (in a venv with ``toil[aws]``, as the
``bench`` nox session makes) starts the emulators on 127.0.0.1 (moto for S3,
fake-gcs-server for GCS, Azurite for Azure Blob), runs the operations of
``ops.py`` on each backend and on fsspec's in-memory filesystem with the same
turn-taking timer as ``run.py``, counts S3 requests per operation at the moto
server for all three systems, measures peak RSS while streaming in a fresh
process per system (``rss.py --cloud``), prints the tables and checks issue
5's targets. The systems are in ``cloud_systems.py``.

Each figure is the median of the repetitions after one warm-up round, with
min and max; ratios (fsjobstore / Toil, fsjobstore / floor, of times) come
from the same run. Toil has no store on Azure or in memory: those panels have
no Toil column, and say so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import cloud_systems as cs  # noqa: E402
from ops import Op, operations, timed  # noqa: E402
from systems import machine  # noqa: E402

#: The emulators' names, for the tables.
SERVED_BY = {"s3": "moto", "gcs": "fake-gcs-server", "azure": "Azurite", "memory": "in process"}
#: Operations whose request counts have an absolute limit (issue 5), by name prefix.
REQUEST_LIMITS = {
    "create_job": 1.0,
    "load_job": 1.0,
    "update_job": 1.0,
    "write_file 4 KiB": 1.0,
    "shared file write 4 KiB": 1.0,
    "read_file 4 KiB": 2.0,
    "read_file_stream 4 KiB": 2.0,
    "shared file read 4 KiB": 2.0,
    "delete_job, 20 cleanup files": 3.0,
}
#: Operations of ops.py not run here, with the reason.
NOT_HERE = {
    "read_file 4 KiB, symlink=True": "nothing local to link to: the same download as read_file",
}
#: Peak RSS added by streaming, at most (MiB).
RSS_LIMIT = 64.0


@dataclass(frozen=True)
class Mode:
    """Sizes of one run.

    Attributes
    ----------
    n
        Operations per repetition.
    batch
        Creates inside one ``batch()``.
    repeats
        Timed repetitions (after one warm-up).
    stream_mib
        MiB per timed stream.
    rss_mib
        MiB streamed for the peak-RSS figure, per backend.
    count_n
        Operations per request-count run.
    """

    n: int
    batch: int
    repeats: int
    stream_mib: int
    rss_mib: dict[str, int]
    count_n: int


FULL = Mode(10, 20, 5, 32, {"s3": 1024, "gcs": 256, "azure": 256, "memory": 256}, 10)
QUICK = Mode(5, 10, 1, 16, {"s3": 64, "gcs": 32, "azure": 32, "memory": 32}, 3)


# -- the emulators --------------------------------------------------------------

_MOTO_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.servers import s3_server
with s3_server() as server:
    print(json.dumps(server.storage_options()), flush=True)
    sys.stdin.read()
"""


class MotoProcess:
    """moto's S3 server in a child process, for timings and RSS.

    ``tests.servers.s3_server`` runs moto in this process, where its request
    handlers would share the GIL with the systems being timed (and hold the
    streamed data in this process); the request counts use that one.
    """

    def __init__(self) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-c", _MOTO_CHILD, str(HERE.parent)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("moto server child exited before answering")
        options = json.loads(line)
        self.endpoint_url: str = options["client_kwargs"]["endpoint_url"]
        self._options: dict[str, Any] = options

    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem``."""
        return dict(self._options)

    def stop(self) -> None:
        """Stop the child: close its stdin, wait, kill it if it lingers."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@contextlib.contextmanager
def emulators() -> Iterator[tuple[dict[str, cs.Target], dict[str, Any], dict[str, str]]]:
    """Start every emulator that can start; yield targets, raw handles and failures."""
    from tests import servers

    starters: dict[str, Callable[[], Any]] = {
        "s3": MotoProcess,
        "s3 counted": servers.start_s3_server,
        "gcs": servers.start_gcs_server,
        "azure": servers.start_azure_server,
    }
    targets: dict[str, cs.Target] = {}
    handles: dict[str, Any] = {}
    failed: dict[str, str] = {}
    try:
        for backend in (*cs.BACKENDS, "s3 counted"):
            if backend == "memory":
                targets[backend] = cs.target_of(backend, None)
                continue
            try:
                handles[backend] = starters[backend]()
            except RuntimeError as exc:
                failed[backend] = str(exc).splitlines()[0]
                continue
            targets[backend] = cs.target_of(backend.split()[0], handles[backend])
        # Toil's stores read their endpoints from the environment (set just
        # before each use, as the two S3 servers differ).
        cs.isolate()
        yield targets, handles, failed
    finally:
        for handle in handles.values():
            with contextlib.suppress(Exception):
                handle.stop()


# -- timing -----------------------------------------------------------------------


def run_op(op: Op, target: cs.Target, kinds: tuple[str, ...], repeats: int) -> dict[str, Any]:
    """One operation on each system of ``kinds``, each on a fresh store."""
    row: dict[str, Any] = {"count": op.count, "small": op.small, "unit": "MB/s" if op.mb else "us"}
    with cs.made(kinds, target) as systems:
        row.update(timed(systems, op, repeats))
    ours = row["fsjobstore"]["median"]
    for other in ("toil", "floor"):
        if other in row:
            theirs = row[other]["median"]
            # Ratios of times: for a rate, the inverse of the ratio of rates.
            row[f"fsjobstore/{other}"] = theirs / ours if op.mb else ours / theirs
    return row


def progress(line: str) -> None:
    """Report progress on stderr (stdout has the tables)."""
    print(line, file=sys.stderr, flush=True)


def fresh_ops(n: int, batch: int, stream_mib: int, work: Path) -> Iterator[Op]:
    """The operations of ``ops.py`` run here, each from its own ``operations()`` call.

    ``operations()`` keeps what a setup made for a system under ``id(system)``
    in one dict for all its operations; with fresh systems per operation an
    id can come back for another system, so each operation gets its own dict.
    """
    names = [op.name for op in operations(n, batch, stream_mib, work)]
    for index, name in enumerate(names):
        if name not in NOT_HERE:
            yield operations(n, batch, stream_mib, work)[index]


def skipped(backend: str, op: Op, quick: bool) -> dict[str, str]:
    """Systems left out of ``op`` on ``backend``, with the reason."""
    if backend == "gcs" and op.name == "read_logs" and quick:
        # GoogleJobStore.read_logs lists again after an empty pass and then
        # sleeps 5 s (time.sleep(5), "Listing is unfortunately eventually
        # consistent"), on every call: too long for a smoke run.
        return {"toil": "GoogleJobStore.read_logs sleeps 5 s per call; left out in quick mode"}
    return {}


def peak_rss(target: cs.Target, kinds: tuple[str, ...], mib: int) -> dict[str, Any]:
    """Peak RSS added by streaming ``mib`` MiB through each system, each in a fresh process."""
    out: dict[str, Any] = {"MiB streamed": mib}
    for kind in kinds:
        done = subprocess.run(
            [
                sys.executable,
                str(HERE / "rss.py"),
                kind,
                tempfile.gettempdir(),
                str(mib),
                "--cloud",
                target.to_json(),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            out[kind] = {"error": done.stderr.strip().splitlines()[-1:]}
            continue
        out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def run_backend(target: cs.Target, mode: Mode, quick: bool, work: Path) -> dict[str, Any]:
    """Every operation, and peak RSS, on one backend."""
    backend = target.backend
    kinds = cs.kinds(backend)
    cs.isolate(target)
    panel: dict[str, Any] = {
        "fs": backend,
        "served by": SERVED_BY[backend],
        "toil store": cs.TOIL_STORES.get(backend),
        "stream MiB": mode.stream_mib,
        "operations": {},
        "skipped": {},
    }
    if backend in cs.NO_TOIL:
        panel["note"] = cs.NO_TOIL[backend]
    started = time.perf_counter()
    for op in fresh_ops(mode.n, mode.batch, mode.stream_mib, work):
        left_out = skipped(backend, op, quick)
        if left_out:
            panel["skipped"][op.name] = left_out
        use = tuple(k for k in kinds if k not in left_out)
        begun = time.perf_counter()
        panel["operations"][op.name] = run_op(op, target, use, mode.repeats)
        progress(f"{backend}: {op.name}: {time.perf_counter() - begun:.1f} s")
    panel["seconds"] = round(time.perf_counter() - started, 1)
    panel["rss"] = peak_rss(target, kinds, mode.rss_mib[backend])
    return panel


# -- request counts -----------------------------------------------------------------


def request_counts(target: cs.Target, log: Any, n: int, work: Path) -> dict[str, dict[str, float]]:
    """S3 requests per operation for each system, counted at the moto server.

    Each operation runs once per system on a fresh store (``setup`` and
    ``prepare`` not counted); the count is what the server received during
    the body, divided by the operations the body did.
    """
    cs.isolate(target)
    counts: dict[str, dict[str, float]] = {}
    for op in fresh_ops(n, n, 16, work):
        row: dict[str, float] = {}
        with cs.made(cs.kinds(target.backend), target) as systems:
            for kind, system in systems.items():
                op.setup(system)
                prepared = op.prepare(system)
                log.clear()
                op.body(system, prepared)
                row[kind] = len(log.snapshot()) / op.count
        counts[op.name] = row
    return counts


# -- the result -------------------------------------------------------------------


def run(quick: bool, only: tuple[str, ...] = cs.BACKENDS) -> dict[str, Any]:
    """Run everything (on the backends in ``only``); return the JSON-serialisable result."""
    mode = QUICK if quick else FULL
    started = time.perf_counter()
    result: dict[str, Any] = {
        "machine": machine(),
        "mode": "quick" if quick else "full",
        "n": mode.n,
        "batch": mode.batch,
        "repeats": mode.repeats,
        "stream block MiB": cs.STREAM_BLOCK // (1024 * 1024),
        "backends": [],
        "unavailable": {},
    }
    with emulators() as (found, handles, failed), tempfile.TemporaryDirectory() as tmp:
        result["unavailable"] = failed
        work = Path(tmp)
        if "s3 counted" in found and "s3" in only:
            begun = time.perf_counter()
            result["s3_requests"] = request_counts(
                found["s3 counted"], handles["s3 counted"].requests, mode.count_n, work
            )
            progress(f"s3 request counts: {time.perf_counter() - begun:.1f} s")
        for backend in cs.BACKENDS:
            if backend in found and backend in only:
                result["backends"].append(run_backend(found[backend], mode, quick, work))
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["targets"] = targets(result)
    return result


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 5's targets on object stores and in memory: what each asks, what was measured."""
    checks: list[dict[str, Any]] = []

    def check(what: str, value: float, limit: float, **extra: Any) -> None:
        met = value <= limit
        checks.append(
            {"target": what, "value": round(value, 3), "limit": limit, "met": met} | extra
        )

    for name, row in result.get("s3_requests", {}).items():
        if "toil" in row:
            check(f"s3 requests: {name}: fsjobstore <= toil", row["fsjobstore"], row["toil"])
        for prefix, limit in REQUEST_LIMITS.items():
            if name == prefix:
                check(f"s3 requests: {name}: fsjobstore <= {limit:g}", row["fsjobstore"], limit)
    for panel in result["backends"]:
        fs = panel["fs"]
        for name, row in panel["operations"].items():
            if "fsjobstore/toil" in row:
                ours, toil = row["fsjobstore"], row["toil"]
                overlap = ours["min"] <= toil["max"] and toil["min"] <= ours["max"]
                check(
                    f"{fs}: {name}: fsjobstore/toil (time)",
                    row["fsjobstore/toil"],
                    1.0,
                    **({"ranges overlap": overlap}),
                )
        rss = panel["rss"].get("fsjobstore", {})
        if "peak added MiB" in rss:
            added = rss["peak added MiB"] - rss.get("held by the store MiB", 0.0)
            what = "peak RSS added" + (" beyond the stored bytes" if fs == "memory" else "")
            check(f"{fs}: {what} streaming {panel['rss']['MiB streamed']} MiB", added, RSS_LIMIT)
    return checks


def _fmt(cell: dict[str, float] | None) -> str:
    return "-" if cell is None else f"{cell['median']:.1f}"


def print_table(result: dict[str, Any]) -> None:
    """Print the tables of a :func:`run` result."""
    print(
        f"{result['mode']} mode: median of {result['repeats']} after a warm-up, n = {result['n']}"
        f"; us/op, or MB/s for streams; {result.get('seconds', '?')} s"
    )
    for backend, why in result.get("unavailable", {}).items():
        print(f"  {backend}: not run ({why})")
    counts = result.get("s3_requests")
    if counts:
        print("\nS3 requests per operation, counted at the moto server")
        print("  {:<32} {:>7} {:>7} {:>10}".format("operation", "floor", "toil", "fsjobstore"))
        for name, row in counts.items():
            print(
                f"  {name:<32} {row.get('floor', 0):7.2f} {row.get('toil', 0):7.2f}"
                f" {row['fsjobstore']:10.2f}"
            )
    for panel in result["backends"]:
        toil = panel["toil store"]
        why = "" if toil else f" ({panel.get('note', '')})"
        print(
            f"\n{panel['fs']} ({panel['served by']}); Toil: {toil or 'none'}{why}"
            f"; streams {panel['stream MiB']} MiB; {panel['seconds']} s"
        )
        heads = ("operation", "floor", "toil", "fsjobstore [min-max]", "/toil", "/floor")
        print("  {:<30} {:>9} {:>9} {:>24} {:>6} {:>6}".format(*heads))
        for name, row in panel["operations"].items():
            ours = row["fsjobstore"]
            spread = f"{ours['median']:.1f} [{ours['min']:.1f}-{ours['max']:.1f}]"
            by_toil = f"{row['fsjobstore/toil']:6.2f}" if "fsjobstore/toil" in row else "     -"
            print(
                f"  {name:<30} {_fmt(row.get('floor')):>9} {_fmt(row.get('toil')):>9}"
                f" {spread:>24} {by_toil} {row['fsjobstore/floor']:6.2f}"
            )
        for name, why in panel["skipped"].items():
            print(f"  ({name}: {next(iter(why.values()))})")
        rss = panel["rss"]
        parts = []
        for kind in cs.kinds(panel["fs"]):
            cell = rss.get(kind, {})
            if "peak added MiB" in cell:
                held = cell.get("held by the store MiB")
                extra = f" (store holds {held:.0f})" if held else ""
                parts.append(f"{kind} {cell['peak added MiB']:.1f}{extra}")
            else:
                parts.append(f"{kind} failed: {cell.get('error')}")
        print(f"  peak RSS added streaming {rss['MiB streamed']} MiB (MiB): {', '.join(parts)}")
    checks = result.get("targets", [])
    missed = [t for t in checks if not t["met"]]
    print(f"\ntargets: {len(checks) - len(missed)} met, {len(missed)} missed")
    for t in missed:
        noise = " (min-max ranges overlap)" if t.get("ranges overlap") else ""
        print(f"  MISSED {t['target']}: {t['value']} (limit {t['limit']}){noise}")


def main() -> int:
    """Run, print the tables, write ``results/cloud.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run, under a minute")
    parser.add_argument("--json", type=Path, help="write the result here instead")
    parser.add_argument(
        "--only", action="append", choices=cs.BACKENDS, help="run only this backend (repeatable)"
    )
    args = parser.parse_args()
    cs.isolate()
    result = run(args.quick, tuple(args.only or cs.BACKENDS))
    print_table(result)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = args.json or results / "cloud.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
