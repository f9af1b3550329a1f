"""The correctness checks at the end of every scale-out run, done by the leader.

What the workers said they did is compared with what a fresh store object
finds: every counter increment that returned (no lost update; a conflict
that was not raised as ``ConcurrentFileModificationException`` would lose
one), every job and file kept and nothing deleted left, every log message
delivered once, no temporary or incomplete upload left. Then the store is
destroyed and nothing may remain under its root.
"""

from __future__ import annotations

import collections
import io
from typing import Any

from fsjobstore import JobStore

#: What a store may hold directly under its root.
_LAYOUT = ("jobs/", "files/", "stats/", ".fsjobstore.json")


def _leftovers(store: JobStore) -> list[str]:
    """Keys under the root outside the store's layout, and local temporaries in ``tmp/``."""
    root = store.root
    found = [p[len(root) + 1 :] for p in store.fs.find(root)]
    return sorted(p for p in found if not p.startswith(_LAYOUT))


def _incomplete_uploads(store: JobStore) -> int | None:
    """S3 multipart uploads left open under the root (None where there are none to list)."""
    if "s3" not in store.fs.protocol:
        return None
    bucket, _, prefix = store.root.partition("/")
    answer = store.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix)
    return len(answer.get("Uploads", []))


def verify(store: JobStore, command: dict[str, Any]) -> dict[str, Any]:
    """Check the store against the workers' reports; destroy it; return the findings.

    Parameters
    ----------
    store
        A fresh, resumed store object on the run's locator.
    command
        ``increments`` (shared job -> increments that returned), ``kept``
        (job -> file -> size), ``deleted_files`` (files of deleted jobs),
        ``logs`` (messages written), ``delivered`` (messages the leader
        already read), ``conflicts`` and ``errors`` (counts from the workers).

    Returns
    -------
    dict
        Each check with what it found; ``ok`` is True only if all passed.
    """
    out: dict[str, Any] = {}
    # Logs first: what the leader has not read yet is still in the inbox.
    delivered: list[str] = list(command["delivered"])
    store.read_logs(lambda h: delivered.append(io.BytesIO(h.read()).read().decode()))
    counts = collections.Counter(delivered)
    written = set(command["logs"])
    out["logs written"] = len(written)
    out["logs lost"] = len(written - set(counts))
    out["logs delivered twice"] = sum(1 for n in counts.values() if n > 1)
    out["logs unknown"] = len(set(counts) - written)

    kept: dict[str, dict[str, int]] = command["kept"]
    increments: dict[str, int] = command["increments"]
    stored = {str(job.jobStoreID): job for job in store.jobs()}
    lost_updates = phantom = 0
    for job_id, expected in increments.items():
        value = int(getattr(stored[job_id], "counter", -1)) if job_id in stored else -1
        lost_updates += max(0, expected - value)
        phantom += max(0, value - expected)
    out["increments"] = sum(increments.values())
    out["lost updates"] = lost_updates
    out["updates not returned but stored"] = phantom
    out["conflicts raised"] = command["conflicts"]
    expected_jobs = set(kept) | set(increments)
    out["jobs kept"] = len(kept)
    out["jobs lost"] = len(expected_jobs - set(stored))
    out["jobs deleted but present"] = len(set(stored) - expected_jobs)

    files = set(store.get_all_file_ids())
    expected_files = {fid: size for job in kept.values() for fid, size in job.items()}
    out["files kept"] = len(expected_files)
    out["files lost"] = len(set(expected_files) - files)
    out["files wrong size"] = sum(
        1
        for fid, size in expected_files.items()
        if fid in files and store.get_file_size(fid) != size
    )
    out["files deleted but present"] = len(files & set(command["deleted_files"]))
    out["files unknown"] = len(files - set(expected_files) - set(command["deleted_files"]))
    out["temporaries left"] = len(_leftovers(store))
    uploads = _incomplete_uploads(store)
    if uploads is not None:
        out["incomplete uploads"] = uploads
    out["worker errors"] = command["errors"]
    store.destroy()
    out["left after destroy"] = len(store.fs.find(store.root)) if store.fs.exists(store.root) else 0
    bad = [
        k
        for k, v in out.items()
        if k not in ("logs written", "increments", "conflicts raised", "jobs kept", "files kept")
        and v
    ]
    out["failed checks"] = bad
    out["ok"] = not bad
    return out
