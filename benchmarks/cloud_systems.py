"""The systems under test on object stores and in memory, behind ``systems.System``.

Per backend (S3 on moto, GCS on fake-gcs-server, Azure Blob on Azurite, and
fsspec's in-memory filesystem) there are up to three systems:

* ``floor``: raw fsspec, one call per object: a write is one ``pipe_file``, a
  read one ``cat_file``, a delete one ``rm_file``; a listing is one ``find``
  and one bulk ``cat`` of what it found; a job with files is deleted by one
  bulk ``rm`` of the list; ``read_file`` is ``get_file``; streams go through
  ``fs.open`` with an explicit block size; reading logs is ``find`` + ``cat``,
  then a bulk ``pipe`` into the archive and a bulk ``rm`` of the inbox.
* ``toil``: Toil 9.6's own store, where it has one: ``AWSJobStore`` on moto
  (``AWS_ENDPOINT_URL`` set, ``toil.lib.aws.s3.enable_encryption`` patched out,
  which moto rejects) and ``GoogleJobStore`` on fake-gcs-server
  (``STORAGE_EMULATOR_HOST`` set). Toil 9.6 has no Azure or in-memory store.
* ``fsjobstore``: ``fsjobstore.JobStore`` on the backend's fsspec URL.

Everything talks to emulators on 127.0.0.1 only: :func:`isolate` sets dummy
credentials, turns off the AWS and GCE metadata lookups, and installs an audit
hook that refuses any socket connection outside 127.0.0.0/8 (and ::1).
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import json
import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(1, str(HERE.parent))

from systems import REQUIREMENTS, ApiSystem, MiB, System  # noqa: E402

#: Block size of every stream opened through fsspec (the floor's) and of
#: fsjobstore's own object-store parts (``fsjobstore.backends.base.BLOCK_SIZE``).
STREAM_BLOCK = 8 * MiB
#: The backends, in the order they are run.
BACKENDS = ("s3", "gcs", "azure", "memory")
#: Which Toil store runs on which backend (Toil 9.6 has none for the others).
TOIL_STORES = {"s3": "AWSJobStore", "gcs": "GoogleJobStore"}
#: Why Toil is absent from a backend.
NO_TOIL = {
    "azure": "Toil 9.6 has no Azure job store (toil.jobStores holds only file, aws, google)",
    "memory": "Toil 9.6 has no in-memory job store",
}
BUCKET = "fsjobstore-bench"
GCS_PROJECT = "fsjobstore-bench"
AWS_REGION = "us-east-1"


# -- staying on 127.0.0.1 -----------------------------------------------------


def _loopback_only(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook: refuse any TCP connection to an address outside loopback."""
    if event != "socket.connect":
        return
    sock, address = args[0], args[1]
    if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
        return
    host = str(address[0])
    try:
        loopback = ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermissionError(f"benchmarks: refused a connection to {address!r} (not 127/8)")


_GUARDED: list[bool] = []


@dataclass
class Target:
    """Where a backend lives: what a child process needs to reach it (JSON-able).

    Attributes
    ----------
    backend
        One of :data:`BACKENDS`.
    endpoint_url
        The emulator's URL (None for memory).
    storage_options
        Keyword arguments for the backend's fsspec filesystem.
    """

    backend: str
    endpoint_url: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """This target as a JSON string (for ``rss.py --cloud``)."""
        return json.dumps(
            {
                "backend": self.backend,
                "endpoint_url": self.endpoint_url,
                "storage_options": self.storage_options,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Target:
        """The target a :meth:`to_json` string describes."""
        data = json.loads(text)
        return cls(data["backend"], data.get("endpoint_url"), dict(data["storage_options"]))


def isolate(target: Target | None = None) -> None:
    """Keep this process (and its children) on 127.0.0.1, with dummy credentials.

    Sets the environment Toil's stores read (``AWS_ENDPOINT_URL`` for S3,
    ``STORAGE_EMULATOR_HOST`` for GCS) when ``target`` is given, turns off the
    EC2 and GCE metadata lookups, and installs (once) an audit hook refusing
    any connection outside loopback.
    """
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "TOIL_AWS_PROFILE",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": AWS_REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "NO_GCE_CHECK": "true",
            "GOOGLE_CLOUD_PROJECT": GCS_PROJECT,
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }
    )
    if target is not None and target.endpoint_url:
        if target.backend == "s3":
            os.environ["AWS_ENDPOINT_URL"] = target.endpoint_url
        elif target.backend == "gcs":
            os.environ["STORAGE_EMULATOR_HOST"] = target.endpoint_url
    if not _GUARDED:
        sys.addaudithook(_loopback_only)
        _GUARDED.append(True)


def target_of(backend: str, server: Any | None) -> Target:
    """The target of a running emulator handle from ``tests.servers`` (None for memory)."""
    if server is None:
        return Target(backend)
    return Target(backend, str(server.endpoint_url), dict(server.storage_options()))


# -- the floor ----------------------------------------------------------------


def _read_all(handle: Any) -> int:
    total = 0
    while chunk := handle.read(MiB):
        total += len(chunk)
    return total


class FsspecFloor(System):
    """Raw fsspec on one filesystem: one call per object, bulk calls for many.

    No conditional writes: job IDs are fresh UUIDs (a create cannot collide)
    and an update is a blind write, as in Toil's stores.
    """

    def __init__(self, fs: Any, root: str) -> None:
        self.fs = fs
        self.root = root

    def _job(self, job_id: str) -> str:
        return f"{self.root}/jobs/{job_id}"

    def _find(self, prefix: str) -> list[str]:
        try:
            return list(self.fs.find(prefix))
        except FileNotFoundError:
            return []

    def new_job(self) -> dict[str, Any]:
        return {"requirements": REQUIREMENTS, "jobName": "j", "unitName": "u", "id": None}

    def create(self, job: dict[str, Any]) -> str:
        job["id"] = uuid.uuid4().hex
        self.fs.pipe_file(self._job(job["id"]), json.dumps(job).encode())
        return str(job["id"])

    def update(self, job: dict[str, Any]) -> None:
        self.fs.pipe_file(self._job(job["id"]), json.dumps(job).encode())

    def load(self, job_id: str) -> Any:
        return json.loads(self.fs.cat_file(self._job(job_id)))

    def delete(self, job_id: str) -> None:
        owned = self._find(f"{self.root}/files/{job_id}")
        if owned:
            self.fs.rm([*owned, self._job(job_id)])
        else:
            self.fs.rm_file(self._job(job_id))

    def list_jobs(self) -> int:
        paths = self._find(f"{self.root}/jobs")
        found = self.fs.cat(paths) if paths else {}
        for data in found.values():
            json.loads(data)
        return len(found)

    def write_file(self, local: str, job_id: str | None = None, cleanup: bool = False) -> str:
        path = f"{self.root}/files/{job_id or '_'}/{uuid.uuid4().hex}"
        with open(local, "rb") as handle:
            self.fs.pipe_file(path, handle.read())
        return path

    def read_file(self, file_id: str, out: str) -> None:
        self.fs.get_file(file_id, out)

    def read_link(self, file_id: str, out: str) -> None:
        self.fs.get_file(file_id, out)  # nothing to link to: a copy

    def read_stream(self, file_id: str) -> int:
        return len(self.fs.cat_file(file_id))

    def delete_file(self, file_id: str) -> None:
        self.fs.rm_file(file_id)

    def write_shared(self, name: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.root}/shared/{name}", data)

    def read_shared(self, name: str) -> int:
        return len(self.fs.cat_file(f"{self.root}/shared/{name}"))

    def write_logs(self, msg: str) -> None:
        self.fs.pipe_file(f"{self.root}/inbox/{uuid.uuid4().hex}", msg.encode())

    def read_logs(self, read_all: bool = False) -> int:
        count = 0
        if read_all:
            archived = self._find(f"{self.root}/archive")
            count += len(self.fs.cat(archived)) if archived else 0
        inbox = self._find(f"{self.root}/inbox")
        if inbox:
            found = self.fs.cat(inbox)
            archive = {f"{self.root}/archive/{p.rsplit('/', 1)[1]}": d for p, d in found.items()}
            self.fs.pipe(archive)
            self.fs.rm(list(found))
            count += len(found)
        return count

    def stream_write(self, block: bytes, blocks: int) -> str:
        path = f"{self.root}/files/_/{uuid.uuid4().hex}"
        with self.fs.open(path, "wb", block_size=STREAM_BLOCK) as handle:
            for _ in range(blocks):
                handle.write(block)
        return path

    def stream_read(self, file_id: str) -> int:
        with self.fs.open(file_id, "rb", block_size=STREAM_BLOCK) as handle:
            return _read_all(handle)


# -- making them --------------------------------------------------------------


def filesystem(target: Target) -> Any:
    """A fresh fsspec filesystem for ``target`` (the floor's)."""
    import fsspec

    protocol = {"s3": "s3", "gcs": "gs", "azure": "az", "memory": "memory"}[target.backend]
    return fsspec.filesystem(protocol, **target.storage_options)


def _url(target: Target, name: str) -> str:
    if target.backend == "memory":
        return f"memory://{BUCKET}/{name}"
    scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[target.backend]
    return f"{scheme}://{BUCKET}/{name}"


def _toil(module: str) -> Any:
    # Imported by name: Toil is a dependency of the bench session only.
    return importlib.import_module(module)


def _toil_config(locator: str) -> Any:
    config = _toil("toil.common").Config()
    config.jobStore = locator
    return config


def _make_toil(target: Target, name: str) -> tuple[System, Callable[[], None]]:
    job = _toil("toil.job")
    isolate(target)
    if target.backend == "s3":
        # Toil caches its boto3 sessions and clients per process: drop them
        # when the endpoint changes (cloud.py counts requests at another moto).
        session = _toil("toil.lib.aws.session")
        if getattr(session, "_bench_endpoint", None) != target.endpoint_url:
            session._global_manager = session.AWSConnectionManager()
            session._bench_endpoint = target.endpoint_url
        # moto rejects PutBucketEncryption's BlockedEncryptionTypes rule,
        # which AWSJobStore.initialize sends through this function.
        aws_s3 = _toil("toil.lib.aws.s3")
        aws_s3.enable_encryption = lambda bucket_name: None
        aws = _toil("toil.jobStores.aws.jobStore")
        store = aws.AWSJobStore(f"{AWS_REGION}:{name}")
        store.initialize(_toil_config(f"aws:{AWS_REGION}:{name}"))
    elif target.backend == "gcs":
        google = _toil("toil.jobStores.googleJobStore")
        store = google.GoogleJobStore(f"{GCS_PROJECT}:{name}")
        store.initialize(_toil_config(f"google:{GCS_PROJECT}:{name}"))
    else:
        raise ValueError(f"Toil has no store on {target.backend}: {NO_TOIL[target.backend]}")
    return ApiSystem(store, job.JobDescription), store.destroy


def make(kind: str, target: Target) -> tuple[System, Callable[[], None]]:
    """A fresh, initialized system of ``kind`` on ``target``, and how to remove it.

    Each call makes a new store: a new bucket for Toil (its stores own one
    bucket each), a new prefix in one bucket for the floor and fsjobstore.
    """
    name = f"fjb{uuid.uuid4().hex[:16]}"
    if kind == "floor":
        fs = filesystem(target)
        root = f"/{BUCKET}/{name}" if target.backend == "memory" else f"{BUCKET}/{name}"
        if target.backend != "memory" and not fs.exists(BUCKET):
            with contextlib.suppress(FileExistsError):
                fs.mkdir(BUCKET)

        def remove_floor() -> None:
            with contextlib.suppress(FileNotFoundError):
                fs.rm(root, recursive=True)

        return FsspecFloor(fs, root), remove_floor
    if kind == "toil":
        return _make_toil(target, name)
    if kind == "fsjobstore":
        from fsjobstore import Config, JobDescription, JobStore

        store = JobStore(_url(target, name), **target.storage_options)
        store.initialize(Config())
        return ApiSystem(store, JobDescription, {"missing_ok": True}), store.destroy
    raise ValueError(kind)


def kinds(backend: str) -> tuple[str, ...]:
    """The systems that run on ``backend``."""
    return ("floor", "toil", "fsjobstore") if backend in TOIL_STORES else ("floor", "fsjobstore")


@contextlib.contextmanager
def made(kinds_: tuple[str, ...], target: Target) -> Iterator[dict[str, System]]:
    """Fresh systems of ``kinds_`` on ``target``, removed afterwards."""
    systems: dict[str, System] = {}
    removers: list[Callable[[], None]] = []
    try:
        for kind in kinds_:
            system, remove = make(kind, target)
            systems[kind] = system
            removers.append(remove)
        yield systems
    finally:
        for remove in removers:
            with contextlib.suppress(Exception):
                remove()
