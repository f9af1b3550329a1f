"""``nox -s scale``: scale-out on simulated hosts, then the costs that grow with a workflow.

``python benchmarks/scale/main.py [--quick] [--only-scale | --only-costs]
[--backends s3 gcs azure] [--profile]`` (as root, in a venv with the
package's ``test`` extra and matplotlib, as the ``scale`` nox session makes):

1. the scale-out harness (:mod:`harness`): 4 simulated hosts (network
   namespaces) with up to 8 worker processes each, against moto,
   fake-gcs-server and Azurite in a namespace of their own, through the
   delay proxy at 0 and 10 ms each way, for 1, 2, 4, 8, 16 and 32 workers;
   the correctness checks after every point;
2. the costs (:mod:`costs`): whole-store operations on stores of growing
   size, on local disk and each emulator.

Writes ``benchmarks/results/scale.json`` (``scale-quick.json`` in quick
mode; ``--only-scale`` and ``--only-costs`` keep the other half of the
file), draws ``docs/img/scale.png`` (full mode) or
``benchmarks/results/scale-quick.png``, and prints the Markdown section for
``docs/benchmarks.md`` (:mod:`report`). Exits 1 if a correctness check
failed. Not root, or no ``ip``: says so and exits 0 without running (the
nox session skips before that).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import costs  # noqa: E402
import harness  # noqa: E402
import netns  # noqa: E402
import report  # noqa: E402
from systems import machine  # noqa: E402

RESULTS = HERE.parent / "results"
IMAGE = HERE.parents[1] / "docs" / "img" / "scale.png"


@dataclass(frozen=True)
class Mode:
    """Sizes of one run."""

    hosts: int
    per_host: int
    workers: tuple[int, ...]
    delays: tuple[float, ...]
    seconds: float
    repeats: int


FULL = Mode(4, 8, (1, 2, 4, 8, 16, 32), (0.0, 0.010), 6.0, 2)
QUICK = Mode(2, 2, (1, 4), (0.0, 0.010), 2.0, 1)


def save(result: dict[str, Any], quick: bool) -> None:
    """Write ``result`` to ``results/scale.json`` (``scale-quick.json`` in quick mode)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"scale{'-quick' if quick else ''}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    parser.add_argument("--only-scale", action="store_true")
    parser.add_argument("--only-costs", action="store_true")
    parser.add_argument("--backends", nargs="+", default=["s3", "gcs", "azure"])
    parser.add_argument("--profile", action="store_true", help="cProfile the costs' listings")
    args = parser.parse_args()
    mode = QUICK if args.quick else FULL
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": machine(), "mode": "quick" if args.quick else "full"}
    previous = RESULTS / f"scale{'-quick' if args.quick else ''}.json"
    if (args.only_scale or args.only_costs) and previous.exists():
        # One half alone keeps the other half of the last run's result.
        kept = json.loads(previous.read_text())
        result |= {k: kept[k] for k in ("scale", "costs") if k in kept}
    if not args.only_costs:
        why = netns.why_not_runnable()
        if why is not None:
            print(f"scale: skipped: {why}", file=sys.stderr)
            return 0
        with netns.topology(mode.hosts) as topo:
            result["scale"] = harness.run_scale(
                topo,
                per_host=mode.per_host,
                backends=args.backends,
                delays=list(mode.delays),
                workers=list(mode.workers),
                seconds=mode.seconds,
                repeats=mode.repeats,
            )
        # Saved at once: the costs take longer than the scale-out, and a
        # failure or Ctrl-C there must not lose it.
        save(result, args.quick)
    if not args.only_scale:
        result["costs"] = costs.run_costs(args.quick, ["local", *args.backends], args.profile)
    result["seconds"] = round(time.perf_counter() - started, 1)
    if not args.only_scale and not args.only_costs:
        result["seconds, whole run"] = result["seconds"]
    save(result, args.quick)
    if "scale" in result:
        image = RESULTS / "scale-quick.png" if args.quick else IMAGE
        report.plot(result, image)
        print(f"wrote {image}", file=sys.stderr)
    report.markdown(result)
    return 0 if report.all_checks_ok(result) else 1


if __name__ == "__main__":
    raise SystemExit(main())
