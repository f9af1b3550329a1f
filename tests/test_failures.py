"""Client errors become builtin exceptions naming the path: the one place that maps them."""

from __future__ import annotations

import errno
import ftplib

import asyncssh
import pytest

from fsjobstore.backends.failures import as_builtin, sftp_status, transient
from fsjobstore.redaction import SCRUBBER

PATH = "/stores/run/jobs/a.json"


@pytest.mark.parametrize(
    ("error", "kind", "retry"),
    [
        (ftplib.error_perm("550 No such file or directory."), FileNotFoundError, False),
        (ftplib.error_perm("530 Login incorrect."), PermissionError, False),
        (ftplib.error_temp("421 Too many connections."), OSError, True),
        (ftplib.error_reply("226 unexpected"), OSError, False),
        (asyncssh.SFTPNoSuchFile("no such file"), FileNotFoundError, False),
        (asyncssh.SFTPPermissionDenied("denied"), PermissionError, False),
        (asyncssh.SFTPFileAlreadyExists("exists"), FileExistsError, False),
        (asyncssh.SFTPFileIsADirectory("is a directory"), IsADirectoryError, False),
        (asyncssh.SFTPNotADirectory("not a directory"), NotADirectoryError, False),
        (asyncssh.SFTPNoSpaceOnFilesystem("full"), OSError, False),
        (asyncssh.SFTPFailure("Failure"), OSError, False),
        (asyncssh.SFTPNoConnection("no connection"), ConnectionError, True),
        (asyncssh.ConnectionLost("gone"), ConnectionError, True),
        (ConnectionResetError(errno.ECONNRESET, "reset"), ConnectionResetError, True),
    ],
)
def test_client_errors_become_builtins_naming_the_path(
    error: Exception, kind: type[Exception], retry: bool
) -> None:
    mapped = as_builtin(error, PATH)
    assert type(mapped) is kind
    assert type(mapped).__module__ == "builtins"
    assert isinstance(mapped, OSError)
    assert mapped.filename == PATH
    assert PATH in str(mapped)
    assert transient(error) is retry


def test_a_builtin_error_keeps_its_type_and_gains_the_path() -> None:
    bare = FileNotFoundError(errno.ENOENT, "No such file")
    mapped = as_builtin(bare, PATH)
    assert type(mapped) is FileNotFoundError and mapped.filename == PATH
    named = FileNotFoundError(errno.ENOENT, "No such file", "/elsewhere")
    assert as_builtin(named, PATH) is named


def test_a_secret_in_a_server_message_is_masked() -> None:
    SCRUBBER.learn(frozenset({"hunter2-secret"}))
    mapped = as_builtin(ftplib.error_perm("530 bad password hunter2-secret"), PATH)
    assert "hunter2-secret" not in str(mapped)
    assert "***" in str(mapped)


def test_sftp_status_reads_the_chain() -> None:
    outer = OSError("wrapped")
    outer.__cause__ = asyncssh.SFTPFailure("Failure")
    assert sftp_status(outer) == asyncssh.FX_FAILURE
    assert sftp_status(ValueError("x")) is None


def _cut_short_as_azure_reports_it() -> Exception:
    """The chain the Azure SDK raises after its last try at a body that broke off."""
    from aiohttp import ClientPayloadError
    from aiohttp.http_exceptions import ContentLengthError
    from azure.core.exceptions import HttpResponseError, IncompleteReadError

    try:
        try:
            try:
                try:
                    try:
                        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
                    except ConnectionResetError:
                        raise ContentLengthError("Not enough data for the content length")  # noqa: B904
                except ContentLengthError as parse:
                    raise ClientPayloadError("Response payload is not completed") from parse
            except ClientPayloadError as payload:
                raise IncompleteReadError(payload, error=payload) from payload
        except IncompleteReadError as read:
            raise HttpResponseError(read, error=read) from read
    except HttpResponseError as error:
        return error


def test_a_body_cut_short_is_no_answer_from_the_server() -> None:
    """aiohttp's parser error carries code 400, which no server sent."""
    error = _cut_short_as_azure_reports_it()
    assert transient(error)
    mapped = as_builtin(error, PATH)
    assert isinstance(mapped, ConnectionError), repr(mapped)
    assert "400" not in str(mapped)
    assert mapped.filename == PATH
