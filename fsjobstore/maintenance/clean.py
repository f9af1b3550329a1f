"""Reclaiming space: orphaned files, and what crashed writers left behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from .. import layout
from ..backends.temporaries import Temporary, find_temporaries, reclaim_temporaries
from ..store import JobStore
from ._access import data_backend
from .inventory import FileInfo, files

__all__ = ["DEFAULT_AGE", "CleanReport", "clean"]

#: Temporaries younger than this (seconds) are taken as a live writer's, and kept.
DEFAULT_AGE = 24 * 60 * 60.0

#: Orphans deleted per bulk call (one DeleteObjects request on S3).
_BATCH = 1000


@dataclass
class CleanReport:
    """What :func:`clean` removed, or would remove.

    Attributes
    ----------
    orphans
        Files written for a job that is no longer stored.
    temporaries
        Temporary files and unfinished uploads left by writers.
    dry_run
        True if nothing was removed.
    """

    orphans: list[FileInfo] = field(default_factory=list)
    temporaries: list[Temporary] = field(default_factory=list)
    dry_run: bool = False

    @property
    def bytes(self) -> int:
        """Bytes of the orphans and of the temporaries whose size is known."""
        return sum(f.size for f in self.orphans) + sum(t.size or 0 for t in self.temporaries)

    def as_json(self) -> dict[str, Any]:
        """Return the report as a JSON object."""
        return {
            "dry_run": self.dry_run,
            "bytes": self.bytes,
            "orphans": [f.as_json() for f in self.orphans],
            "temporaries": [
                {
                    "kind": t.kind,
                    "path": t.path,
                    "size": t.size,
                    "modified": t.modified,
                    "upload_id": t.upload_id,
                }
                for t in self.temporaries
            ],
        }


def clean(
    store: JobStore,
    *,
    older_than: float = DEFAULT_AGE,
    dry_run: bool = False,
    callback: Callback = DEFAULT_CALLBACK,
) -> CleanReport:
    """Delete orphaned files and the temporaries of crashed writers.

    An orphan is a file written for a job (``job_id=…``) that is no longer
    stored, whatever its ``cleanup`` flag: a file that should outlive its
    job is one written with no job. Files written with no job, and shared
    files, are never touched.

    Temporaries are what a writer killed in the middle of a write leaves
    where no reader looks: temporary files below the store's ``tmp/``
    (local disk, SFTP, FTP), incomplete multipart uploads (S3), uncommitted
    blobs (Azure). See :mod:`fsjobstore.backends.temporaries`.

    Run it while nothing else writes to the store: a job created after the
    listing of jobs, for which files were written before, would have those
    files taken as orphans; a live writer's temporary younger than
    ``older_than`` is kept, an older one would be removed under it.

    Parameters
    ----------
    store
        An open store.
    older_than
        Only temporaries last written at least this many seconds ago (one
        day by default); 0 for all.
    dry_run
        Only report what would be removed.
    callback
        An fsspec callback: told the number of things to remove, then one
        step per thing removed.

    Returns
    -------
    CleanReport
        What was removed (or would be).
    """
    backend = data_backend(store)
    report = CleanReport(
        orphans=files(store, orphans=True),
        temporaries=find_temporaries(backend, older_than),
        dry_run=dry_run,
    )
    if dry_run:
        return report
    callback.set_size(len(report.orphans) + len(report.temporaries))
    paths = [f"{backend.root}/{layout.parse_file_id(f.id).key}" for f in report.orphans]
    for start in range(0, len(paths), _BATCH):
        batch = paths[start : start + _BATCH]
        backend.delete_many(batch)
        callback.relative_update(len(batch))
    # Owner folders emptied by the deletes go too, where there are folders.
    for owner in sorted({f.job for f in report.orphans if f.job}):
        backend.prune(f"{backend.root}/{layout.owner_prefix(owner)}".rstrip("/"))
    for temporary in report.temporaries:
        reclaim_temporaries(backend, [temporary])
        callback.relative_update(1)
    return report
