"""Profile the fsjobstore side of one benchmarked operation with cProfile.

``python benchmarks/profile_op.py "update_job" [--base /dev/shm] [--n 300]``
runs the operation (as in ``run.py``) on a fresh fsjobstore store, several
times, and prints the functions with the most cumulative and own time.
``--backend s3|gcs|azure|memory`` runs it on that emulator instead (as in
``cloud.py``; moto in a child process, so its work is not in the profile).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

from cloud_systems import BACKENDS  # noqa: E402
from ops import operations  # noqa: E402
from systems import System, make, scratch  # noqa: E402


@contextlib.contextmanager
def system_on(backend: str, kind: str, work: Path) -> Iterator[System]:
    """A fresh system of ``kind``: in ``work`` on local disk, or on an emulator."""
    if backend == "local":
        yield make(kind, work / "store")
        return
    import cloud
    import cloud_systems as cs

    from tests import servers

    start: dict[str, Callable[[], Any]] = {
        "s3": cloud.MotoProcess,
        "gcs": servers.start_gcs_server,
        "azure": servers.start_azure_server,
    }
    server = start[backend]() if backend in start else None
    try:
        target = cs.target_of(backend, server)
        cs.isolate(target)
        system, remove = cs.make(kind, target)
        try:
            yield system
        finally:
            remove()
    finally:
        if server is not None:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("operation", help="the operation's name, or part of it")
    parser.add_argument("--base", default="/dev/shm", help="where to put the store")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--system", default="fsjobstore", help="fsjobstore, toil or floor")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--backend", default="local", choices=(*BACKENDS, "local"))
    args = parser.parse_args()
    base = Path(args.base)
    with scratch(base) as work, system_on(args.backend, args.system, work) as system:
        op = next(o for o in operations(args.n, 1000, 64, work) if args.operation in o.name)
        op.setup(system)
        profile = cProfile.Profile()
        for _ in range(5):
            prepared = op.prepare(system)
            profile.enable()
            op.body(system, prepared)
            profile.disable()
    where = base if args.backend == "local" else args.backend
    print(f"{op.name} on {args.system} at {where}: 5 runs of {op.count}")
    stats = pstats.Stats(profile).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
