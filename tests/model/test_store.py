"""The store behaves like the model, on every backend (see :mod:`tests.model`)."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pytest
from hypothesis import seed
from hypothesis.stateful import run_state_machine_as_test

from ..conftest import BACKENDS, make_target
from .base import RULES
from .files import FileRules
from .jobs import JobRules
from .model import BUDGETS, Site, explore_factor, machine_settings
from .shared_and_logs import SharedAndLogRules


class JobStoreMachine(JobRules, FileRules, SharedAndLogRules):
    """Jobs, files, shared files and logs of one store, against a plain model."""


# ---------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_store_behaves_like_the_model(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Random sequences of calls, each example on a fresh store; the reader sees the model."""
    budget = BUDGETS[backend]
    this_run = Site(make_target(request, backend, tmp_path), budget)

    class OnThisBackend(JobStoreMachine):
        site = this_run

    if explore_factor() == 0:
        seed(zlib.crc32(backend.encode()))(OnThisBackend)

    started = time.monotonic()
    run_state_machine_as_test(OnThisBackend, settings=machine_settings(budget))
    elapsed = time.monotonic() - started
    print(f"\n{backend}: {budget.examples} examples in {elapsed:.1f} s")
    for event, count in sorted(this_run.tally.items()):
        print(f"  {count:5d}  {event}")
    if budget.examples >= 50:
        # Enough steps that every rule runs: a rule that never can is a broken machine.
        assert {f"rule {name}" for name in RULES} <= set(this_run.tally)
