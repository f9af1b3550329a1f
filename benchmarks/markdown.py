"""Print ``results/latest.json`` as Markdown tables, for docs/benchmarks.md.

``python benchmarks/markdown.py``
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _cell(row: dict[str, Any], kind: str, unit: str) -> str:
    cell = row.get(kind)
    return "-" if cell is None else f"{cell['median']:.1f}{unit}"


def _ratio(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.2f}" if key in row else "-"


def operations_table(operations: dict[str, Any]) -> None:
    """One row per operation: floor, Toil, fsjobstore with its spread, the two ratios."""
    print("| operation | floor | Toil | fsjobstore median [min-max] | ÷ Toil | ÷ floor |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, row in operations.items():
        unit = " MB/s" if row["unit"] == "MB/s" else " µs"
        ours = row["fsjobstore"]
        print(
            f"| {name} | {_cell(row, 'floor', unit)} | {_cell(row, 'toil', unit)}"
            f" | {ours['median']:.1f}{unit} [{ours['min']:.1f}-{ours['max']:.1f}]"
            f" | {_ratio(row, 'fsjobstore/toil')} | {_ratio(row, 'fsjobstore/floor')} |"
        )


def rss_line(rss: dict[str, Any]) -> str:
    """Peak RSS added per system, as a sentence."""
    parts = []
    for kind in ("floor", "toil", "fsjobstore"):
        cell = rss.get(kind)
        if cell is None:
            continue
        if "peak added MiB" not in cell:
            parts.append(f"{kind} failed ({cell.get('error')})")
            continue
        held = cell.get("held by the store MiB")
        extra = f", of which the store holds {held:.0f}" if held else ""
        parts.append(f"{kind} {cell['peak added MiB']:.1f} MiB{extra}")
    return f"Peak RSS added while streaming {rss['MiB streamed']} MiB: {', '.join(parts)}."


def main() -> int:
    report = json.loads((RESULTS / "latest.json").read_text())
    machine = report["machine"]
    print(
        f"{report['mode']} mode, {report['repeats']} repetitions after a warm-up, "
        f"n = {report['n']}; Python {machine['python']}, {machine['cpus']} CPUs, "
        f"{machine['platform']}; {report['seconds']} s\n"
    )
    for panel in report["local"]:
        print(f"### {panel['fs']} (`{panel['path']}`)\n")
        operations_table(panel["operations"])
        print(f"\n{rss_line(panel['rss'])}\n")
    cloud = report.get("cloud")
    if cloud:
        counts = cloud.get("s3_requests", {})
        if counts:
            print("### S3 requests per operation, counted at the moto server\n")
            print("| operation | floor | Toil | fsjobstore |")
            print("|---|--:|--:|--:|")
            for name, row in counts.items():
                cells = " | ".join(f"{row[k]:.2f}" if k in row else "-" for k in ("floor", "toil"))
                print(f"| {name} | {cells} | {row['fsjobstore']:.2f} |")
            print()
        print(
            f"Object stores and memory: n = {cloud['n']}, {cloud['repeats']} repetitions"
            f" after a warm-up, {cloud['seconds']} s.\n"
        )
        for panel in cloud["backends"]:
            toil = panel["toil store"] or f"none ({panel.get('note', '')})"
            print(f"### {panel['fs']} ({panel['served by']}; Toil: {toil})\n")
            operations_table(panel["operations"])
            for name, why in panel.get("skipped", {}).items():
                print(f"\n{name}: {'; '.join(why.values())}.")
            print(f"\n{rss_line(panel['rss'])}\n")
    concurrency = report.get("concurrency")
    if concurrency:
        delay = concurrency["delay each way (s)"] * 1000
        print(f"### Behind a delay proxy ({delay:g} ms each way)\n")
        print(
            "| backend: operation | one at a time | fsjobstore | floor bulk"
            " | speedup | fsjobstore ÷ floor bulk |"
        )
        print("|---|--:|--:|--:|--:|--:|")
        for backend, body in concurrency["backends"].items():
            for name, row in body["operations"].items():
                forms = row["forms"]
                cells = " | ".join(
                    f"{forms[k]['median']:.2f} s [{forms[k]['min']:.2f}-{forms[k]['max']:.2f}]"
                    for k in ("sequential", "fsjobstore", "floor bulk")
                )
                print(
                    f"| {backend}: {name} | {cells} | {row['speedup']['fsjobstore']:.1f}x"
                    f" | {row['fsjobstore/floor bulk']:.2f} |"
                )
        print()
    missed = [t for t in report["targets"] if not t["met"]]
    print(f"Targets: {len(report['targets']) - len(missed)} met, {len(missed)} missed:\n")
    for t in missed:
        noise = " (min-max ranges overlap)" if t.get("ranges overlap") else ""
        print(f"- {t['target']}: {t['value']} (limit {t['limit']}){noise}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
