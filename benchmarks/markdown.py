"""Print ``results/latest.json`` as Markdown tables, for docs/benchmarks.md.

``python benchmarks/markdown.py``
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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
        print("| operation | floor | Toil | fsjobstore median [min-max] | ÷ Toil | ÷ floor |")
        print("|---|--:|--:|--:|--:|--:|")
        for name, row in panel["operations"].items():
            unit = " MB/s" if row["unit"] == "MB/s" else " µs"
            ours = row["fsjobstore"]
            print(
                f"| {name} | {row['floor']['median']:.1f}{unit} | {row['toil']['median']:.1f}{unit}"
                f" | {ours['median']:.1f}{unit} [{ours['min']:.1f}-{ours['max']:.1f}]"
                f" | {row['fsjobstore/toil']:.2f} | {row['fsjobstore/floor']:.2f} |"
            )
        rss = panel["rss"]
        added = ", ".join(
            f"{k} {rss[k]['peak added MiB']:.1f} MiB" for k in ("floor", "toil", "fsjobstore")
        )
        print(f"\nPeak RSS added while streaming {rss['MiB streamed']} MiB: {added}.\n")
    missed = [t for t in report["targets"] if not t["met"]]
    print(f"Targets: {len(report['targets']) - len(missed)} met, {len(missed)} missed:\n")
    for t in missed:
        noise = " (min-max ranges overlap)" if t.get("ranges overlap") else ""
        print(f"- {t['target']}: {t['value']} (limit {t['limit']}){noise}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
