"""The store under transient faults, on every backend that has them.

Object stores are reached through :class:`~tests.faults.proxy.FaultProxy`,
which answers a fraction of requests as the real service does when it fails
(S3's 503 SlowDown and 500 InternalError, GCS's 429 and 503, Azure's 503
ServerBusy and 500) or drops the connection before or after the server
acted. The clients' own retry policies must recover. SFTP, FTP and kvfs go
through :func:`~tests.faults.wrapper.faulty`, which fails a fraction of
calls with the errors those clients raise; fsjobstore's own retries
(:mod:`fsjobstore.backends.retries`) must recover. Local disk and memory
have no transient failures, so no retries, and are not run here.

The contract must hold: nothing lost, nothing torn, each log message
delivered once. When every request fails, the store must give up within a
bounded time with a builtin or fsjobstore error naming what failed.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest

from fsjobstore import JobDescription, JobStore
from fsjobstore.backends import retries, sftp
from fsjobstore.errors import JobStoreError
from fsjobstore.testing import Target

from . import servers
from .conftest import BUCKET
from .faults import workload
from .faults.proxy import FaultProxy, Plan
from .faults.services import AZURE, GCS, S3, Service
from .faults.wrapper import FaultPlan, faulty

#: Share of requests (object stores) or calls (the others) that fail.
FRACTION = 0.05
#: Which faults each object store gets.
HTTP_FAULTS = {
    "s3": ("slowdown", "internal", "reset-before", "reset-after", "reset-mid"),
    "gcs": ("ratelimit", "unavailable", "reset-before", "reset-after", "reset-mid"),
    "azure": ("busy", "internal", "reset-before", "reset-after", "reset-mid"),
}
SERVICES: dict[str, Service] = {"s3": S3, "gcs": GCS, "azure": AZURE}


@dataclass
class Faulty:
    """A store location behind faults, and the same location without them."""

    name: str
    target: Target
    clean: Target
    proxy: FaultProxy | None = None
    plan: FaultPlan | None = None

    def counts(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        if self.proxy is not None:
            return dict(self.proxy.counts)
        assert self.plan is not None
        return dict(self.plan.counts)

    def calls(self) -> int:
        """Requests (object stores) or calls (the others) seen since the last :meth:`set`."""
        if self.proxy is not None:
            return self.proxy.requests
        assert self.plan is not None
        return self.plan.calls

    def set(self, fraction: float, seed: int = 1, kinds: tuple[str, ...] | None = None) -> None:
        """Fail ``fraction`` of what follows."""
        if self.proxy is not None:
            self.proxy.reset(Plan(fraction, kinds or HTTP_FAULTS[self.name], seed))
        else:
            assert self.plan is not None
            self.plan.fraction, self.plan.seed = fraction, seed
            self.plan.counts.clear()

    def elsewhere(self, name: str) -> Faulty:
        """The same place, for a store in the folder ``name`` below this one's."""
        return dataclasses.replace(
            self,
            target=dataclasses.replace(self.target, locator=f"{self.target.locator}/{name}"),
            clean=dataclasses.replace(self.clean, locator=f"{self.clean.locator}/{name}"),
        )

    def open(self) -> JobStore:
        """A store on the faulty location (Azure gets a quicker retry back-off)."""
        store = self.target.open()
        if self.name == "azure":
            quick_azure_retries(store)
        return store


def quick_azure_retries(store: JobStore) -> None:
    """Give the store's Azure client the SDK's retry policy with short waits.

    The SDK's default waits 15, 18 and 24 s (±3 s) between attempts; the
    policy is otherwise the same (``retry_total=3``, same statuses). adlfs
    does not pass a retry policy through, so its client is replaced, through
    the SDK's public constructor.
    """
    from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

    fs = store.fs
    fs.service_client = BlobServiceClient.from_connection_string(
        fs.connection_string,
        retry_policy=ExponentialRetry(initial_backoff=1, increment_base=2, random_jitter_range=1),
    )


def _proxied(request: pytest.FixtureRequest, name: str) -> Faulty:
    server = request.getfixturevalue(name)
    proxy: FaultProxy = request.getfixturevalue(f"{name}_proxy")
    proxy.reset()
    unique = uuid.uuid4().hex
    scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[name]
    direct = server.storage_options()
    for setting in ("skip_instance_cache", "use_listings_cache"):
        direct.pop(setting, None)
    proxied: dict[str, Any]
    if name == "s3":
        proxied = {**direct, "client_kwargs": {"endpoint_url": proxy.url}}
    elif name == "gcs":
        proxied = {**direct, "endpoint_url": proxy.url}
    else:
        upstream = f":{proxy.upstream_port}/"
        proxied = {
            **direct,
            "connection_string": direct["connection_string"].replace(upstream, f":{proxy.port}/"),
        }
    locator = f"{scheme}://{BUCKET}/{unique}"
    return Faulty(name, Target(name, locator, proxied), Target(name, locator, direct), proxy)


def _wrapped(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Faulty:
    unique = uuid.uuid4().hex
    plan = FaultPlan()
    if name == "sftp":
        sshd = request.getfixturevalue("sftp_site")
        options = sshd.storage_options()
        locator = sshd.url(f"stores/{unique}")
        cls = fsspec.get_filesystem_class("sftp")
    elif name == "ftp":
        ftp = request.getfixturevalue("ftp_site")
        options = {"username": ftp.user, "password": ftp.password}
        locator = f"ftp://{ftp.host}:{ftp.port}/stores/{unique}"
        cls = fsspec.get_filesystem_class("ftp")
    else:
        options = {"base": str(tmp_path / "kvfs")}
        locator = f"kvfs://bucket/{unique}"
        cls = fsspec.get_filesystem_class("kvfs")
    faulty(cls, f"faulty{name}", plan)
    scheme, rest = locator.split("://", 1)
    # The faulty protocol is not in fsjobstore's table: what it implies is given here.
    extra = {"use_listings_cache": False} if name == "ftp" else {}
    target = Target(name, f"faulty{scheme}://{rest}", {**options, **extra})
    return Faulty(name, target, Target(name, locator, options), plan=plan)


@pytest.fixture(scope="module")
def s3_proxy(s3: servers.S3Server) -> Iterator[FaultProxy]:
    with FaultProxy(int(s3.endpoint_url.rsplit(":", 1)[1]), S3) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def gcs_proxy(gcs: servers.GCSServer) -> Iterator[FaultProxy]:
    with FaultProxy(int(gcs.endpoint_url.rsplit(":", 1)[1]), GCS) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def azure_proxy(azure: servers.AzureServer) -> Iterator[FaultProxy]:
    port = int(azure.endpoint_url.split(":")[2].split("/")[0])
    with FaultProxy(port, AZURE) as proxy:
        yield proxy


@pytest.fixture
def place(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Faulty]:
    """A faulty location on the backend named by the test's parameter, faults off."""
    name = request.param
    if name == "sftp":
        # An exclusive create whose reply is lost leaves a lock the writer
        # cannot tell from another's: it waits until the lock counts as
        # abandoned. Shortened here, so the test measures recovery, not waits.
        monkeypatch.setattr(sftp, "LOCK_ABANDONED", 2.0)
    faulty_place = (
        _proxied(request, name) if name in SERVICES else _wrapped(request, name, tmp_path)
    )
    yield faulty_place
    faulty_place.set(0.0)
    try:
        faulty_place.clean.open().destroy()
    except JobStoreError:
        pass


#: SFTP under faults is slow: every dropped connection is a new SSH handshake,
#: and a lost reply to a lock's exclusive create waits for the lock to expire.
#: FTP reads a big stream as many ranged RETRs, each of which may fail.
SFTP = pytest.param("sftp", marks=pytest.mark.long)
FTP = pytest.param("ftp", marks=pytest.mark.long)
BACKENDS = ["s3", "gcs", "azure", SFTP, FTP, "kvfs"]


@pytest.mark.parametrize("place", BACKENDS, indirect=True)
def test_workload_keeps_the_contract_under_faults(place: Faulty) -> None:
    # An object store's workload makes a request where the others make several
    # calls: it runs longer, so that 5% of it is still a handful of faults.
    size = {"jobs": 8, "updates": 4} if place.proxy is not None else {}
    # Which requests fail follows from their paths, which hold random IDs: a
    # run that drew fewer than two faults proves little, and runs again in a
    # fresh store (about 1 run in 150 on the object stores, at 140 requests).
    for attempt in range(3):
        here = place.elsewhere(f"run{attempt}")
        store = here.open()
        store.initialize()
        here.set(FRACTION, seed=7)
        started = time.monotonic()
        expected = workload.run(store, big=here.name != "azure", **size)
        took = time.monotonic() - started
        counts, calls = here.counts(), here.calls()
        here.set(0.0)
        print(f"{here.name}: {took:.1f} s, {calls} requests or calls, injected {counts}")
        checker = here.clean.open()
        checker.resume()
        workload.check(checker, expected)
        if sum(counts.values()) >= 2:
            return
    raise AssertionError(f"too few faults to mean anything in 3 runs: {counts}")


@pytest.mark.parametrize("place", ["s3", "gcs", "azure"], indirect=True)
def test_reads_survive_answers_cut_short(place: Faulty) -> None:
    """A GET whose body breaks off midway is asked again, for every kind of read.

    The clients retry a failed request, but the body is read after the
    request returned; fsjobstore's single-request reads must cover it.
    """
    store = place.open()
    store.initialize()
    job = JobDescription(jobName="read")
    job.payload = "p" * 50_000
    store.create_job(job)
    small = workload.content(300_000, "small")
    with store.write_shared_file_stream("shared") as stream:
        stream.write(small)
    big = workload.content(workload.BIG, "big")
    with store.write_file_stream() as (stream, file_id):
        stream.write(big)
    assert place.proxy is not None
    # The Azure SDK reads a body three times at most: two cuts in a row stay within it.
    cuts = Plan(0.15, ("reset-mid",), seed=11, methods=frozenset({"GET"}), most_in_a_row=2)
    place.proxy.reset(cuts)
    for _ in range(40):
        assert store.load_job(job.jobStoreID or "").payload == job.payload
        with store.read_shared_file_stream("shared") as stream:
            assert stream.read() == small
        if place.counts().get("reset-mid", 0) >= 3:
            break
    with store.read_file_stream(file_id) as stream:
        assert stream.read() == big
    print(f"{place.name}: {place.counts()}")
    assert place.counts().get("reset-mid", 0) >= 3, place.counts()


@pytest.mark.parametrize("place", [SFTP, FTP, "kvfs"], indirect=True)
def test_big_streams_survive_faults(place: Faulty) -> None:
    """Streams above the spool block, written and read while calls fail."""
    store = place.open()
    store.initialize()
    job = JobDescription(jobName="owner")
    store.create_job(job)
    data = workload.content(workload.BIG, "big")
    place.set(FRACTION, seed=3)
    with store.write_file_stream(job.jobStoreID) as (stream, file_id):
        for start in range(0, len(data), 1 << 20):
            stream.write(data[start : start + (1 << 20)])
    with store.read_file_stream(file_id) as stream:
        assert stream.read() == data
    place.set(0.0)
    checker = place.clean.open()
    checker.resume()
    with checker.read_file_stream(file_id) as stream:
        assert stream.read() == data


#: Exception types a store may raise when the service keeps failing.
CLEAR = (OSError, JobStoreError)


def _assert_clear(error: BaseException) -> None:
    assert isinstance(error, CLEAR), f"raw client error: {type(error).__module__}.{error!r}"
    assert type(error).__module__ in ("builtins", "fsjobstore.errors"), type(error)
    assert str(error), "an error with no message"


@pytest.mark.parametrize("place", ["sftp", "ftp", "kvfs"], indirect=True)
def test_when_retries_run_out_the_error_is_clear(
    place: Faulty, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = place.open()
    store.initialize()
    job = JobDescription(jobName="doomed")
    store.create_job(job)
    place.set(1.0)
    started = time.monotonic()
    with pytest.raises(CLEAR) as raised:
        store.load_job(job.jobStoreID or "")
    took = time.monotonic() - started
    _assert_clear(raised.value)
    assert (job.jobStoreID or "?") in str(raised.value) or "jobs/" in str(raised.value)
    assert took < 30, f"gave up only after {took:.1f} s"
    assert place.plan is not None and place.plan.injected >= retries.DEFAULT.attempts


@pytest.mark.long
@pytest.mark.parametrize(
    ("place", "kinds"),
    [
        ("s3", ("internal",)),
        ("s3", ("reset-before",)),
        ("gcs", ("unavailable",)),
        ("gcs", ("reset-before",)),
        ("azure", ("busy",)),
    ],
    indirect=["place"],
)
def test_object_store_gives_up_with_a_clear_error(place: Faulty, kinds: tuple[str, ...]) -> None:
    store = place.open()
    store.initialize()
    job = JobDescription(jobName="doomed")
    store.create_job(job)
    place.set(1.0, kinds=kinds)
    started = time.monotonic()
    with pytest.raises(CLEAR) as raised:
        store.load_job(job.jobStoreID or "")
    took = time.monotonic() - started
    print(f"{place.name} {kinds}: gave up after {took:.1f} s, {place.counts()}")
    _assert_clear(raised.value)
    assert took < 120


def test_local_and_memory_get_no_retries(tmp_path: Path) -> None:
    """Nothing there fails transiently: no wrapper, no cost on the fast path."""
    for locator in (str(tmp_path / "store"), f"memory://faults-{uuid.uuid4().hex}"):
        store = JobStore(locator)
        assert type(store.fs).__module__.startswith("fsspec.implementations")
