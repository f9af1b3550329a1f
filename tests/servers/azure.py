"""Azurite's blob service from npm, installed on first use, as a subprocess."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ._process import (
    HOST,
    INSTALL_TIMEOUT,
    START_TIMEOUT,
    _Process,
    _start_process,
    _tail,
)

#: Azurite's fixed development account (public, documented by Microsoft).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
#: Azurite's fixed development key (public, documented by Microsoft).
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_prefix() -> Path:
    """Return the npm prefix where Azurite is installed on first use.

    Returns
    -------
    Path
        ``$FSJOBSTORE_AZURITE_PREFIX`` if set, else
        ``$XDG_CACHE_HOME/fsjobstore-azurite`` (``~/.cache`` by default).
    """
    explicit = os.environ.get("FSJOBSTORE_AZURITE_PREFIX")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fsjobstore-azurite"


def azurite_blob_command(install_timeout: float = INSTALL_TIMEOUT) -> Path:
    """Find ``azurite-blob``, installing Azurite with npm if needed.

    Looks on ``PATH`` first, then in :func:`azurite_prefix`; only if both
    miss, runs ``npm install --prefix <prefix> azurite@3`` (serialised
    with a file lock, so parallel test workers install once).

    Parameters
    ----------
    install_timeout : float, optional
        Seconds ``npm install`` may take.

    Returns
    -------
    Path
        The ``azurite-blob`` executable.

    Raises
    ------
    RuntimeError
        If npm is missing, the install fails or it takes too long.
    """
    on_path = shutil.which("azurite-blob")
    if on_path:
        return Path(on_path)
    prefix = azurite_prefix()
    command = prefix / "node_modules" / ".bin" / "azurite-blob"
    if command.is_file():
        return command
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("azurite-blob is not installed and npm is not on PATH to install it")
    prefix.mkdir(parents=True, exist_ok=True)
    with (prefix / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if command.is_file():  # another worker installed it meanwhile
            return command
        log_path = prefix / "npm-install.log"
        with log_path.open("wb") as log:
            try:
                done = subprocess.run(
                    [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                     "--no-save", "azurite@3"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=install_timeout,
                    check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired as err:
                raise RuntimeError(
                    f"npm install azurite took over {install_timeout:.0f} s\n"
                    f"--- log tail ---\n{_tail(log_path)}"
                ) from err
        if done.returncode != 0 or not command.is_file():
            raise RuntimeError(
                f"npm install azurite failed (status {done.returncode}) into {prefix}\n"
                f"--- log tail ---\n{_tail(log_path)}"
            )
    return command


class AzureServer:
    """A running Azurite blob service (Azure Blob emulator, in-memory).

    Attributes
    ----------
    endpoint_url : str
        Blob endpoint of the dev account, e.g.
        ``http://127.0.0.1:41234/devstoreaccount1``.
    connection_string : str
        Connection string for the dev account at :attr:`endpoint_url`.
    log_path : Path
        The server's console log.
    debug_log_path : Path or None
        Azurite's debug log (every request), if started with ``debug=True``.
    """

    def __init__(
        self,
        process: _Process,
        endpoint_url: str,
        workdir: Path,
        debug_log_path: Path | None,
    ) -> None:
        self._process = process
        self._workdir = workdir
        self.endpoint_url = endpoint_url
        self.log_path = process.log_path
        self.debug_log_path = debug_log_path
        self.connection_string = (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={AZURITE_ACCOUNT_NAME};"
            f"AccountKey={AZURITE_ACCOUNT_KEY};"
            f"BlobEndpoint={endpoint_url};"
        )

    def reset(self) -> None:
        """Delete every container (and so every blob).

        Raises
        ------
        RuntimeError
            If ``azure-storage-blob`` is not installed.
        """
        try:
            from azure.storage.blob import BlobServiceClient
        except ImportError as err:
            raise RuntimeError(f"cannot reset Azurite: {err}") from err
        with BlobServiceClient.from_connection_string(self.connection_string) as client:
            for container in client.list_containers():
                client.delete_container(container.name)

    def storage_options(self) -> dict[str, Any]:
        """Return the keyword arguments for ``adlfs.AzureBlobFileSystem``.

        Returns
        -------
        dict
            The dev account's connection string (which carries the local
            endpoint; ``account_name`` alone would mean the real Azure) and
            the cache settings under which a new instance never reuses
            another's listings.
        """
        return {
            "account_name": AZURITE_ACCOUNT_NAME,
            "connection_string": self.connection_string,
            "skip_instance_cache": True,
            "use_listings_cache": False,
        }

    def stop(self) -> None:
        """Stop the server and remove its working directory."""
        self._process.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)


def start_azure_server(
    timeout: float = START_TIMEOUT,
    install_timeout: float = INSTALL_TIMEOUT,
    debug: bool = False,
) -> AzureServer:
    """Start Azurite's blob service (in-memory) on ``127.0.0.1``.

    Parameters
    ----------
    timeout : float, optional
        Seconds the server may take to answer its first request.
    install_timeout : float, optional
        Seconds a first-use ``npm install`` may take.
    debug : bool, optional
        Write Azurite's debug log (one entry per request, and more) to
        :attr:`AzureServer.debug_log_path`.  Slows the server down.

    Returns
    -------
    AzureServer
        The running server; call :meth:`AzureServer.stop` when done.

    Raises
    ------
    RuntimeError
        If Azurite cannot be found or installed, or does not start in time.
    """
    command = azurite_blob_command(install_timeout)
    workdir = Path(tempfile.mkdtemp(prefix="fsjobstore-azurite-"))
    debug_log = workdir / "debug.log" if debug else None

    def argv(port: int) -> list[str]:
        args = [
            str(command),
            "--blobHost", HOST,
            "--blobPort", str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",  # telemetry would send data off this machine
            "--silent",
        ]  # fmt: skip
        if debug_log is not None:
            args += ["--debug", str(debug_log)]
        return args

    try:
        process, port = _start_process(
            "azurite-blob",
            argv,
            f"/{AZURITE_ACCOUNT_NAME}?comp=list",
            expect_status=HTTPStatus.FORBIDDEN,  # unsigned request: 403
            log_path=workdir / "server.log",
            timeout=timeout,
        )
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return AzureServer(process, f"http://{HOST}:{port}/{AZURITE_ACCOUNT_NAME}", workdir, debug_log)


@contextlib.contextmanager
def azure_server(
    timeout: float = START_TIMEOUT,
    install_timeout: float = INSTALL_TIMEOUT,
    debug: bool = False,
) -> Iterator[AzureServer]:
    """Run Azurite's blob service for the duration of a ``with`` block.

    Parameters
    ----------
    timeout : float, optional
        Seconds the server may take to start.
    install_timeout : float, optional
        Seconds a first-use ``npm install`` may take.
    debug : bool, optional
        Keep Azurite's per-request debug log (see :func:`start_azure_server`).

    Yields
    ------
    AzureServer
        The running server.
    """
    server = start_azure_server(timeout, install_timeout, debug)
    try:
        yield server
    finally:
        server.stop()
