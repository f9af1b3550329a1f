"""The OpenSSH fixture (tests/servers/sftp.py), and what sshfs does on a real sshd.

Besides checking that the fixture serves SFTP, these tests pin down the
behaviours of sshfs on OpenSSH that the SFTP backend must handle, so that a
new sshfs or OpenSSH release that changes one of them is noticed here:

* an exclusive create (``open(path, "xb")``) of an existing file raises
  asyncssh's untranslated ``SFTPFailure("Failure")``: OpenSSH's server
  answers every errno but ENOENT and EACCES/EPERM with the generic
  ``SSH_FX_FAILURE``, and sshfs only translates failures whose message ends
  in "already exists";
* a plain SFTP rename onto an existing file fails (OpenSSH renames regular
  files by ``link`` + ``unlink``), while ``fs.mv`` replaces it (sshfs uses
  the ``posix-rename@openssh.com`` extension);
* ``cat_file(path, start, end)`` ignores the range.

asyncssh's own SFTP client is reached without sshfs's private attributes:
``fs.client`` (public) is the asyncssh connection, its
``start_sftp_client()`` opens a channel of its own, and
``fsspec.asyn.sync(fs.loop, ...)`` runs that on the filesystem's event loop.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import fsspec
import pytest
from fsspec.asyn import sync

from tests.servers import SFTPServer, sftp_server, start_sftp_server
from tests.servers import sftp as sftp_module

with warnings.catch_warnings():
    # asyncssh's import names DSA types, which recent cryptography releases warn
    # about with CryptographyDeprecationWarning, a UserWarning: asyncssh's
    # business, not these tests'.
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    import asyncssh
    from asyncssh.sftp import SFTPClient


@pytest.fixture(scope="module")
def server() -> Iterator[SFTPServer]:
    """One sshd for this module."""
    with sftp_server() as running:
        yield running


@pytest.fixture
def fs(server: SFTPServer) -> fsspec.AbstractFileSystem:
    """A new sshfs filesystem (its own connection) on the server."""
    return fsspec.filesystem("sftp", skip_instance_cache=True, **server.storage_options())


@pytest.fixture
def base(server: SFTPServer, request: pytest.FixtureRequest) -> str:
    """A directory of this test's own below the server's root."""
    path = server.path(request.node.name)
    os.makedirs(path)
    return path


def with_sftp_client(
    fs: fsspec.AbstractFileSystem, action: Callable[[SFTPClient], Awaitable[Any]]
) -> Any:
    """Run ``action`` with an asyncssh SFTP client on ``fs``'s own connection.

    Only public names: ``fs.client`` is sshfs's asyncssh connection and
    ``fs.loop`` the event loop it runs on.  The client is a new SFTP
    channel on that connection (outside sshfs's pool of channels).
    """

    async def run() -> Any:
        async with fs.client.start_sftp_client() as client:
            return await action(client)

    return sync(fs.loop, run)


def test_write_read_rename_list(fs: fsspec.AbstractFileSystem, base: str) -> None:
    fs.pipe_file(f"{base}/dir/a.txt", b"hello")  # makes the parent directory
    assert fs.cat_file(f"{base}/dir/a.txt") == b"hello"
    with fs.open(f"{base}/dir/b.txt", "wb") as stream:
        stream.write(b"streamed")
    fs.mv(f"{base}/dir/a.txt", f"{base}/dir/c.txt")
    assert sorted(fs.ls(f"{base}/dir", detail=False)) == [f"{base}/dir/b.txt", f"{base}/dir/c.txt"]
    assert fs.info(f"{base}/dir")["type"] == "directory"
    assert fs.info(f"{base}/dir/c.txt")["size"] == 5
    # What the server wrote is on this machine's disk, below root.
    with open(f"{base}/dir/c.txt", "rb") as local:
        assert local.read() == b"hello"
    fs.rm(f"{base}/dir", recursive=True)
    assert not fs.exists(f"{base}/dir")


def test_url_names_user_host_and_port_without_secrets(server: SFTPServer) -> None:
    url = server.url("some/store")
    assert url == f"sftp://{server.username}@127.0.0.1:{server.port}{server.root}/some/store"
    # fsspec accepts the URL's host, port and user beside the same values in
    # the storage options, and strips the URL to the absolute server path.
    fs, path = fsspec.core.url_to_fs(url, **server.storage_options())
    assert path == f"{server.root}/some/store"
    fs.pipe_file(path, b"x")
    assert (server.root / "some" / "store").read_bytes() == b"x"


def test_exclusive_create_of_existing_file_raises_bare_sftp_failure(
    fs: fsspec.AbstractFileSystem, base: str
) -> None:
    with fs.open(f"{base}/once", "xb") as stream:  # a new name: created
        stream.write(b"first")
    with pytest.raises(asyncssh.SFTPFailure) as caught:
        fs.open(f"{base}/once", "xb")
    # Not a FileExistsError, not even an OSError: the generic SSH_FX_FAILURE
    # (code 4) with OpenSSH's text "Failure", passed through by sshfs.
    assert type(caught.value) is asyncssh.SFTPFailure
    assert not isinstance(caught.value, OSError)
    assert caught.value.code == asyncssh.FX_FAILURE == 4
    assert caught.value.reason == "Failure"
    assert str(caught.value) == "Failure"
    assert caught.value.__cause__ is None
    assert fs.cat_file(f"{base}/once") == b"first"


def test_plain_rename_refuses_existing_target_but_mv_replaces(
    fs: fsspec.AbstractFileSystem, base: str
) -> None:
    fs.pipe_file(f"{base}/new", b"new")
    fs.pipe_file(f"{base}/old", b"old")

    with pytest.raises(asyncssh.SFTPFailure) as caught:
        with_sftp_client(fs, lambda client: client.rename(f"{base}/new", f"{base}/old"))
    assert type(caught.value) is asyncssh.SFTPFailure
    assert (caught.value.code, caught.value.reason) == (asyncssh.FX_FAILURE, "Failure")
    assert fs.cat_file(f"{base}/old") == b"old"  # nothing changed
    assert fs.cat_file(f"{base}/new") == b"new"

    fs.mv(f"{base}/new", f"{base}/old")  # posix-rename@openssh.com
    assert fs.cat_file(f"{base}/old") == b"new"
    assert not fs.exists(f"{base}/new")

    # The same extension through asyncssh directly.
    fs.pipe_file(f"{base}/newer", b"newer")
    with_sftp_client(fs, lambda client: client.posix_rename(f"{base}/newer", f"{base}/old"))
    assert fs.cat_file(f"{base}/old") == b"newer"


def test_cat_file_ignores_the_range(fs: fsspec.AbstractFileSystem, base: str) -> None:
    fs.pipe_file(f"{base}/ranged", b"0123456789")
    # sshfs's _cat_file takes start and end in **kwargs and reads it all.
    assert fs.cat_file(f"{base}/ranged", start=2, end=5) == b"0123456789"
    # Reading a range through a file object works.
    with fs.open(f"{base}/ranged", "rb") as stream:
        stream.seek(2)
        assert stream.read(3) == b"234"


def test_sixteen_threads_share_one_filesystem(fs: fsspec.AbstractFileSystem, base: str) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for round_ in range(10):
                path = f"{base}/{worker}/{round_}"
                data = f"{worker}:{round_}".encode() * 100
                fs.pipe_file(path, data)
                assert fs.cat_file(path) == data
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(fs.find(base)) == 160


def test_stop_ends_listener_and_connections() -> None:
    server = start_sftp_server()
    try:
        fs = fsspec.filesystem("sftp", skip_instance_cache=True, **server.storage_options())
        fs.pipe_file(server.path("x"), b"x")
        listener = server._process.popen.pid
        connections = sftp_module._descendants(listener)
        assert connections  # sshd serves each connection in processes of its own
    finally:
        server.stop()
    assert server._process.popen.poll() is not None
    for pid in connections:
        # Ended, or at most a zombie left for its parent (init) to reap; a
        # loaded machine may take a moment to run the signalled process.
        deadline = time.monotonic() + 10
        while True:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    state = stat.read().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                break
            if state == "Z":
                break
            assert time.monotonic() < deadline, f"connection process {pid} still {state}"
            time.sleep(0.05)
    assert not server.root.exists()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((server.host, server.port), 1.0),
    ):
        pass


def test_missing_sshd_is_an_error_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(sftp_module, "SSHD", tmp_path / "no-sshd")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="openssh-server"):
        start_sftp_server()
