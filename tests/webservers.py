"""HTTP(S) and FTP servers on 127.0.0.1 for the import and export tests.

* :func:`http_server` -- an aiohttp server in a background thread that serves
  the files below its root (``GET`` and ``HEAD``, with ``Content-Length`` and
  ``Range``) and stores uploads there (``POST`` and ``PUT``). With
  ``tls=True`` it speaks HTTPS with a certificate issued, for this run only,
  by a throw-away certificate authority (``trustme``). It can require Basic
  authentication, answer chosen paths with an error status, and it records
  every request.
* :func:`ftp_server` -- a pyftpdlib server in a background thread, with one
  user whose home is its root.

Both bind port 0 on ``127.0.0.1`` and are context managers, like
:mod:`tests.servers`. Their roots are plain directories, so a test can put
what an import reads, and check what an export wrote, without the protocol.
An upload is stored only once its body has arrived whole, as a careful
server does: an aborted one leaves nothing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import shutil
import ssl
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FTPServer", "HTTPServer", "ftp_server", "http_server"]

#: The only address servers bind to.
HOST = "127.0.0.1"
#: Seconds a server may take to start or stop.
TIMEOUT = 20.0
#: Bytes read from an upload's body at a time.
CHUNK = 1024 * 1024


@dataclass
class _Failure:
    status: int
    remaining: int | None  # None: every time


class HTTPServer:
    """A running aiohttp server; see :func:`http_server`.

    Attributes
    ----------
    root : Path
        What is served, and where uploads land.
    base_url : str
        ``http://127.0.0.1:PORT`` or ``https://…``.
    requests : list of tuple
        ``(method, path)`` of every request, in order of arrival.
    ca_file : Path or None
        The certificate authority's PEM file (HTTPS only), for
        ``SSL_CERT_FILE`` or ``ssl.create_default_context(cafile=…)``.
    """

    def __init__(self, root: Path, tls: bool) -> None:
        self.root = root
        self.tls = tls
        self.base_url = ""
        self.requests: list[tuple[str, str]] = []
        self.ca_file: Path | None = None
        self._failures: dict[str, _Failure] = {}
        self._auth: str | None = None
        #: Answer every GET whole, with no ``Accept-Ranges``, as servers
        #: without Range support do (``Range`` headers are ignored).
        self.ranges = True
        self._lock = threading.Lock()
        self._client_context: ssl.SSLContext | None = None

    def url(self, path: str, user: str | None = None, password: str | None = None) -> str:
        """The URL of ``path`` (relative to the root), with credentials if given."""
        scheme, rest = self.base_url.split("://", 1)
        userinfo = f"{user}:{password}@" if user is not None else ""
        return f"{scheme}://{userinfo}{rest}/{path.lstrip('/')}"

    def client_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server's certificate (HTTPS only)."""
        if self._client_context is None:
            raise RuntimeError("not an HTTPS server")
        return self._client_context

    def fail(self, path: str, status: int, times: int | None = None) -> None:
        """Answer requests for ``path`` with ``status``; ``times`` times, or always."""
        with self._lock:
            self._failures["/" + path.lstrip("/")] = _Failure(status, times)

    def require_auth(self, user: str, password: str) -> None:
        """Answer 401 to requests without these Basic credentials."""
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = f"Basic {token}"

    def reset(self) -> None:
        """Forget failures, credentials and recorded requests."""
        with self._lock:
            self._failures.clear()
            self.requests.clear()
            self._auth = None
            self.ranges = True

    def count(self, method: str, path: str) -> int:
        """How many ``method`` requests ``path`` has had."""
        wanted = (method, "/" + path.lstrip("/"))
        with self._lock:
            return sum(1 for request in self.requests if request == wanted)

    def _status_for(self, method: str, path: str, authorization: str | None) -> int | None:
        with self._lock:
            self.requests.append((method, path))
            failure = self._failures.get(path)
            if failure is not None and failure.remaining != 0:
                if failure.remaining is not None:
                    failure.remaining -= 1
                return failure.status
        if self._auth is not None and authorization != self._auth:
            return 401
        return None

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        status = self._status_for(
            request.method, request.path, request.headers.get("Authorization")
        )
        if status is not None:
            async for _ in request.content.iter_chunked(CHUNK):
                pass  # drain the body, so the client reads the status, not a reset
            return web.Response(status=status, text=f"{status} for the test")
        target = (self.root / request.path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root.resolve()):
            return web.Response(status=403)
        if request.method in ("GET", "HEAD"):
            if not target.is_file():
                return web.Response(status=404)
            return self._serve(request, target)
        if request.method in ("POST", "PUT"):
            return await self._receive(request, target)
        return web.Response(status=405)

    def _serve(self, request: Any, target: Path) -> Any:
        from aiohttp import web

        if self.ranges:
            return web.FileResponse(target)  # Content-Length, Range and HEAD
        body = b"" if request.method == "HEAD" else target.read_bytes()
        return web.Response(body=body, headers={"Content-Length": str(target.stat().st_size)})

    async def _receive(self, request: Any, target: Path) -> Any:
        from aiohttp import web

        partial = self.root / f".upload-{uuid.uuid4().hex}"
        try:
            with partial.open("wb") as handle:
                async for chunk in request.content.iter_chunked(CHUNK):
                    handle.write(chunk)
        except BaseException:
            partial.unlink(missing_ok=True)  # the client gave up half-way: store nothing
            raise
        if request.content_length is not None and partial.stat().st_size != request.content_length:
            partial.unlink(missing_ok=True)
            return web.Response(status=400, text="body shorter than Content-Length")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target)
        return web.Response(status=201 if request.method == "PUT" else 200, text="stored")


@contextlib.contextmanager
def http_server(tls: bool = False) -> Iterator[HTTPServer]:
    """Run an HTTP (or, with ``tls``, HTTPS) server for a ``with`` block.

    Parameters
    ----------
    tls : bool
        Serve HTTPS with a certificate for ``127.0.0.1`` from a certificate
        authority made here.

    Yields
    ------
    HTTPServer
        The running server; its root is removed afterwards.
    """
    from aiohttp import web

    root = Path(tempfile.mkdtemp(prefix="fsjobstore-http-"))
    server = HTTPServer(root, tls)
    server_context = None
    if tls:
        import trustme

        authority = trustme.CA()
        issued = authority.issue_cert(HOST, "localhost")
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        issued.configure_cert(server_context)
        client = ssl.create_default_context()
        authority.configure_trust(client)
        server._client_context = client
        server.ca_file = root.parent / f"{root.name}-ca.pem"
        authority.cert_pem.write_to_path(str(server.ca_file))

    loop = asyncio.new_event_loop()
    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{path:.*}", server._handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    started = threading.Event()
    errors: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, HOST, 0, ssl_context=server_context)
            loop.run_until_complete(site.start())
            port = runner.addresses[0][1]
            server.base_url = f"{'https' if tls else 'http'}://{HOST}:{port}"
        except BaseException as exc:
            errors.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=serve, name="test-http-server", daemon=True)
    thread.start()
    if not started.wait(TIMEOUT) or errors:
        raise RuntimeError(f"the HTTP server did not start: {errors}")
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        shutil.rmtree(root, ignore_errors=True)
        if server.ca_file is not None:
            server.ca_file.unlink(missing_ok=True)


class FTPServer:
    """A running pyftpdlib server; see :func:`ftp_server`.

    Attributes
    ----------
    root : Path
        The user's home: ``ftp://…/x`` is ``root / "x"``.
    host, port : str, int
        Where it listens.
    user, password : str
        The one account.
    """

    def __init__(self, root: Path, port: int, user: str, password: str) -> None:
        self.root = root
        self.host = HOST
        self.port = port
        self.user = user
        self.password = password

    def url(self, path: str, user: str | None = None, password: str | None = None) -> str:
        """``ftp://user:password@host:port/path``; the server's account unless given."""
        user = self.user if user is None else user
        password = self.password if password is None else password
        userinfo = f"{user}:{password}@" if user else ""
        return f"ftp://{userinfo}{self.host}:{self.port}/{path.lstrip('/')}"


@contextlib.contextmanager
def ftp_server(user: str = "fsjobstore") -> Iterator[FTPServer]:
    """Run an FTP server with one account (random password) for a ``with`` block.

    Yields
    ------
    FTPServer
        The running server; its root is removed afterwards.
    """
    with warnings.catch_warnings():
        # pyftpdlib still imports asyncore and asynchat, deprecated in 3.11.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.authorizers import DummyAuthorizer  # type: ignore[import-untyped]
        from pyftpdlib.handlers import FTPHandler  # type: ignore[import-untyped]
        from pyftpdlib.ioloop import IOLoop  # type: ignore[import-untyped]
        from pyftpdlib.servers import FTPServer as Server  # type: ignore[import-untyped]

    # The server's own log names the test user at every login; it is not the
    # client's log, which the tests check for credentials.
    server_log = logging.getLogger("pyftpdlib")
    server_log.propagate = False
    if not server_log.handlers:
        server_log.addHandler(logging.NullHandler())

    root = Path(tempfile.mkdtemp(prefix="fsjobstore-ftp-"))
    password = secrets.token_hex(12)
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm="elradfmwMT")
    # A subclass, not FTPHandler itself: its class attributes are its settings.
    # No delay after a failed login: the tests fail logins on purpose.
    settings = {"authorizer": authorizer, "timeout": 60, "auth_failed_timeout": 0}
    handler = type("Handler", (FTPHandler,), settings)
    ioloop = IOLoop()  # its own loop: pyftpdlib's default one is process-wide
    server = Server((HOST, 0), handler, ioloop=ioloop)
    stop = threading.Event()

    def serve() -> None:
        try:
            while not stop.is_set():
                server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        finally:
            server.close_all()

    thread = threading.Thread(target=serve, name="test-ftp-server", daemon=True)
    thread.start()
    try:
        yield FTPServer(root, server.address[1], user, password)
    finally:
        stop.set()
        thread.join(TIMEOUT)
        shutil.rmtree(root, ignore_errors=True)
