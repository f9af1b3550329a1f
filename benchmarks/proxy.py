"""A TCP proxy on 127.0.0.1 that adds a fixed delay each way: a cloud-like round trip.

``DelayProxy(upstream_port)`` listens on ``127.0.0.1`` on a free port and
forwards every connection it accepts to ``127.0.0.1:upstream_port``. Each
chunk read from either side is written to the other side ``delay`` seconds
after it arrived (10 ms by default, so a request and its answer take 20 ms
more than they would without the proxy). Nothing else is limited: chunks are
forwarded as soon as they are due whatever their size, connections are
independent of each other, and the order of the bytes within each direction
is kept. An end of stream (``shutdown(SHUT_WR)``) or a close is passed on
after the same delay. Connection set-up is not delayed (the proxy accepts at
once and connects upstream at once; the client's first bytes then wait).

By default the proxy runs in a subprocess, so that its work never competes
for the measured client's GIL; ``in_process=True`` runs it on an event loop
in a thread instead (measured on a 2-core machine, moto through the proxy:
see ``benchmarks/concurrency.py``). The subprocess exits when its standard
input closes, so it cannot outlive the process that started it.

Run it by hand with ``python benchmarks/proxy.py --upstream PORT [--delay S]``;
it prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import collections
import contextlib
import os
import selectors
import subprocess
import sys
import threading
import time
from types import TracebackType

__all__ = ["DEFAULT_DELAY", "HOST", "DelayProxy"]

#: The only address the proxy listens on and forwards to.
HOST = "127.0.0.1"
#: Seconds added in each direction.
DEFAULT_DELAY = 0.010
#: Seconds the proxy may take to start listening, or to stop.
TIMEOUT = 10.0
#: Seconds a connection to the upstream server may take.
CONNECT_TIMEOUT = 5.0

_READ = 256 * 1024  # most bytes the subprocess reads from its stdin at once


class _Direction:
    """One direction of one connection: chunks waiting for their time to go.

    Parameters
    ----------
    loop : asyncio.AbstractEventLoop
        The loop the connection runs on.
    delay : float
        Seconds each chunk waits.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._loop = loop
        self._delay = delay
        # (due time, bytes, or None for end of stream, or b"" for close)
        self._queue: collections.deque[tuple[float, bytes | None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self.target: asyncio.Transport | None = None
        self.finished = False

    def push(self, data: bytes | None) -> None:
        """Queue ``data`` (``None``: end of stream; ``b""``: close) to go after the delay.

        Parameters
        ----------
        data : bytes or None
            What arrived.
        """
        self._queue.append((self._loop.time() + self._delay, data))
        if self._timer is None:
            self._schedule()

    def attach(self, target: asyncio.Transport) -> None:
        """Start writing to ``target`` (chunks already due go at once).

        Parameters
        ----------
        target : asyncio.Transport
            The side the chunks go to.
        """
        self.target = target
        if self._queue and self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        if self.target is not None and self._queue:
            self._timer = self._loop.call_at(self._queue[0][0], self._flush)

    def _flush(self) -> None:
        # Everything due now goes, in arrival order; then wait for the next.
        self._timer = None
        target = self.target
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now and target is not None:
            _, data = self._queue.popleft()
            if data is None:
                if target.can_write_eof() and not target.is_closing():
                    target.write_eof()
            elif not data:
                self.finished = True
                self._queue.clear()
                target.close()
            elif not target.is_closing():
                target.write(data)
        self._schedule()

    def cancel(self) -> None:
        """Drop what is queued and the pending timer (the connection is gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue.clear()


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; what it reads goes to ``outgoing``.

    Parameters
    ----------
    outgoing : _Direction
        Where the bytes this socket receives go.
    """

    def __init__(self, outgoing: _Direction) -> None:
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.outgoing.push(data)

    def eof_received(self) -> bool:
        self.outgoing.push(None)
        return True  # keep our side open for writing: the close comes later

    def connection_lost(self, exc: Exception | None) -> None:
        del exc
        self.outgoing.push(b"")


class _ProxyServer:
    """The proxy on one event loop: a listening socket, and a pair of sides per connection.

    Parameters
    ----------
    upstream_port : int
        Port of the server on :data:`HOST` that connections go to.
    delay : float
        Seconds added in each direction.
    """

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on :data:`HOST` and a free port.

        Returns
        -------
        int
            The port.
        """
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, HOST, 0, backlog=1024)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _accept(self) -> _Side:
        loop = asyncio.get_running_loop()
        downstream = _Direction(loop, self.delay)  # upstream's bytes, to the client
        upstream = _Direction(loop, self.delay)  # the client's bytes, to upstream
        client = _Side(upstream)
        task = loop.create_task(self._connect(client, upstream, downstream))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)
        return client

    async def _connect(self, client: _Side, upstream: _Direction, downstream: _Direction) -> None:
        loop = asyncio.get_running_loop()
        try:
            server_transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _Side(downstream), HOST, self.upstream_port),
                CONNECT_TIMEOUT,
            )
        except (OSError, asyncio.TimeoutError):
            upstream.cancel()
            if client.transport is not None:
                client.transport.abort()
            return
        assert isinstance(server_transport, asyncio.Transport)
        assert client.transport is not None
        upstream.attach(server_transport)
        downstream.attach(client.transport)

    async def stop(self) -> None:
        """Stop listening and cancel connections still being set up."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connections):
            task.cancel()


# -- running it ---------------------------------------------------------------------


class DelayProxy:
    """A delaying TCP proxy in front of a server on :data:`HOST`, as a context manager.

    Parameters
    ----------
    upstream_port : int
        Port of the server on :data:`HOST` that connections go to.
    delay : float, optional
        Seconds added in each direction (:data:`DEFAULT_DELAY`).
    in_process : bool, optional
        Run the proxy on an event loop in a thread of this process instead
        of in a subprocess (it then shares this process's GIL).
    timeout : float, optional
        Seconds to wait at most for the proxy to start, or to stop.

    Attributes
    ----------
    port : int
        The port the proxy listens on (once started).

    Examples
    --------
    >>> with DelayProxy(9000) as proxy:  # doctest: +SKIP
    ...     url = proxy.url
    """

    def __init__(
        self,
        upstream_port: int,
        delay: float = DEFAULT_DELAY,
        *,
        in_process: bool = False,
        timeout: float = TIMEOUT,
    ) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0, not {delay}")
        self.upstream_port = upstream_port
        self.delay = delay
        self.in_process = in_process
        self.timeout = timeout
        self.port = 0
        self._popen: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: _ProxyServer | None = None

    @property
    def pid(self) -> int | None:
        """The subprocess's process ID; None when the proxy runs in this process."""
        return self._popen.pid if self._popen is not None else None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the proxy's address as an endpoint URL."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> DelayProxy:
        """Start the proxy and wait until it listens.

        Returns
        -------
        DelayProxy
            This proxy.

        Raises
        ------
        RuntimeError
            If it does not listen within ``timeout``, or is already started.
        """
        if self.port:
            raise RuntimeError("the proxy is already running")
        if self.in_process:
            self._start_thread()
        else:
            self._start_process()
        return self

    def _start_process(self) -> None:
        argv = [
            sys.executable,
            os.path.abspath(__file__),
            "--upstream",
            str(self.upstream_port),
            "--delay",
            repr(self.delay),
        ]
        popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._popen = popen
        _RUNNING.add(self)
        assert popen.stdout is not None
        line = b""
        deadline = time.monotonic() + self.timeout
        with selectors.DefaultSelector() as selector:
            selector.register(popen.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.stop()
                    raise RuntimeError(f"the delay proxy did not start in {self.timeout:.0f} s")
                chunk = os.read(popen.stdout.fileno(), 64)
                if not chunk:
                    code = popen.wait(self.timeout)
                    self.stop()
                    raise RuntimeError(f"the delay proxy exited with status {code}")
                line += chunk
        word, _, port = line.decode().partition(" ")
        if word != "PORT":
            self.stop()
            raise RuntimeError(f"the delay proxy said {line!r}")
        self.port = int(port)

    def _start_thread(self) -> None:
        loop = asyncio.new_event_loop()
        server = _ProxyServer(self.upstream_port, self.delay)
        ready: list[int] = []
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                ready.append(loop.run_until_complete(server.start()))
            finally:
                started.set()
            loop.run_forever()
            loop.run_until_complete(server.stop())
            loop.close()

        thread = threading.Thread(target=serve, name="delay-proxy", daemon=True)
        thread.start()
        self._loop, self._thread, self._server = loop, thread, server
        if not started.wait(self.timeout) or not ready:
            self.stop()
            raise RuntimeError(f"the delay proxy did not start in {self.timeout:.0f} s")
        self.port = ready[0]

    def stop(self) -> None:
        """Stop the proxy (its connections are dropped); waits at most ``timeout`` twice."""
        self.port = 0
        _RUNNING.discard(self)
        popen, self._popen = self._popen, None
        if popen is not None:
            with contextlib.suppress(OSError):
                if popen.stdin is not None:
                    popen.stdin.close()  # the subprocess exits when its stdin closes
            try:
                popen.wait(self.timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(self.timeout)
            if popen.stdout is not None:
                popen.stdout.close()
        loop, thread = self._loop, self._thread
        self._loop = self._thread = self._server = None
        if loop is not None and thread is not None:
            if thread.is_alive():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout)

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


#: Proxies not stopped yet; stopped at interpreter exit.
_RUNNING: set[DelayProxy] = set()


@atexit.register
def _stop_leftovers() -> None:
    for proxy in list(_RUNNING):
        with contextlib.suppress(Exception):
            proxy.stop()


def _serve(upstream_port: int, delay: float) -> None:
    """Run the proxy in this process until standard input closes.

    Parameters
    ----------
    upstream_port : int
        Port of the server on :data:`HOST`.
    delay : float
        Seconds added in each direction.
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = _ProxyServer(upstream_port, delay)
        port = await server.start()
        closed = loop.create_future()

        def on_stdin() -> None:
            try:
                data = os.read(sys.stdin.fileno(), _READ)
            except OSError:
                data = b""
            if not data and not closed.done():
                closed.set_result(None)

        loop.add_reader(sys.stdin.fileno(), on_stdin)
        sys.stdout.write(f"PORT {port}\n")
        sys.stdout.flush()
        try:
            await closed
        finally:
            loop.remove_reader(sys.stdin.fileno())
            await server.stop()

    asyncio.run(main())


def main() -> int:
    """Command line: ``python proxy.py --upstream PORT [--delay SECONDS]``.

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(description="A TCP proxy on 127.0.0.1 that adds a delay.")
    parser.add_argument("--upstream", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--delay", type=float, default=DEFAULT_DELAY, help="seconds each way")
    args = parser.parse_args()
    _serve(args.upstream, args.delay)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
