"""Job writes killed at random: create_job, batch, update_job and delete_job."""

from __future__ import annotations

from fsjobstore import JobDescription

from .bench import MANY, Bench, Ledger, _place, checking, finish, settle, verify
from .contents import content, digest, text

# -- jobs --------------------------------------------------------------------------------


def test_create_job(bench: Bench) -> None:
    ledger = Ledger()
    for _ in range(bench.rounds):
        r = bench.kill("create_job", {"count": 100_000}, after=MANY[bench.backend])
        with checking(r):
            ledger.jobs.update({e["id"]: {e["id"]} for e in r.done})
            if r.in_flight:
                ledger.maybe_jobs[r.in_flight["id"]] = {r.in_flight["id"]}
            settle(ledger, verify(bench.fresh(), ledger))
            bench.note_leftovers()
    finish(bench, ledger)


def test_batch(bench: Bench) -> None:
    """A killed batch of 200 creates leaves any subset of them, each whole.

    Each round has a store of its own, so that reading every job back after
    a kill stays quick on moto.
    """
    kept = []
    for number in range(bench.rounds):
        place = _place(bench, f"batch-{number}")
        bench.open(place).initialize()
        ledger = Ledger()
        params = {"count": 10, "size": 200}
        r = bench.kill("batch", params, after=range(0, BATCHES[bench.backend]), locator=place)
        with checking(r):
            begun = {e["step"]: e["ids"] for e in r.of("begin")}
            for e in r.done:
                ledger.jobs.update({i: {i} for i in begun[e["step"]]})
            if r.in_flight:
                ledger.maybe_jobs.update({i: {i} for i in r.in_flight["ids"]})
            seen = verify(bench.fresh(place), ledger)
            if r.in_flight:
                kept.append(len(set(r.in_flight["ids"]) & set(seen.jobs)))
            settle(ledger, seen)
            bench.note_leftovers(place)
            if number == bench.rounds - 1:
                finish(bench, ledger, locator=place)
            else:  # checked: only the last round's store is cleaned and read again
                bench.open(place).destroy()
    bench.notes.append(f"jobs kept of each killed batch of 200: {kept}")


#: A child finishes fewer batches than this before the kill (moto takes 1.5 s a batch).
BATCHES = {"file": 4, "s3": 2}


def test_update_job(bench: Bench) -> None:
    ledger = Ledger()
    job = JobDescription(jobName="updated")
    job_id = bench.store.assign_job_id(job)
    job.tag = f"{job_id}-0"
    job.payload = text(job.tag)
    bench.store.create_job(job)
    ledger.jobs[job_id] = {job.tag}
    version = 0
    for _ in range(bench.rounds):
        params = {"job_id": job_id, "start": version + 1, "count": 100_000}
        r = bench.kill("update_job", params, after=range(0, 20))
        with checking(r):
            if r.done:
                ledger.jobs[job_id] = {r.done[-1]["tag"]}
            if r.in_flight:
                ledger.jobs[job_id].add(r.in_flight["tag"])
            seen = verify(bench.fresh(), ledger)
            settle(ledger, seen)
            version = int(seen.jobs[job_id].rsplit("-", 1)[1])
            bench.note_leftovers()
    # The job is updated by a fresh store object after all the kills.
    store = bench.fresh()
    loaded = store.load_job(job_id)
    loaded.tag = f"{job_id}-{version + 1}"
    loaded.payload = text(loaded.tag)
    store.update_job(loaded)
    ledger.jobs[job_id] = {loaded.tag}
    finish(bench, ledger)


def test_delete_job(bench: Bench) -> None:
    """Deleting jobs that own files: two deleted with the job (cleanup), one that stays."""
    ledger, orphans = Ledger(), set[str]()
    owned: dict[str, tuple[list[str], str]] = {}  # job -> (cleanup files, the file that stays)
    for number in range(bench.rounds):
        store, ids = bench.fresh(), []
        for i in range(30 if bench.backend == "file" else 8):  # local deletes are quick
            job = JobDescription(jobName="doomed")
            job_id = store.assign_job_id(job)
            job.tag, job.payload = job_id, text(job_id)
            store.create_job(job)
            ledger.jobs[job_id] = {job_id}
            files: list[str] = []
            for cleanup in (True, True, False):
                data = content(f"r{number}-{i}-{len(files)}", 2000)
                with store.write_file_stream(job_id, cleanup=cleanup) as (out, new):
                    out.write(data)
                ledger.files[new] = {digest(data)}
                files.append(str(new))
            owned[job_id] = (files[:2], files[2])
            ids.append(job_id)
        r = bench.kill("delete_job", {"ids": ids}, after=range(0, 6))
        with checking(r):
            for e in r.done:
                del ledger.jobs[e["id"]]
                for file_id in owned[e["id"]][0]:
                    del ledger.files[file_id]
                orphans.add(owned[e["id"]][1])
            doomed = r.in_flight["id"] if r.in_flight else None
            if doomed:
                ledger.maybe_jobs[doomed] = ledger.jobs.pop(doomed)
                for file_id in owned[doomed][0]:
                    ledger.maybe_files[file_id] = ledger.files.pop(file_id)
            store = bench.fresh()
            seen = verify(store, ledger, read=set())
            if doomed:
                if doomed not in seen.jobs:  # files go first: none of them may be left
                    assert not set(owned[doomed][0]) & seen.files, "job deleted before its files"
                # Interrupted or not, the deletion is finished by another store object.
                store.delete_job(doomed, missing_ok=True)
                assert not store.job_exists(doomed)
                assert not set(owned[doomed][0]) & set(store.get_all_file_ids())
                del ledger.maybe_jobs[doomed]
                for file_id in owned[doomed][0]:
                    del ledger.maybe_files[file_id]
                orphans.add(owned[doomed][1])
            settle(ledger, verify(store, ledger, read=set()))
            bench.note_leftovers()
    finish(bench, ledger, orphans)
