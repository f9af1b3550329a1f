"""The shipped contract suite (:mod:`fsjobstore.testing`), on every backend of ``BACKENDS``."""

from __future__ import annotations

from fsjobstore.testing import JobStoreContract


class TestContract(JobStoreContract):
    """Every contract test, on each backend the ``target`` fixture of conftest.py gives."""
