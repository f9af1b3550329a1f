"""The three systems under test, behind one interface: the floor, Toil, fsjobstore.

``Floor`` is plain Python doing the least work with the same guarantee (write a
temporary file and ``os.replace`` it; ``open``/``read``; ``os.remove``; a job is
a JSON document). ``ApiSystem`` drives any store that speaks Toil's job store
API: Toil's own ``FileJobStore`` or fsjobstore's ``JobStore``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import platform
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

KiB = 1024
MiB = 1024 * KiB
REQUIREMENTS = {"memory": 2**30, "cores": 1, "disk": 2**30, "preemptible": False}
SYSTEMS = ("floor", "toil", "fsjobstore")


class System:
    """What every system offers the benchmarks (all IDs are strings)."""

    def new_job(self) -> Any:
        raise NotImplementedError

    def create(self, job: Any) -> str:
        raise NotImplementedError

    def update(self, job: Any) -> None:
        raise NotImplementedError

    def load(self, job_id: str) -> Any:
        raise NotImplementedError

    def delete(self, job_id: str) -> None:
        raise NotImplementedError

    def list_jobs(self) -> int:
        raise NotImplementedError

    def batch(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def write_file(self, local: str, job_id: str | None = None, cleanup: bool = False) -> str:
        raise NotImplementedError

    def read_file(self, file_id: str, out: str) -> None:
        raise NotImplementedError

    def read_link(self, file_id: str, out: str) -> None:
        """``read_file`` with ``symlink=True``: a link where the system can make one."""
        raise NotImplementedError

    def read_stream(self, file_id: str) -> int:
        raise NotImplementedError

    def delete_file(self, file_id: str) -> None:
        raise NotImplementedError

    def write_shared(self, name: str, data: bytes) -> None:
        raise NotImplementedError

    def read_shared(self, name: str) -> int:
        raise NotImplementedError

    def write_logs(self, msg: str) -> None:
        raise NotImplementedError

    def read_logs(self, read_all: bool = False) -> int:
        raise NotImplementedError

    def stream_write(self, block: bytes, blocks: int) -> str:
        raise NotImplementedError

    def stream_read(self, file_id: str) -> int:
        raise NotImplementedError


def _read_all(handle: Any) -> int:
    total = 0
    while chunk := handle.read(MiB):
        total += len(chunk)
    return total


class Floor(System):
    """Plain Python: the same operations with the same atomicity, nothing more."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name in ("jobs", "files", "shared", "inbox", "archive", "tmp"):
            (root / name).mkdir(parents=True, exist_ok=True)
        self.tmp = str(root / "tmp")

    def _put(self, path: str, data: bytes) -> None:
        tmp = os.path.join(self.tmp, uuid.uuid4().hex)
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)

    def _job_path(self, job_id: str) -> str:
        return os.path.join(self.root, "jobs", job_id)

    def new_job(self) -> dict[str, Any]:
        return {"requirements": REQUIREMENTS, "jobName": "j", "unitName": "u", "id": None}

    def create(self, job: dict[str, Any]) -> str:
        job["id"] = uuid.uuid4().hex
        self._put(self._job_path(job["id"]), json.dumps(job).encode())
        return str(job["id"])

    def update(self, job: dict[str, Any]) -> None:
        self._put(self._job_path(job["id"]), json.dumps(job).encode())

    def load(self, job_id: str) -> Any:
        with open(self._job_path(job_id), "rb") as handle:
            return json.loads(handle.read())

    def delete(self, job_id: str) -> None:
        files = os.path.join(self.root, "files", job_id)
        if os.path.isdir(files):
            shutil.rmtree(files)
        os.remove(self._job_path(job_id))

    def list_jobs(self) -> int:
        jobs = os.path.join(self.root, "jobs")
        count = 0
        for name in os.listdir(jobs):
            with open(os.path.join(jobs, name), "rb") as handle:
                json.loads(handle.read())
            count += 1
        return count

    def write_file(self, local: str, job_id: str | None = None, cleanup: bool = False) -> str:
        owner = os.path.join(self.root, "files", job_id or "_")
        os.makedirs(owner, exist_ok=True)
        tmp = os.path.join(self.tmp, uuid.uuid4().hex)
        shutil.copyfile(local, tmp)
        path = os.path.join(owner, uuid.uuid4().hex)
        os.replace(tmp, path)
        return path

    def read_file(self, file_id: str, out: str) -> None:
        shutil.copyfile(file_id, out)  # a plain copy

    def read_link(self, file_id: str, out: str) -> None:
        tmp = f"{out}.{uuid.uuid4().hex}"  # replaced atomically, as fsjobstore does
        os.symlink(file_id, tmp)
        os.replace(tmp, out)

    def read_stream(self, file_id: str) -> int:
        with open(file_id, "rb") as handle:
            return len(handle.read())

    def delete_file(self, file_id: str) -> None:
        os.remove(file_id)

    def write_shared(self, name: str, data: bytes) -> None:
        self._put(os.path.join(self.root, "shared", name), data)

    def read_shared(self, name: str) -> int:
        with open(os.path.join(self.root, "shared", name), "rb") as handle:
            return len(handle.read())

    def write_logs(self, msg: str) -> None:
        self._put(os.path.join(self.root, "inbox", uuid.uuid4().hex), msg.encode())

    def read_logs(self, read_all: bool = False) -> int:
        inbox, archive = os.path.join(self.root, "inbox"), os.path.join(self.root, "archive")
        count = 0
        if read_all:
            for name in os.listdir(archive):
                with open(os.path.join(archive, name), "rb") as handle:
                    handle.read()
                count += 1
        for name in os.listdir(inbox):
            with open(os.path.join(inbox, name), "rb") as handle:
                handle.read()
            os.rename(os.path.join(inbox, name), os.path.join(archive, name))
            count += 1
        return count

    def stream_write(self, block: bytes, blocks: int) -> str:
        tmp = os.path.join(self.tmp, uuid.uuid4().hex)
        with open(tmp, "wb") as handle:
            for _ in range(blocks):
                handle.write(block)
        path = os.path.join(self.root, "files", uuid.uuid4().hex)
        os.replace(tmp, path)
        return path

    def stream_read(self, file_id: str) -> int:
        with open(file_id, "rb") as handle:
            return _read_all(handle)


class ApiSystem(System):
    """A store with Toil's job store API (Toil's FileJobStore or fsjobstore)."""

    def __init__(
        self,
        store: Any,
        job_class: Callable[..., Any],
        delete_options: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.job_class = job_class
        self.delete_options = delete_options or {}

    def new_job(self) -> Any:
        return self.job_class(requirements=dict(REQUIREMENTS), jobName="j", unitName="u")

    def create(self, job: Any) -> str:
        self.store.assign_job_id(job)
        self.store.create_job(job)
        return str(job.jobStoreID)

    def update(self, job: Any) -> None:
        self.store.update_job(job)

    def load(self, job_id: str) -> Any:
        return self.store.load_job(job_id)

    def delete(self, job_id: str) -> None:
        # Toil's delete_job does nothing for a missing job; fsjobstore's raises
        # unless missing_ok=True, which gives Toil's guarantee at Toil's price.
        self.store.delete_job(job_id, **self.delete_options)

    def list_jobs(self) -> int:
        return sum(1 for _ in self.store.jobs())

    def batch(self) -> contextlib.AbstractContextManager[Any]:
        return self.store.batch()  # type: ignore[no-any-return]

    def write_file(self, local: str, job_id: str | None = None, cleanup: bool = False) -> str:
        return str(self.store.write_file(local, job_id, cleanup))

    def read_file(self, file_id: str, out: str) -> None:
        self.store.read_file(file_id, out)

    def read_link(self, file_id: str, out: str) -> None:
        self.store.read_file(file_id, out, symlink=True)

    def read_stream(self, file_id: str) -> int:
        with self.store.read_file_stream(file_id) as handle:
            return len(handle.read())

    def delete_file(self, file_id: str) -> None:
        self.store.delete_file(file_id)

    def write_shared(self, name: str, data: bytes) -> None:
        with self.store.write_shared_file_stream(name) as handle:
            handle.write(data)

    def read_shared(self, name: str) -> int:
        with self.store.read_shared_file_stream(name) as handle:
            return len(handle.read())

    def write_logs(self, msg: str) -> None:
        self.store.write_logs(msg)

    def read_logs(self, read_all: bool = False) -> int:
        return int(self.store.read_logs(lambda handle: handle.read(), read_all))

    def stream_write(self, block: bytes, blocks: int) -> str:
        with self.store.write_file_stream() as (handle, file_id):
            for _ in range(blocks):
                handle.write(block)
        return str(file_id)

    def stream_read(self, file_id: str) -> int:
        with self.store.read_file_stream(file_id) as handle:
            return _read_all(handle)


def machine() -> dict[str, Any]:
    """What the figures were measured on, for the reports."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def make(kind: str, root: Path) -> System:
    """A fresh, initialized system of ``kind`` under ``root`` (which must not exist)."""
    if kind == "floor":
        return Floor(root)
    if kind == "toil":
        # Imported by name: Toil is a dependency of the bench session only.
        common = importlib.import_module("toil.common")
        file_store = importlib.import_module("toil.jobStores.fileJobStore")
        job = importlib.import_module("toil.job")
        config = common.Config()
        config.jobStore = f"file:{root}"
        store = file_store.FileJobStore(str(root))
        store.initialize(config)
        return ApiSystem(store, job.JobDescription)
    if kind == "fsjobstore":
        from fsjobstore import Config, JobDescription, JobStore

        ours = JobStore(str(root))
        ours.initialize(Config())
        return ApiSystem(ours, JobDescription, {"missing_ok": True})
    raise ValueError(kind)


@contextlib.contextmanager
def scratch(base: Path) -> Iterator[Path]:
    """A fresh directory under ``base``, removed afterwards."""
    path = base / f"fsjobstore-bench-{uuid.uuid4().hex}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
