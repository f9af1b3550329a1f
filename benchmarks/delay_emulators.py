"""The object-store emulators the concurrency benchmark puts behind its delay proxy.

S3 is moto, run as a subprocess by default (its own GIL and core, so that its
CPU is not taken from the measured client), or in this process; GCS is
fake-gcs-server. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# Nothing here imports gcsfs before tests.servers sets GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT.
from tests.servers import S3Server, gcs_server  # noqa: E402
from tests.servers._process import HOST, _start_process  # noqa: E402

__all__ = ["Emulator", "emulator", "moto_subprocess"]


@dataclass
class Emulator:
    """A running emulator: how to reach it directly or through a proxy."""

    name: str
    scheme: str
    port: int
    options: Callable[[str], dict[str, Any]]  # endpoint URL -> storage options
    server: str  # what it is, for the report
    #: ``fs.cat_file`` keywords that make a whole-object read one request (s3fs
    #: otherwise sends a HEAD first, for the size, then the GET).
    one_get: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None  # the server's process, if it is a subprocess


@contextlib.contextmanager
def moto_subprocess() -> Iterator[S3Server]:
    """moto's server as a subprocess on 127.0.0.1 (its own GIL, its own core)."""
    log = Path(tempfile.mkdtemp(prefix="fsjobstore-moto-")) / "moto.log"

    def argv(port: int) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]

    process, port = _start_process(
        "moto_server", argv, "/moto-api/", expect_status=HTTPStatus.OK, log_path=log
    )
    try:
        server = S3Server(process, f"http://{HOST}:{port}", None)  # type: ignore[arg-type]
        server.pid = process.popen.pid  # type: ignore[attr-defined]
        yield server
    finally:
        process.stop()
        log.unlink(missing_ok=True)
        log.parent.rmdir()


@contextlib.contextmanager
def emulator(name: str, moto: str, s3_pool: int | None = None) -> Iterator[Emulator]:
    """Start the emulator for ``name`` (``s3`` or ``gcs``).

    ``s3_pool`` sets s3fs's ``max_pool_connections`` (fsjobstore's default, 32, if None).
    """
    if name == "s3":
        from tests.servers import s3_server

        starting = moto_subprocess() if moto == "subprocess" else s3_server()
        with starting as s3:
            base = s3.storage_options()
            if s3_pool:
                base["config_kwargs"] = {"max_pool_connections": s3_pool}

            def s3_options(url: str) -> dict[str, Any]:
                return base | {"client_kwargs": {"endpoint_url": url}}

            port = int(s3.endpoint_url.rsplit(":", 1)[1])
            where = "subprocess" if moto == "subprocess" else "thread of this process"
            pid = getattr(s3, "pid", None)
            yield Emulator(
                "s3", "s3", port, s3_options, f"moto (s3fs), {where}", {"max_concurrency": 1}, pid
            )
    elif name == "gcs":
        with gcs_server() as gcs:
            gbase = gcs.storage_options()

            def gcs_options(url: str) -> dict[str, Any]:
                return gbase | {"endpoint_url": url}

            port = int(gcs.endpoint_url.rsplit(":", 1)[1])
            process = getattr(gcs, "_process", None)
            pid = process.popen.pid if process is not None else None
            server = "fake-gcs-server (gcsfs), subprocess"
            yield Emulator("gcs", "gs", port, gcs_options, server, {}, pid)
    else:
        raise ValueError(f"unknown backend {name!r}")
