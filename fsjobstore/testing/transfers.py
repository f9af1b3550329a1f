"""Import and export through local paths, file:// and memory:// URLs, on every backend.

The same calls through every other URL scheme, against real servers, are in
test_import_export_schemes.py.
"""

from __future__ import annotations

import hashlib
import stat
import threading
import uuid
from pathlib import Path

import fsspec
import pytest
from fsspec.callbacks import Callback, TqdmCallback

from .. import JobStore, NoSuchFileException
from .base import ContractBase
from .raw import raw_keys

# -- bulk calls, progress, bad input -------------------------------------------------


class Recorder(Callback):  # type: ignore[misc]
    """Remembers what a bulk call reported: the file count, files done, bytes per file."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.children: list[Callback] = []

    def branched(self, path_1: str, path_2: str, **kwargs: object) -> Callback:
        child = Callback()
        with self.lock:
            self.children.append(child)
        return child


#: fsspec protocols whose packages this environment should not have, with the package.
UNINSTALLED = [("webdav", "webdav4"), ("oci", "ocifs"), ("box", "boxfs")]


def _uninstalled(protocol_package: tuple[str, str]) -> bool:
    try:
        fsspec.get_filesystem_class(protocol_package[0])
    except ImportError:
        return True
    return False


class TransfersContract(ContractBase):
    """Import and export through local paths, file:// and memory:// URLs."""

    def test_import_local_path_file_url_and_relative_path(
        self, store: JobStore, reader: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        src = tmp_path / "genome.fa"
        src.write_bytes(b">chr1\nACGT\n")
        monkeypatch.chdir(tmp_path)
        for url in (str(src), src.as_uri(), "genome.fa"):
            file_id = store.import_file(url)
            assert file_id is not None
            assert file_id.endswith("genome.fa")
            assert (file_id.size, file_id.executable) == (11, False)
            with reader.read_file_stream(file_id) as handle:
                assert handle.read() == b">chr1\nACGT\n"

    def test_export_to_path_file_url_and_relative_path(
        self, store: JobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with store.write_file_stream(basename="result.txt") as (handle, file_id):
            handle.write(b"result")
        monkeypatch.chdir(tmp_path)
        targets = [tmp_path / "a.txt", (tmp_path / "sub" / "b.txt").as_uri(), "c.txt"]
        for dst in targets:
            store.export_file(file_id, str(dst))
        for name in ("a.txt", "sub/b.txt", "c.txt"):
            assert (tmp_path / name).read_bytes() == b"result"

    def test_executable_bit_survives_import_and_export(
        self, store: JobStore, tmp_path: Path
    ) -> None:
        src = tmp_path / "tool.sh"
        src.write_bytes(b"#!/bin/sh\n")
        src.chmod(0o750)
        file_id = store.import_file(src.as_uri())
        assert file_id is not None
        assert file_id.executable
        out = tmp_path / "exported.sh"
        store.export_file(str(file_id), out.as_uri())
        assert out.stat().st_mode & stat.S_IXUSR

    def test_import_as_shared_file(self, store: JobStore, reader: JobStore, tmp_path: Path) -> None:
        src = tmp_path / "workflow.cwl"
        src.write_bytes(b"cwlVersion: v1.2\n")
        assert store.import_file(str(src), shared_file_name="workflow.cwl") is None
        with reader.read_shared_file_stream("workflow.cwl") as handle:
            assert handle.read() == b"cwlVersion: v1.2\n"
        assert reader.get_all_file_ids() == []

    def test_memory_urls_both_ways(self, store: JobStore, reader: JobStore) -> None:
        # Any installed fsspec protocol works, whatever the store's own backend is.
        mem = fsspec.filesystem("memory")
        base = f"/import-{uuid.uuid4().hex}"
        data = bytes(range(256)) * 1000
        mem.pipe_file(f"{base}/in.bin", data)
        file_id = store.import_file(f"memory://{base}/in.bin")
        assert file_id is not None
        assert file_id.size == len(data)
        reader.export_file(file_id, f"memory://{base}/out.bin")
        assert (
            hashlib.sha256(mem.cat_file(f"{base}/out.bin")).digest()
            == hashlib.sha256(data).digest()
        )
        mem.rm(base, recursive=True)

    def test_import_errors_name_the_url(self, store: JobStore, tmp_path: Path) -> None:
        before = raw_keys(store)
        missing = tmp_path / "absent.txt"
        with pytest.raises(FileNotFoundError, match=r"absent\.txt"):
            store.import_file(str(missing))
        with pytest.raises(FileNotFoundError, match=r"absent\.txt"):
            store.import_file(missing.as_uri())
        with pytest.raises(IsADirectoryError, match=str(tmp_path)):
            store.import_file(str(tmp_path))
        with pytest.raises(ValueError, match="nosuchscheme"):
            store.import_file("nosuchscheme://host/file")
        with pytest.raises(ValueError, match="URL"):
            store.import_file("")
        assert raw_keys(store) == before

    def test_export_of_missing_file(self, store: JobStore, tmp_path: Path) -> None:
        ghost = store.get_empty_file_store_id(basename="ghost")
        store.delete_file(ghost)
        with pytest.raises(NoSuchFileException, match="ghost"):
            store.export_file(ghost, str(tmp_path / "out"))
        with pytest.raises(NoSuchFileException, match="ghost"):
            store.export_file(ghost, f"memory:///export-{uuid.uuid4().hex}/out")
        assert not (tmp_path / "out").exists()

    def test_import_is_safe_from_many_threads(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        sources = []
        for i in range(16):
            src = tmp_path / f"in{i}.txt"
            src.write_bytes(f"content {i}".encode() * 1000)
            sources.append(src)
        results: dict[int, str] = {}
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                file_id = store.import_file(str(sources[i]))
                assert file_id is not None
                results[i] = file_id
            except BaseException as exc:  # collected, then re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(set(results.values())) == 16
        for i, file_id in results.items():
            with reader.read_file_stream(file_id) as handle:
                assert handle.read() == f"content {i}".encode() * 1000

    def test_toil_import_export_names(self, store: JobStore, tmp_path: Path) -> None:
        src = tmp_path / "x.txt"
        src.write_bytes(b"x")
        file_id = store.importFile(srcUrl=src.as_uri())
        store.exportFile(jobStoreFileID=file_id, dstUrl=str(tmp_path / "y.txt"))
        assert (tmp_path / "y.txt").read_bytes() == b"x"
        assert store.importFile(str(src), sharedFileName="x.txt") is None

    def test_bulk_import_and_export_keep_order_and_report_progress(
        self, store: JobStore, reader: JobStore, tmp_path: Path
    ) -> None:
        sources = []
        for i in range(20):
            sources.append(tmp_path / f"part{i:02d}.txt")
            sources[-1].write_bytes(b"x" * i)
        progress = Recorder()
        ids = store.import_files([str(p) for p in sources], callback=progress)
        assert [file_id.size for file_id in ids] == list(range(20))
        assert [file_id.rsplit("~", 1)[1] for file_id in ids] == [p.name for p in sources]
        assert (progress.size, progress.value) == (20, 20)
        assert sorted(child.value for child in progress.children) == list(range(20))
        out = tmp_path / "out"
        progress = Recorder()
        reader.export_files(
            [(f, str(out / p.name)) for f, p in zip(ids, sources, strict=True)], callback=progress
        )
        assert (progress.size, progress.value) == (20, 20)
        assert all((out / p.name).read_bytes() == p.read_bytes() for p in sources)

    def test_bulk_calls_show_a_progress_bar(self, store: JobStore, tmp_path: Path) -> None:
        src = tmp_path / "a.txt"
        src.write_bytes(b"a")
        with TqdmCallback(tqdm_kwargs={"disable": True}) as bar:
            ids = store.import_files([str(src)] * 3, callback=bar)
            store.export_files([(ids[0], str(tmp_path / "b.txt"))], callback=bar)
        assert len(set(ids)) == 3
        assert store.import_files([]) == []
        store.export_files([])

    def test_failed_bulk_import_leaves_no_file(self, store: JobStore, tmp_path: Path) -> None:
        good = []
        for i in range(5):
            good.append(tmp_path / f"good{i}.txt")
            good[-1].write_bytes(b"good")
        before = raw_keys(store)
        urls = [str(p) for p in good[:3]] + [str(tmp_path / "missing.txt")] + [str(good[4])]
        with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
            store.import_files(urls)
        assert raw_keys(store) == before
        with pytest.raises(ValueError, match="nosuchscheme"):
            store.import_files([str(good[0]), "nosuchscheme://x/y"])
        assert raw_keys(store) == before

    def test_bulk_export_with_a_missing_file_sends_nothing(
        self, store: JobStore, tmp_path: Path
    ) -> None:
        kept = store.get_empty_file_store_id(basename="kept")
        ghost = store.get_empty_file_store_id(basename="ghost")
        store.delete_file(ghost)
        out = tmp_path / "out"
        pairs = [(kept, str(out / "kept")), (ghost, str(out / "ghost"))]
        with pytest.raises(NoSuchFileException, match="ghost"):
            store.export_files(pairs)
        assert not out.exists()

    def test_unknown_or_uninstalled_scheme_is_named(self, store: JobStore) -> None:
        file_id = store.get_empty_file_store_id(basename="x")
        with pytest.raises(ValueError, match="unknown URL scheme 'nosuchscheme'"):
            store.import_file("nosuchscheme://host/file")
        with pytest.raises(ValueError, match="unknown URL scheme 'nosuchscheme'"):
            store.export_file(file_id, "nosuchscheme://host/file")
        missing = next((p for p in UNINSTALLED if _uninstalled(p)), None)
        if missing is None:
            pytest.skip(f"every one of {UNINSTALLED} is installed")
        protocol, package = missing
        with pytest.raises(ImportError, match=rf"'{protocol}' scheme.*{package}"):
            store.import_file(f"{protocol}://user:secret-pass@host/file")
        with pytest.raises(ImportError) as caught:
            store.export_file(file_id, f"{protocol}://user:secret-pass@host/file")
        assert "secret-pass" not in str(caught.value)

    def test_upload_method_is_for_http_only(self, store: JobStore, tmp_path: Path) -> None:
        file_id = store.get_empty_file_store_id(basename="x")
        url = f"memory:///export-{uuid.uuid4().hex}/x"
        with pytest.raises(ValueError, match="'method' applies to HTTP"):
            store.export_file(file_id, url, storage_options={"method": "put"})
        assert not fsspec.filesystem("memory").exists(url)
        # An import ignores it: the same options can serve both directions.
        src = tmp_path / "in.txt"
        src.write_bytes(b"in")
        assert store.import_file(str(src), storage_options={"method": "put"}) is not None

    def test_export_makes_local_directories_and_replaces_files(
        self, store: JobStore, tmp_path: Path
    ) -> None:
        with store.write_file_stream(basename="r.txt") as (handle, file_id):
            handle.write(b"new")
        dst = tmp_path / "a" / "b" / "r.txt"
        dst.parent.mkdir(parents=True)
        dst.write_bytes(b"old content")
        store.export_file(file_id, dst.as_uri())
        assert dst.read_bytes() == b"new"
        assert sorted(p.name for p in dst.parent.iterdir()) == ["r.txt"]  # no temporary left
