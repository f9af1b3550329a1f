"""Local disk on a filesystem that shares blocks: files are cloned, not copied.

The store is put on a real XFS filesystem (reflink is on by default since
xfsprogs 5.1) in a loop-mounted image, which needs root, ``mkfs.xfs`` and a
loop device. A clone shows as blocks not spent: copying the file would take
as many free blocks as the file has bytes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsjobstore import JobStore

SIZE = 16 << 20


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def xfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh XFS filesystem, mounted for this module."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop filesystem needs root")
    if shutil.which("mkfs.xfs") is None:
        pytest.skip("mkfs.xfs is not installed (Debian's xfsprogs)")
    base = tmp_path_factory.mktemp("xfs")
    image, mount = base / "xfs.img", base / "mnt"
    mount.mkdir()
    with open(image, "wb") as handle:
        handle.truncate(512 << 20)  # sparse: costs the host only what is written
    made = _run("mkfs.xfs", "-q", "-m", "reflink=1", str(image))
    assert made.returncode == 0, made.stderr
    mounted = _run("mount", "-o", "loop", str(image), str(mount))
    if mounted.returncode:
        pytest.skip(f"cannot loop-mount a filesystem here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        if _run("umount", str(mount)).returncode:
            _run("umount", "-l", str(mount))


@pytest.fixture
def place(xfs: Path) -> Path:
    folder = xfs / uuid.uuid4().hex
    folder.mkdir()
    return folder


def _spent(mount: Path) -> int:
    """Bytes in use on the filesystem at ``mount``, once everything is on disk."""
    os.sync()
    info = os.statvfs(mount)
    return (info.f_blocks - info.f_bfree) * info.f_frsize


def _source(folder: Path) -> tuple[Path, bytes]:
    data = os.urandom(SIZE)
    path = folder / "source.bin"
    path.write_bytes(data)
    return path, data


def test_write_and_read_share_blocks_and_stay_independent(place: Path) -> None:
    store = JobStore(str(place / "store"))
    store.initialize()
    source, data = _source(place)
    before = _spent(place)
    file_id = store.write_file(str(source))
    out = place / "out.bin"
    store.read_file(file_id, str(out))
    assert _spent(place) - before < SIZE // 4, "the file was copied, not cloned"
    assert out.read_bytes() == data
    # A clone is a copy all the same: changing one file leaves the others alone.
    with open(out, "r+b") as handle:
        handle.write(b"changed")
    with open(source, "r+b") as handle:
        handle.write(b"altered")
    with store.read_file_stream(file_id) as stored:
        assert stored.read() == data


def test_imports_and_exports_of_local_files_share_blocks(place: Path) -> None:
    store = JobStore(str(place / "store"))
    store.initialize()
    source, data = _source(place)
    before = _spent(place)
    file_id = store.import_file(source.as_uri())
    assert file_id is not None
    store.export_file(file_id, (place / "out.bin").as_uri())
    assert _spent(place) - before < SIZE // 4, "the file was copied, not cloned"
    assert (place / "out.bin").read_bytes() == data


def test_across_filesystems_the_bytes_are_copied(place: Path, tmp_path: Path) -> None:
    store = JobStore(str(place / "store"))
    store.initialize()
    source, data = _source(tmp_path)  # another filesystem: no clone can be made
    file_id = store.write_file(str(source))
    before = _spent(place)
    store.read_file(file_id, str(tmp_path / "out.bin"))
    assert (tmp_path / "out.bin").read_bytes() == data
    assert _spent(place) - before < SIZE // 4  # nothing new in the store
