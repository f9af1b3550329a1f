"""The Toil layer's tests: they run where Toil is installed (``nox -s toil``)."""

from __future__ import annotations

import pytest

#: Marks Toil's test module puts on its tests, registered so that
#: ``--strict-markers`` accepts them.
TOIL_MARKS = (
    "slow",
    "online",
    "aws_s3",
    "google_storage",
    "google_project",
    "stubserver",
    "encryption",
    "timeout",
)


def pytest_configure(config: pytest.Config) -> None:
    for mark in TOIL_MARKS:
        config.addinivalue_line("markers", f"{mark}: a mark of Toil's own test suite")


@pytest.fixture
def rootpath(request: pytest.FixtureRequest) -> None:
    """What Toil's test classes ask of Toil's own conftest: the root path, on the class."""
    if request.cls is not None:
        request.cls._rootpath = request.config.rootpath
