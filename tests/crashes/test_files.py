"""File writes killed at random: new files, new versions of one file, deletes."""

from __future__ import annotations

import os
from typing import Any

import pytest

from .bench import (
    BIG,
    EMPTY,
    HUGE,
    MANY,
    SMALL,
    Bench,
    Ledger,
    _owner,
    checking,
    finish,
    settle,
    verify,
)
from .contents import content, digest

# -- files -------------------------------------------------------------------------------


def _writes(
    bench: Bench,
    op: str,
    *,
    sizes: list[tuple[int, int]],
    after: range,
    owner: bool,
    count: int,
    rounds: int | None = None,
) -> None:
    """Kill ``op`` (write_file or write_file_stream) at random, checking after each kill.

    The child makes the contents of ``count`` writes first, then writes them.
    """
    ledger = Ledger()
    job = _owner(bench.store, ledger) if owner else None
    for number in range(rounds or bench.rounds):
        params: dict[str, Any] = {"owner": job, "seed": f"r{number}", "sizes": sizes}
        params["count"] = count
        if op in ("write_file", "import_file"):
            params["scratch"] = str(bench.tmp_path / "scratch")
            os.makedirs(params["scratch"], exist_ok=True)
        r = bench.kill(op, params, after=after)
        with checking(r):
            for e in r.done:
                ledger.files[e["id"]] = {e["digest"]}
            if r.in_flight:
                ledger.unknown = {digest(content(r.in_flight["tag"], r.in_flight["size"]))}
            settle(ledger, verify(bench.fresh(), ledger, read={e["id"] for e in r.done}))
            bench.note_leftovers()
    finish(bench, ledger)


def test_write_file(bench: Bench) -> None:
    """Local files of up to 256 KiB, or over 8 MiB (one in three), some owned by a job."""
    _writes(bench, "write_file", sizes=[SMALL, SMALL, BIG], after=range(0, 6), owner=True, count=15)


def test_import_file(bench: Bench) -> None:
    """import_file of local files of up to 256 KiB, or over 8 MiB (one in three)."""
    sizes = [SMALL, SMALL, BIG]
    _writes(bench, "import_file", sizes=sizes, after=range(0, 6), owner=False, count=15)


def test_write_file_stream_small(bench: Bench) -> None:
    _writes(bench, "write_file_stream", sizes=[SMALL], after=range(0, 20), owner=False, count=80)


def test_write_file_stream_big(bench: Bench) -> None:
    """Streams over 8 MiB: spilled to local disk, then one upload (S3) or one rename."""
    _writes(bench, "write_file_stream", sizes=[BIG], after=range(0, 3), owner=False, count=6)


@pytest.mark.parametrize("variant", [pytest.param("long", marks=pytest.mark.long)])
def test_write_file_stream_huge(bench: Bench) -> None:
    """Streams over 50 MiB: multipart uploads on S3, which a kill leaves unfinished."""
    _writes(
        bench, "write_file_stream", sizes=[HUGE], after=range(0, 2), owner=False, count=3, rounds=4
    )


def test_get_empty_file_store_id(bench: Bench) -> None:
    ledger = Ledger()
    job = _owner(bench.store, ledger)
    for _ in range(bench.rounds):
        params = {"owner": job, "count": 100_000}
        r = bench.kill("get_empty_file_store_id", params, after=MANY[bench.backend])
        with checking(r):
            ledger.files.update({e["id"]: {EMPTY} for e in r.done})
            ledger.unknown = {EMPTY} if r.in_flight else set()
            settle(ledger, verify(bench.fresh(), ledger, read={e["id"] for e in r.done}))
            bench.note_leftovers()
    finish(bench, ledger)


def _versions(bench: Bench, op: str, name: str, ledger: Ledger, first: bytes) -> None:
    """Kill writes of new versions of one file (or shared file) ``name``, at random."""
    shared = op == "write_shared_file_stream"
    version, digests = 0, {digest(first): 0}
    for number in range(bench.rounds):
        params = {
            "name": name,
            "start": version + 1,
            "seed": f"r{number}",
            "sizes": [SMALL, BIG],
            "count": 12,
        }
        if op == "update_file":
            scratch = bench.tmp_path / "scratch"
            scratch.mkdir(exist_ok=True)
            params["scratch"] = str(scratch)
        r = bench.kill(op, params, after=range(0, 4))
        with checking(r):
            allowed = ledger.shared[name] if shared else ledger.files[name]
            if r.done:
                allowed.clear()
                allowed.add(r.done[-1]["digest"])
            for e in r.done:
                digests[e["digest"]] = int(e["tag"][1:])
            if r.in_flight:
                tag, size = r.in_flight["tag"], r.in_flight["size"]
                allowed.add(digest(content(tag, size)))
                digests[digest(content(tag, size))] = int(tag[1:])
            seen = verify(bench.fresh(), ledger, read={name})
            settle(ledger, seen)
            version = digests[seen.shared[name] if shared else seen.digests[name]]
            bench.note_leftovers()
    finish(bench, ledger)
    bench.notes.append(f"version {version} stored at the end")


@pytest.mark.parametrize("op", ["update_file_stream", "update_file"])
def test_update_file(bench: Bench, op: str) -> None:
    """Versions of one file, from a stream or from local files (up to 256 KiB or over 8 MiB)."""
    ledger = Ledger()
    first = content("v0", 1000)
    with bench.store.write_file_stream() as (out, file_id):
        out.write(first)
    ledger.files[file_id] = {digest(first)}
    _versions(bench, op, file_id, ledger, first)


def test_write_shared_file_stream(bench: Bench) -> None:
    """Overwrites of one shared file: it holds one of the versions written, whole."""
    ledger = Ledger()
    first = content("v0", 1000)
    with bench.store.write_shared_file_stream("crash.bin") as out:
        out.write(first)
    ledger.shared["crash.bin"] = {digest(first)}
    _versions(bench, "write_shared_file_stream", "crash.bin", ledger, first)


def test_delete_file(bench: Bench) -> None:
    ledger = Ledger()
    job = _owner(bench.store, ledger)
    for number in range(bench.rounds):
        store, ids = bench.fresh(), []
        for i in range(200 if bench.backend == "file" else 25):  # local deletes are quick
            data = content(f"r{number}-{i}", 500)
            owner = job if i % 2 else None
            with store.write_file_stream(owner, cleanup=owner is not None and i % 3 == 0) as (
                out,
                fid,
            ):
                out.write(data)
            ledger.files[fid] = {digest(data)}
            ids.append(str(fid))
        r = bench.kill("delete_file", {"ids": ids}, after=range(0, 20))
        with checking(r):
            for e in r.done:
                del ledger.files[e["id"]]
            if r.in_flight:
                ledger.maybe_files[r.in_flight["id"]] = ledger.files.pop(r.in_flight["id"])
            settle(ledger, verify(bench.fresh(), ledger, read=set()))
            bench.note_leftovers()
    finish(bench, ledger)
