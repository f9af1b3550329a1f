"""Peak RSS added by streaming a large file through one system, in a fresh process.

``python benchmarks/rss.py KIND BASE MIB`` writes MIB MiB through a write stream,
reads it back through a read stream, and prints JSON: the resident set before
(after imports and setup) and the peak added while streaming, in MiB.

``python benchmarks/rss.py KIND BASE MIB --cloud JSON`` does the same on an
object store or in memory (``cloud_systems.Target.to_json()``: the backend, its
emulator's endpoint and storage options) instead of in a directory under BASE.
On the in-memory backend the store itself holds what was written, in this
process: the output then also gives ``"held by the store MiB"``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from systems import MiB, System, make, scratch


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


@contextlib.contextmanager
def store(kind: str, base: Path, cloud: str | None) -> Iterator[System]:
    """A fresh system of ``kind``: in a directory under ``base``, or on ``cloud``."""
    if cloud is None:
        with scratch(base) as work:
            yield make(kind, work / "store")
        return
    import cloud_systems

    target = cloud_systems.Target.from_json(cloud)
    cloud_systems.isolate(target)
    system, remove = cloud_systems.make(kind, target)
    try:
        yield system
    finally:
        remove()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", help="floor, toil or fsjobstore")
    parser.add_argument("base", type=Path, help="directory for a local store")
    parser.add_argument("mib", type=int, help="MiB to stream out and back")
    parser.add_argument("--cloud", help="a cloud_systems.Target as JSON: stream through it")
    args = parser.parse_args()
    kind, size = args.kind, args.mib
    block = os.urandom(MiB)
    in_memory = args.cloud is not None and json.loads(args.cloud)["backend"] == "memory"
    with store(kind, args.base, args.cloud) as system:
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
    out = {"baseline MiB": before, "peak added MiB": largest - before}
    if in_memory:  # what the store must hold in this process, whatever it does
        out["held by the store MiB"] = float(size)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
