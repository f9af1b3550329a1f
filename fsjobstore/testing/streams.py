"""Big files and streams: bounded memory, failed writers, reads of replaced files.

Sizes that cross part and block boundaries are round-tripped by
``test_files.py::test_sizes_round_trip``; a short read that leaves the
context early is ``test_files.py::test_short_read_does_not_hang``.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from .. import JobStore
from ..backends.common import BLOCK_SIZE
from . import workers
from .base import ContractBase
from .raw import raw_keys
from .target import Target

MiB = 1024 * 1024
#: The big file of the memory tests, and the most any step may hold at once.
BIG = 64 * MiB
PEAK_LIMIT = 40 * MiB
#: Larger than BLOCK_SIZE, so a stream takes the big-upload path.
LARGE = BLOCK_SIZE + MiB

#: How a writer fails: the exception it raises, and the encoding it writes with.
FAILURES = [
    pytest.param(RuntimeError, None, id="error"),
    pytest.param(KeyboardInterrupt, None, id="interrupt"),
    pytest.param(RuntimeError, "utf-8", id="text"),
]


def content(size: int, seed: str) -> bytes:
    return b"".join(workers.chunks(size, seed))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_of(store: JobStore, file_id: str) -> str:
    """Digest of a stored file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with store.read_file_stream(file_id) as stream:
        while data := stream.read(MiB):
            digest.update(data)
    return digest.hexdigest()


class StreamsContract(ContractBase):
    """Big streams: bounded memory, failed writers, reads of replaced files."""

    @pytest.fixture(scope="class")
    @classmethod
    def child(cls) -> Iterator[workers.Pool]:
        """One spawned process: tracemalloc there sees only the client, not moto's server."""
        pool = workers.Pool(1)
        yield pool
        pool.close()

    @pytest.mark.usefixtures("store")  # the child resumes it
    @pytest.mark.parametrize("op", ["stream", "update", "local"])
    def test_big_files_keep_memory_bounded(
        self, child: workers.Pool, target: Target, tmp_path: Path, op: str
    ) -> None:
        """64 MiB through streams in 1 MiB chunks, or through local files, holds far less."""
        if not target.processes:
            pytest.skip(
                f"separate processes cannot share a {target.backend} store: "
                "test_big_reads_hold_no_copy measures in this process"
            )
        (result,) = child.run(
            "measure_memory",
            target.locator,
            target.options,
            op=op,
            size=BIG,
            chunk=MiB,
            scratch=str(tmp_path),
        )
        assert result["received"] == result["sent"]
        peaks: dict[str, int] = result["peaks"]
        print({step: f"{peak / MiB:.1f} MiB" for step, peak in peaks.items()})
        for step, peak in peaks.items():
            assert peak < PEAK_LIMIT, f"{step} of {BIG // MiB} MiB peaked at {peak / MiB:.1f} MiB"

    def test_big_reads_hold_no_copy(self, store: JobStore, target: Target) -> None:
        """Where the store lives in this process, a read must not hold the file again."""
        if target.processes:
            pytest.skip("measured in a child process by test_big_files_keep_memory_bounded")
        with store.write_file_stream() as (handle, file_id):
            for data in workers.chunks(BIG, "memory", MiB):
                handle.write(data)
        tracemalloc.start()
        try:
            with store.read_file_stream(file_id) as stream:
                while stream.read(MiB):
                    pass
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < PEAK_LIMIT, f"reading {BIG // MiB} MiB peaked at {peak / MiB:.1f} MiB"

    @pytest.mark.parametrize(("error", "encoding"), FAILURES)
    def test_failed_big_stream_write_leaves_nothing(
        self, store: JobStore, reader: JobStore, error: type[BaseException], encoding: str | None
    ) -> None:
        before = raw_keys(store)
        with pytest.raises(error, match="writer died"):
            with store.write_file_stream(basename="big.bin", encoding=encoding) as (
                handle,
                file_id,
            ):
                for data in workers.chunks(LARGE, "partial"):
                    handle.write(data if encoding is None else data.decode("latin-1"))
                raise error("writer died")
        assert raw_keys(store) == before
        assert not reader.file_exists(file_id)
        assert reader.get_all_file_ids() == []

    @pytest.mark.parametrize(("error", "encoding"), FAILURES)
    def test_failed_big_stream_update_keeps_old_content(
        self, store: JobStore, reader: JobStore, error: type[BaseException], encoding: str | None
    ) -> None:
        with store.write_file_stream(basename="kept.bin") as (handle, file_id):
            handle.write(b"old content")
        before = {key: store.fs.size(f"{store.root}/{key}") for key in raw_keys(store)}
        with pytest.raises(error, match="writer died"):
            with store.update_file_stream(file_id, encoding=encoding) as handle:
                for data in workers.chunks(LARGE, "partial"):
                    handle.write(data if encoding is None else data.decode("latin-1"))
                raise error("writer died")
        assert {key: store.fs.size(f"{store.root}/{key}") for key in raw_keys(store)} == before
        with reader.read_file_stream(file_id) as stream:
            assert stream.read() == b"old content"
        assert reader.get_file_size(file_id) == len(b"old content")

    @pytest.mark.parametrize("replacement", ["same size", "shorter", "deleted"])
    def test_file_replaced_mid_read_is_never_mixed(
        self, store: JobStore, reader: JobStore, replacement: str
    ) -> None:
        """A read that began on one version gives that version whole, or raises OSError."""
        if not store._backend.pins_stream_reads:
            pytest.skip(
                f"{type(store.fs).__name__} reads a stream part by part, by name: a file "
                "replaced during a read can give parts of both versions"
            )
        old = content(3 * BLOCK_SIZE, "old")
        new = content(len(old) if replacement == "same size" else MiB, "new")
        with store.write_file_stream(basename="big.bin") as (handle, file_id):
            handle.write(old)
        with store.read_file_stream(file_id) as stream:
            first = stream.read(BLOCK_SIZE)
            assert sha(first) == sha(old[:BLOCK_SIZE])
            if replacement == "deleted":
                reader.delete_file(file_id)
            else:
                with reader.update_file_stream(file_id) as out:
                    out.write(new)
            rest = bytearray()
            try:
                while data := stream.read(MiB):
                    rest += data
            except OSError:
                pass  # the reader noticed the change: fine
            else:
                # By digest: a failing comparison of 24 MiB would print them.
                whole = first + rest
                assert (len(whole), sha(whole)) == (len(old), sha(old)), "versions were mixed"
        if replacement == "deleted":
            assert not reader.file_exists(file_id)
        else:
            assert digest_of(reader, file_id) == sha(new)
