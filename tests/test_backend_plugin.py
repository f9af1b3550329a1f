"""A backend plugin, installed from outside: registered through the ``fsjobstore.backends`` group.

The plugin (tests/plugins/kvlock/kvlock.py) gives the ``kvfs`` protocol
conditional writes. It is installed the way pip installs a distribution:
a ``.dist-info`` directory with its entry points, on ``sys.path`` (and on
``PYTHONPATH``, for the contract suite's child processes).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from fsjobstore import JobStore
from fsjobstore.backends import Backend, backend_class, registry
from fsjobstore.testing import JobStoreContract, Target

PLUGIN = Path(__file__).parent / "plugins" / "kvlock"


def install(site: Path, rows: dict[str, str]) -> None:
    """Write a distribution's metadata, with these entry points, into ``site``."""
    info = site / "kvlock_example-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kvlock-example\nVersion: 1.0\n")
    lines = [f"{name} = {value}" for name, value in rows.items()]
    (info / "entry_points.txt").write_text("[fsjobstore.backends]\n" + "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The kvlock plugin, installed for this module (and its child processes)."""
    site = tmp_path_factory.mktemp("site")
    install(site, {"fsjobstore_kvfs_example.KVFileSystem": "kvlock:KVLockBackend"})
    with pytest.MonkeyPatch.context() as patch:
        paths = [str(site), str(PLUGIN)]
        patch.syspath_prepend(str(site))
        patch.syspath_prepend(str(PLUGIN))
        patch.setenv("PYTHONPATH", os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]))
        registry.table.cache_clear()
        yield
    registry.table.cache_clear()


def kvfs_class() -> type:
    cls: type = fsspec.get_filesystem_class("kvfs")
    return cls


def test_without_the_plugin_kvfs_takes_the_generic_path() -> None:
    assert backend_class(kvfs_class()) is Backend


@pytest.mark.usefixtures("installed")
def test_the_plugin_serves_kvfs_and_its_subclasses(tmp_path: Path) -> None:
    plugin = importlib.import_module("kvlock").KVLockBackend
    assert backend_class(kvfs_class()) is plugin
    sub = type("Sub", (kvfs_class(),), {})
    assert backend_class(sub) is plugin
    store = JobStore("kvfs://bucket/store", base=str(tmp_path))
    assert store.detects_concurrent_updates


def test_a_broken_row_names_the_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        tmp_path,
        {
            "fsjobstore_kvfs_example.KVFileSystem": "no_such_module:Backend",
            "fsspec.implementations.memory.MemoryFileSystem": "os:path",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.table.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"no_such_module:Backend.*KVFileSystem"):
            backend_class(kvfs_class())
        with pytest.raises(TypeError, match="not a subclass"):
            backend_class(fsspec.get_filesystem_class("memory"))
    finally:
        monkeypatch.undo()
        registry.table.cache_clear()


@pytest.mark.parametrize("row", sorted(registry.BUILTIN))
def test_every_built_in_row_names_a_class_that_exists(row: str) -> None:
    """A client that moves its filesystem class must fail here, not fall back silently."""
    module, _, name = row.rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    backend = backend_class(cls)
    assert backend is not Backend
    assert backend.__name__ in registry.BUILTIN[row]


@pytest.mark.usefixtures("installed")
class TestKVLockPlugin(JobStoreContract):
    """The whole contract suite on kvfs with the plugin: now with conditional writes."""

    @pytest.fixture
    def target(self, tmp_path: Path) -> Target:
        base = str(tmp_path / "kvfs")
        return Target(
            "kvlock", "kvfs://bucket/store", {"base": base}, config={"kvfs": {"base": base}}
        )
