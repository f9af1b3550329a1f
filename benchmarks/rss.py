"""Peak RSS added by streaming a large file through one system, in a fresh process.

``python benchmarks/rss.py KIND BASE MIB`` writes MIB MiB through a write stream,
reads it back through a read stream, and prints JSON: the resident set before
(after imports and setup) and the peak added while streaming, in MiB.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from systems import MiB, make, scratch


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MiB


class Sampler(threading.Thread):
    """The largest resident set seen, sampled every millisecond."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.largest = current_mib()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.001):
            self.largest = max(self.largest, current_mib())


def main() -> int:
    kind, base, size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    block = os.urandom(MiB)
    with scratch(base) as work:
        system = make(kind, work / "store")
        # Warm up the code paths on a small stream so imports do not count.
        system.stream_read(system.stream_write(block, 1))
        before, peak_before = current_mib(), peak_mib()
        sampler = Sampler()
        sampler.start()
        file_id = system.stream_write(block, size)
        system.stream_read(file_id)
        sampler.done.set()
        sampler.join()
        # ru_maxrss only moves past the earlier peak; the sampler sees the rest.
        largest = max(sampler.largest, peak_mib() if peak_mib() > peak_before else 0.0)
    print(json.dumps({"baseline MiB": before, "peak added MiB": largest - before}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
