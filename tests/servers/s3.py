"""moto's S3 server, in this process, recording the requests it receives."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from ._process import (
    HOST,
    START_TIMEOUT,
    _http,
)


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
