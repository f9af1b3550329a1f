"""Hostile conditions: planted links, leftovers of crashed or racing writers, corrupt items.

A job store is shared storage that outlives the processes writing to it.
These tests plant what a careless or hostile neighbour could, and check that
the store never reads, writes, moves or deletes outside its root, that what
a crash or a race leaves behind never wedges the location, and that an item
that is not what the store wrote raises a clear error naming it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path

import pytest
from fsspec.implementations.local import LocalFileSystem

from .. import JobDescription, JobStore, NoSuchFileException, NoSuchJobStoreException, layout
from ..errors import CorruptStoreError, JobStoreError, NotAJobStoreError, UnsafeLinkError
from .base import ContractBase
from .raw import raw_keys, raw_read, raw_write
from .target import Target


def on_local_disk(store: JobStore) -> Path:
    """Return the store's root as a local path; skip where links cannot be planted."""
    if not isinstance(store.fs, LocalFileSystem):
        pytest.skip(
            f"planting a symbolic link needs a store on local disk, not {store.fs.protocol}"
        )
    return Path(store.root)


def plant_link(where: Path, to: Path) -> None:
    """Replace whatever is at ``where`` with a symbolic link to ``to``."""
    if where.is_dir() and not where.is_symlink():
        for child in where.iterdir():
            child.unlink()
        where.rmdir()
    elif where.exists() or where.is_symlink():
        where.unlink()
    where.symlink_to(to)


def outside(tmp_path: Path, **files: bytes) -> Path:
    """Make a folder outside the store holding ``files``."""
    folder = tmp_path / f"outside-{secrets.token_hex(4)}"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


class HostileContract(ContractBase):
    """Planted links, leftovers of crashes and races, and corrupt items."""

    # -- links: nothing outside the root, ever ----------------------------------

    def test_a_linked_inbox_is_neither_read_nor_emptied(
        self, store: JobStore, tmp_path: Path
    ) -> None:
        root = on_local_disk(store)
        elsewhere = outside(tmp_path, **{"00000000000000000001-" + "a" * 32: b"not a log"})
        store.write_logs("mine")
        plant_link(root / "stats" / "inbox", elsewhere)
        delivered: list[bytes] = []
        with pytest.raises(UnsafeLinkError) as info:
            store.read_logs(lambda handle: delivered.append(handle.read()))
        assert info.value.filename == f"{store.root}/stats/inbox"
        assert delivered == []
        assert contents(elsewhere) == {"00000000000000000001-" + "a" * 32: b"not a log"}

    def test_a_linked_job_folder_is_neither_written_nor_emptied(
        self, store: JobStore, tmp_path: Path
    ) -> None:
        root = on_local_disk(store)
        job = store.create_job(JobDescription(jobName="j"))
        job_id = job.jobStoreID or ""
        with store.write_file_stream(job_id, cleanup=True) as (handle, _):
            handle.write(b"first")
        victim = {"0" * 32 + "C~keep.txt": b"someone else's"}
        elsewhere = outside(tmp_path, **victim)
        plant_link(root / "files" / job_id, elsewhere)
        with (
            pytest.raises(UnsafeLinkError, match=job_id),
            store.write_file_stream(job_id, cleanup=True) as (handle, _),
        ):
            handle.write(b"second")
        with pytest.raises(UnsafeLinkError, match=job_id):
            store.delete_job(job_id)
        assert contents(elsewhere) == victim

    def test_a_linked_jobs_folder_loses_nothing_outside(
        self, store: JobStore, tmp_path: Path
    ) -> None:
        root = on_local_disk(store)
        elsewhere = outside(tmp_path, **{"victim.json": b"{}"})
        plant_link(root / "jobs", elsewhere)
        with pytest.raises(UnsafeLinkError, match="jobs"):
            store.delete_job("victim", missing_ok=True)
        with pytest.raises(UnsafeLinkError):
            store.load_job("victim")
        with pytest.raises(UnsafeLinkError):
            store.create_job(JobDescription(jobName="j"))
        assert contents(elsewhere) == {"victim.json": b"{}"}

    def test_a_link_at_a_file_key_is_never_followed(self, store: JobStore, tmp_path: Path) -> None:
        root = on_local_disk(store)
        file_id = store.get_empty_file_store_id(basename="f.txt")
        elsewhere = outside(tmp_path, **{"secret.txt": b"secret"})
        key = root / layout.parse_file_id(file_id).key
        plant_link(key, elsewhere / "secret.txt")
        with pytest.raises(UnsafeLinkError) as info:
            store.read_file_stream(file_id)
        assert info.value.filename == str(key)
        with pytest.raises(UnsafeLinkError):
            store.read_file(file_id, tmp_path / "copy.txt")
        with pytest.raises(UnsafeLinkError):
            store.read_file(file_id, tmp_path / "link.txt", symlink=True)
        with pytest.raises(UnsafeLinkError):
            store.get_file_size(file_id)
        assert not (tmp_path / "copy.txt").exists()
        assert not (tmp_path / "link.txt").exists()
        assert not store.file_exists(file_id)
        store.delete_file(file_id, missing_ok=True)  # removes the link inside the root
        assert contents(elsewhere) == {"secret.txt": b"secret"}

    def test_a_linked_marker_is_never_read(
        self, store: JobStore, target: Target, tmp_path: Path
    ) -> None:
        root = on_local_disk(store)
        elsewhere = outside(tmp_path, **{"other.json": (root / layout.MARKER).read_bytes()})
        plant_link(root / layout.MARKER, elsewhere / "other.json")
        with pytest.raises(UnsafeLinkError):
            target.open().resume()

    # -- leftovers of crashes and races ------------------------------------------

    def test_a_write_into_a_destroyed_store_never_wedges_its_location(
        self, store: JobStore, target: Target, tmp_path: Path
    ) -> None:
        job = store.create_job(JobDescription(jobName="late"))
        target.open().destroy()
        source = tmp_path / "late.txt"
        source.write_bytes(b"late")
        failures: list[BaseException] = []
        for late_write in (
            lambda: store.write_file(source, job.jobStoreID, cleanup=True),
            lambda: store.write_logs("late"),
            lambda: store.create_job(JobDescription(jobName="later")),
        ):
            try:
                late_write()
            except (OSError, JobStoreError) as error:  # a store with folders refuses
                failures.append(error)
        for failure in failures:
            assert type(failure).__module__ in ("builtins", "fsjobstore.errors"), repr(failure)
        # Whatever a late writer left, the location is a store's to finish or make again.
        target.open().destroy()
        assert raw_keys(store) == set()
        fresh = target.open()
        fresh.initialize()
        assert list(fresh.jobs()) == []

    def test_temporaries_of_a_killed_initialize_do_not_block_it(self, target: Target) -> None:
        probe = target.open()
        raw_write(probe, f"tmp/{secrets.token_hex(16)}", b'{"format": 1, "config": {}}')
        probe.initialize()
        assert {key for key in raw_keys(probe) if key.startswith("tmp/")} == set()
        probe.resume()

    def test_a_store_whose_marker_is_gone_is_destroyed_not_adopted(
        self, store: JobStore, target: Target, tmp_path: Path
    ) -> None:
        job = store.create_job(JobDescription(jobName="j"))
        with store.write_file_stream(job.jobStoreID, cleanup=True) as (handle, _):
            handle.write(b"data")
        store.write_logs("message")
        with store.write_shared_file_stream("shared.txt") as handle:
            handle.write(b"shared")
        store.fs.rm_file(f"{store.root}/{layout.MARKER}")
        with pytest.raises(NotAJobStoreError, match=r"destroy\(\) it first"):
            target.open().initialize()
        target.open().destroy()
        assert raw_keys(store) == set()
        target.open().initialize()

    def test_leftovers_with_a_job_id_of_the_callers_are_not_taken_for_a_store(
        self, store: JobStore, target: Target
    ) -> None:
        store.create_job(JobDescription(jobName="named", jobStoreID="my-job"))
        store.fs.rm_file(f"{store.root}/{layout.MARKER}")
        # jobs/my-job.json could be anyone's file: without the marker, nothing goes.
        with pytest.raises(NotAJobStoreError):
            target.open().destroy()
        assert "jobs/my-job.json" in raw_keys(store)
        store.fs.rm_file(f"{store.root}/jobs/my-job.json")

    def test_destroy_leaves_what_is_not_the_stores(self, store: JobStore) -> None:
        store.create_job(JobDescription(jobName="j"))
        raw_write(store, "notes.txt", b"the user's own")
        store.destroy()
        assert raw_keys(store) == {"notes.txt"}
        assert raw_read(store, "notes.txt") == b"the user's own"
        store.fs.rm_file(f"{store.root}/notes.txt")

    # -- corrupt items: clear errors naming them ----------------------------------

    def test_a_job_document_under_another_jobs_key(self, store: JobStore, reader: JobStore) -> None:
        first = store.create_job(JobDescription(jobName="a", jobStoreID="job-a"))
        store.create_job(JobDescription(jobName="b", jobStoreID="job-b"))
        raw_write(store, "jobs/job-a.json", raw_read(store, "jobs/job-b.json"))
        with pytest.raises(CorruptStoreError, match=r"job-a.*job-b"):
            reader.load_job(first.jobStoreID or "")
        with pytest.raises(CorruptStoreError, match="job-a"):
            list(reader.jobs())

    @pytest.mark.parametrize(
        ("field", "value"), [("format", True), ("remainingTryCount", "x"), ("jobName", 7)]
    )
    def test_a_job_document_of_the_wrong_form(
        self, store: JobStore, reader: JobStore, field: str, value: object
    ) -> None:
        job = store.create_job(JobDescription(jobName="j", jobStoreID="bad-job"))
        doc = json.loads(raw_read(store, "jobs/bad-job.json"))
        doc[field] = value
        raw_write(store, "jobs/bad-job.json", json.dumps(doc).encode())
        with pytest.raises(CorruptStoreError, match=rf"bad-job.*{field}"):
            reader.load_job(job.jobStoreID or "")

    @pytest.mark.parametrize(("field", "value"), [("retryCount", "x"), ("retryCount", True)])
    def test_a_marker_of_the_wrong_form(
        self, store: JobStore, target: Target, field: str, value: object
    ) -> None:
        doc = json.loads(raw_read(store, layout.MARKER))
        doc["config"][field] = value
        raw_write(store, layout.MARKER, json.dumps(doc).encode())
        with pytest.raises(CorruptStoreError, match=field):
            target.open().resume()

    def test_a_folder_where_the_marker_should_be(self, target: Target) -> None:
        probe = target.open()
        raw_write(probe, f"{layout.MARKER}/inside", b"x")
        with pytest.raises((CorruptStoreError, NoSuchJobStoreException)):
            probe.resume()
        with pytest.raises(NotAJobStoreError):
            probe.initialize()
        probe.fs.rm(f"{probe.root}/{layout.MARKER}", recursive=True)

    def test_a_folder_where_a_file_should_be(self, store: JobStore, tmp_path: Path) -> None:
        file_id = store.get_empty_file_store_id(basename="f.txt")
        key = layout.parse_file_id(file_id).key
        store.fs.rm_file(f"{store.root}/{key}")
        raw_write(store, f"{key}/inside", b"x")
        assert not store.file_exists(file_id)
        # Filesystems with folders hold a folder at the key: corruption, named.
        # Object stores hold no folder: the file is simply not there.
        expected = (CorruptStoreError, NoSuchFileException)
        with pytest.raises(expected, match=r"f\.txt"):
            store.read_file_stream(file_id)
        with pytest.raises(expected, match=r"f\.txt"):
            store.read_file(file_id, tmp_path / "out")
        with pytest.raises(expected, match=r"f\.txt"):
            store.get_file_size(file_id)
        with pytest.raises(expected, match=r"f\.txt"):
            store.delete_file(file_id)

    # -- reads racing writes -----------------------------------------------------------

    def test_small_reads_racing_replacements_see_one_version(
        self, store: JobStore, reader: JobStore
    ) -> None:
        """A 300 KB shared file read whole while a writer replaces it: old or new, no error."""
        versions = [bytes([i]) * 300_000 for i in range(4)]
        with store.write_shared_file_stream("hot.bin") as handle:
            handle.write(versions[0])
        stop = threading.Event()
        failures: list[BaseException] = []

        def keep_replacing() -> None:
            try:
                for i in range(1, 10_000):
                    if stop.is_set():
                        return
                    with store.write_shared_file_stream("hot.bin") as handle:
                        handle.write(versions[i % len(versions)])
            except BaseException as error:  # reported by the main thread
                failures.append(error)

        writer = threading.Thread(target=keep_replacing)
        writer.start()
        reads = 0
        try:
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline or reads < 5:
                with reader.read_shared_file_stream("hot.bin") as handle:
                    data = handle.read()
                assert data in versions, f"read {len(data)} bytes of no single version"
                reads += 1
        finally:
            stop.set()
            writer.join()
        assert failures == []
