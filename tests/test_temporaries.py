"""What a writer killed in the middle of a write leaves, and ``clean`` reclaiming it.

Each test kills a real process (SIGKILL) in the middle of ``write_file_stream``
of a big file, finds what it left in raw storage (the directory, the
emulator's own listing of uploads), and checks that ``fsjobstore clean``
reclaims it, and only once it is older than the threshold.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fsjobstore import Config, JobStore
from fsjobstore.backends.temporaries import find_temporaries
from fsjobstore.maintenance import clean
from fsjobstore.testing import Target

from .clitools import environment, open_store, run
from .conftest import make_target

#: The child: opens the store and writes MIB mebibytes as one stream, slowly
#: where the store writes as it goes (local disk), and then waits to be killed.
_WRITER = """
import sys, time, warnings
warnings.simplefilter("ignore")
from fsjobstore import JobStore
store = JobStore(sys.argv[1])
store.resume()
with store.write_file_stream(None, basename="big.bin") as (out, _):
    block = bytes(range(256)) * 4096
    for i in range(int(sys.argv[2])):
        out.write(block)
        if i == 2:
            print("writing", flush=True)
    print("closing", flush=True)
time.sleep(600)
"""


def _writer(target: Target, mib: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, target.locator, str(mib)],
        env=environment(target),
        stdout=subprocess.PIPE,
        text=True,
    )


def _kill_when(child: subprocess.Popen[str], condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 300
    try:
        while not condition():
            assert child.poll() is None, "the writer ended before it was killed"
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if child.stdout is not None:
            child.stdout.close()


def _reclaimed_by_the_cli(target: Target, kind: str, *, dated: bool = True) -> dict[str, Any]:
    env = environment(target)
    assert run("status", target.locator, "--json", env=env).json()["temporaries"] == 1
    if dated:
        young = run("clean", target.locator, "--json", env=env).json()
        assert young["temporaries"] == []  # younger than a day: a live writer's, maybe
    report = run("clean", target.locator, "--older-than", "0", "--json", env=env).json()
    assert [t["kind"] for t in report["temporaries"]] == [kind]
    assert run("status", target.locator, "--json", env=env).json()["temporaries"] == 0
    temporary: dict[str, Any] = report["temporaries"][0]
    return temporary


def test_local_disk(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    target = make_target(request, "file", tmp_path)
    store = open_store(target)
    store.initialize(Config())
    tmp = Path(target.locator, "tmp")
    child = _writer(target, mib=1_000_000)
    assert child.stdout is not None and child.stdout.readline() == "writing\n"
    _kill_when(child, lambda: any(p.stat().st_size >= 3 << 20 for p in tmp.iterdir()))
    (left,) = tmp.iterdir()
    size = left.stat().st_size
    assert store.get_all_file_ids() == []  # nothing half-written is visible
    reclaimed = _reclaimed_by_the_cli(target, "file")
    assert (reclaimed["path"], reclaimed["size"]) == (str(left), size)
    assert list(tmp.iterdir()) == []


def test_s3_multipart_upload(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    target = make_target(request, "s3", tmp_path)
    store = open_store(target)
    store.initialize(Config())
    bucket, prefix = target.locator.removeprefix("s3://").split("/", 1)

    def uploads() -> list[dict[str, Any]]:
        found = store.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=f"{prefix}/")
        return list(found.get("Uploads", []))

    # Over 50 MiB, a stream goes up in 50 MiB parts: killed between two of them.
    child = _writer(target, mib=160)
    _kill_when(child, lambda: bool(uploads()))
    (upload,) = uploads()
    assert store.get_all_file_ids() == []
    # moto reports every upload as started in 2010: old enough for any threshold.
    reclaimed = _reclaimed_by_the_cli(target, "upload", dated=False)
    assert reclaimed["upload_id"] == upload["UploadId"]
    assert reclaimed["path"] == f"{bucket}/{upload['Key']}"
    assert uploads() == []


def test_azure_uncommitted_blocks(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    target = make_target(request, "azure", tmp_path)
    store = open_store(target)
    store.initialize(Config())
    container, prefix = target.locator.removeprefix("az://").split("/", 1)
    client = _container(target, container)

    def uncommitted() -> set[str]:
        every = {b.name for b in client.list_blobs(f"{prefix}/", include=["uncommittedblobs"])}
        return every - {b.name for b in client.list_blobs(f"{prefix}/")}

    child = _writer(target, mib=96)
    _kill_when(child, lambda: bool(uncommitted()))
    (name,) = uncommitted()
    assert store.get_all_file_ids() == []
    reclaimed = _reclaimed_by_the_cli(target, "blocks")
    assert reclaimed["path"] == f"{container}/{name}"
    assert uncommitted() == set()


def _container(target: Target, name: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(target.options["connection_string"])
    return service.get_container_client(name)


@pytest.mark.parametrize("backend", ["sftp", "ftp"])
def test_leftovers_of_renaming_backends(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """A killed writer's temporary file and a killed updater's lock, both below tmp/."""
    target = make_target(request, backend, tmp_path)
    store = open_store(target)
    store.initialize(Config())
    left = {f"{store.root}/tmp/{'ab' * 16}", f"{store.root}/tmp/{'cd' * 16}.lock"}
    for path in left:
        store.fs.pipe_file(path, b"x" * 10)
    found = find_temporaries(_backend(store))
    assert {(t.path, t.kind) for t in found} == {(p, _kind(p)) for p in left}
    assert all(t.modified is not None and t.modified > time.time() - 600 for t in found)
    assert clean(store).temporaries == []  # young: kept
    report = clean(store, older_than=0)
    assert {t.path for t in report.temporaries} == left
    assert store.fs.ls(f"{store.root}/tmp", detail=False) == []


def _kind(path: str) -> str:
    return "lock" if path.endswith(".lock") else "file"


def _backend(store: JobStore) -> Any:
    from fsjobstore.maintenance._access import data_backend

    return data_backend(store)


def test_nothing_to_find_on_memory() -> None:
    store = JobStore(f"memory://fsjobstore-temporaries-{os.getpid()}")
    store.initialize()
    try:
        assert find_temporaries(_backend(store)) == []
    finally:
        store.destroy()
