"""Fixtures shared by every test: the backends the contract suite runs on."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fsjobstore import JobStore
from fsjobstore.errors import JobStoreError

from . import servers

#: Every backend the contract suite runs on.
BACKENDS = ["memory", "file", "s3", "gcs", "azure"]
#: The bucket (or container) object-store tests share; each test has its own prefix.
BUCKET = "fsjobstore-test"


@dataclass
class Target:
    """One place a store can live: a locator plus the storage options it needs."""

    backend: str
    locator: str
    options: dict[str, Any] = field(default_factory=dict)
    #: The same settings as the usual environment variables, for code that
    #: passes no storage options (the seed's samples, a user's own scripts).
    env: dict[str, str] = field(default_factory=dict)

    def open(self) -> JobStore:
        """A new, unopened store object on this locator."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return JobStore(self.locator, **self.options)


def _client_options(
    server: servers.S3Server | servers.GCSServer | servers.AzureServer,
) -> dict[str, Any]:
    # Only what reaches the server: the store must supply its own cache settings.
    options = server.storage_options()
    for cache_setting in ("skip_instance_cache", "use_listings_cache"):
        options.pop(cache_setting, None)
    return options


@pytest.fixture(scope="session")
def s3() -> Iterator[servers.S3Server]:
    """moto's S3 server on 127.0.0.1, for the whole session."""
    with servers.s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def gcs() -> Iterator[servers.GCSServer]:
    """fake-gcs-server on 127.0.0.1, for the whole session."""
    with servers.gcs_server() as server:
        yield server


@pytest.fixture(scope="session")
def azure() -> Iterator[servers.AzureServer]:
    """Azurite's blob service on 127.0.0.1, for the whole session."""
    with servers.azure_server() as server:
        yield server


def make_target(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Target:
    """A fresh, empty location on backend ``name``, starting its server if needed."""
    unique = uuid.uuid4().hex
    if name == "memory":
        # MemoryFileSystem is one dict per process: every test needs its own root.
        return Target(name, f"memory://fsjobstore-test-{unique}")
    if name == "file":
        return Target(name, str(tmp_path / "store"))
    scheme = {"s3": "s3", "gcs": "gs", "azure": "az"}[name]
    server = request.getfixturevalue(name)
    env = {
        "s3": lambda: {
            "AWS_ENDPOINT_URL": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": servers.S3Server.KEY,
            "AWS_SECRET_ACCESS_KEY": servers.S3Server.SECRET,
        },
        "gcs": lambda: {"STORAGE_EMULATOR_HOST": server.endpoint_url, "FSSPEC_GCS_TOKEN": "anon"},
        "azure": lambda: {
            "AZURE_STORAGE_CONNECTION_STRING": server.storage_options()["connection_string"]
        },
    }[name]()
    return Target(name, f"{scheme}://{BUCKET}/{unique}", _client_options(server), env)


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh, empty location on each backend."""
    spot = make_target(request, request.param, tmp_path)
    yield spot
    try:
        spot.open().destroy()
    except JobStoreError:
        pass  # a test left foreign data on purpose


@pytest.fixture
def store(target: Target) -> JobStore:
    """An initialized store: the writer in contract tests."""
    js = target.open()
    js.initialize()
    return js


@pytest.fixture
def reader(target: Target, store: JobStore) -> JobStore:
    """A second store object on the same locator: the reader in contract tests."""
    js = target.open()
    js.resume()
    return js
