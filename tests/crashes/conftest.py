"""The fixtures of the crash tests: the backend, the variant, and the bench."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import make_target
from .bench import BACKENDS, ROUNDS, SEED, Bench
from .crasher import Crasher


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["default", pytest.param("long", marks=pytest.mark.long)])
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bench(
    request: pytest.FixtureRequest, backend: str, variant: str, tmp_path: Path
) -> Iterator[Bench]:
    target = make_target(request, backend, tmp_path)
    store = target.open()
    store.initialize()
    name = request.node.originalname
    crasher = Crasher(
        target.locator, target.options, tmp_path / "reports", f"{SEED}:{name}:{backend}:{variant}"
    )
    bench = Bench(target, store, crasher, ROUNDS[variant], variant, tmp_path)
    yield bench
    bench.report()
