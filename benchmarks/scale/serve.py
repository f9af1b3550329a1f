"""The storage server's side of the scale-out harness, run inside the server namespace.

``ip netns exec SRV python serve.py BACKEND --delays 0 0.01`` starts the
backend's emulator on the namespace's own 127.0.0.1 (as the test suite does:
moto in this process, fake-gcs-server or Azurite as a subprocess), then one
delay proxy per delay, each listening on the namespace's bridge address and
forwarding to the emulator. It prints one JSON line: the process IDs (the
emulator's, the proxies') and, per delay, the endpoint the hosts use; and it
stops everything when its standard input closes.

``python serve.py --proxy LISTEN UPSTREAM DELAY`` is one such proxy:
``benchmarks/proxy.py``'s, listening on ``LISTEN`` instead of 127.0.0.1 (so
that the other namespaces reach it); it prints ``PORT <n>`` and exits when
its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parents[1])]
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import proxy  # noqa: E402
from netns import SERVER_ADDRESS  # noqa: E402


class ListeningProxy(proxy._ProxyServer):
    """``proxy.py``'s delaying proxy, listening on ``listen`` rather than 127.0.0.1.

    It still forwards to 127.0.0.1, where the emulator listens in the same
    namespace; only where it accepts connections differs.
    """

    def __init__(self, listen: str, upstream_port: int, delay: float) -> None:
        super().__init__(upstream_port, delay)
        self.listen = listen

    async def start(self) -> int:
        """Listen on ``listen`` and a free port; return the port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, self.listen, 0, backlog=1024)
        port: int = self._server.sockets[0].getsockname()[1]
        return port


def serve_proxy(listen: str, upstream: int, delay: float) -> None:
    """Run a :class:`ListeningProxy` until standard input closes."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = ListeningProxy(listen, upstream, delay)
        port = await server.start()
        closed: asyncio.Future[None] = loop.create_future()

        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096) and not closed.done():
                closed.set_result(None)

        loop.add_reader(sys.stdin.fileno(), on_stdin)
        print(f"PORT {port}", flush=True)
        try:
            await closed
        finally:
            loop.remove_reader(sys.stdin.fileno())
            await server.stop()

    asyncio.run(main())


@contextlib.contextmanager
def emulator(backend: str) -> Iterator[tuple[Any, int]]:
    """Start the emulator of ``backend``; yield its handle and process ID."""
    from tests import servers

    if backend == "s3":
        with servers.s3_server() as s3:
            yield s3, os.getpid()
    elif backend == "gcs":
        with servers.gcs_server() as gcs:
            yield gcs, gcs._process.popen.pid
    elif backend == "azure":
        with servers.azure_server() as azure:
            yield azure, azure._process.popen.pid
    else:
        raise ValueError(f"unknown backend {backend!r}")


def options_for(backend: str, handle: Any, endpoint: str) -> dict[str, Any]:
    """Storage options reaching the emulator at ``endpoint`` (a proxy's URL)."""
    options: dict[str, Any] = handle.storage_options()
    if backend == "s3":
        options["client_kwargs"] = {"endpoint_url": endpoint}
    elif backend == "gcs":
        options["endpoint_url"] = endpoint
    else:
        account = handle.endpoint_url.rsplit("/", 1)[1]
        options["connection_string"] = handle.connection_string.replace(
            handle.endpoint_url, f"{endpoint}/{account}"
        )
    return options


def start_proxy(upstream: int, delay: float) -> tuple[subprocess.Popen[str], int]:
    """Start one proxy subprocess; return it and its port."""
    argv = [sys.executable, __file__, "--proxy", SERVER_ADDRESS, str(upstream), repr(delay)]
    # proxy.py's _Direction._flush raises ENOTCONN from write_eof when a
    # client has already gone; asyncio prints each such callback error, one
    # traceback per closed connection, which would bury the progress lines.
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert popen.stdout is not None
    word, _, port = popen.stdout.readline().partition(" ")
    if word != "PORT":
        popen.kill()
        raise RuntimeError("the delay proxy did not start")
    return popen, int(port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("backend", nargs="?")
    parser.add_argument("--delays", type=float, nargs="+", default=[0.0])
    parser.add_argument("--proxy", nargs=3, metavar=("LISTEN", "UPSTREAM", "DELAY"))
    args = parser.parse_args()
    if args.proxy:
        serve_proxy(args.proxy[0], int(args.proxy[1]), float(args.proxy[2]))
        return 0
    proxies: list[subprocess.Popen[str]] = []
    with emulator(args.backend) as (handle, pid):
        try:
            upstream = int(handle.endpoint_url.split(":")[2].split("/")[0])
            endpoints: dict[str, Any] = {}
            for delay in args.delays:
                popen, port = start_proxy(upstream, delay)
                proxies.append(popen)
                url = f"http://{SERVER_ADDRESS}:{port}"
                endpoints[repr(delay)] = {
                    "pid": popen.pid,
                    "options": options_for(args.backend, handle, url),
                }
            print(json.dumps({"server_pid": pid, "endpoints": endpoints}), flush=True)
            sys.stdin.read()
        finally:
            for popen in proxies:
                with contextlib.suppress(OSError):
                    assert popen.stdin is not None
                    popen.stdin.close()
                try:
                    popen.wait(10)
                except subprocess.TimeoutExpired:
                    popen.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
