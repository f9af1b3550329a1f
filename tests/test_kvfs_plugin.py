"""The protocol installed from outside (tests/plugins/kvfs): installed, found, object-like.

``nox -s tests`` installs the distribution, so fsspec finds ``kvfs``
through its ``fsspec.specs`` entry point; these tests fail (they do not
skip) when it is missing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path

import fsspec
import pytest


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The directory holding one store's objects."""
    return tmp_path / "kv"


@pytest.fixture
def fs(base: Path) -> fsspec.AbstractFileSystem:
    """A kvfs filesystem object of its own on ``base``."""
    return fsspec.filesystem("kvfs", base=str(base), skip_instance_cache=True)


def test_protocol_resolves_through_the_entry_point() -> None:
    registered = [ep for ep in entry_points(group="fsspec.specs") if ep.name == "kvfs"]
    assert [ep.value for ep in registered] == ["fsjobstore_kvfs_example:KVFileSystem"]
    cls = fsspec.get_filesystem_class("kvfs")
    assert (cls.__module__, cls.__name__) == ("fsjobstore_kvfs_example", "KVFileSystem")
    # Installed, not imported from the source tree.
    assert "site-packages" in str(sys.modules[cls.__module__].__file__)


def test_url_keeps_the_whole_path_as_the_key(base: Path) -> None:
    fs, key = fsspec.core.url_to_fs("kvfs://bucket/a/b", base=str(base))
    assert key == "bucket/a/b"
    fs.pipe_file("kvfs://bucket/a/b", b"x")
    assert fs.cat_file(key) == b"x"
    # One file per key, the key percent-encoded into its name.
    assert sorted(p.name for p in base.iterdir()) == [".tmp", "bucket%2Fa%2Fb"]


def test_write_replaces_the_object_atomically(fs: fsspec.AbstractFileSystem, base: Path) -> None:
    fs.pipe_file("bucket/doc", b"old")
    stream = fs.open("bucket/doc", "wb", block_size=5 * 2**20)
    stream.write(b"n" * (6 * 2**20))  # past one block: a part is uploaded
    assert fs.cat_file("bucket/doc") == b"old"  # not until close
    stream.write(b"!")
    stream.close()
    assert fs.cat_file("bucket/doc") == b"n" * (6 * 2**20) + b"!"
    assert list((base / ".tmp").iterdir()) == []  # the upload's file went in place

    # Readers racing a writer see the old object or the new one, whole.
    stop = threading.Event()
    seen: set[bytes] = set()

    def read() -> None:
        while not stop.is_set():
            seen.add(fs.cat_file("bucket/small"))

    fs.pipe_file("bucket/small", b"A" * 100_000)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(50):
            fs.pipe_file("bucket/small", (b"A" if round_ % 2 else b"B") * 100_000)
    finally:
        stop.set()
        reader.join()
    assert seen <= {b"A" * 100_000, b"B" * 100_000}


def test_no_append_nor_exclusive_create(fs: fsspec.AbstractFileSystem) -> None:
    for mode in ("ab", "xb"):
        with pytest.raises(NotImplementedError):
            fs.open("bucket/x", mode)


def test_pseudo_directories(fs: fsspec.AbstractFileSystem) -> None:
    fs.pipe_file("bucket/a/b/c", b"1")
    fs.pipe_file("bucket/a/d", b"22")
    fs.pipe_file("bucket/e", b"333")
    assert fs.ls("bucket", detail=False) == ["bucket/a", "bucket/e"]
    assert fs.ls("bucket/a") == [
        {"name": "bucket/a/b", "size": 0, "type": "directory"},
        {"name": "bucket/a/d", "size": 2, "type": "file", "mtime": fs.modified("bucket/a/d")},
    ]
    assert fs.ls("bucket/e", detail=False) == ["bucket/e"]  # an object lists itself
    assert fs.isdir("bucket/a/b") and fs.isfile("bucket/a/b/c")
    assert fs.find("bucket") == ["bucket/a/b/c", "bucket/a/d", "bucket/e"]
    with pytest.raises(FileNotFoundError):
        fs.ls("bucket/nothing")

    fs.makedirs("bucket/empty")  # no-op: no key, no directory
    assert not fs.exists("bucket/empty")
    fs.rm_file("bucket/a/b/c")  # the last key below bucket/a/b
    assert not fs.exists("bucket/a/b")
    fs.mv("bucket/a", "bucket/moved", recursive=True)  # copy, then delete
    assert fs.find("bucket") == ["bucket/e", "bucket/moved/d"]
    fs.rm("bucket", recursive=True)
    assert fs.ls("", detail=False) == []


def test_ranged_reads(fs: fsspec.AbstractFileSystem) -> None:
    fs.pipe_file("bucket/r", b"0123456789")
    assert fs.cat_file("bucket/r", start=2, end=5) == b"234"
    assert fs.cat_file("bucket/r", start=-3) == b"789"
    assert fs.cat_file("bucket/r", end=-8) == b"01"
    assert fs.cat_file("bucket/r", start=8, end=100) == b"89"
    with fs.open("bucket/r", "rb") as stream:
        stream.seek(4)
        assert stream.read(3) == b"456"
    with pytest.raises(FileNotFoundError, match="bucket/missing"):
        fs.cat_file("bucket/missing")


def test_keys_longer_than_a_file_name(fs: fsspec.AbstractFileSystem) -> None:
    key = "bucket/" + "k" * 300 + "/" + "é" * 100  # about 1,000 characters encoded
    fs.pipe_file(key, b"long")
    assert fs.cat_file(key) == b"long"
    assert fs.find("bucket") == [key]
    assert fs.ls("bucket", detail=False) == ["bucket/" + "k" * 300]
    fs.rm_file(key)
    assert fs.find("bucket") == []


def test_same_base_shares_objects(base: Path) -> None:
    one = fsspec.filesystem("kvfs", base=str(base), skip_instance_cache=True)
    two = fsspec.filesystem("kvfs", base=str(base), skip_instance_cache=True)
    assert one is not two
    one.pipe_file("bucket/shared", b"from one")
    assert two.cat_file("bucket/shared") == b"from one"
    two.rm_file("bucket/shared")
    assert not one.exists("bucket/shared")

    # And across processes: another interpreter writes, this one reads.
    script = (
        "import sys, fsspec\n"
        "fs = fsspec.filesystem('kvfs', base=sys.argv[1])\n"
        "fs.pipe_file('kvfs://bucket/other-process', b'hello')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(base)], check=True, timeout=60)
    assert one.cat_file("bucket/other-process") == b"hello"
