"""What every emulator needs: free ports, readiness probes, subprocesses stopped cleanly."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

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
START_ATTEMPTS = 6

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
