"""The demo: a walk through the job store API on a fresh store, left to look at."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

from ..errors import JobStoreError, NoSuchJobStoreException
from ..job import Config, JobDescription
from ..redaction import redact
from ..store import JobStore

__all__ = ["DEFAULT_DEMO_STORE", "DEMO_MARK", "DemoRefused", "demo"]

#: Where the demo puts its store unless told otherwise.
DEFAULT_DEMO_STORE = "./fsjobstore-demo"
#: The config attribute that records a store as the demo's own (its value: True).
DEMO_MARK = "fsjobstoreDemo"


class DemoRefused(JobStoreError):
    """The demo's location holds a store the demo did not make; nothing was changed."""


def demo(
    locator: str = DEFAULT_DEMO_STORE,
    *,
    force: bool = False,
    say: Callable[[str], Any] = print,
    **storage_options: Any,
) -> JobStore:
    """Walk through the job store API on a fresh store, and leave it there.

    A store the demo made before (its config carries :data:`DEMO_MARK`) is
    replaced; any other store at ``locator`` is refused unless ``force``,
    and other data (no store's marker) is always refused.

    Parameters
    ----------
    locator
        Where to put the demo store.
    force
        Replace a store at ``locator`` that the demo did not make.
    say
        Called with each line of the walk-through.
    **storage_options
        For the filesystem; never stored.

    Returns
    -------
    JobStore
        The demo store, open.

    Raises
    ------
    DemoRefused
        A store the demo did not make is there, and ``force`` is false.
    NotAJobStoreError
        Other data is there.
    """
    store = JobStore(locator, **storage_options)
    _clear(store, force)
    store.initialize(Config(**{DEMO_MARK: True}))
    say(
        f"initialized a job store at {store.locator} ({type(store.fs).__name__}, root {store.root})"
    )

    job = store.create_job(
        JobDescription(
            requirements={"memory": 1024**3, "cores": 1, "disk": 1024**3},
            jobName="test_job",
            unitName="test_unit",
        )
    )
    say(f"created job {job.jobStoreID} (remainingTryCount={job.remainingTryCount})")
    job.remainingTryCount = 2
    store.update_job(job)
    loaded = store.load_job(job.jobStoreID or "")
    say(f"updated and reloaded it: remainingTryCount={loaded.remainingTryCount}")

    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "input.txt")
        with open(source, "w") as handle:
            handle.write("test data")
        file_id = store.write_file(source, job_id=job.jobStoreID, cleanup=True)
        say(f"wrote input.txt as file {file_id} ({file_id.size} bytes)")
        output = os.path.join(tmp, "output.txt")
        store.read_file(file_id, output)
        with open(output) as handle:
            say(f"read it back: {handle.read()!r}")

    with store.write_shared_file_stream("demo-notes.txt", encoding="utf-8") as shared:
        shared.write("shared files have well-known names\n")
    store.write_logs("the demo job ran")
    kept = store.create_job(JobDescription(requirements={"cores": 1}, jobName="kept_job"))
    with store.write_file_stream(kept.jobStoreID, basename="result.txt") as (out, result_id):
        out.write(b"a result that outlives its job\n")
    say(f"created job {kept.jobStoreID} with file {result_id}")

    store.delete_job(job.jobStoreID or "")
    say(f"deleted job {job.jobStoreID} and its cleanup file: exists={store.file_exists(file_id)}")
    say(f"left the store at {store.locator}: see it with 'fsjobstore status {store.locator}'")
    return store


def _clear(store: JobStore, force: bool) -> None:
    """Destroy the demo's earlier store at the location; refuse any other store."""
    try:
        store.resume()
        ours = getattr(store.config, DEMO_MARK, False) is True
    except NoSuchJobStoreException:
        return  # nothing, or other data, which initialize() refuses
    except JobStoreError:
        ours = False  # a marker that does not decode: a store, but not known to be ours
    if not ours and not force:
        raise DemoRefused(
            f"job store {redact(store.locator)!r} was not made by 'fsjobstore demo'; "
            "pass --force to replace it"
        )
    # destroy() deletes only a job store (it refuses anything without the
    # marker), so this removes a store and nothing else.
    store.destroy()
