"""Credentials in a locator are used to connect, and never stored, shown or logged."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsjobstore import (
    Config,
    JobDescription,
    JobStore,
    JobStoreExistsException,
    JobStoreNotOpenError,
    NoSuchJobStoreException,
    NotAJobStoreError,
)
from fsjobstore.cli import main

from .webservers import FTPServer


@pytest.fixture
def with_password(ftp_site: FTPServer, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An FTP locator carrying the account's password, and the password."""
    locator = ftp_site.url(f"stores/{tmp_path.name}")
    assert ftp_site.password in locator
    yield locator, ftp_site.password
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            JobStore(locator).destroy()
        except NotAJobStoreError:
            pass


def open_store(locator: str) -> JobStore:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = JobStore(locator)
    for warning in caught:
        assert "***" in str(warning.message)
    return store


def test_the_marker_and_the_config_hold_no_password(
    with_password: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    locator, password = with_password
    caplog.set_level(logging.DEBUG)
    store = open_store(locator)
    store.initialize(Config(jobStore=locator))  # the caller's own config names it too
    assert password not in store.locator and "***" in store.locator
    assert password not in repr(store)
    assert password not in (store.config.jobStore or "")
    job = store.create_job(JobDescription(jobName="j"))
    store.write_logs("a message")
    marker = store.fs.cat_file(f"{store.root}/.fsjobstore.json")
    assert password.encode() not in marker
    assert json.loads(marker)["config"]["jobStore"] == store.locator
    again = open_store(locator)
    again.resume()
    assert again.load_job(job.jobStoreID or "").jobName == "j"
    assert password not in caplog.text


def test_errors_show_the_locator_without_its_password(
    with_password: tuple[str, str], tmp_path: Path
) -> None:
    locator, password = with_password
    store = open_store(locator)
    errors: list[Exception] = []
    for call in (
        store.resume,
        lambda: store.create_job(JobDescription(jobName="j")),
        lambda: store.initialize(Config(jobStore=locator.replace("stores", "elsewhere"))),
    ):
        with pytest.raises((NoSuchJobStoreException, JobStoreNotOpenError, ValueError)) as info:
            call()
        errors.append(info.value)
    store.initialize()
    with pytest.raises(JobStoreExistsException) as exists:
        open_store(locator).initialize()
    errors.append(exists.value)
    store.destroy()
    store.fs.pipe_file(f"{store.root}/foreign.txt", b"not a store")
    with pytest.raises(NotAJobStoreError) as foreign:
        open_store(locator).initialize()
    errors.append(foreign.value)
    store.fs.rm_file(f"{store.root}/foreign.txt")
    for error in errors:
        assert password not in str(error), repr(error)
        assert password not in repr(error)
        assert "***" in str(error)


def test_status_prints_no_password(
    with_password: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    locator, password = with_password
    open_store(locator).initialize()
    assert main(["status", locator]) == 0
    assert main(["status", locator, "--json"]) == 0
    assert main(["status", locator.replace("stores", "missing")]) == 1
    out, err = capsys.readouterr()
    assert password not in out + err
    assert "***" in out
