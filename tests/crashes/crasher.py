"""Processes killed with SIGKILL in the middle of a store operation: the parent's side.

:class:`Crasher` starts children from a fork server that has imported
:mod:`tests.crashes.child` (and with it fsjobstore and the storage clients)
once: a child is a real process of its own, forked in about 20 ms instead of
the second or two a fresh interpreter takes here, so a test can afford many
kills.
:meth:`Crasher.kill` waits until the child has finished a chosen number of
steps, then lets a chosen fraction of one step's duration pass (both drawn
from the crasher's seeded random generator) and kills the child with
SIGKILL: the kill lands at a point spread over the next step, inside its
store call most of the time.
"""

from __future__ import annotations

import functools
import itertools
import json
import multiprocessing
import random
import signal
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

from .child import child

__all__ = ["Crasher", "Round"]

#: Seconds a child may take to reach the point where it is to be killed.
TIMEOUT = 120.0
#: Seconds between two looks at a child's report.
POLL = 0.001

# -- the parent's side -------------------------------------------------------------------

Event = dict[str, Any]


@functools.cache
def _context() -> ForkServerContext:
    """The fork server children come from, started once, with the child's module imported."""
    context = multiprocessing.get_context("forkserver")
    # Only heeded if no fork server runs yet; children import what is missing
    # otherwise, which is slower but the same.
    context.set_forkserver_preload([child.__module__, "s3fs"])
    return context


class _Report:
    """A child's report file, read as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[Event] = []
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        new = [json.loads(line) for line in lines]
        self.events += new
        return new


@dataclass
class Round:
    """One child, killed: what it reported, and where the kill was aimed.

    Attributes
    ----------
    number
        The round's number within its test.
    after
        Finished steps the kill waited for.
    fraction
        How far into the next step (as a fraction of one step's duration)
        the kill was aimed.
    events
        Everything the child reported, in order (a line cut by the kill is
        not one).
    cycle
        Seconds one step took (the median of this round's, or the estimate given).
    late
        Seconds the kill came after the point aimed at (this process learns
        of a finished step a little after the child reports it).
    """

    number: int
    after: int
    fraction: float
    events: list[Event] = field(default_factory=list)
    cycle: float = 0.0
    late: float = 0.0

    def of(self, kind: str) -> list[Event]:
        """The events of one kind, in order."""
        return [e for e in self.events if e["e"] == kind]

    @property
    def done(self) -> list[Event]:
        """The steps the child finished."""
        return self.of("done")

    @property
    def in_flight(self) -> Event | None:
        """The ``begin`` event of the step the kill interrupted, if one had begun."""
        finished = {e["step"] for e in self.events if e["e"] in ("done", "archived")}
        begun = [e for e in self.of("begin") if e["step"] not in finished]
        assert len(begun) <= 1, f"more than one step in flight: {begun}"
        return begun[0] if begun else None

    @property
    def idle(self) -> bool:
        """Whether the child ran out of work before the kill."""
        return bool(self.of("idle"))

    def short(self) -> str:
        """Where the kill was aimed and where it landed, in a few characters."""
        landed = "in" if self.in_flight else "idle" if self.idle else "between"
        return f"{self.after}+{self.fraction:.2f}:{len(self.done)}/{landed}/{self.late * 1e3:.0f}ms"

    def describe(self) -> str:
        """Where the kill was aimed, for failure messages."""
        return (
            f"round {self.number}: killed {self.fraction:.2f} of a step "
            f"({self.cycle * 1000:.1f} ms) after step {self.after}, {self.late * 1000:.1f} ms "
            "late; "
            f"{len(self.done)} finished, in flight: {self.in_flight}"
        )


@dataclass
class Crasher:
    """Runs children on one store and kills them at seeded random points.

    Parameters
    ----------
    locator, options
        The store the children open.
    scratch
        A folder for the children's report files.
    seed
        Seeds the random generator that picks every kill point.
    """

    locator: str
    options: dict[str, Any]
    scratch: Path
    seed: str
    rounds: list[Round] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.scratch.mkdir(parents=True, exist_ok=True)

    def kill(
        self,
        op: str,
        params: dict[str, Any],
        *,
        after: Iterable[int] | int,
        cycle: float | None = None,
        fraction: float | None = None,
        locator: str | None = None,
    ) -> Round:
        """Start a child running ``op``, kill it, and return what it reported.

        Parameters
        ----------
        op
            The operation (see :func:`child`).
        params
            Its keyword arguments.
        after
            The finished steps to wait for, or a choice of them (drawn at random).
        cycle
            A step's duration in seconds; by default the median of this
            round's finished steps, or where none finished the last round's
            (50 ms for the first).
        fraction
            How far into the next step to aim, as a fraction of ``cycle``;
            drawn from [0, 1) by default.
        locator
            Another store than the crasher's (or none, for ``initialize``).

        Returns
        -------
        Round
            The child's events, up to the kill.
        """
        choices = [after] if isinstance(after, int) else list(after)
        chosen = Round(len(self.rounds), self.rng.choice(choices), self.rng.random())
        if fraction is not None:
            chosen.fraction = fraction
        report = self.scratch / f"{op}-{chosen.number}.jsonl"
        process = _context().Process(
            target=child,
            args=(op, locator or self.locator, self.options, str(report), params),
            name=f"fsjobstore-crash-{op}-{chosen.number}",
            daemon=True,
        )
        watch = _Report(report)
        process.start()
        try:
            anchor = self._wait(process, watch, chosen.after)
            last = self.rounds[-1].cycle if self.rounds else 0.05
            chosen.cycle = cycle or _cycle(watch.events) or last
            aim = anchor["t"] + chosen.fraction * chosen.cycle
            # One reading of the clock: two can straddle the aim and ask for a negative sleep.
            time.sleep(max(0.0, aim - time.monotonic()))
            process.kill()
            chosen.late = max(0.0, time.monotonic() - aim)
        finally:
            process.kill()  # (again, if the wait failed: it is not reaped before the join)
            process.join(30)
        watch.poll()
        chosen.events = watch.events
        assert process.exitcode == -signal.SIGKILL, f"{op}: exit code {process.exitcode}"
        self.rounds.append(chosen)
        return chosen

    def _wait(self, process: Any, watch: _Report, after: int) -> Event:
        """Wait for ``after`` finished steps (or the loop's end); return the event to time from."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in watch.poll():
                if event["e"] == "error":
                    raise AssertionError(f"the child failed:\n{event['trace']}")
                if event["e"] == "idle":
                    return event
            done = [e for e in watch.events if e["e"] == "done"]
            if after == 0 and watch.events:
                return watch.events[0]  # "ready"
            if after and len(done) >= after:
                return done[after - 1]
            assert process.is_alive(), f"the child died: exit code {process.exitcode}"
            assert time.monotonic() < deadline, f"no step {after} in {TIMEOUT:.0f} s"
            time.sleep(POLL)

    def summary(self) -> str:
        """How many kills there were, how many interrupted a step, and each one's point."""
        mid = sum(r.in_flight is not None for r in self.rounds)
        each = ", ".join(r.short() for r in self.rounds)
        return f"{len(self.rounds)} kills (seed {self.seed!r}), {mid} inside a step [{each}]"


def _cycle(events: list[Event]) -> float | None:
    """The median time between two finished steps (from ``ready`` for the first), if any."""
    times = [e["t"] for e in events if e["e"] in ("ready", "done")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return statistics.median(gaps) if gaps else None
