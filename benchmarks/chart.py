"""Draw the ratios in ``results/latest.json`` as ``results/ratios.png``.

``python benchmarks/chart.py`` (needs matplotlib; ``nox -s bench`` runs it).
One panel per filesystem: fsjobstore / Toil and fsjobstore / floor for each
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
    panels = report["local"]
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 7), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        names = list(panel["operations"])
        rows = [panel["operations"][name] for name in names]
        ys = range(len(names))
        ax.barh([y + 0.2 for y in ys], [r["fsjobstore/toil"] for r in rows], 0.4, label="÷ Toil")
        ax.barh([y - 0.2 for y in ys], [r["fsjobstore/floor"] for r in rows], 0.4, label="÷ floor")
        ax.set_yticks(list(ys), names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=1)
        ax.axvline(2.0, color="red", linestyle="--", linewidth=1, label="2x floor")
        ax.set_title(f"{panel['fs']} ({panel['path']}): fsjobstore ÷ …, median")
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
