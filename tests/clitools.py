"""Running the real ``fsjobstore`` console script, and stores worth looking at."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fsjobstore import Config, JobDescription, JobStore
from fsjobstore.testing import Target


def script() -> str:
    """The console script installed beside this interpreter."""
    found = shutil.which("fsjobstore", path=sysconfig.get_path("scripts"))
    assert found is not None, f"no fsjobstore console script beside {sys.executable}"
    return found


def environment(
    target: Target | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment, plus what reaches ``target``'s storage with no options."""
    env = dict(os.environ)
    env.update(target.env if target is not None else {})
    env.update(extra or {})
    # fsspec reads FSSPEC_<PROTOCOL>_<KEY> at import: the SFTP and FTP targets' options.
    for protocol, options in (target.config if target is not None else {}).items():
        for key, value in options.items():
            env[f"FSSPEC_{protocol.upper()}_{key.upper()}"] = (
                value if isinstance(value, str) else json.dumps(value)
            )
    env.pop("COLUMNS", None)
    return env


@dataclass
class Run:
    """What one run of the console script did."""

    status: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.status == 0, self.err
        return json.loads(self.out)


def run(
    *argv: str,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> Run:
    """Run ``fsjobstore ARGV...`` to completion."""
    done = subprocess.run(
        [script(), *argv],
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin if stdin is not None else "",
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def open_store(target: Target) -> JobStore:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return JobStore(target.locator, **target.options)


@dataclass
class Made:
    """What :func:`populate` put in a store."""

    jobs: dict[str, str]  # job ID → name
    files: dict[str, bytes]  # file ID → content
    owned: dict[str, str | None]  # file ID → owning job (None: no job)
    orphans: set[str]  # files of a job deleted since
    shared: dict[str, bytes]
    pending: set[str]
    archived: set[str]


def populate(store: JobStore, jobs: int = 3, *, config: Config | None = None) -> Made:
    """Make a store holding one of everything: jobs, files with every flag, logs both ways."""
    store.initialize(config or Config(retryCount=4))
    made = Made({}, {}, {}, set(), {}, set(), set())
    created = []
    with store.batch():
        for i in range(jobs):
            job = store.create_job(JobDescription({"cores": 1}, jobName=f"job-{i}"))
            created.append(job)
    for job in created:
        made.jobs[job.jobStoreID or ""] = job.jobName
    first = created[0].jobStoreID
    with store.write_file_stream(first, cleanup=True, basename="f.txt") as (out, cleanup_id):
        out.write(b"cleanup file\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.sh")
        with open(path, "wb") as handle:
            handle.write(b"#!/bin/sh\necho executable\n")
        os.chmod(path, 0o755)
        executable_id = store.write_file(path, job_id=first)
    with store.write_file_stream(None, basename="free.txt") as (out, free_id):
        out.write(b"no owner\n" * 100)
    made.files.update(
        {
            cleanup_id: b"cleanup file\n",
            executable_id: b"#!/bin/sh\necho executable\n",
            free_id: b"no owner\n" * 100,
        }
    )
    made.owned.update({cleanup_id: first, executable_id: first, free_id: None})
    # An orphan: a job gone, its kept (cleanup=False) file still there.
    doomed = store.create_job(JobDescription({"cores": 1}, jobName="doomed"))
    with store.write_file_stream(doomed.jobStoreID, basename="left.txt") as (out, orphan):
        out.write(b"left behind\n")
    store.delete_job(doomed.jobStoreID or "")
    made.files[orphan], made.owned[orphan] = b"left behind\n", doomed.jobStoreID
    made.orphans.add(orphan)
    for name, data in {"config.json": b'{"a": 1}', "notes.txt": b"shared\n"}.items():
        with store.write_shared_file_stream(name) as out:
            out.write(data)
        made.shared[name] = data
    for message in ("archived one", "archived two"):
        store.write_logs(message)
    store.read_logs(lambda handle: made.archived.add(handle.read().decode()))
    for message in ("pending one", "pending two", "pending three"):
        store.write_logs(message)
        made.pending.add(message)
    return made


def assert_holds(store: JobStore, made: Made) -> None:
    """Check ``store`` holds what :func:`populate` made, every ID as it was."""
    assert {j.jobStoreID: j.jobName for j in store.jobs()} == made.jobs
    assert set(store.get_all_file_ids()) == set(made.files)
    for file_id, data in made.files.items():
        with store.read_file_stream(file_id) as handle:
            assert handle.read() == data, file_id
        assert store.get_file_job_association(file_id) == made.owned[file_id]
    for name, data in made.shared.items():
        with store.read_shared_file_stream(name) as handle:
            assert handle.read() == data
    archived: list[str] = []
    store.read_logs(lambda handle: archived.append(handle.read().decode()), read_all=True)
    # read_all delivers the archive first, then the pending ones (archiving them).
    assert set(archived) == made.archived | made.pending
    assert len(archived) == len(made.archived) + len(made.pending)
    assert store.config.retryCount == 4


def raw_keys(store: JobStore) -> set[str]:
    """Every key below the store's root, read from the filesystem directly."""
    skip = len(store.root) + 1
    return {p[skip:] for p in store.fs.find(store.root)}


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def as_args(options: Mapping[str, Any], flag: str = "-o") -> Sequence[str]:
    """Storage options as ``-o KEY=VALUE`` arguments."""
    args: list[str] = []
    for key, value in options.items():
        args += [flag, f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    return args
