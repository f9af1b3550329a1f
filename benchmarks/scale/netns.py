"""Simulated hosts: Linux network namespaces joined by a bridge, made and removed here.

A :class:`Topology` is one namespace for the storage server, ``hosts``
namespaces for the workers, and a "switch" namespace holding the bridge that
joins them. Every veth pair is created directly inside the namespaces it
joins (``ip link add … netns A type veth peer … netns B``), so no interface
of this run ever appears in the machine's own namespace: nothing here can
route anywhere but between the namespaces themselves, and interface names
cannot collide with anything outside them.

Addresses come from 198.18.0.0/15, the block RFC 2544 sets aside for
benchmarking network devices; none of them is reachable outside these
namespaces, which have no default route and no link to the machine's own.

Names carry this process's ID and a random suffix, so a leftover of a run
that was killed never collides with a new one; :func:`sweep_stale` removes
the leftovers whose process is gone. :meth:`Topology.close` deletes every
namespace (which deletes its interfaces, bridge included); it runs from a
``finally``, at interpreter exit and on SIGTERM, and is safe to call twice.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType

__all__ = [
    "PREFIX",
    "SERVER_ADDRESS",
    "Topology",
    "ip_available",
    "sweep_stale",
    "topology",
    "why_not_runnable",
]

#: Every namespace this module makes starts with this.
PREFIX = "fsjs-scale"
#: The server namespace's address; hosts are .11, .12, …
SERVER_ADDRESS = "198.18.0.1"
_NET = "198.18.0"
_NAME = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]+-")


def ip_available() -> bool:
    """Whether iproute2's ``ip`` is on PATH."""
    return shutil.which("ip") is not None


def why_not_runnable() -> str | None:
    """Say why namespaces cannot be made here (not root, no ``ip``), or None if they can."""
    if os.geteuid() != 0:
        return "the scale harness makes network namespaces and must run as root"
    if not ip_available():
        return "the scale harness needs iproute2's `ip` command (Debian: apt-get install iproute2)"
    return None


def _ip(*args: str) -> None:
    """Run ``ip ARGS``; raise with its message if it fails."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _in(ns: str, *args: str) -> None:
    _ip("-n", ns, *args)


def _namespaces() -> list[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def sweep_stale() -> list[str]:
    """Delete this module's namespaces whose making process is gone; return their names."""
    removed = []
    for name in _namespaces():
        match = _NAME.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", name)
                removed.append(name)
    return removed


@dataclass
class Topology:
    """A server namespace and ``hosts`` worker namespaces on one bridge.

    Attributes
    ----------
    tag
        What every name of this run carries (process ID and random hex).
    server
        The server's namespace.
    hosts
        The worker namespaces, in order.
    addresses
        Each namespace's address on the bridge.
    """

    tag: str
    server: str = ""
    hosts: list[str] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)
    _made: list[str] = field(default_factory=list)

    def _add(self, name: str) -> str:
        ns = f"{PREFIX}-{self.tag}-{name}"
        _ip("netns", "add", ns)
        self._made.append(ns)  # recorded at once: a failure later still removes it
        _in(ns, "link", "set", "lo", "up")
        return ns

    def build(self, hosts: int) -> Topology:
        """Make the switch, the server and ``hosts`` host namespaces, and wire them up.

        Parameters
        ----------
        hosts
            How many simulated hosts (at most 200).

        Returns
        -------
        Topology
            This topology.
        """
        if not 1 <= hosts <= 200:
            raise ValueError(f"hosts must be between 1 and 200, not {hosts}")
        switch = self._add("sw")
        _in(switch, "link", "add", "br0", "type", "bridge")
        _in(switch, "link", "set", "br0", "up")
        self.server = self._add("srv")
        self.hosts = [self._add(f"h{i}") for i in range(hosts)]
        for index, ns in enumerate([self.server, *self.hosts]):
            address = SERVER_ADDRESS if index == 0 else f"{_NET}.{10 + index}"
            port = f"p{index}"
            _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", port, "netns", switch)
            _in(switch, "link", "set", port, "master", "br0")
            _in(switch, "link", "set", port, "up")
            _in(ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _in(ns, "link", "set", "eth0", "up")
            self.addresses[ns] = address
        return self

    def close(self) -> None:
        """Delete every namespace made (their interfaces and the bridge go with them)."""
        while self._made:
            ns = self._made.pop()
            with contextlib.suppress(RuntimeError):
                _ip("netns", "del", ns)

    def exec_argv(self, ns: str, argv: list[str]) -> list[str]:
        """The command line that runs ``argv`` inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *argv]


_OPEN: list[Topology] = []


@atexit.register
def _close_all() -> None:
    for topo in list(_OPEN):
        topo.close()


def _on_term(signum: int, frame: FrameType | None) -> None:
    # SIGTERM becomes an exception, so every finally (processes, then
    # namespaces) runs as it does for Ctrl-C.
    del frame
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def topology(hosts: int) -> Iterator[Topology]:
    """Build a :class:`Topology` of ``hosts`` hosts for a ``with`` block; remove it after.

    Parameters
    ----------
    hosts
        How many simulated hosts.

    Yields
    ------
    Topology
        The wired namespaces.
    """
    sweep_stale()
    topo = Topology(f"{os.getpid()}-{secrets.token_hex(2)}")
    _OPEN.append(topo)
    previous = signal.signal(signal.SIGTERM, _on_term)
    try:
        yield topo.build(hosts)
    finally:
        topo.close()
        _OPEN.remove(topo)
        signal.signal(signal.SIGTERM, previous)
