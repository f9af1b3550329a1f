"""Print ``results/scale.json`` as Markdown for docs/benchmarks.md, and draw its chart.

``python benchmarks/scale/report.py [PATH]`` prints the section (the tables
of the scale-out run, the correctness checks and the costs);
``--plot IMAGE`` also draws the chart (needs matplotlib).
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent.parent / "results"
_CHECKED = ("increments", "conflicts raised", "logs written", "jobs kept", "files kept")


def all_checks_ok(result: dict[str, Any]) -> bool:
    """Whether every scale-out point that ran passed its checks."""
    for body in result.get("scale", {}).get("backends", {}).values():
        for point in body.get("points", {}).values():
            if not point.get("checks ok", False):
                return False
    return True


def _range(cell: dict[str, float] | None, digits: int = 0) -> str:
    if not cell:
        return "-"
    med, lo, hi = (f"{cell[k]:.{digits}f}" for k in ("median", "min", "max"))
    return med if lo == hi else f"{med} [{lo}-{hi}]"


def _one(cell: dict[str, float] | None, digits: int = 2) -> str:
    return "-" if not cell else f"{cell['median']:.{digits}f}"


def scale_tables(scale: dict[str, Any]) -> None:
    """One table per backend: each point's throughput, latency, CPU shares and checks."""
    print(
        f"{scale['hosts']} simulated hosts, up to {scale['workers per host']} worker processes"
        f" each; {scale['seconds per point']:g} s per point, {scale['repeats']} repetitions"
        f" (median [min-max]); {scale['seconds']:.0f} s in all.\n"
    )
    for backend, body in scale["backends"].items():
        if "error" in body:
            print(f"### {backend}: not run ({body['error'][:200]})\n")
            continue
        print(f"### {backend} ({body['served by']})\n")
        print(
            "| delay each way | workers | store calls/s | p50 ms | p99 ms | emulator cores"
            " | proxy cores | client cores | other work's cores | client CPU ms/request"
            " | emulator CPU ms/request | conflicts per shared update | checks |"
        )
        print("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|")
        for key, point in body["points"].items():
            delay, workers = key.split(", ")
            ok = "ok" if point["checks ok"] else "**failed**"
            if point["errors"]:
                ok += f" ({point['errors']} errors)"
            print(
                f"| {delay} | {workers.split()[0]} | {_range(point.get('calls/s'))}"
                f" | {_range(point.get('p50 ms'))} | {_range(point.get('p99 ms'))}"
                f" | {_one(point.get('server cores'))} | {_one(point.get('proxy cores'))}"
                f" | {_one(point.get('client cores'))} | {_one(point.get('others (cores)'))}"
                f" | {_one(point.get('client cpu ms per request'))}"
                f" | {_one(point.get('server cpu ms per request'))}"
                f" | {_one(point.get('conflicts per shared update'))} | {ok} |"
            )
        print()


def checks_summary(scale: dict[str, Any]) -> None:
    """What the checks covered, summed over every point and repetition."""
    totals = dict.fromkeys(_CHECKED, 0)
    points = failed = 0
    failures: list[str] = []
    for backend, body in scale["backends"].items():
        for key, point in body.get("points", {}).items():
            for rep in point["repetitions"]:
                if "checks" not in rep:
                    failed += 1
                    failures.append(f"{backend} {key}: {rep.get('error', '')[:200]}")
                    continue
                points += 1
                for name in _CHECKED:
                    totals[name] += rep["checks"][name]
                if not rep["checks"]["ok"]:
                    failed += 1
                    failures.append(f"{backend} {key}: {rep['checks']['failed checks']}")
    print(
        f"Checked after each of {points} runs: {totals['increments']} counter increments"
        f" ({totals['conflicts raised']} conflicts raised and retried), {totals['logs written']}"
        f" log messages, {totals['jobs kept']} jobs and {totals['files kept']} files kept"
        " (every other job deleted with its files). Lost updates, jobs, files or log messages,"
        " messages delivered twice, deleted items still present, temporaries, open multipart"
        f" uploads and anything left after `destroy()`: {failed or 'none'}.\n"
    )
    for line in failures:
        print(f"- {line}")


def costs_tables(costs: dict[str, Any]) -> None:
    """Per backend: each operation at each size, then the growth between the two largest."""
    for backend, body in costs["backends"].items():
        sizes = [r for r in body["sizes"] if "operations" in r]
        for broken in (r for r in body["sizes"] if "error" in r):
            print(f"{backend} n = {broken['n']} failed: {broken['error']}\n")
        if not sizes:
            continue
        print(f"### {backend}: costs against the number of items\n")
        print(
            "| operation | N | seconds | client CPU s | emulator CPU s | requests"
            " | Python peak MiB | RSS added MiB |"
        )
        print("|---|--:|--:|--:|--:|--:|--:|--:|")
        for row in sizes:
            fill = row["fill"]
            print(
                f"| fill (N jobs, N files, N log messages) | {row['n']} | {fill['seconds']:.2f}"
                f" | {fill['cpu seconds']:.2f} | {fill.get('emulator cpu seconds', 0):.2f}"
                f" | {fill['requests']} | - | - |"
            )
        names = list(sizes[-1]["operations"])
        for name in names:
            for row in sizes:
                op = row["operations"].get(name)
                if op is None:
                    continue
                traced = op.get("tracemalloc peak MiB")
                print(
                    f"| {name} | {row['n']} | {op['seconds']:.3f} | {op['cpu seconds']:.3f}"
                    f" | {op.get('emulator cpu seconds', 0):.3f} | {op['requests']}"
                    f" | {'-' if traced is None else f'{traced:.1f}'}"
                    f" | {op['peak RSS added MiB']:.1f} |"
                )
        print()
        growth = body.get("growth", {})
        if growth:
            print(
                "| operation | sizes | wall ~N^k | client CPU ~N^k | requests ~N^k"
                " | emulator CPU ~N^k | Python memory ~N^k | client cost | memory |"
            )
            print("|---|---|--:|--:|--:|--:|--:|---|---|")
            for name, g in growth.items():
                print(
                    f"| {name} | {g['sizes'][0]} → {g['sizes'][1]} | {g['time exponent']}"
                    f" | {g['client cpu exponent']} | {g['requests exponent']}"
                    f" | {g.get('emulator cpu exponent')} | {g['memory exponent']}"
                    f" | {g.get('client', '-')} | {g['memory']} |"
                )
            print()


def markdown(result: dict[str, Any]) -> None:
    """Print the whole section."""
    machine = result["machine"]
    print(
        f"{result['mode']} mode; Python {machine['python']}, {machine['cpus']} CPUs,"
        f" {machine['platform']}; scale-out {result.get('scale', {}).get('seconds', 0):.0f} s,"
        f" costs {result.get('costs', {}).get('seconds', 0):.0f} s\n"
    )
    scale = result.get("scale")
    if scale:
        scale_tables(scale)
        checks_summary(scale)
    costs = result.get("costs")
    if costs:
        costs_tables(costs)


def plot(result: dict[str, Any], image: Path) -> None:
    """Throughput, latency and CPU against workers: one row per backend."""
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    backends = {b: v for b, v in result["scale"]["backends"].items() if "points" in v}
    fig, axes = plt.subplots(len(backends), 3, figsize=(18, 4.6 * len(backends)), squeeze=False)
    for row, (backend, body) in zip(axes, backends.items(), strict=False):
        series: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for key, point in body["points"].items():
            delay, workers = key.split(", ")
            if "calls/s" in point:
                series.setdefault(delay, []).append((int(workers.split()[0]), point))
        for delay, pts in series.items():
            pts.sort(key=lambda p: p[0])
            xs = [x for x, _ in pts]
            row[0].errorbar(
                xs,
                [p["calls/s"]["median"] for _, p in pts],
                yerr=[
                    [p["calls/s"]["median"] - p["calls/s"]["min"] for _, p in pts],
                    [p["calls/s"]["max"] - p["calls/s"]["median"] for _, p in pts],
                ],
                marker="o",
                capsize=3,
                label=f"{delay} each way",
            )
            row[1].plot(
                xs, [p["p50 ms"]["median"] for _, p in pts], marker="o", label=f"p50, {delay}"
            )
            row[1].plot(
                xs,
                [p["p99 ms"]["median"] for _, p in pts],
                marker="s",
                linestyle="--",
                label=f"p99, {delay}",
            )
            if delay.startswith("0 "):
                for part in ("server cores", "proxy cores", "client cores", "others (cores)"):
                    label = {
                        "server cores": f"emulator ({body['served by']})",
                        "others (cores)": "other work on the machine",
                    }.get(part, part)
                    row[2].plot(xs, [p[part]["median"] for _, p in pts], marker="o", label=label)
        row[0].set_title(f"{backend} ({body['served by']}): store calls per second")
        row[1].set_title(f"{backend}: latency per store call (ms)")
        row[1].set_yscale("log")
        row[2].set_title(f"{backend}: CPU used, in cores, at 0 ms")
        row[2].axhline(2.0, color="red", linestyle=":", linewidth=1, label="the machine's 2 cores")
        for ax in row:
            ax.set_xscale("log", base=2)
            ax.set_xticks([1, 2, 4, 8, 16, 32], ["1", "2", "4", "8", "16", "32"])
            ax.set_xlabel("worker processes (hosts x workers per host)")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
    fig.suptitle(f"Scale-out on simulated hosts ({result['mode']} mode)")
    fig.tight_layout()
    image.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(image, dpi=80)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", default=str(RESULTS / "scale.json"))
    parser.add_argument("--plot", metavar="IMAGE")
    args = parser.parse_args()
    result = json.loads(Path(args.path).read_text())
    if args.plot:
        plot(result, Path(args.plot))
    markdown(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
