"""Profile the fsjobstore side of one benchmarked operation with cProfile.

``python benchmarks/profile_op.py "update_job" [--base /dev/shm] [--n 300]``
runs the operation (as in ``run.py``) on a fresh fsjobstore store, several
times, and prints the functions with the most cumulative and own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

from ops import operations  # noqa: E402
from systems import make, scratch  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("operation", help="the operation's name, or part of it")
    parser.add_argument("--base", default="/dev/shm", help="where to put the store")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--system", default="fsjobstore", help="fsjobstore, toil or floor")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    base = Path(args.base)
    with scratch(base) as work:
        op = next(o for o in operations(args.n, 1000, 64, work) if args.operation in o.name)
        system = make(args.system, work / "store")
        op.setup(system)
        profile = cProfile.Profile()
        for _ in range(5):
            prepared = op.prepare(system)
            profile.enable()
            op.body(system, prepared)
            profile.disable()
    print(f"{op.name} on {args.system} at {base}: 5 runs of {op.count}")
    stats = pstats.Stats(profile).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
