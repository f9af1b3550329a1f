"""The machine's rules on files."""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Callable

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import MultipleResults, multiple, precondition, rule

from fsjobstore import FileID, NoSuchFileException, layout

from .base import MachineBase, counted, file_ids, owners
from .model import (
    BASENAMES,
    BodyFailed,
    Content,
    MiB,
    ModelFile,
    Pattern,
    big_contents,
    chunked,
    chunkings,
    contents,
    data_of,
    read_all,
    vias,
)


class FileRules(MachineBase):
    """The machine's rules on files."""

    def _new_file(
        self, write: Callable[[], FileID], data: bytes, owner: str | None, cleanup: bool
    ) -> FileID | MultipleResults[FileID]:
        """Write a new file with ``write``, as the model says it must go."""
        if cleanup and owner is None:
            with pytest.raises(ValueError, match="cleanup=True needs a job_id"):
                write()
            return multiple()
        file_id = write()
        assert isinstance(file_id, FileID)
        assert file_id.size == len(data)
        assert file_id not in self.files
        ref = layout.parse_file_id(file_id)
        assert (ref.owner, ref.cleanup) == (owner, cleanup)
        assert self.writer.get_file_job_association(file_id) == owner
        self.files[file_id] = ModelFile(data, owner, cleanup, file_id.executable)
        return file_id

    def _write_stream(
        self,
        owner: str | None,
        cleanup: bool,
        basename: str,
        data: bytes,
        *,
        chunking: int | None,
        fails: bool,
    ) -> FileID | MultipleResults[FileID]:
        started: list[FileID] = []

        def write() -> FileID:
            with self.writer.write_file_stream(owner, cleanup, basename or None) as (out, fid):
                started.append(fid)
                for piece in chunked(data, chunking):
                    out.write(piece)
                if fails:
                    raise BodyFailed("writer failed")
            assert fid.endswith(layout.sanitize_basename(basename))
            return fid

        if not fails or (cleanup and owner is None):
            return self._new_file(write, data, owner, cleanup)
        with pytest.raises(BodyFailed):
            write()
        # A failed stream leaves nothing (the invariant checks raw storage too).
        for fid in started:
            assert not self.reader.file_exists(fid)
        self.note("failed stream write left nothing")
        return multiple()

    @rule(
        target=file_ids,
        owner=owners,
        cleanup=st.booleans(),
        executable=st.booleans(),
        basename=st.sampled_from(BASENAMES),
        content=contents,
    )
    @counted
    def write_file(
        self, owner: str | None, cleanup: bool, executable: bool, basename: str, content: Content
    ) -> FileID | MultipleResults[FileID]:
        data = data_of(content)
        src = self.local_file(basename, data, executable)

        def write() -> FileID:
            fid = self.writer.write_file(src, owner, cleanup)
            assert fid.executable == executable
            assert fid.endswith(layout.sanitize_basename(src.name))
            return fid

        return self._new_file(write, data, owner, cleanup)

    @rule(
        target=file_ids,
        owner=owners,
        cleanup=st.booleans(),
        basename=st.sampled_from(BASENAMES),
        content=contents,
        chunking=chunkings,
        fails=st.booleans(),
    )
    @counted
    def write_file_stream(
        self,
        *,
        owner: str | None,
        cleanup: bool,
        basename: str,
        content: Content,
        chunking: int | None,
        fails: bool,
    ) -> FileID | MultipleResults[FileID]:
        data = data_of(content)
        return self._write_stream(owner, cleanup, basename, data, chunking=chunking, fails=fails)

    @rule(target=file_ids, owner=owners, cleanup=st.booleans(), text=st.text(max_size=40))
    @counted
    def write_text_file_stream(
        self, owner: str | None, cleanup: bool, text: str
    ) -> FileID | MultipleResults[FileID]:
        def write() -> FileID:
            with self.writer.write_file_stream(owner, cleanup, encoding="utf-8") as (out, fid):
                out.write(text)
            return fid

        return self._new_file(write, text.encode("utf-8"), owner, cleanup)

    @rule(target=file_ids, owner=owners, cleanup=st.booleans())
    @counted
    def get_empty_file_store_id(
        self, owner: str | None, cleanup: bool
    ) -> FileID | MultipleResults[FileID]:
        return self._new_file(
            lambda: self.writer.get_empty_file_store_id(owner, cleanup), b"", owner, cleanup
        )

    @precondition(lambda self: self.big_writes_left > 0)
    @rule(
        target=file_ids,
        owner=owners,
        content=big_contents,
        through=st.sampled_from(["stream", "local file"]),
    )
    @counted
    def write_big_file(
        self, owner: str | None, content: Pattern, through: str
    ) -> FileID | MultipleResults[FileID]:
        self.big_writes_left -= 1
        self.note(f"big write of {content.size} bytes")
        data = content.data()
        if through == "stream":
            return self._write_stream(owner, False, "big.bin", data, chunking=MiB, fails=False)
        src = self.local_file("big.bin", data)
        return self._new_file(lambda: self.writer.write_file(src, owner), data, owner, False)

    def _check_file_missing(self, file_id: str, call: Callable[[], object]) -> bool:
        """If the model has no ``file_id``, check that ``call`` raises NoSuchFileException."""
        if file_id in self.files:
            return False
        with pytest.raises(NoSuchFileException):
            call()
        return True

    @rule(file_id=file_ids, via=vias, symlink=st.booleans())
    @counted
    def read_file(self, file_id: FileID, via: str, symlink: bool) -> None:
        # One destination for every read: each replaces the last, a copy or a link
        # (local disk links to the stored file with symlink=True; a later copy
        # must replace the link, never write through it into the store).
        out = self.local / "out"
        before = out.read_bytes() if out.exists() else None
        store = self.store(via)
        if self._check_file_missing(file_id, lambda: store.read_file(file_id, out, symlink)):
            # A failed read keeps what the destination held.
            assert (out.read_bytes() if out.exists() else None) == before
            return
        # A plain string works as well as the FileID (the executable bit is in the ID).
        store.read_file(str(file_id), out, symlink)
        model = self.files[file_id]
        assert out.read_bytes() == model.data
        assert bool(out.stat().st_mode & stat.S_IXUSR) == model.executable

    @rule(file_id=file_ids, chunking=chunkings, via=vias)
    @counted
    def read_file_stream(self, file_id: FileID, chunking: int | None, via: str) -> None:
        store = self.store(via)
        assert store.file_exists(file_id) == (file_id in self.files)

        def read(expected: bytes = b"") -> bytes:
            with store.read_file_stream(file_id) as handle:
                return read_all(handle, chunking, len(expected))

        if self._check_file_missing(file_id, read):
            with pytest.raises(NoSuchFileException):
                store.get_file_size(file_id)
            return
        expected = self.files[file_id].data
        assert store.get_file_size(file_id) == len(expected)
        assert read(expected) == expected

    def _update_file(self, file_id: FileID, data: bytes, chunking: int | None, fails: bool) -> None:
        def update() -> None:
            with self.writer.update_file_stream(file_id) as out:
                for piece in chunked(data, chunking):
                    out.write(piece)
                if fails:
                    raise BodyFailed("updater failed")

        if self._check_file_missing(file_id, update):
            return
        if fails:
            with pytest.raises(BodyFailed):
                update()
            self.note("failed update kept old content")
            return  # the old content stays: the invariant and reads check it
        update()
        self.files[file_id] = dataclasses.replace(self.files[file_id], data=data)

    @rule(file_id=file_ids, content=contents, chunking=chunkings, fails=st.booleans())
    @counted
    def update_file_stream(
        self, file_id: FileID, content: Content, chunking: int | None, fails: bool
    ) -> None:
        self._update_file(file_id, data_of(content), chunking, fails)

    @precondition(lambda self: self.big_writes_left > 0)
    @rule(file_id=file_ids, content=big_contents, fails=st.booleans())
    @counted
    def update_big_file(self, file_id: FileID, content: Pattern, fails: bool) -> None:
        self.big_writes_left -= 1
        self.note(f"big update of {content.size} bytes")
        self._update_file(file_id, content.data(), MiB, fails)

    @rule(file_id=file_ids, content=contents)
    @counted
    def update_file(self, file_id: FileID, content: Content) -> None:
        data = data_of(content)
        src = self.local_file("update.bin", data)
        if self._check_file_missing(file_id, lambda: self.writer.update_file(file_id, src)):
            return
        self.writer.update_file(file_id, src)
        self.files[file_id] = dataclasses.replace(self.files[file_id], data=data)

    @rule(file_id=file_ids, missing_ok=st.booleans())
    @counted
    def delete_file(self, file_id: FileID, missing_ok: bool) -> None:
        if not missing_ok and self._check_file_missing(
            file_id, lambda: self.writer.delete_file(file_id)
        ):
            return
        self.writer.delete_file(file_id, missing_ok=missing_ok)
        self.files.pop(file_id, None)
