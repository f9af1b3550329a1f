"""Toil's job descriptions as fsjobstore jobs.

Toil pickles its own ``JobDescription`` objects and reads them back itself;
that pickle is Toil's format, not fsjobstore's. Here, and nowhere else in
fsjobstore, it is kept: as opaque bytes, base64-encoded in one attribute of
an ordinary fsjobstore job document, beside the job's names so that a person
browsing the store (``fsjobstore status``) still sees what each job is.

Toil writes its jobs last-writer-wins: a worker commits a job from a
background thread while it moves on to the next job under the same ID, and
the leader rewrites jobs that a worker changed since the leader read them.
fsjobstore's ``update_job`` is conditional, so the Toil layer keeps, per job,
the last fsjobstore job object it read or wrote (which carries its storage
version) and, when the store reports a concurrent change, reloads and writes
again. That keeps an update to one request when nothing else wrote the job,
which is the usual case.
"""

from __future__ import annotations

import base64
import binascii
import pickle
import re
import secrets
import threading
from collections import OrderedDict
from typing import Any

from .. import JobDescription as StoredJob

__all__ = ["ATTRIBUTE", "VersionCache", "decode", "encode", "new_job_id"]

#: The attribute of the stored job document that holds Toil's pickle, base64.
ATTRIBUTE = "toilPickle"
#: Characters of a job name kept at the front of a job ID, for people.
_NAME_CHARS = 40
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_job_id(job_name: str) -> str:
    """Return a fresh job ID: the job's name, made safe, then 128 random bits.

    Toil's own local store groups jobs by name on disk; keeping the name in
    the ID keeps a store browsable. The random part alone makes IDs unique
    across every process and machine, with no coordination.
    """
    slug = _UNSAFE.sub("_", job_name or "").strip("._-")[:_NAME_CHARS]
    token = secrets.token_hex(16)
    return f"{slug}-{token}" if slug else token


def encode(toil_job: Any, job_id: str) -> StoredJob:
    """Return the fsjobstore job that stores ``toil_job`` under ``job_id``.

    Raises
    ------
    pickle.PicklingError, TypeError
        Toil's job cannot be pickled.
    """
    stored = StoredJob(
        jobName=str(getattr(toil_job, "jobName", "") or ""),
        unitName=str(getattr(toil_job, "unitName", "") or ""),
        displayName=str(getattr(toil_job, "displayName", "") or ""),
        jobStoreID=job_id,
        remainingTryCount=int(getattr(toil_job, "remainingTryCount", 0) or 0),
    )
    setattr(stored, ATTRIBUTE, payload(toil_job))
    return stored


def payload(toil_job: Any) -> str:
    """Toil's pickle of ``toil_job``, base64-encoded."""
    return base64.b64encode(pickle.dumps(toil_job, protocol=pickle.HIGHEST_PROTOCOL)).decode()


def decode(stored: StoredJob) -> Any:
    """Return the Toil job stored in ``stored``.

    Unpickling runs code named in the pickle: a job store holding Toil jobs
    must be trusted, exactly as Toil's own stores must.

    Raises
    ------
    ValueError
        The document holds no Toil job (it was not written by this layer).
    """
    text = getattr(stored, ATTRIBUTE, None)
    if not isinstance(text, str):
        raise ValueError(
            f"job {stored.jobStoreID!r} holds no Toil job: it was not written through Toil"
        )
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"job {stored.jobStoreID!r}: its Toil job is not base64: {exc}") from exc
    return pickle.loads(data)


class VersionCache:
    """The last stored job object seen per job ID, in the order of their use.

    Each object carries the storage version it was read or written as, so an
    update can be conditional on it without reading the job first. Their Toil
    payloads are dropped once written, so an entry costs a few hundred bytes.
    Thread-safe; holds at most ``size`` entries, forgetting the least
    recently used.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._entries: OrderedDict[str, StoredJob] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: str) -> StoredJob | None:
        """Return the object last seen for ``job_id``, or None."""
        with self._lock:
            found = self._entries.get(job_id)
            if found is not None:
                self._entries.move_to_end(job_id)
            return found

    def put(self, job_id: str, stored: StoredJob) -> None:
        """Remember ``stored`` (without its payload) as the latest for ``job_id``."""
        setattr(stored, ATTRIBUTE, None)
        with self._lock:
            self._entries[job_id] = stored
            self._entries.move_to_end(job_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def drop(self, job_id: str) -> None:
        """Forget ``job_id``."""
        with self._lock:
            self._entries.pop(job_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
