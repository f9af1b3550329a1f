"""Fixtures shared by every test: the backends the contract suite runs on."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fsjobstore.testing import Target

from . import servers

#: pytester runs the shipped contract suite the way a plugin author would.
pytest_plugins = ["pytester"]

# No client may go looking for credentials beyond 127.0.0.1 (cloud metadata
# servers): every test gives its own, or the test fails.
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
os.environ.setdefault("NO_GCE_CHECK", "True")

#: Every backend the contract suite runs on.
BACKENDS = ["memory", "file", "s3", "gcs", "azure", "sftp", "ftp", "kvfs"]
#: The bucket (or container) object-store tests share; each test has its own prefix.
BUCKET = "fsjobstore-test"


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
def sftp_site() -> Iterator[servers.SFTPServer]:
    """OpenSSH's sshd on 127.0.0.1, for the whole session."""
    with servers.sftp_server() as server:
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
        return Target(name, f"memory://fsjobstore-test-{unique}", processes=False)
    if name == "file":
        return Target(name, str(tmp_path / "store"))
    if name == "sftp":
        sshd = request.getfixturevalue("sftp_site")
        options = sshd.storage_options()
        locator = sshd.url(f"stores/{unique}")
        # The seed's samples pass no options: the key and the rest come from
        # fsspec's configuration, as for a user who sets it once.
        return Target(name, locator, options, config={"sftp": options, "ssh": options})
    if name == "kvfs":
        base = str(tmp_path / "kvfs")
        return Target(
            name, f"kvfs://bucket/{unique}", {"base": base}, config={"kvfs": {"base": base}}
        )
    if name == "ftp":
        ftp = request.getfixturevalue("ftp_site")
        account = {"username": ftp.user, "password": ftp.password}
        # Credentials as options, never in the locator.
        locator = f"ftp://{ftp.host}:{ftp.port}/stores/{unique}"
        return Target(name, locator, account, config={"ftp": account})
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
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """A fresh, empty location on each backend (the contract suite destroys it after)."""
    return make_target(request, request.param, tmp_path)


# ---------------------------------------------------------------------------------------
# Import and export: the servers of URL schemes, and the far side of a transfer.
# (tests/webservers.py runs the HTTP(S) and FTP servers; the object stores are the
# emulators above, in a bucket of their own.)
# ---------------------------------------------------------------------------------------

import contextlib  # noqa: E402
import shutil  # noqa: E402
from collections.abc import Callable  # noqa: E402

import fsspec  # noqa: E402

from . import webservers  # noqa: E402

#: Every URL scheme the import and export suite runs against.
SCHEMES = ["local", "http", "https", "ftp", "s3", "gs", "az", "memory"]
#: The bucket (or container) URLs of the object-store schemes point into.
FOREIGN_BUCKET = "fsjobstore-foreign"


@pytest.fixture(scope="session")
def http_site() -> Iterator[webservers.HTTPServer]:
    """An HTTP server on 127.0.0.1, for the whole session."""
    with webservers.http_server() as server:
        yield server


@pytest.fixture(scope="session")
def https_site() -> Iterator[webservers.HTTPServer]:
    """An HTTPS server on 127.0.0.1 with a certificate made for this session."""
    with webservers.http_server(tls=True) as server:
        yield server


@pytest.fixture(scope="session")
def ftp_site() -> Iterator[webservers.FTPServer]:
    """An FTP server on 127.0.0.1, for the whole session."""
    with webservers.ftp_server() as server:
        yield server


@dataclass
class Foreign:
    """The far side of an import or export: its URLs, raw access to it, its options.

    ``read``, ``write``, ``exists`` and ``names`` go to the storage behind the
    URLs directly (a directory, a bucket), never through the URL's protocol.
    """

    scheme: str
    url: Callable[[str], str]
    read: Callable[[str], bytes]
    write: Callable[[str, bytes], None]
    exists: Callable[[str], bool]
    names: Callable[[], set[str]]
    options: dict[str, Any] = field(default_factory=dict)
    #: The HTTP(S) server, for the tests that make it fail.
    site: webservers.HTTPServer | None = None


def _directory_side(scheme: str, base: Path, url: Callable[[str], str]) -> Foreign:
    base.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes) -> None:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(data)

    return Foreign(
        scheme,
        url,
        read=lambda name: (base / name).read_bytes(),
        write=write,
        exists=lambda name: (base / name).exists(),
        names=lambda: {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()},
    )


def _filesystem_side(
    scheme: str, fs: fsspec.AbstractFileSystem, base: str, options: dict[str, Any]
) -> Foreign:
    def names() -> set[str]:
        try:
            return {p[len(base) + 1 :] for p in fs.find(base)}
        except FileNotFoundError:
            return set()

    return Foreign(
        scheme,
        url=lambda name: f"{scheme}://{base}/{name}",
        read=lambda name: bytes(fs.cat_file(f"{base}/{name}")),
        write=lambda name, data: fs.pipe_file(f"{base}/{name}", data),
        exists=lambda name: bool(fs.exists(f"{base}/{name}")),
        names=names,
        options=options,
    )


@pytest.fixture(params=SCHEMES)
def foreign(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Foreign]:
    """A fresh, empty place on each URL scheme, behind its real server."""
    scheme, unique = request.param, uuid.uuid4().hex
    with contextlib.ExitStack() as cleanup:
        if scheme == "local":
            base = tmp_path / "foreign"
            side = _directory_side(scheme, base, lambda name: str(base / name))
        elif scheme in ("http", "https", "ftp"):
            server = request.getfixturevalue(f"{scheme}_site")
            if isinstance(server, webservers.HTTPServer):
                server.reset()
            side = _directory_side(
                scheme, server.root / unique, lambda name: server.url(f"{unique}/{name}")
            )
            cleanup.callback(shutil.rmtree, server.root / unique, ignore_errors=True)
            if isinstance(server, webservers.HTTPServer):
                side.site = server
                side.options = {"ssl": server.client_context()} if scheme == "https" else {}
        elif scheme == "memory":
            fs = fsspec.filesystem("memory")
            side = _filesystem_side(scheme, fs, f"/{FOREIGN_BUCKET}-{unique}", {})
            cleanup.callback(_remove, fs, f"/{FOREIGN_BUCKET}-{unique}")
        else:
            emulator = request.getfixturevalue({"s3": "s3", "gs": "gcs", "az": "azure"}[scheme])
            fs = fsspec.filesystem(scheme, **emulator.storage_options())
            if not fs.exists(FOREIGN_BUCKET):
                fs.mkdir(FOREIGN_BUCKET)
            # The options of a store on the same emulator: same service, same user.
            options = _client_options(emulator)
            side = _filesystem_side(scheme, fs, f"{FOREIGN_BUCKET}/{unique}", options)
            cleanup.callback(_remove, fs, f"{FOREIGN_BUCKET}/{unique}")
        yield side


def _remove(fs: fsspec.AbstractFileSystem, path: str) -> None:
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass  # the test wrote nothing there
