"""The shipped contract suite itself: its parts never shadow each other's tests."""

from __future__ import annotations

import inspect

import pytest

from fsjobstore import testing
from fsjobstore.testing import ContractBase, JobStoreContract


def test_every_part_is_in_the_whole_suite() -> None:
    parts = {
        cls
        for _, cls in inspect.getmembers(testing, inspect.isclass)
        if issubclass(cls, ContractBase) and cls not in (ContractBase, JobStoreContract)
    }
    assert parts
    assert parts <= set(JobStoreContract.__mro__)


def test_no_test_is_defined_twice() -> None:
    """A test of one part with the name of another's would silently replace it."""
    seen: dict[str, str] = {}
    for cls in JobStoreContract.__mro__:
        for name in vars(cls):
            if name.startswith("test_"):
                assert name not in seen, f"{name} is in {seen.get(name)} and {cls.__name__}"
                seen[name] = cls.__name__
    assert len(seen) > 90


def test_a_part_without_a_target_fixture_says_what_is_missing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from fsjobstore.testing import LogsContract

        class TestNoTarget(LogsContract):
            pass
        """
    )
    result = pytester.runpytest("-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*fixture 'target' not found*"])
    assert result.ret != 0
