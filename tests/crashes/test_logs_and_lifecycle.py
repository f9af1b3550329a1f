"""Log writers and readers, initialize() and destroy(), killed at random."""

from __future__ import annotations

import posixpath

import pytest

from fsjobstore import JobDescription, JobStore, NoSuchJobStoreException
from fsjobstore import layout as layout_
from fsjobstore.errors import JobStoreExistsException
from fsjobstore.maintenance import clean
from fsjobstore.testing.raw import raw_keys, raw_read

from .bench import Bench, Ledger, _place, _read, checking, finish
from .contents import content, digest, tag_of
from .crasher import Round

# -- logs --------------------------------------------------------------------------------


def _logs(store: JobStore, *, read_all: bool = False) -> list[bytes]:
    got: list[bytes] = []
    count = store.read_logs(lambda handle: got.append(handle.read()), read_all=read_all)
    assert count == len(got)
    return got


def test_write_logs(bench: Bench) -> None:
    """Every message written is delivered once, whole; the one in flight at most once."""
    written: set[str] = set()
    for number in range(bench.rounds):
        params = {"seed": f"r{number}", "sizes": [(100, 4000)], "count": 100_000}
        r = bench.kill("write_logs", params, after=range(0, 30))
        with checking(r):
            tags = [tag_of(data) for data in _logs(bench.fresh())]  # each whole
            assert len(tags) == len(set(tags)), "a message was delivered twice"
            done = {e["tag"] for e in r.done}
            assert done <= set(tags), f"finished messages not delivered: {done - set(tags)}"
            in_flight = {r.in_flight["tag"]} if r.in_flight else set()
            assert set(tags) <= done | in_flight, f"never written: {set(tags) - done - in_flight}"
            written |= set(tags)
            bench.note_leftovers()
    finish(bench, Ledger())
    # Everything delivered is archived, once.
    archived = [tag_of(data) for data in _logs(bench.fresh(), read_all=True)]
    assert sorted(archived) == sorted(written)


def _mailbox(store: JobStore) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Raw inbox and archive: tag -> the keys holding it (each checked whole)."""
    boxes: tuple[dict[str, list[str]], dict[str, list[str]]] = ({}, {})
    for box, prefix in zip(boxes, (layout_.INBOX, layout_.ARCHIVE), strict=True):
        for key in sorted(k for k in raw_keys(store) if k.startswith(prefix)):
            box.setdefault(tag_of(raw_read(store, key)), []).append(key)
    return boxes


def test_read_logs(bench: Bench) -> None:
    """Readers killed between delivery and archiving: at least once, duplicates only of those.

    A first reader runs to the end unkilled (exactly once, and the timing of
    delivery and archiving); then each round writes new messages and kills
    a reader at a random delivery or during the archiving that follows, and
    a fresh store's reader delivers what is left at the end. On S3 a killed
    reader leaves its lease behind, which the next reader takes over only
    after 30 seconds: S3 gets one killed reader (three in the long variant).
    """
    count = 40 if bench.backend == "s3" else 150
    kills = bench.rounds if bench.backend == "file" else bench.rounds // 5
    # Slower deliveries on S3, where the one kill must land inside the call.
    pause = 0.02 if bench.backend == "s3" else 0.002
    writer = bench.fresh()
    written: dict[str, str] = {}  # tag -> digest
    delivered: dict[str, int] = {}  # tag -> deliveries so far
    redeliverable: set[str] = set()  # delivered by a killed reader, not archived

    def post(number: int) -> None:
        for i in range(count):
            data = content(f"r{number}-{i}", 100 + 37 * i)
            writer.write_logs(data)
            written[f"r{number}-{i}"] = digest(data)

    def deliveries(r: Round) -> list[str]:
        tags = [e["tag"] for e in r.done]
        for e in r.done:
            assert written.get(e["tag"]) == e["digest"], f"delivered torn or foreign: {e}"
        assert len(tags) == len(set(tags)), "one reader delivered a message twice"
        again = {t for t in tags if t in delivered}
        assert again <= redeliverable, f"delivered again, though archived: {again - redeliverable}"
        for tag in tags:
            delivered[tag] = delivered.get(tag, 0) + 1
        return tags

    # The reader that is not killed: every message once, all archived; its timing.
    post(0)
    calm = bench.kill("read_logs", {"pause": pause}, after=count + 1, fraction=0.0)
    with checking(calm):
        assert calm.of("archived") and sorted(deliveries(calm)) == sorted(written)
        inbox, archive = _mailbox(bench.fresh())
        assert not inbox and sorted(archive) == sorted(written)
        archiving = calm.of("archived")[0]["t"] - calm.done[-1]["t"]
        delivery = (calm.done[-1]["t"] - calm.done[0]["t"]) / (len(calm.done) - 1)
    for number in range(1, kills + 1):
        post(number)
        pending = len(_mailbox(bench.fresh())[0])
        # Half the kills aim at a delivery, half at the last three deliveries and
        # the archiving after them (this process learns of a delivery late).
        # On S3 the first kill (the only one by default) aims at a delivery:
        # its archiving is over before this process, serving moto too, sees
        # the last delivery reported.
        delivering = bench.backend == "s3" and number == 1
        if delivering or bench.crasher.rng.random() < 0.5:
            r = bench.kill("read_logs", {"pause": pause}, after=range(1, pending))
        else:
            tail = 3 * delivery + archiving
            r = bench.kill("read_logs", {"pause": pause}, after=pending - 3, cycle=tail)
        with checking(r):
            tags = deliveries(r)
            inbox, archive = _mailbox(bench.fresh())
            assert set(inbox) | set(archive) == set(written), "a message was lost"
            assert set(archive) <= set(delivered), "archived without being delivered"
            assert all(len(keys) == 1 for keys in archive.values())
            redeliverable = (redeliverable | set(tags)) & set(inbox)
            bench.note_leftovers()
    # A fresh store's reader delivers exactly what is pending: each message once
    # more at most, and only those a killed reader left unarchived.
    store = bench.fresh()
    inbox, _ = _mailbox(store)
    last = [tag_of(data) for data in _logs(store)]
    assert sorted(last) == sorted(inbox), "the last reader did not deliver what was pending"
    assert {t for t in last if t in delivered} <= redeliverable
    for tag in last:
        delivered[tag] = delivered.get(tag, 0) + 1
    assert set(delivered) == set(written), "a message was never delivered"
    twice = sorted(t for t, n in delivered.items() if n > 1)
    inbox, archive = _mailbox(store)
    assert not inbox and set(archive) == set(written)
    finish(bench, Ledger())
    bench.notes.append(f"{len(written)} messages, {len(twice)} delivered twice")


# -- a store's lifecycle -----------------------------------------------------------------


def _usable(bench: Bench, locator: str) -> None:
    """The store at ``locator`` opens, takes a job and a file, and holds nothing torn."""
    store = bench.fresh(locator)
    job = JobDescription(jobName="after")
    store.create_job(job)
    with store.write_file_stream(job.jobStoreID) as (out, file_id):
        out.write(b"after a crash")
    assert _read(bench.fresh(locator), file_id) == b"after a crash"
    clean(store, older_than=0)
    assert bench.temporaries(store) == set()


def test_initialize(bench: Bench) -> None:
    """A killed initialize() is re-run to success, or the store it made opens."""
    outcomes: list[str] = []
    for number in range(bench.rounds):
        places = [_place(bench, f"init-{number}-{k}") for k in range(30)]
        params = {"locators": places, "options": bench.target.options}
        r = bench.kill("initialize", params, after=range(0, 3), locator="-")
        with checking(r):
            for e in r.done:
                bench.fresh(e["locator"])
            if r.in_flight:
                place = r.in_flight["locator"]
                left = len(raw_keys(bench.open(place)))
                try:
                    bench.open(place).initialize()
                    outcomes.append(f"{left} keys, initialized again")
                except JobStoreExistsException:
                    outcomes.append(f"{left} keys, made")
                _usable(bench, place)
            begun = {e["locator"] for e in r.of("begin")}
            for place in places:
                if place not in begun:
                    untouched = bench.open(place)
                    with pytest.raises(NoSuchJobStoreException):
                        untouched.resume()
                    assert raw_keys(untouched) == set()
            for place in begun:
                bench.open(place).destroy()
    bench.notes.append(f"killed initialize(): {outcomes}")


#: Jobs in each store destroyed, and stores destroyed in a row (local deletes are quick:
#: more of them make a kill land inside one).
JOBS = {"file": 200, "s3": 12}
PLACES = {"file": 6, "s3": 4}


def _populate(bench: Bench, locator: str) -> dict[str, bytes]:
    """Make a store with jobs, files, a shared file and logs; return its files' contents."""
    store = bench.open(locator)
    store.initialize()
    jobs = [JobDescription(jobName=f"j{i}") for i in range(JOBS[bench.backend])]
    with store.batch():
        for job in jobs:
            store.create_job(job)
    files: dict[str, bytes] = {}
    for i in range(len(jobs) // 2):
        # Most with no job: one folder, so removing the emptied folders, last,
        # is quick, and more kills land while data is being deleted.
        owner = jobs[i].jobStoreID if i < 3 else None
        data = content(f"{posixpath.basename(locator)}-{i}", 3000)
        with store.write_file_stream(owner, cleanup=i == 0) as (out, fid):
            out.write(data)
        files[fid] = data
    with store.write_shared_file_stream("shared") as out:
        out.write(b"shared")
    for i in range(4):
        store.write_logs(f"message {i}")
    _logs(store)
    store.write_logs("pending")
    return files


def test_destroy(bench: Bench) -> None:
    """A killed destroy() is finished by destroy(), with or without the marker left."""
    outcomes: list[str] = []
    for number in range(bench.rounds):
        places = [_place(bench, f"gone-{number}-{k}") for k in range(PLACES[bench.backend])]
        stored = {place: _populate(bench, place) for place in places}
        params = {"locators": places, "options": bench.target.options}
        r = bench.kill("destroy", params, after=range(0, 2), locator="-")
        with checking(r):
            finished = {e["locator"] for e in r.done}
            killed = r.in_flight["locator"] if r.in_flight else None
            for place in places:
                store = bench.open(place)
                if place == killed:
                    left = raw_keys(store)
                    marked = layout_.MARKER in left
                    outcomes.append(f"{'marker' if marked else 'no marker'}, {len(left)} keys")
                    store.destroy()
                elif place in finished:
                    assert raw_keys(store) == set(), f"{place}: destroyed, yet holds data"
                else:  # not reached: whole
                    store.resume()
                    assert len(list(store.jobs())) == JOBS[bench.backend]
                    for file_id, data in stored[place].items():
                        assert _read(store, file_id) == data
                    store.destroy()
                assert raw_keys(store) == set()
                with pytest.raises(NoSuchJobStoreException):
                    bench.open(place).resume()
            if killed:  # the location is not wedged: a store can be made there again
                bench.open(killed).initialize()
                _usable(bench, killed)
                bench.open(killed).destroy()
    bench.notes.append(f"killed destroy(): {outcomes}")
