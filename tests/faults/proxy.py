"""An HTTP proxy on 127.0.0.1 that makes an object store fail as the real service does.

:class:`FaultProxy` sits between a client (s3fs, gcsfs, adlfs) and an
emulator (moto, fake-gcs-server, Azurite). It reads each HTTP/1.1 request
whole, then either forwards it and passes the answer back, or injects a
fault:

* a service error (``Service.errors``: S3's 503 SlowDown, GCS's 429 …),
  answered without reaching the server;
* ``reset-before``: the connection is reset before the request is forwarded
  (the server never saw it);
* ``reset-after``: the request is forwarded and answered, then the
  connection is reset instead of passing the answer on (the server acted,
  the client never learns it did);
* ``reset-mid``: the answer's head and part of its body are passed on, then
  the connection is reset;
* ``stall``: the request is forwarded, and the answer held back for
  ``stall`` seconds (longer than the client's timeout), then the connection
  is closed.

Which requests fail is decided by a hash of the seed, the request's method
and target, and how many times that same request was seen, so a run is
reproducible whatever the order concurrent requests arrive in, and a retry
of a failed request gets a draw of its own. Throttling rules
(:mod:`.services`) refuse requests over a service's rate limits with the
service's throttling answer. Every injected fault is counted by kind.

The proxy runs on an event loop in a thread of the test process; it never
connects anywhere but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from .services import Request, Rule, Service

__all__ = ["CONNECTION_FAULTS", "FaultProxy", "Plan"]

HOST = "127.0.0.1"
#: Faults that break the connection rather than answer.
CONNECTION_FAULTS = ("reset-before", "reset-after", "reset-mid", "stall")
#: Seconds to start or stop the proxy, or to connect to the server.
TIMEOUT = 10.0
_HEAD_LIMIT = 1 << 20


@dataclass
class Plan:
    """Which faults to inject, how often, into which requests.

    Attributes
    ----------
    fraction
        Share of eligible requests that fail (0 to 1).
    kinds
        Faults to choose from, evenly: names of the service's errors and of
        :data:`CONNECTION_FAULTS`.
    seed
        Seed of the draws.
    methods
        Only requests with these methods are eligible (all if empty).
    stall
        Seconds a ``stall`` holds the answer back.
    most_in_a_row
        Faults one request (same method and target) gets at most in a row;
        the try after them passes. None: no limit. Lets a test stay within
        a client's own number of tries whatever the draws.
    """

    fraction: float = 0.0
    kinds: Sequence[str] = ()
    seed: int = 0
    methods: frozenset[str] = frozenset()
    stall: float = 3.0
    most_in_a_row: int | None = None


@dataclass
class _Response:
    head: bytes
    body: bytes
    close: bool


@dataclass
class FaultProxy:
    """A fault-injecting HTTP proxy in front of ``upstream_port``, as a context manager.

    Attributes
    ----------
    counts
        Faults injected so far, by kind (``"throttled"`` for throttling rules).
    requests
        Requests received so far.
    """

    upstream_port: int
    service: Service
    plan: Plan = field(default_factory=Plan)
    rules: list[Rule] = field(default_factory=list)
    port: int = 0
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: collections.Counter[str] = collections.Counter()
        self._streak: collections.Counter[str] = collections.Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the proxy as an endpoint."""
        return f"http://{HOST}:{self.port}"

    def reset(self, plan: Plan | None = None, rules: Sequence[Rule] = ()) -> None:
        """Start over: a new plan and rules, counts at zero."""
        with self._lock:
            self.plan = plan or Plan()
            self.rules = list(rules)
            self.counts.clear()
            self._seen.clear()
            self._streak.clear()
            self.requests = 0

    # -- deciding ---------------------------------------------------------------

    def _decide(self, request: Request) -> str | None:
        with self._lock:
            self.requests += 1
            now = time.monotonic()
            for rule in self.rules:
                if rule.refuse(request, now):
                    self.counts["throttled"] += 1
                    return self.service.throttled
            plan = self.plan
            if not plan.kinds or plan.fraction <= 0:
                return None
            if plan.methods and request.method not in plan.methods:
                return None
            what = f"{request.method} {request.target}"
            self._seen[what] += 1
            digest = hashlib.blake2b(
                f"{plan.seed}|{what}|{self._seen[what]}".encode(), digest_size=8
            ).digest()
            draw, pick = struct.unpack(">II", digest)
            limited = plan.most_in_a_row is not None and self._streak[what] >= plan.most_in_a_row
            if limited or draw / 2**32 >= plan.fraction:
                self._streak[what] = 0
                return None
            self._streak[what] += 1
            kind: str = plan.kinds[pick % len(plan.kinds)]
            self.counts[kind] += 1
            return kind

    # -- serving ----------------------------------------------------------------

    async def _serve(  # noqa: PLR0912 - one branch per kind of fault
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._clients.add(writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_request(reader, writer)
                if request is None:
                    return
                kind = self._decide(request)
                if kind is not None and kind in self.service.errors:
                    writer.write(self.service.errors[kind](request).encode())
                    await writer.drain()
                    continue
                if kind == "reset-before":
                    _reset(writer)
                    return
                if upstream is None:
                    upstream = await asyncio.wait_for(
                        asyncio.open_connection(HOST, self.upstream_port), TIMEOUT
                    )
                response = await _exchange(upstream, request)
                if response.close:
                    upstream[1].close()
                    upstream = None
                if kind == "reset-after":
                    _reset(writer)
                    return
                head = response.head.replace(
                    f"{HOST}:{self.upstream_port}".encode(), f"{HOST}:{self.port}".encode()
                )
                if kind == "reset-mid":
                    writer.write(head + response.body[: len(response.body) // 2])
                    await writer.drain()
                    _reset(writer)
                    return
                if kind == "stall":
                    await asyncio.sleep(self.plan.stall)
                    return
                writer.write(head + response.body)
                await writer.drain()
                if response.close or request.headers.get("connection", "") == "close":
                    return
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            _reset(writer)
        finally:
            self._clients.discard(writer)
            if upstream is not None:
                upstream[1].close()
            with contextlib.suppress(Exception):
                writer.close()

    # -- running it -------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Listen on 127.0.0.1 and a free port, on an event loop in a thread."""
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)

            async def listen() -> None:
                self._server = await asyncio.start_server(self._serve, HOST, 0, backlog=1024)
                self.port = self._server.sockets[0].getsockname()[1]

            try:
                loop.run_until_complete(listen())
            finally:
                started.set()
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        if not started.wait(TIMEOUT) or not self.port:
            self.stop()
            raise RuntimeError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        """Stop listening, drop every connection and stop the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for client in list(self._clients):
                _reset(client)

        if thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), loop).result(TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        self._loop = self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a dropped connection reaches the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _headers(head: bytes) -> tuple[str, dict[str, str]]:
    first, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return first, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """The body as sent (chunked bodies keep their framing, to pass on as they came)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            parts.append(size_line)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers, up to an empty line
                    line = await reader.readuntil(b"\r\n")
                    parts.append(line)
                    if line == b"\r\n":
                        return b"".join(parts)
            parts.append(await reader.readexactly(size + 2))
    return await reader.readexactly(int(headers.get("content-length", "0")))


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed between requests
    if len(head) > _HEAD_LIMIT:
        raise ValueError("request head too long")
    first, headers = _headers(head)
    method, target, _ = first.split(" ", 2)
    if headers.get("expect", "").lower() == "100-continue":
        # Answered here: the server gets the request whole, without the header.
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        del headers["expect"]
    body = await _read_body(reader, headers)
    return Request(method, target, headers, body)


async def _exchange(
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: Request
) -> _Response:
    reader, writer = upstream
    lines = [f"{request.method} {request.target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
    await writer.drain()
    while True:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        first, headers = _headers(head)
        status = int(first.split(" ", 2)[1])
        if status >= 200:
            break  # interim answers (1xx) are the proxy's to give, not passed on
    close = headers.get("connection", "").lower() == "close"
    if request.method == "HEAD" or status in (204, 304):
        body = b""
    elif "transfer-encoding" in headers or "content-length" in headers:
        body = await _read_body(reader, headers)
    else:
        body, close = await reader.read(), True  # delimited by the close
    return _Response(head, body, close)
