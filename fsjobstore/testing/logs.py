"""Statistics and log messages: delivered once, archived, on every backend."""

from __future__ import annotations

from typing import IO

import pytest

from .. import JobStore
from .base import ContractBase


class Collector:
    """A ``read_logs`` callback that keeps each message, and fails after some if asked."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.messages: list[bytes] = []
        self.fail_after = fail_after

    def __call__(self, handle: IO[bytes]) -> None:
        if self.fail_after is not None and len(self.messages) == self.fail_after:
            raise RuntimeError("leader crashed")
        data = handle.read()
        assert isinstance(data, bytes)
        self.messages.append(data)


class LogsContract(ContractBase):
    """Log messages: delivered once, archived, delivered again with read_all."""

    def test_each_message_is_delivered_once(self, store: JobStore, reader: JobStore) -> None:
        store.write_logs("first")
        store.write_logs(b"second \xff")
        collect = Collector()
        assert reader.read_logs(collect) == 2
        assert sorted(collect.messages) == [b"first", b"second \xff"]
        again = Collector()
        assert reader.read_logs(again) == 0
        assert store.read_logs(again) == 0
        assert again.messages == []

    def test_read_all_delivers_everything_ever_written(
        self, store: JobStore, reader: JobStore
    ) -> None:
        for i in range(5):
            store.write_logs(f"m{i}")
        assert reader.read_logs(Collector()) == 5
        store.write_logs("m5")
        everything = Collector()
        assert reader.read_logs(everything, read_all=True) == 6
        assert sorted(everything.messages) == [f"m{i}".encode() for i in range(6)]
        assert reader.read_logs(Collector()) == 0  # read_all archived m5 too
        assert reader.read_logs(Collector(), read_all=True) == 6

    def test_a_failing_callback_loses_nothing(self, store: JobStore, reader: JobStore) -> None:
        for i in range(5):
            store.write_logs(f"m{i}")
        partial = Collector(fail_after=2)
        with pytest.raises(RuntimeError, match="leader crashed"):
            reader.read_logs(partial)
        assert len(partial.messages) == 2
        rest = Collector()
        assert reader.read_logs(rest) == 3
        assert sorted(partial.messages + rest.messages) == [f"m{i}".encode() for i in range(5)]

    def test_large_and_empty_messages(self, store: JobStore, reader: JobStore) -> None:
        store.write_logs("")
        store.write_logs("x" * 1_000_000)
        collect = Collector()
        assert reader.read_logs(collect) == 2
        assert sorted(len(m) for m in collect.messages) == [0, 1_000_000]

    def test_bad_message_type(self, store: JobStore) -> None:
        with pytest.raises(TypeError, match="dict"):
            store.write_logs({"not": "a message"})  # type: ignore[arg-type]
        assert store.read_logs(Collector()) == 0

    def test_toil_log_names(self, store: JobStore, reader: JobStore) -> None:
        store.writeStatsAndLogging("via camelCase")
        collect = Collector()
        assert reader.readStatsAndLogging(collect, readAll=True) == 1
        assert collect.messages == [b"via camelCase"]
