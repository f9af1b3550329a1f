"""What every part of the contract suite shares: the stores a test writes and reads through."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..errors import JobStoreError
from ..store import JobStore
from .target import Target

__all__ = ["ContractBase"]


class ContractBase:
    """Fixtures of the contract suite; a subclass provides a ``target`` fixture.

    ``target`` is a fresh, empty :class:`~fsjobstore.testing.Target` for
    each test. After each test, whatever store is at the target is
    destroyed; a test that leaves foreign data there on purpose keeps it.
    """

    @pytest.fixture(autouse=True)
    def _destroy_after(self, target: Target) -> Iterator[None]:
        yield
        try:
            target.open().destroy()
        except JobStoreError:
            pass  # a test left foreign data on purpose

    @pytest.fixture
    def store(self, target: Target) -> JobStore:
        """Return an initialized store: the writer of a test."""
        js = target.open()
        js.initialize()
        return js

    @pytest.fixture
    def reader(self, target: Target, store: JobStore) -> JobStore:
        """Return a second store object on the same locator: the reader of a test."""
        js = target.open()
        js.resume()
        return js
