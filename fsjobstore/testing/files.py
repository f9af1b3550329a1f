"""Files: write, read, stream, update, delete and list, on every backend."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from .. import FileID, JobStore, NoSuchFileException, layout
from ..backends.common import BLOCK_SIZE
from ..errors import InvalidIDError
from .base import ContractBase
from .raw import raw_keys, raw_write

MiB = 1024 * 1024
#: Around S3's 5 MiB minimum part, around BLOCK_SIZE (where streams stop being
#: spooled in memory and go up in parts), a partial third part, and many parts.
SIZES = [
    0,
    1,
    MiB,
    5 * MiB - 1,
    5 * MiB,
    5 * MiB + 1,
    BLOCK_SIZE,
    BLOCK_SIZE + 1,
    int(2.33 * BLOCK_SIZE),
    50 * MiB,
]

BAD_FILE_IDS: list[object] = [
    "",
    "plain",
    "../../etc/passwd",
    "_~0123456789abcdef0123456789abcdef~../x",
    "_~0123456789abcdef0123456789abcdef~a/b",
    "../~0123456789abcdef0123456789abcdef~x",
    "_~0123456789ABCDEF0123456789abcdef~x",
    "_~0123456789abcdef0123456789abcdefQ~x",
    "/abs~0123456789abcdef0123456789abcdef~x",
    "_~0123456789abcdef0123456789abcdef~x\x00",
    None,
    42,
]


def payload(size: int) -> bytes:
    """Deterministic, non-repeating-ish bytes, without holding a 50 MiB pattern twice."""
    block = hashlib.sha256(str(size).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def make_local(tmp_path: Path, name: str, data: bytes, executable: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    if executable:
        path.chmod(0o755)
    return path


class FilesContract(ContractBase):
    """Files: write, read, stream, update, delete and list."""

    def test_write_file_keeps_basename_size_and_mode(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        src = make_local(tmp_path, "input.fastq", b"ACGT" * 10)
        file_id = store.write_file(src)
        assert isinstance(file_id, FileID)
        assert file_id.endswith("input.fastq")
        assert (file_id.size, file_id.executable) == (40, False)
        out = tmp_path / "out"
        reader.read_file(file_id, out)
        assert out.read_bytes() == b"ACGT" * 10
        assert reader.get_file_size(file_id) == 40
        assert reader.get_file_job_association(file_id) is None

    def test_executable_bit_survives_a_plain_string_id(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        src = make_local(tmp_path, "run.sh", b"#!/bin/sh\necho hi\n", executable=True)
        file_id = store.write_file(src)
        assert file_id.executable
        out = tmp_path / "copy.sh"
        reader.read_file(str(file_id), out)
        assert out.stat().st_mode & stat.S_IXUSR
        plain = make_local(tmp_path, "data.txt", b"x")
        out2 = tmp_path / "copy.txt"
        reader.read_file(str(store.write_file(plain)), out2)
        assert not out2.stat().st_mode & stat.S_IXUSR

    def test_relative_local_paths(
        self, store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        Path("rel.txt").write_bytes(b"relative")
        file_id = store.write_file("rel.txt")
        store.read_file(file_id, "back.txt")
        assert Path("back.txt").read_bytes() == b"relative"

    def test_files_owned_by_a_job(self, store: JobStore, reader: JobStore, tmp_path: Path) -> None:
        src = make_local(tmp_path, "owned.txt", b"o")
        file_id = store.write_file(src, job_id="job-1", cleanup=True)
        assert reader.get_file_job_association(file_id) == "job-1"
        with pytest.raises(ValueError, match="cleanup=True needs a job_id"):
            store.write_file(src, cleanup=True)

    @pytest.mark.parametrize("size", SIZES)
    def test_sizes_round_trip(
        self, store: JobStore, reader: JobStore, tmp_path: Path, size: int
    ) -> None:
        data = payload(size)
        digest = hashlib.sha256(data).hexdigest()
        file_id = store.write_file(make_local(tmp_path, "big.bin", data))
        assert file_id.size == size
        out = tmp_path / "out.bin"
        reader.read_file(file_id, out)
        assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
        with store.write_file_stream(basename="stream.bin") as (handle, stream_id):
            for start in range(0, size, 3 * MiB):  # uneven chunks cross part boundaries
                handle.write(data[start : start + 3 * MiB])
        assert stream_id.size == size
        with reader.read_file_stream(stream_id) as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == digest
        assert reader.get_file_size(stream_id) == size

    def test_write_file_stream_text_mode(self, store: JobStore, reader: JobStore) -> None:
        with store.write_file_stream(basename="notes.txt", encoding="utf-8") as (handle, file_id):
            handle.write("héllo\n")
        assert file_id.endswith("notes.txt")
        assert file_id.size == len("héllo\n".encode())
        with reader.read_file_stream(file_id, encoding="utf-8") as text:
            assert text.read() == "héllo\n"
        with reader.read_file_stream(file_id) as raw:
            assert raw.read() == "héllo\n".encode()
        with pytest.raises(ValueError, match="encoding"), store.write_file_stream(errors="strict"):
            pass

    def test_empty_stream_and_empty_file(self, store: JobStore, reader: JobStore) -> None:
        with store.write_file_stream() as (_, file_id):
            pass
        assert reader.file_exists(file_id)
        assert reader.get_file_size(file_id) == 0
        empty = store.get_empty_file_store_id("job-2", cleanup=True, basename="empty.txt")
        assert empty.endswith("empty.txt")
        assert empty.size == 0
        assert reader.file_exists(empty)
        assert reader.get_file_job_association(empty) == "job-2"
        with reader.read_file_stream(empty) as handle:
            assert handle.read() == b""

    def test_failed_stream_write_leaves_nothing(self, store: JobStore) -> None:
        before = raw_keys(store)
        with pytest.raises(RuntimeError, match="writer died"):
            with store.write_file_stream(basename="partial") as (handle, file_id):
                handle.write(b"half of it")
                raise RuntimeError("writer died")
        assert not store.file_exists(file_id)
        assert raw_keys(store) == before

    def test_failed_update_keeps_old_content(self, store: JobStore, reader: JobStore) -> None:
        with store.write_file_stream() as (handle, file_id):
            handle.write(b"old")
        with pytest.raises(RuntimeError, match="writer died"):
            with store.update_file_stream(file_id) as handle:
                handle.write(b"new and partial")
                raise RuntimeError("writer died")
        with reader.read_file_stream(file_id) as handle:
            assert handle.read() == b"old"

    def test_updates(self, store: JobStore, reader: JobStore, tmp_path: Path) -> None:
        file_id = store.write_file(make_local(tmp_path, "a.txt", b"first version, long"))
        store.update_file(file_id, make_local(tmp_path, "b.txt", b"second"))
        with reader.read_file_stream(file_id) as handle:
            assert handle.read() == b"second"
        with store.update_file_stream(file_id, encoding="ascii") as text:
            text.write("third")
        with reader.read_file_stream(file_id, encoding="ascii") as text:
            assert text.read() == "third"

    def test_short_read_does_not_hang(self, store: JobStore, reader: JobStore) -> None:
        with store.write_file_stream() as (handle, file_id):
            handle.write(payload(300_000))
        with reader.read_file_stream(file_id) as handle:
            assert handle.read(1) == payload(300_000)[:1]

    def test_deleted_file_is_gone_everywhere(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        file_id = store.write_file(make_local(tmp_path, "doomed.txt", b"d"))
        reader.delete_file(file_id)
        for js in (store, reader):
            assert not js.file_exists(file_id)
            with pytest.raises(NoSuchFileException, match=r"doomed\.txt") as info:
                js.read_file(file_id, tmp_path / "x")
            assert isinstance(info.value, FileNotFoundError)
            with pytest.raises(NoSuchFileException), js.read_file_stream(file_id):
                pass
            with pytest.raises(NoSuchFileException):
                js.get_file_size(file_id)
            with pytest.raises(NoSuchFileException):
                js.update_file(file_id, tmp_path / "doomed.txt")
            with pytest.raises(NoSuchFileException), js.update_file_stream(file_id):
                pass
            with pytest.raises(NoSuchFileException):
                js.delete_file(file_id)
            js.delete_file(file_id, missing_ok=True)
        assert not (tmp_path / "x").exists()
        assert not reader.file_exists(file_id)

    def test_local_errors_are_not_missing_files(self, store: JobStore, tmp_path: Path) -> None:
        file_id = store.write_file(make_local(tmp_path, "here.txt", b"h"))
        with pytest.raises(FileNotFoundError) as info:
            store.read_file(file_id, tmp_path / "no" / "such" / "dir" / "out")
        assert not isinstance(info.value, NoSuchFileException)
        with pytest.raises(FileNotFoundError):
            store.write_file(tmp_path / "absent.txt")

    def test_only_regular_files_can_be_written(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        folder = tmp_path / "a-folder"
        folder.mkdir()
        (folder / "inside.txt").write_bytes(b"inside")
        before = raw_keys(store)
        with pytest.raises(IsADirectoryError, match="a-folder"):
            store.write_file(folder)
        fifo = tmp_path / "a-pipe"
        os.mkfifo(fifo)
        with pytest.raises(OSError, match="a-pipe"):
            store.write_file(fifo)  # reading it would wait for a writer forever
        empty = store.write_file("/dev/null", basename="empty.txt")
        assert empty.size == 0 and empty.endswith("~empty.txt")
        file_id = store.write_file(make_local(tmp_path, "kept.txt", b"kept"))
        with pytest.raises(IsADirectoryError, match="a-folder"):
            store.update_file(file_id, folder)
        keys = {layout.parse_file_id(file_id).key, layout.parse_file_id(empty).key}
        assert raw_keys(store) - before == keys
        assert sorted(reader.get_all_file_ids()) == sorted([file_id, empty])
        with reader.read_file_stream(file_id) as handle:
            assert handle.read() == b"kept"

    def test_a_file_where_a_folder_must_go_is_a_builtin_error_naming_it(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        """The store's own folder for a job is taken by a file someone put there."""
        raw_write(store, "files/blocked", b"not a folder")
        source = make_local(tmp_path, "in.txt", b"data")
        failure: Exception | None = None
        try:
            file_id = store.write_file(source, job_id="blocked")
        except Exception as error:  # filesystems with folders cannot store it
            failure = error
        if failure is None:  # object stores have no folders: a key and its prefix coexist
            with reader.read_file_stream(file_id) as handle:
                assert handle.read() == b"data"
        else:
            assert type(failure).__module__ == "builtins", repr(failure)
            assert isinstance(failure, OSError)
            assert "blocked" in str(failure)

    def test_read_file_with_symlink_gives_the_content(
        self, store: JobStore, tmp_path: Path
    ) -> None:
        file_id = store.write_file(make_local(tmp_path, "linked.txt", b"linked"))
        out = tmp_path / "out.txt"
        store.read_file(file_id, out, symlink=True)
        assert out.read_bytes() == b"linked"
        # Only a store on local disk can link; the others copy.
        assert out.is_symlink() == (store.fs.protocol[0] == "file")

    def test_read_file_replaces_a_destination_and_copies_by_default(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        first = store.write_file(make_local(tmp_path, "first.txt", b"first"))
        second = store.write_file(make_local(tmp_path, "second.txt", b"second"))
        out = tmp_path / "out" / "dest.txt"
        out.parent.mkdir()
        reader.read_file(first, out, symlink=True)
        reader.read_file(second, out)  # over a link (on local disk) or a copy
        assert not out.is_symlink()
        assert out.read_bytes() == b"second"
        # A copy: changing it leaves the stored file alone.
        out.write_bytes(b"changed")
        with reader.read_file_stream(second) as handle:
            assert handle.read() == b"second"
        reader.read_file(first, out)
        assert out.read_bytes() == b"first"
        assert sorted(p.name for p in out.parent.iterdir()) == ["dest.txt"]

    def test_failed_read_file_keeps_the_destination(self, store: JobStore, tmp_path: Path) -> None:
        file_id = store.write_file(make_local(tmp_path, "kept.txt", b"new"))
        out = tmp_path / "out"
        out.mkdir()
        dest = out / "dest.txt"
        dest.write_bytes(b"old")
        store.delete_file(file_id)
        for symlink in (False, True):
            with pytest.raises(NoSuchFileException):
                store.read_file(file_id, dest, symlink=symlink)
        assert dest.read_bytes() == b"old"
        live = store.write_file(make_local(tmp_path, "live.txt", b"live"))
        with pytest.raises(IsADirectoryError):
            store.read_file(live, out)
        assert sorted(p.name for p in out.iterdir()) == ["dest.txt"]

    def test_get_all_file_ids_lists_only_files(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        ids = {store.write_file(make_local(tmp_path, f"f{i}", b"x"), job_id="j") for i in range(3)}
        ids.add(store.get_empty_file_store_id())
        with store.write_shared_file_stream("shared.txt") as handle:
            handle.write(b"s")
        store.write_logs("log")
        store.create_job(__import__("fsjobstore").JobDescription(jobName="j"))
        all_ids = reader.get_all_file_ids()
        assert isinstance(all_ids, list)
        assert set(all_ids) == ids

    @pytest.mark.parametrize("bad", BAD_FILE_IDS)
    def test_malformed_file_ids_are_rejected_before_io(
        self, store: JobStore, tmp_path: Path, bad: object
    ) -> None:
        src = make_local(tmp_path, "src.txt", b"s")
        before = raw_keys(store)
        calls: list[Callable[[], object]] = [
            lambda: store.file_exists(bad),  # type: ignore[arg-type]
            lambda: store.get_file_size(bad),  # type: ignore[arg-type]
            lambda: store.delete_file(bad, missing_ok=True),  # type: ignore[arg-type]
            lambda: store.read_file(bad, tmp_path / "o"),  # type: ignore[arg-type]
            lambda: store.update_file(bad, src),  # type: ignore[arg-type]
            lambda: store.get_file_job_association(bad),  # type: ignore[arg-type]
            lambda: store.export_file(bad, str(tmp_path / "e")),  # type: ignore[arg-type]
            lambda: store.read_file_stream(bad).__enter__(),  # type: ignore[arg-type]
            lambda: store.update_file_stream(bad).__enter__(),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(InvalidIDError) as info:
                call()
            assert isinstance(info.value, ValueError)
            assert repr(bad) in str(info.value)
        assert raw_keys(store) == before
        assert not (tmp_path / "o").exists()
        assert not (tmp_path / "e").exists()

    def test_unsafe_basenames_are_sanitized(self, store: JobStore, reader: JobStore) -> None:
        with store.write_file_stream(basename="../../a b/ç.txt") as (handle, file_id):
            handle.write(b"safe")
        assert file_id.split("~")[-1] == ".._.._a_b__.txt"
        assert "/" not in file_id
        assert reader.file_exists(file_id)
        assert {k for k in raw_keys(store) if not k.startswith("files/")} == {".fsjobstore.json"}
