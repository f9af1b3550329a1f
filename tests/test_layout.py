"""Unit tests for fsjobstore.layout: IDs, their validation and the keys they map to."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import Any

import pytest

from fsjobstore.errors import InvalidIDError, JobStoreError
from fsjobstore.layout import (
    FILES,
    INBOX,
    JOBS,
    SHARED,
    FileRef,
    check_job_id,
    check_shared_name,
    file_id_from_key,
    job_id_from_key,
    job_key,
    new_file_id,
    new_job_id,
    new_log_key,
    owner_prefix,
    parse_file_id,
    sanitize_basename,
    shared_key,
)

UID = "0123456789abcdef0123456789abcdef"


# Values that are never a safe single path segment, whatever the kind of name.
UNSAFE: list[Any] = [
    "",
    ".",
    "..",
    "../x",
    "../../etc/passwd",
    "a/b",
    "a/../b",
    "/abs",
    "/etc/passwd",
    "a\\b",
    "a\x00b",
    "\x00",
    "a b",
    "a~b",
    "caf\u00e9",
    None,
    123,
    1.5,
    b"abc",
    ["a"],
]

BAD_JOB_IDS: list[Any] = [
    *UNSAFE,
    "x" * 129,
    "-a",
    ".hidden",
    "_",
    "_shared",
    "abc\n",
]
GOOD_JOB_IDS = ["a", "Z", "0", "a.b", "a-b_c", "a..", "a.json", "x" * 128, UID]


def _expect_invalid(kind: str, func: Callable[[Any], object], bad: Any) -> None:
    with pytest.raises(InvalidIDError) as info:
        func(bad)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, JobStoreError)
    assert info.value.value is bad
    message = str(info.value)
    assert f"invalid {kind} {bad!r}" in message
    if not isinstance(bad, str):
        assert f"expected a string, got {type(bad).__name__}" in message


@pytest.mark.parametrize("bad", BAD_JOB_IDS)
@pytest.mark.parametrize("func", [check_job_id, job_key, owner_prefix])
def test_bad_job_ids_are_rejected(func: Callable[[Any], object], bad: Any) -> None:
    _expect_invalid("job ID", func, bad)


@pytest.mark.parametrize("job_id", GOOD_JOB_IDS)
def test_good_job_ids_and_their_keys(job_id: str) -> None:
    assert check_job_id(job_id) == job_id
    assert job_key(job_id) == f"jobs/{job_id}.json"
    assert job_id_from_key(posixpath.basename(job_key(job_id))) == job_id
    assert owner_prefix(job_id) == f"files/{job_id}/"


def test_owner_prefixes_do_not_nest() -> None:
    file_of_ab = parse_file_id(new_file_id("ab", cleanup=True, executable=False, basename="f"))
    assert file_of_ab.key.startswith(owner_prefix("ab"))
    assert not file_of_ab.key.startswith(owner_prefix("a"))


def test_new_job_ids_are_fresh_hex() -> None:
    ids = [new_job_id() for _ in range(200)]
    assert len(set(ids)) == len(ids)
    for job_id in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", job_id)
        assert check_job_id(job_id) == job_id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("abc.json", "abc"),
        ("abc.json.json", "abc.json"),
        (f"{UID}.json", UID),
        ("abc", None),
        ("abc.JSON", None),
        (".json", None),
        ("..json", None),
        ("-a.json", None),
        ("_x.json", None),
        ("a/b.json", None),
        ("../x.json", None),
        ("x" * 129 + ".json", None),
        pytest.param("abc\n.json", None),
    ],
)
def test_job_id_from_key(name: str, expected: str | None) -> None:
    assert job_id_from_key(name) == expected


BAD_SHARED: list[Any] = [*UNSAFE, "x" * 256, "config\n"]
GOOD_SHARED = ["a", "config.pickle", "demo-notes.txt", ".hidden", "...", "-x", "_x", "x" * 255]


@pytest.mark.parametrize("bad", BAD_SHARED)
@pytest.mark.parametrize("func", [check_shared_name, shared_key])
def test_bad_shared_names_are_rejected(func: Callable[[Any], object], bad: Any) -> None:
    _expect_invalid("shared file name", func, bad)


@pytest.mark.parametrize("name", GOOD_SHARED)
def test_good_shared_names(name: str) -> None:
    assert check_shared_name(name) == name
    key = shared_key(name)
    assert key == f"files/_shared/{name}"
    assert key.startswith(SHARED)
    # Shared files are not files with IDs.
    assert file_id_from_key(key) is None


BAD_FILE_IDS: list[Any] = [
    *UNSAFE,
    "abc",
    f"_~{UID}",
    f"~{UID}~n",
    f"_~{UID}~../x",
    f"_~{UID}~a/b",
    f"../..~{UID}~n",
    f"a/b~{UID}~n",
    f"_shared~{UID}~n",
    f"__~{UID}~n",
    f"-a~{UID}~n",
    f"{'x' * 129}~{UID}~n",
    f"_~{UID.upper()}~n",
    f"_~{UID[:-1]}~n",
    f"_~{UID}0~n",
    f"_~{UID}XC~n",
    f"_~{UID}CC~n",
    f"_~{UID}Y~n",
    f"_~{UID}~{'x' * 129}",
    f"_~{UID}~a\x00",
    f"_~{UID}~a~b",
    f"/_~{UID}~n",
    f"_~{UID}~n\n",
]


@pytest.mark.parametrize("bad", BAD_FILE_IDS)
def test_bad_file_ids_are_rejected(bad: Any) -> None:
    _expect_invalid("file ID", parse_file_id, bad)


GOOD_FILE_IDS: list[tuple[str, FileRef, str]] = [
    (f"_~{UID}~", FileRef(f"_~{UID}~", None, False, False, ""), f"files/_/{UID}~"),
    (
        f"job1~{UID}C~input.txt",
        FileRef(f"job1~{UID}C~input.txt", "job1", True, False, "input.txt"),
        f"files/job1/{UID}C~input.txt",
    ),
    (f"j~{UID}X~run", FileRef(f"j~{UID}X~run", "j", False, True, "run"), f"files/j/{UID}X~run"),
    (f"j~{UID}CX~a", FileRef(f"j~{UID}CX~a", "j", True, True, "a"), f"files/j/{UID}CX~a"),
    # ".." as a basename is harmless: it is never a segment of its own.
    (f"_~{UID}~..", FileRef(f"_~{UID}~..", None, False, False, ".."), f"files/_/{UID}~.."),
    (
        f"{'o' * 128}~{UID}~{'n' * 128}",
        FileRef(f"{'o' * 128}~{UID}~{'n' * 128}", "o" * 128, False, False, "n" * 128),
        f"files/{'o' * 128}/{UID}~{'n' * 128}",
    ),
]


@pytest.mark.parametrize(("file_id", "ref", "key"), GOOD_FILE_IDS)
def test_parse_good_file_ids(file_id: str, ref: FileRef, key: str) -> None:
    parsed = parse_file_id(file_id)
    assert parsed == ref
    assert parsed.key == key
    assert file_id_from_key(key) == file_id


@pytest.mark.parametrize("job_id", [None, "job1", "x" * 128])
@pytest.mark.parametrize("executable", [False, True])
@pytest.mark.parametrize("cleanup", [False, True])
@pytest.mark.parametrize("basename", [None, "", "input.txt", "../../etc/passwd", "a b~c/d"])
def test_new_file_id_round_trip(
    job_id: str | None, cleanup: bool, executable: bool, basename: str | None
) -> None:
    if job_id is None and cleanup:
        with pytest.raises(ValueError, match="cleanup=True needs a job_id"):
            new_file_id(job_id, cleanup=cleanup, executable=executable, basename=basename)
        return
    file_id = new_file_id(job_id, cleanup=cleanup, executable=executable, basename=basename)
    ref = parse_file_id(file_id)
    assert (ref.file_id, ref.owner, ref.cleanup, ref.executable) == (
        file_id,
        job_id,
        cleanup,
        executable,
    )
    assert ref.basename == sanitize_basename(basename or "")
    # The key is files/<owner>/<one segment>, never escaping the root.
    assert ref.key.startswith(FILES + ("_" if job_id is None else job_id) + "/")
    assert ref.key.count("/") == 2
    assert posixpath.normpath(ref.key) == ref.key
    assert file_id_from_key(ref.key) == file_id


def test_new_file_ids_are_unique() -> None:
    ids = {new_file_id("j", cleanup=False, executable=False, basename="f") for _ in range(200)}
    assert len(ids) == 200


@pytest.mark.parametrize("bad", [b for b in BAD_JOB_IDS if b is not None])  # None: no owner
def test_new_file_id_rejects_bad_job_ids(bad: Any) -> None:
    _expect_invalid(
        "job ID", lambda v: new_file_id(v, cleanup=False, executable=False, basename="f"), bad
    )


@pytest.mark.parametrize(
    "key",
    [
        "",
        "files/",
        "files/_",
        f"files/_/{UID}~n/extra",
        f"files/a/b/{UID}~n",
        f"files/_shared/{UID}~n",
        f"jobs/{UID}~n",
        f"xfiles/_/{UID}~n",
        f"/files/_/{UID}~n",
        f"files/../{UID}~n",
        f"files/_/{UID}",
        "files/_/notanid",
        f"files/_/{UID}~a\x00b",
        f"files/_/{UID}~n\n",
    ],
)
def test_file_id_from_foreign_keys_is_none(key: str) -> None:
    assert file_id_from_key(key) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("input.txt", "input.txt"),
        ("", ""),
        ("a b", "a_b"),
        ("a/b", "a_b"),
        ("a~b", "a_b"),
        ("a\x00b", "a_b"),
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("caf\u00e9.txt", "caf_.txt"),
        ("x" * 128, "x" * 128),
        ("y" * 200 + ".txt", "y" * 124 + ".txt"),
    ],
)
def test_sanitize_basename(name: str, expected: str) -> None:
    result = sanitize_basename(name)
    assert result == expected
    assert re.fullmatch(r"[A-Za-z0-9._-]{0,128}", result)


def test_new_log_keys() -> None:
    keys = [new_log_key() for _ in range(100)]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert key.startswith(INBOX)
        assert re.fullmatch(r"stats/inbox/[0-9]{20}-[0-9a-f]{32}", key)


def test_top_level_prefixes_are_distinct() -> None:
    assert job_key("x").startswith(JOBS)
    assert not SHARED.startswith(JOBS)
    assert SHARED.startswith(FILES)
    assert not new_log_key().startswith(FILES)
