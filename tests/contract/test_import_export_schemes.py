"""Import and export through every URL scheme, against its real server, on every backend.

The ``foreign`` fixture (tests/conftest.py) gives each scheme of the table in
docs/import-export.md: local paths, HTTP and HTTPS (an aiohttp server), FTP
(pyftpdlib), S3, GCS and Azure (the emulators) and memory. Raw reads and
writes of the far side go to the storage behind it, not through the URL.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import random
import re
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fsspec
import pytest
from fsspec.callbacks import Callback

from fsjobstore import JobStore, NoSuchFileException, transfer
from fsjobstore.backends.common import BLOCK_SIZE
from fsjobstore.testing import ContractBase, Target, raw_keys
from fsjobstore.transfer import redact, remote

from ..conftest import Foreign
from ..webservers import FTPServer

MiB = 1024 * 1024
#: Sizes every (backend, scheme) pair round-trips: empty, tiny, and S3's 5 MiB part edge.
SIZES = [0, 1, MiB, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1]
#: Bigger than several blocks and parts; round-tripped by every pair too.
BIG = 50 * MiB


def content(size: int, seed: str) -> bytes:
    return random.Random(f"{seed}-{size}").randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: Pairs whose store and URL are one service, reached as one user: copied there.
SAME_SERVICE = [("s3", "s3"), ("gcs", "gs"), ("azure", "az"), ("memory", "memory"), ("ftp", "ftp")]


class FailHalfway(Callback):  # type: ignore[misc]
    """A progress bar that dies once a file has moved ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def branched(self, path_1: str, path_2: str, **kwargs: object) -> Callback:
        return FailHalfway(self.limit)

    def call(self, hook_name: str | None = None, **kwargs: object) -> None:
        if self.value >= self.limit:
            raise RuntimeError("progress bar died")


#: Beyond one block, so object stores have started a multipart upload.
PARTIAL = 12 * MiB


# -- HTTP(S) and FTP: statuses, retries, methods, TLS, logins ------------------------

#: The password every credential test puts in its URLs; no message may show it.
PASSWORD = "pw-a8d3f1c2e9"
HTTP = pytest.mark.parametrize("foreign", ["http", "https"], indirect=True)


def with_userinfo(url: str, user: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest.split('@', 1)[-1]}"


def assert_no_credentials(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text
        assert re.search(r"://[^/@\s*]+:[^/@\s]*@", text) is None, text


def local_file(directory: Path, data: bytes) -> str:
    path = directory / "x.txt"
    path.write_bytes(data)
    return str(path)


def chain(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)


# -- bounded memory ------------------------------------------------------------------

#: The file of the memory test.
HUGE = 64 * MiB
#: The most one import or export may hold: the transfer's own blocks (5 MiB
#: parts cost about three times their size on their way) with a store on
#: local disk; with a store on S3, also the backend's 8 MiB blocks, as in
#: test_streams.py.
PEAK_LIMIT = {"file": 20 * MiB, "s3": 40 * MiB}
#: Stores on local disk and on S3, URLs on HTTP and S3, streamed both ways.
MEMORY_PAIRS = [("file", "http"), ("file", "s3"), ("s3", "http")]


def measure_transfer(
    locator: str, options: dict[str, Any], urls: dict[str, str], url_options: Any
) -> dict[str, int]:
    """In a child process: import ``urls["source"]``, export it, tracing memory.

    A one-byte file goes both ways first, so that what a client loads once per
    process (botocore's service models, sessions) is not counted.
    """
    store = JobStore(locator, **options)
    store.resume()
    warm = store.import_file(urls["warm"], storage_options=url_options)
    assert warm is not None
    store.export_file(warm, urls["warm-back"], storage_options=url_options)
    gc.collect()
    tracemalloc.start()
    try:
        file_id = store.import_file(urls["source"], storage_options=url_options)
        assert file_id is not None
        imported = tracemalloc.get_traced_memory()[1]
        gc.collect()  # what the import left for the collector is not the export's
        tracemalloc.reset_peak()
        store.export_file(file_id, urls["back"], storage_options=url_options)
        exported = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"import": imported, "export": exported, "size": file_id.size}


class TestSchemes(ContractBase):
    """Import and export through every URL scheme, against its real server."""

    def test_sizes_round_trip(self, store: JobStore, reader: JobStore, foreign: Foreign) -> None:
        sent = {size: content(size, foreign.scheme) for size in SIZES}
        for size, data in sent.items():
            foreign.write(f"in-{size}.bin", data)
        ids = store.import_files(
            [foreign.url(f"in-{size}.bin") for size in SIZES], storage_options=foreign.options
        )
        for size, file_id in zip(SIZES, ids, strict=True):
            assert file_id.endswith(f"in-{size}.bin")
            assert (file_id.size, file_id.executable) == (size, False)
            with reader.read_file_stream(file_id) as handle:
                assert sha(handle.read()) == sha(sent[size])
        reader.export_files(
            [
                (file_id, foreign.url(f"out-{size}.bin"))
                for size, file_id in zip(SIZES, ids, strict=True)
            ],
            storage_options=foreign.options,
        )
        for size, data in sent.items():
            assert sha(foreign.read(f"out-{size}.bin")) == sha(data)
        # Only what was exported: no temporary names left behind.
        assert foreign.names() == {f"{d}-{size}.bin" for size in SIZES for d in ("in", "out")}

    def test_big_file_round_trip(self, store: JobStore, reader: JobStore, foreign: Foreign) -> None:
        data = content(BIG, "big")
        foreign.write("big.bin", data)
        file_id = store.import_file(foreign.url("big.bin"), storage_options=foreign.options)
        assert file_id is not None and file_id.size == BIG
        with reader.read_file_stream(file_id) as handle:
            assert sha(handle.read()) == sha(data)
        reader.export_file(file_id, foreign.url("copy.bin"), storage_options=foreign.options)
        assert sha(foreign.read("copy.bin")) == sha(data)

    @pytest.mark.parametrize(("target", "foreign"), SAME_SERVICE, indirect=True)
    def test_same_service_copies_server_side(
        self, store: JobStore, foreign: Foreign, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="fsjobstore.transfer")
        data = content(6 * MiB, "server-side")
        foreign.write("in.bin", data)
        file_id = store.import_file(foreign.url("in.bin"), storage_options=foreign.options)
        assert file_id is not None and file_id.size == len(data)
        store.export_file(file_id, foreign.url("out.bin"), storage_options=foreign.options)
        assert sha(foreign.read("out.bin")) == sha(data)
        copies = [
            r.getMessage()
            for r in caplog.records
            if "copied within the store's own service" in r.getMessage()
        ]
        assert len(copies) == 2, copies

    @pytest.mark.parametrize("foreign", ["http", "ftp", "s3"], indirect=True)
    def test_import_file_from_many_threads(
        self, store: JobStore, reader: JobStore, foreign: Foreign
    ) -> None:
        for i in range(12):
            foreign.write(f"t{i}.bin", content(1000 + i, "threads"))
        with ThreadPoolExecutor(12) as pool:
            ids = list(
                pool.map(
                    lambda i: store.import_file(
                        foreign.url(f"t{i}.bin"), storage_options=foreign.options
                    ),
                    range(12),
                )
            )
        for i, file_id in enumerate(ids):
            assert file_id is not None and file_id.endswith(f"t{i}.bin")
            with reader.read_file_stream(file_id) as handle:
                assert handle.read() == content(1000 + i, "threads")

    def test_import_as_shared_file(
        self, store: JobStore, reader: JobStore, foreign: Foreign
    ) -> None:
        foreign.write("workflow.cwl", b"cwlVersion: v1.2\n")
        url = foreign.url("workflow.cwl")
        assert store.import_file(url, "workflow.cwl", storage_options=foreign.options) is None
        with reader.read_shared_file_stream("workflow.cwl") as handle:
            assert handle.read() == b"cwlVersion: v1.2\n"
        assert reader.get_all_file_ids() == []

    def test_missing_source_is_named(
        self, store: JobStore, foreign: Foreign, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        before = raw_keys(store)
        url = foreign.url("absent.bin")
        with pytest.raises(FileNotFoundError) as caught:
            store.import_file(url, storage_options=foreign.options)
        assert redact(url) in str(caught.value)
        assert_no_credentials(str(caught.value), caplog.text)
        assert raw_keys(store) == before

    def test_directory_source_is_refused(self, store: JobStore, foreign: Foreign) -> None:
        if foreign.scheme in ("http", "https"):
            pytest.skip("HTTP has no directories")
        foreign.write("folder/inside.txt", b"x")
        before = raw_keys(store)
        with pytest.raises(IsADirectoryError, match="folder"):
            store.import_file(foreign.url("folder"), storage_options=foreign.options)
        assert raw_keys(store) == before

    def test_export_of_missing_file_sends_nothing(self, store: JobStore, foreign: Foreign) -> None:
        ghost = store.get_empty_file_store_id(basename="ghost")
        store.delete_file(ghost)
        with pytest.raises(NoSuchFileException, match="ghost"):
            store.export_file(ghost, foreign.url("out.bin"), storage_options=foreign.options)
        with pytest.raises(NoSuchFileException, match="ghost"):
            store.export_files(
                [(ghost, foreign.url("a.bin")), (ghost, foreign.url("b.bin"))],
                storage_options=foreign.options,
            )
        assert foreign.names() == set()

    def test_failed_export_leaves_nothing_at_destination(
        self, store: JobStore, target: Target, foreign: Foreign
    ) -> None:
        if (target.backend, foreign.scheme) in SAME_SERVICE:
            pytest.skip("copied within the store's own service: no progress to interrupt")
        data = content(PARTIAL, "partial")
        with store.write_file_stream(basename="big.bin") as (handle, file_id):
            handle.write(data)
        with pytest.raises(RuntimeError, match="progress bar died"):
            store.export_files(
                [(file_id, foreign.url("out.bin"))],
                storage_options=foreign.options,
                callback=FailHalfway(BLOCK_SIZE),
            )
        assert foreign.names() == set()

    @pytest.mark.parametrize("foreign", ["local", "http", "s3"], indirect=True)
    def test_failed_import_leaves_no_file(
        self, store: JobStore, reader: JobStore, foreign: Foreign
    ) -> None:
        foreign.write("big.bin", content(PARTIAL, "partial"))
        foreign.write("small.bin", b"small")
        before = raw_keys(store)
        with pytest.raises(RuntimeError, match="progress bar died"):
            store.import_files(
                [foreign.url("small.bin"), foreign.url("big.bin")],
                storage_options=foreign.options,
                callback=FailHalfway(BLOCK_SIZE),
            )
        assert raw_keys(store) == before
        assert reader.get_all_file_ids() == []

    @pytest.fixture(autouse=True)
    def quick_retries(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Retry without the production back-off: the attempts are counted, not timed."""
        monkeypatch.setattr(remote, "BACKOFF", 0.01)

    @HTTP
    @pytest.mark.parametrize(
        ("status", "error", "attempts"),
        [(403, PermissionError, 1), (404, FileNotFoundError, 1), (500, OSError, transfer.ATTEMPTS)],
    )
    def test_http_errors_name_the_url_and_status(
        self,
        store: JobStore,
        foreign: Foreign,
        *,
        caplog: pytest.LogCaptureFixture,
        status: int,
        error: type[OSError],
        attempts: int,
    ) -> None:
        site = foreign.site
        assert site is not None
        caplog.set_level(logging.DEBUG)
        foreign.write("data.bin", b"data")
        source = with_userinfo(foreign.url("data.bin"), "alice", PASSWORD)
        target = with_userinfo(foreign.url("out.bin"), "alice", PASSWORD)
        for url in (source, target):
            site.fail(urlsplit(url).path, status)
        before = raw_keys(store)
        with pytest.raises(error) as imported:
            store.import_file(source, storage_options=foreign.options)
        assert raw_keys(store) == before
        foreign.write("good.bin", b"good")
        file_id = store.import_file(foreign.url("good.bin"), storage_options=foreign.options)
        assert file_id is not None
        with pytest.raises(error) as exported:
            store.export_file(file_id, target, storage_options=foreign.options)
        assert not foreign.exists("out.bin")
        assert site.count("POST", urlsplit(target).path) == attempts
        for caught, url in ((imported, source), (exported, target)):
            message = str(caught.value)
            assert f"HTTP {status}" in message and redact(url) in message
            assert (f"after {attempts} attempts" in message) == (attempts > 1)
            assert_no_credentials(message, *map(str, chain(caught.value)))
        assert_no_credentials(caplog.text)

    @HTTP
    def test_http_failure_that_passes_is_retried(self, store: JobStore, foreign: Foreign) -> None:
        site = foreign.site
        assert site is not None
        foreign.write("flaky.bin", b"flaky")
        site.fail(urlsplit(foreign.url("flaky.bin")).path, 503, times=2)
        file_id = store.import_file(foreign.url("flaky.bin"), storage_options=foreign.options)
        assert file_id is not None and file_id.size == 5
        site.fail(urlsplit(foreign.url("out.bin")).path, 500, times=1)
        store.export_file(file_id, foreign.url("out.bin"), storage_options=foreign.options)
        assert foreign.read("out.bin") == b"flaky"

    @HTTP
    def test_http_credentials_in_the_url(
        self, store: JobStore, foreign: Foreign, caplog: pytest.LogCaptureFixture
    ) -> None:
        site = foreign.site
        assert site is not None
        caplog.set_level(logging.DEBUG)
        foreign.write("private.bin", b"private")
        site.require_auth("alice", PASSWORD)
        good = with_userinfo(foreign.url("private.bin"), "alice", PASSWORD)
        file_id = store.import_file(good, storage_options=foreign.options)
        assert file_id is not None and file_id.endswith("private.bin")
        with pytest.raises(PermissionError, match="HTTP 401") as caught:
            store.import_file(
                with_userinfo(good, "alice", "wrong-pass"), storage_options=foreign.options
            )
        assert "wrong-pass" not in str(caught.value)
        assert_no_credentials(str(caught.value), caplog.text)

    @HTTP
    def test_http_export_posts_or_puts(
        self, store: JobStore, foreign: Foreign, tmp_path: Path
    ) -> None:
        site = foreign.site
        assert site is not None
        file_id = store.import_files([local_file(tmp_path, b"payload")])[0]
        store.export_file(file_id, foreign.url("posted.bin"), storage_options=foreign.options)
        put = {**foreign.options, "method": "put"}
        store.export_file(file_id, foreign.url("put.bin"), storage_options=put)
        assert foreign.read("posted.bin") == foreign.read("put.bin") == b"payload"
        assert site.count("POST", urlsplit(foreign.url("posted.bin")).path) == 1
        assert site.count("PUT", urlsplit(foreign.url("put.bin")).path) == 1
        with pytest.raises(ValueError, match="patch"):
            store.export_file(file_id, foreign.url("x.bin"), storage_options={"method": "patch"})

    @pytest.mark.parametrize("foreign", ["https"], indirect=True)
    def test_https_certificate_must_be_trusted(self, store: JobStore, foreign: Foreign) -> None:
        foreign.write("data.bin", b"data")
        with pytest.raises(OSError, match="certificate") as caught:
            store.import_file(foreign.url("data.bin"))  # no storage option trusting the CA
        assert redact(foreign.url("data.bin")) in str(caught.value)
        assert "attempts" not in str(caught.value)  # a certificate does not fix itself

    @pytest.mark.parametrize("foreign", ["ftp"], indirect=True)
    def test_ftp_login_failure_hides_the_password(
        self, store: JobStore, foreign: Foreign, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        foreign.write("data.bin", b"data")
        file_id = store.import_files([local_file(tmp_path, b"x")])[0]
        url = with_userinfo(foreign.url("data.bin"), "fsjobstore", PASSWORD)
        before = raw_keys(store)
        with pytest.raises(PermissionError, match="FTP 530") as caught:
            store.import_file(url)
        with pytest.raises(PermissionError, match="FTP 530"):
            store.export_file(file_id, url)
        assert redact(url) in str(caught.value)
        assert_no_credentials(str(caught.value), caplog.text)
        assert raw_keys(store) == before
        assert foreign.read("data.bin") == b"data"

    @pytest.mark.parametrize("foreign", ["ftp"], indirect=True)
    def test_ftp_credentials_from_fsspec_config(
        self,
        store: JobStore,
        foreign: Foreign,
        ftp_site: FTPServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Without storage options, fsspec's own configuration applies."""
        monkeypatch.setitem(
            fsspec.config.conf, "ftp", {"username": ftp_site.user, "password": ftp_site.password}
        )
        foreign.write("data.bin", b"configured")
        anonymous = re.sub(r"://[^@/]*@", "://", foreign.url("data.bin"))
        file_id = store.import_file(anonymous)
        assert file_id is not None
        store.export_file(file_id, anonymous.replace("data.bin", "back.bin"))
        assert foreign.read("back.bin") == b"configured"

    @pytest.fixture(scope="class")
    @classmethod
    def child(cls) -> Iterator[ProcessPoolExecutor]:
        """One spawned process: its tracemalloc sees the client only, not the servers."""
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool

    @pytest.mark.parametrize(("target", "foreign"), MEMORY_PAIRS, indirect=True)
    def test_big_transfers_keep_memory_bounded(
        self, child: ProcessPoolExecutor, target: Target, store: JobStore, foreign: Foreign
    ) -> None:
        data = content(HUGE, "huge")
        foreign.write("huge.bin", data)
        foreign.write("warm.bin", b"w")
        urls = {name: foreign.url(f"{name}.bin") for name in ("warm", "warm-back", "back")}
        urls["source"] = foreign.url("huge.bin")
        peaks = child.submit(
            measure_transfer, target.locator, target.options, urls, foreign.options
        ).result(timeout=300)
        assert peaks["size"] == HUGE
        assert sha(foreign.read("back.bin")) == sha(data)
        print({step: f"{peak / MiB:.1f} MiB" for step, peak in peaks.items() if step != "size"})
        for step in ("import", "export"):
            peak = peaks[step]
            assert peak < PEAK_LIMIT[target.backend], (
                f"{step} of 64 MiB peaked at {peak / MiB:.1f} MiB"
            )


@pytest.mark.parametrize("target", ["file", "s3"], indirect=True)
@pytest.mark.parametrize("foreign", ["http"], indirect=True)
class TestHTTPWithoutRanges(ContractBase):
    """A server that ignores ``Range``: an import is one streamed GET."""

    def test_import_takes_one_get(
        self, store: JobStore, reader: JobStore, foreign: Foreign
    ) -> None:
        assert foreign.site is not None
        foreign.site.ranges = False
        data = content(12 * MiB, "no ranges")  # more than one block of the transfer layer
        foreign.write("whole.bin", data)
        file_id = store.import_file(foreign.url("whole.bin"), storage_options=foreign.options)
        assert file_id is not None and file_id.size == len(data)
        with reader.read_file_stream(file_id) as handle:
            assert sha(handle.read()) == sha(data)
        unique = foreign.url("whole.bin").rsplit("/", 2)[1]
        assert foreign.site.count("GET", f"{unique}/whole.bin") == 1
