"""Fixtures shared by every test: the backends the contract suite runs on."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fsjobstore import JobStore
from fsjobstore.errors import JobStoreError

#: Every backend the contract suite runs on.
BACKENDS = ["memory", "file"]


@dataclass
class Target:
    """One place a store can live: a locator plus the storage options it needs."""

    backend: str
    locator: str
    options: dict[str, Any] = field(default_factory=dict)

    def open(self) -> JobStore:
        """A new, unopened store object on this locator."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return JobStore(self.locator, **self.options)


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh, empty location on each backend."""
    name = request.param
    if name == "memory":
        # MemoryFileSystem is one dict per process: every test needs its own root.
        spot = Target(name, f"memory://fsjobstore-test-{uuid.uuid4().hex}")
    else:
        spot = Target(name, str(tmp_path / "store"))
    yield spot
    try:
        spot.open().destroy()
    except JobStoreError:
        pass  # a test left foreign data on purpose


@pytest.fixture
def store(target: Target) -> JobStore:
    """An initialized store: the writer in contract tests."""
    js = target.open()
    js.initialize()
    return js


@pytest.fixture
def reader(target: Target, store: JobStore) -> JobStore:
    """A second store object on the same locator: the reader in contract tests."""
    js = target.open()
    js.resume()
    return js
