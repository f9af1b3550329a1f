"""The machine's rules on shared files and log messages."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import rule

from fsjobstore import NoSuchFileException

from .base import MachineBase, counted
from .model import (
    SHARED_NAMES,
    BodyFailed,
    Collector,
    Content,
    chunked,
    chunkings,
    contents,
    data_of,
    vias,
)


class SharedAndLogRules(MachineBase):
    """The machine's rules on shared files and log messages."""

    # -- shared files --------------------------------------------------------------------

    @rule(
        name=st.sampled_from(SHARED_NAMES),
        content=contents,
        chunking=chunkings,
        fails=st.booleans(),
    )
    @counted
    def write_shared_file(
        self, name: str, content: Content, chunking: int | None, fails: bool
    ) -> None:
        data = data_of(content)
        with contextlib.suppress(BodyFailed):
            with self.writer.write_shared_file_stream(name) as out:
                for piece in chunked(data, chunking):
                    out.write(piece)
                if fails:
                    raise BodyFailed("shared writer failed")
            assert not fails
            if name in self.shared:
                self.note("shared file overwritten")
            self.shared[name] = data
            return
        self.note("failed shared write kept old content")

    @rule(name=st.sampled_from(SHARED_NAMES), via=vias)
    @counted
    def read_shared_file(self, name: str, via: str) -> None:
        store = self.store(via)
        if name not in self.shared:
            with pytest.raises(NoSuchFileException, match="no such shared file"):
                with store.read_shared_file_stream(name):
                    pass
            return
        with store.read_shared_file_stream(name) as handle:
            assert handle.read() == self.shared[name]

    # -- logs ----------------------------------------------------------------------------

    @rule(body=st.binary(max_size=40) | st.text(max_size=40))
    @counted
    def write_logs(self, body: bytes | str) -> None:
        # Numbered, so the model can tell every message apart.
        message: bytes | str
        number = next(self.numbers)
        if not body and b"" not in self.pending | self.archived:
            message = data = b""  # one empty message at a time: still told apart
        elif isinstance(body, str):
            message = f"{number}|{body}"
            data = message.encode()
        else:
            message = data = b"%d|" % number + body
        self.writer.write_logs(message)
        self.pending.add(data)

    @rule(
        via=vias,
        read_all=st.booleans(),
        fail_after=st.none() | st.integers(0, 3),
    )
    @counted
    def read_logs(self, via: str, read_all: bool, fail_after: int | None) -> None:
        collect = Collector(fail_after)
        deliverable = (self.archived if read_all else set()) | self.pending
        if fail_after is not None and fail_after < len(deliverable):
            with pytest.raises(BodyFailed):
                self.store(via).read_logs(collect, read_all=read_all)
            assert len(collect.messages) == fail_after
            self.note("log callback failed: taken ones archived, rest unread")
        else:
            assert self.store(via).read_logs(collect, read_all=read_all) == len(deliverable)
            assert len(collect.messages) == len(deliverable)
        delivered = set(collect.messages)
        assert len(delivered) == len(collect.messages), "a message delivered twice in one call"
        assert delivered <= deliverable
        if fail_after is None:
            assert delivered == deliverable
        taken = delivered & self.pending
        self.pending -= taken
        self.archived |= taken
