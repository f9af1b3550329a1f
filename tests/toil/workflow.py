"""A small Toil workflow, run through Toil's command line by the tests and the benchmark.

Seven jobs: a root that splits an imported text in three (``writeGlobalFile``),
three children that count words (``readGlobalFile``, ``log`` to the leader,
each a promise), a follow-on that sums the promises, its child that reads a
shared file, and a last follow-on that writes the result. The leader imports
the text and the shared file and exports the result.

Every job appends its name to ``--runs`` (a local file), so a test can tell
which jobs ran in which invocation. While ``--fail-flag`` names a file that
exists, the third counting job fails.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from toil.common import Toil
from toil.job import Job

GREETING = "greeting.txt"


def _ran(runs: str, name: str) -> None:
    with open(runs, "a") as log:
        log.write(name + "\n")


def root(job: Any, text_id: str, runs: str, fail_flag: str) -> Any:
    _ran(runs, "root")
    with open(job.fileStore.readGlobalFile(text_id)) as f:
        words = f.read().split()
    third = -(-len(words) // 3)
    counts = []
    for i in range(3):
        path = job.fileStore.getLocalTempFile()
        with open(path, "w") as f:
            f.write(" ".join(words[i * third : (i + 1) * third]))
        part = job.fileStore.writeGlobalFile(path)
        counts.append(job.addChildJobFn(count, part, i + 1, runs, fail_flag).rv())
    return job.addFollowOnJobFn(total, counts, runs).rv()


def count(job: Any, part_id: str, index: int, runs: str, fail_flag: str) -> int:
    _ran(runs, f"count-{index}")
    if index == 3 and os.path.exists(fail_flag):
        raise RuntimeError("injected failure")
    with open(job.fileStore.readGlobalFile(part_id)) as f:
        n = len(f.read().split())
    job.log(f"part {index} has {n} words")
    return n


def total(job: Any, counts: list[int], runs: str) -> Any:
    _ran(runs, "total")
    greeting = job.addChildJobFn(greet, runs).rv()
    return job.addFollowOnJobFn(finish, sum(counts), greeting, runs).rv()


def greet(job: Any, runs: str) -> str:
    _ran(runs, "greet")
    with job.fileStore.jobStore.read_shared_file_stream(GREETING) as f:
        return str(f.read().decode().strip())


def finish(job: Any, words: int, greeting: str, runs: str) -> str:
    _ran(runs, "finish")
    job.log(f"{words} words in all")
    path = job.fileStore.getLocalTempFile()
    with open(path, "w") as f:
        f.write(f"{greeting}: {words} words\n")
    return str(job.fileStore.writeGlobalFile(path))


def main() -> None:
    parser: argparse.ArgumentParser = Job.Runner.getDefaultArgumentParser()
    parser.add_argument("--text", required=True, help="URL of the text to count")
    parser.add_argument("--greeting", required=True, help="URL of the greeting")
    parser.add_argument("--output", required=True, help="URL to export the result to")
    parser.add_argument("--runs", required=True, help="local file each job appends its name to")
    parser.add_argument("--fail-flag", default="", help="the third count fails while this exists")
    options = parser.parse_args()
    with Toil(options) as toil:
        if options.restart:
            result = toil.restart()
        else:
            text = toil.import_file(options.text)
            toil.import_file(options.greeting, shared_file_name=GREETING)
            result = toil.start(
                Job.wrapJobFn(root, text, options.runs, options.fail_flag or "/nonexistent")
            )
        toil.export_file(result, options.output)


if __name__ == "__main__":
    main()
