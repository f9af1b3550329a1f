"""Shared files: well-known names, last writer wins, on every backend."""

from __future__ import annotations

import pytest

from .. import JobStore, NoSuchFileException
from ..errors import InvalidIDError
from .base import ContractBase
from .raw import raw_keys

BAD_NAMES: list[object] = [
    "",
    ".",
    "..",
    "a/b",
    "../up",
    "/abs",
    "sp ace",
    "x" * 256,
    "n\x00",
    None,
]


class SharedFilesContract(ContractBase):
    """Shared files: well-known names, last writer wins."""

    def test_write_and_read_binary_and_text(self, store: JobStore, reader: JobStore) -> None:
        with store.write_shared_file_stream("config.bin") as handle:
            handle.write(b"\x00\x01binary")
        with reader.read_shared_file_stream("config.bin") as handle:
            assert handle.read() == b"\x00\x01binary"
        with store.write_shared_file_stream("notes.txt", encoding="utf-8") as text:
            text.write("ünïcode\n")
        with reader.read_shared_file_stream("notes.txt", encoding="utf-8") as text:
            assert text.read() == "ünïcode\n"

    def test_last_writer_wins(self, store: JobStore, reader: JobStore) -> None:
        for content in (b"one, the longest", b"two", b"three"):
            with store.write_shared_file_stream("leader.pid") as handle:
                handle.write(content)
        with reader.read_shared_file_stream("leader.pid") as handle:
            assert handle.read() == b"three"

    def test_missing_shared_file(self, store: JobStore) -> None:
        with pytest.raises(NoSuchFileException, match="no such shared file: 'absent'") as info:
            with store.read_shared_file_stream("absent"):
                pass
        assert isinstance(info.value, FileNotFoundError)

    def test_failed_writer_keeps_old_content(self, store: JobStore, reader: JobStore) -> None:
        with store.write_shared_file_stream("state") as handle:
            handle.write(b"good")
        with pytest.raises(OSError, match="disk on fire"):
            with store.write_shared_file_stream("state") as handle:
                handle.write(b"bad")
                raise OSError("disk on fire")
        with reader.read_shared_file_stream("state") as handle:
            assert handle.read() == b"good"

    @pytest.mark.parametrize("bad", BAD_NAMES)
    def test_bad_names_are_rejected_before_io(self, store: JobStore, bad: object) -> None:
        before = raw_keys(store)
        with pytest.raises(InvalidIDError) as info:
            with store.write_shared_file_stream(bad):  # type: ignore[arg-type]
                pass
        assert repr(bad) in str(info.value)
        with pytest.raises(InvalidIDError):
            with store.read_shared_file_stream(bad):  # type: ignore[arg-type]
                pass
        if bad is not None:  # None means "not a shared file" to import_file
            with pytest.raises(InvalidIDError):
                store.import_file(__file__, shared_file_name=bad)  # type: ignore[arg-type]
        assert raw_keys(store) == before

    def test_shared_files_are_not_files(self, store: JobStore, reader: JobStore) -> None:
        with store.write_shared_file_stream("a.json") as handle:
            handle.write(b"{}")
        assert reader.get_all_file_ids() == []
