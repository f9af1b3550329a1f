"""The contract suite every job store backend passes, to run on your own.

Every behaviour of :class:`~fsjobstore.JobStore` is tested once, here, and
the same tests run on every backend: fsjobstore's own test suite runs them
on each backend it ships, and the author of a backend plugin (or of a new
fsspec protocol) runs them on theirs. Each test writes through one store
object and reads through a second one on the same locator, and checks raw
storage through the fsspec filesystem itself, not through the store.

Subclass :class:`JobStoreContract` in a test module and give it a ``target``
fixture that returns a fresh, empty :class:`Target` for each test::

    import pytest
    from fsjobstore.testing import JobStoreContract, Target

    class TestMyFileSystem(JobStoreContract):
        @pytest.fixture
        def target(self, tmp_path):
            return Target("myfs", f"myfs://{tmp_path.name}/store", {"base": str(tmp_path)})

A backend that cannot do something is skipped with the reason. The suite
needs pytest (``pip install "fsjobstore[testing]"``). Its parts
(:class:`JobsContract`, :class:`FilesContract`, :class:`HostileContract` …) can also be used alone.
"""

from __future__ import annotations

from .base import ContractBase
from .concurrency import ConcurrencyContract
from .files import FilesContract
from .hostile import HostileContract
from .jobs import JobsContract
from .lifecycle import LifecycleContract
from .logs import LogsContract
from .raw import raw_keys, raw_read, raw_write
from .seed import SeedContract
from .shared import SharedFilesContract
from .streams import StreamsContract
from .target import Target
from .transfers import TransfersContract

__all__ = [
    "ConcurrencyContract",
    "ContractBase",
    "FilesContract",
    "HostileContract",
    "JobStoreContract",
    "JobsContract",
    "LifecycleContract",
    "LogsContract",
    "SeedContract",
    "SharedFilesContract",
    "StreamsContract",
    "Target",
    "TransfersContract",
    "raw_keys",
    "raw_read",
    "raw_write",
]


class JobStoreContract(
    LifecycleContract,
    JobsContract,
    FilesContract,
    StreamsContract,
    SharedFilesContract,
    LogsContract,
    TransfersContract,
    ConcurrencyContract,
    SeedContract,
    HostileContract,
):
    """Every test of the contract suite; provide a ``target`` fixture."""
