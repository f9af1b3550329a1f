"""A real OpenSSH ``sshd`` on 127.0.0.1, for fsspec's ``sftp``/``ssh`` protocol (``sshfs``).

Debian's ``/usr/sbin/sshd`` (package ``openssh-server``) runs in the
foreground (``sshd -D -e -f CONFIG``) with a configuration, host key, client
key and authorized-keys file of its own in a temporary directory; nothing of
the system's ``/etc/ssh`` is read or changed.  Only key authentication is
accepted, for the user running the tests (``root`` on CI), and SFTP is
OpenSSH's ``internal-sftp``, the server most SFTP users meet.

:func:`sftp_server` is a context manager yielding an :class:`SFTPServer`;
:func:`start_sftp_server` returns the same handle for callers that manage
its lifetime (call :meth:`SFTPServer.stop`).  A missing ``sshd`` is an
error, never a skip: the suite must fail on a machine that lacks it.

Notes
-----
``sshd`` forks one process per connection and puts it in a session of its
own, so stopping the listener's process group alone would leave open
connections being served.  :meth:`SFTPServer.stop` also ends the
listener's descendants, found through ``/proc`` (Linux).
"""

from __future__ import annotations

import atexit
import contextlib
import getpass
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._process import HOST, START_ATTEMPTS, START_TIMEOUT, _free_port, _Process, _tail

__all__ = ["SFTPServer", "sftp_server", "sshd_binary", "start_sftp_server"]

#: Where Debian's ``openssh-server`` installs the daemon.
SSHD = Path("/usr/sbin/sshd")
#: sshd's privilege-separation directory, which it insists on when run as root.
PRIVSEP_DIR = Path("/run/sshd")
#: Channels per connection the server allows; sshfs opens up to 10 per
#: filesystem object (8 SFTP + 2 for shell commands), headroom beyond that.
MAX_SESSIONS = 64
#: Connections that may be mid-handshake at once; above OpenSSH's default
#: (10:30:100, which drops new connections at random) so that many
#: clients connecting together are never refused.
MAX_STARTUPS = 256

_INSTALL_HINT = (
    "install Debian's openssh-server (apt-get install -y --no-install-recommends openssh-server)"
)


def sshd_binary() -> Path:
    """Locate OpenSSH's ``sshd``.

    Returns
    -------
    Path
        ``/usr/sbin/sshd``, or an ``sshd`` found on ``PATH``.

    Raises
    ------
    RuntimeError
        If there is none; the message says which package to install.
    """
    if SSHD.is_file():
        return SSHD
    found = shutil.which("sshd")
    if found:
        return Path(found)
    raise RuntimeError(f"OpenSSH's sshd is not installed at {SSHD}: {_INSTALL_HINT}")


def _openssh_version(sshd: Path) -> tuple[int, int]:
    """Return the ``(major, minor)`` version of an OpenSSH ``sshd``.

    Parameters
    ----------
    sshd : Path
        The daemon.

    Returns
    -------
    tuple of int
        For example ``(9, 2)``; ``(0, 0)`` if the version cannot be read.
    """
    done = subprocess.run(
        [str(sshd), "-V"], capture_output=True, text=True, timeout=10, check=False
    )
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", done.stdout + done.stderr)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def _keygen(path: Path) -> None:
    """Write a new passphrase-less ed25519 key pair at ``path`` and ``path.pub``.

    Parameters
    ----------
    path : Path
        The private key's file; it must not exist yet.

    Raises
    ------
    RuntimeError
        If ``ssh-keygen`` is missing or fails.
    """
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        raise RuntimeError(f"ssh-keygen is not installed: {_INSTALL_HINT}")
    done = subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "fsjobstore-test", "-f", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ssh-keygen failed for {path}: {done.stderr.strip()}")


def _config(workdir: Path, port: int, version: tuple[int, int]) -> str:
    """Return the text of sshd's configuration file for one attempt.

    Parameters
    ----------
    workdir : Path
        Directory holding the keys, pid file and authorized keys.
    port : int
        Port to listen on (on :data:`HOST` only).
    version : tuple of int
        The daemon's OpenSSH version: options newer than it are left out,
        since sshd refuses to start on an option it does not know.

    Returns
    -------
    str
        The configuration.
    """
    lines = [
        f"ListenAddress {HOST}",
        f"Port {port}",
        f"HostKey {workdir / 'host_key'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        f"PidFile {workdir / 'sshd.pid'}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        # No PAM: no system account policy, and it works for any user.
        "UsePAM no",
        # The temporary directory is world-writable (/tmp); strict modes
        # would refuse the authorized-keys file below it.
        "StrictModes no",
        # CI runs as root: keys only.
        "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp",
        f"MaxSessions {MAX_SESSIONS}",
        f"MaxStartups {MAX_STARTUPS}",
        # A test client on loopback is never a brute-forcer; no reverse DNS.
        "UseDNS no",
        "LogLevel INFO",
    ]
    if version >= (9, 8):
        # OpenSSH 9.8 penalises sources whose connections end before
        # authenticating (readiness probes do) by refusing them for a while.
        lines.append("PerSourcePenalties no")
    return "\n".join(lines) + "\n"


class SFTPServer:
    """A running OpenSSH ``sshd`` serving SFTP on :data:`HOST`.

    Attributes
    ----------
    host : str
        ``"127.0.0.1"``.
    port : int
        The port it listens on.
    username : str
        The account to log in as: the user running the tests.
    client_key : Path
        The private key (ed25519, no passphrase) the server accepts.
    root : Path
        An empty directory the SFTP user can write, removed on :meth:`stop`;
        tests put their stores below it.  Paths on the server are the
        machine's own, so ``root`` is also what sshfs calls it.
    log_path : Path
        sshd's log (one line per connection at ``LogLevel INFO``).
    """

    def __init__(
        self, process: _Process, port: int, workdir: Path, client_key: Path, root: Path
    ) -> None:
        self._process = process
        self._workdir = workdir
        self.host = HOST
        self.port = port
        self.username = getpass.getuser()
        self.client_key = client_key
        self.root = root
        self.log_path = process.log_path
        _RUNNING.add(self)

    def storage_options(self) -> dict[str, Any]:
        """Return the keyword arguments for ``fsspec.filesystem("sftp", ...)``.

        Returns
        -------
        dict
            ``host``, ``port``, ``username``, ``client_keys`` and
            ``known_hosts=None`` (the host key is new every run), plus
            settings that keep the client from reading anything of the
            user's own SSH setup: no ``~/.ssh/config`` (``config=None``),
            no SSH agent (``agent_path=None``), and no compression, which
            only costs CPU on loopback.
        """
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "client_keys": [str(self.client_key)],
            "known_hosts": None,
            "config": None,
            "agent_path": None,
            "compression_algs": None,
            # Bounds the TCP connect and SSH handshake of a new client.
            "connect_timeout": 10,
        }

    def path(self, relative: str = "") -> str:
        """Return the absolute server path of ``relative`` below :attr:`root`.

        Parameters
        ----------
        relative : str, optional
            A path relative to :attr:`root` (a leading ``/`` is ignored).

        Returns
        -------
        str
            The path to give sshfs, e.g. ``/tmp/fsjobstore-sshd-x/root/a/b``.
        """
        relative = relative.lstrip("/")
        return f"{self.root}/{relative}" if relative else str(self.root)

    def url(self, relative: str = "") -> str:
        """Return ``sftp://USER@127.0.0.1:PORT/ROOT/relative`` (no secret in it).

        Parameters
        ----------
        relative : str, optional
            A path relative to :attr:`root` (a leading ``/`` is ignored).

        Returns
        -------
        str
            The URL; the key still comes from :meth:`storage_options`
            (fsspec accepts the URL's host, port and user alongside the
            same values there).
        """
        return f"sftp://{self.username}@{self.host}:{self.port}{self.path(relative)}"

    def stop(self) -> None:
        """Stop sshd and every connection it serves; remove its directory."""
        _RUNNING.discard(self)
        # The connections first: once the listener is gone they would be
        # reparented to init and could no longer be told from others.
        for pid in _descendants(self._process.popen.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        self._process.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)


#: Servers not yet stopped; stopped at interpreter exit.
_RUNNING: set[SFTPServer] = set()


@atexit.register
def _stop_leftovers() -> None:
    """Stop every SFTP server still running (interpreter exit)."""
    for server in list(_RUNNING):
        with contextlib.suppress(Exception):
            server.stop()


def _descendants(pid: int) -> list[int]:
    """Return the processes descended from ``pid``, children first.

    Parameters
    ----------
    pid : int
        The ancestor.

    Returns
    -------
    list of int
        Their process ids; empty where ``/proc`` is not available.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = entry.read_text()
        except OSError:
            continue  # the process ended meanwhile
        # The command name, in parentheses, may hold spaces: split after it.
        fields = text[text.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        kids = children.get(pending.pop(), [])
        found.extend(kids)
        pending.extend(kids)
    return found


def _banner(port: int) -> bytes:
    """Return the first line an SSH server on ``port`` sends (its version banner).

    Parameters
    ----------
    port : int
        The port on :data:`HOST`.

    Returns
    -------
    bytes
        Up to the first newline, at most 255 bytes (RFC 4253's limit).

    Raises
    ------
    OSError
        If nothing listens there or it says nothing within a second.
    """
    data = b""
    with socket.create_connection((HOST, port), timeout=1.0) as sock:
        while b"\n" not in data and len(data) < 255:
            chunk = sock.recv(255 - len(data))
            if not chunk:
                break
            data += chunk
    return data.split(b"\n", 1)[0]


def _wait_ready(process: _Process, port: int, pid_file: Path, timeout: float) -> None:
    """Wait until this sshd has written its pid file and greets on ``port``.

    Parameters
    ----------
    process : _Process
        The sshd process.
    port : int
        Its port.
    pid_file : Path
        The ``PidFile`` of its configuration: sshd writes it after binding,
        so a banner read once it holds our pid comes from this sshd, not from
        another server that won the port.
    timeout : float
        Seconds to wait at most.

    Raises
    ------
    RuntimeError
        If sshd exits or does not greet within ``timeout``; it is stopped
        first, and the message holds the tail of its log.
    """
    deadline = time.monotonic() + timeout
    command = " ".join(process.argv)
    while True:
        code = process.popen.poll()
        if code is not None:
            process.stop()
            raise RuntimeError(
                f"sshd exited with status {code} before listening on port {port}; "
                f"command: {command}\n--- log tail ---\n{_tail(process.log_path)}"
            )
        with contextlib.suppress(OSError, ValueError):
            ours = int(pid_file.read_text().strip()) == process.popen.pid
            if ours and _banner(port).startswith(b"SSH-2.0-"):
                return
        if time.monotonic() >= deadline:
            process.stop()
            raise RuntimeError(
                f"sshd did not greet on port {port} within {timeout:.0f} s; "
                f"command: {command}\n--- log tail ---\n{_tail(process.log_path)}"
            )
        time.sleep(0.02)


def start_sftp_server(timeout: float = START_TIMEOUT) -> SFTPServer:
    """Start OpenSSH's ``sshd`` on ``127.0.0.1`` and a free port.

    Parameters
    ----------
    timeout : float, optional
        Seconds sshd may take to start listening.

    Returns
    -------
    SFTPServer
        The running server; call :meth:`SFTPServer.stop` when done.

    Raises
    ------
    RuntimeError
        If ``sshd`` or ``ssh-keygen`` is not installed, or sshd does not
        start (the message holds the tail of its log).
    """
    sshd = sshd_binary()
    version = _openssh_version(sshd)
    if os.geteuid() == 0:
        # As root sshd chroots its unprivileged pre-auth child here and
        # refuses to start without it; Debian creates it only at boot.
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="fsjobstore-sshd-"))
    try:
        _keygen(workdir / "host_key")
        client_key = workdir / "client_key"
        _keygen(client_key)
        shutil.copyfile(workdir / "client_key.pub", workdir / "authorized_keys")
        root = workdir / "root"
        root.mkdir()
        config = workdir / "sshd_config"
        log_path = workdir / "sshd.log"
        error: RuntimeError | None = None
        for _ in range(START_ATTEMPTS):
            port = _free_port()
            config.write_text(_config(workdir, port, version))
            (workdir / "sshd.pid").unlink(missing_ok=True)
            # sshd re-executes itself per connection, which needs the
            # absolute path it was started by.
            process = _Process("sshd", [str(sshd), "-D", "-e", "-f", str(config)], log_path)
            try:
                _wait_ready(process, port, workdir / "sshd.pid", timeout)
            except RuntimeError as err:
                error = err
                if "already in use" not in str(err).lower():
                    raise
                continue  # another process took the port first
            return SFTPServer(process, port, workdir, client_key, root)
        assert error is not None
        raise error
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


@contextlib.contextmanager
def sftp_server(timeout: float = START_TIMEOUT) -> Iterator[SFTPServer]:
    """Run OpenSSH's ``sshd`` for the duration of a ``with`` block.

    Parameters
    ----------
    timeout : float, optional
        Seconds sshd may take to start.

    Yields
    ------
    SFTPServer
        The running server; it, its connections and its directory are gone
        afterwards.
    """
    server = start_sftp_server(timeout)
    try:
        yield server
    finally:
        server.stop()
