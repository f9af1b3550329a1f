"""Draw the ratios in ``results/latest.json`` as ``results/ratios.png``.

``python benchmarks/chart.py`` (needs matplotlib; ``nox -s bench`` runs it).
One panel per filesystem or backend (local disk, tmpfs, then the object
stores and memory): fsjobstore / Toil and fsjobstore / floor for each
operation, on a log scale, with the targets as lines (below 1 is faster).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    report = json.loads((RESULTS / "latest.json").read_text())
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    panels = report["local"] + report.get("cloud", {}).get("backends", [])
    columns = min(3, len(panels))
    rows_ = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows_, columns, figsize=(7 * columns, 7 * rows_), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        names = list(panel["operations"])
        rows = [panel["operations"][name] for name in names]
        ys = range(len(names))
        # No Toil store on some backends (Azure, memory): a missing bar, not a zero.
        by_toil = [r.get("fsjobstore/toil", float("nan")) for r in rows]
        ax.barh([y + 0.2 for y in ys], by_toil, 0.4, label="÷ Toil")
        ax.barh([y - 0.2 for y in ys], [r["fsjobstore/floor"] for r in rows], 0.4, label="÷ floor")
        ax.set_yticks(list(ys), names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=1)
        ax.axvline(2.0, color="red", linestyle="--", linewidth=1, label="2x floor")
        where = panel.get("path") or panel.get("served by")
        ax.set_title(f"{panel['fs']} ({where}): fsjobstore ÷ …, median")
        ax.set_xlabel("ratio of times (< 1: fsjobstore faster)")
        ax.legend(loc="lower right")
    fig.suptitle(
        f"fsjobstore benchmarks ({report['mode']} mode, Python {report['machine']['python']})"
    )
    fig.tight_layout()
    out = RESULTS / "ratios.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
