"""Tests of the ``fsjobstore`` command line: ``demo`` and ``status``."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from fsjobstore.cli import DEFAULT_DEMO_STORE, main
from fsjobstore.layout import parse_file_id
from fsjobstore.store import JobStore

# What run_demo leaves behind, read off fsjobstore/cli.py: "test_job" is deleted with its
# cleanup=True file input.txt; "kept_job" stays with result.txt (cleanup=False), written
# with DEMO_RESULT; one shared file (demo-notes.txt); one log message, never read.
DEMO_RESULT = b"a result that outlives its job\n"
DEMO_COUNTS = {"jobs": 1, "files": 1, "bytes": len(DEMO_RESULT), "shared_files": 1, "logs": 1}

HEX32 = "[0-9a-f]{32}"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _status_json(capsys: pytest.CaptureFixture[str], locator: str) -> dict[str, object]:
    status, out, err = _run(capsys, "status", locator, "--json")
    assert (status, err) == (0, "")
    counts = json.loads(out)
    assert isinstance(counts, dict)
    return counts


def test_demo_output_and_what_it_leaves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locator = str(tmp_path / "store")
    status, out, err = _run(capsys, "demo", locator)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith(f"initialized a job store at {locator} (LocalFileSystem, root ")
    first = re.fullmatch(rf"created job ({HEX32}) \(remainingTryCount=2\)", lines[1])
    assert first is not None
    assert lines[2] == "updated and reloaded it: remainingTryCount=2"
    wrote = re.fullmatch(r"wrote input\.txt as file (\S+) \(9 bytes\)", lines[3])
    assert wrote is not None
    input_ref = parse_file_id(wrote[1])
    assert (input_ref.owner, input_ref.cleanup, input_ref.basename) == (
        first[1],
        True,
        "input.txt",
    )
    assert lines[4] == "read it back: 'test data'"
    kept = re.fullmatch(rf"created job ({HEX32}) with file (\S+)", lines[5])
    assert kept is not None
    result_ref = parse_file_id(kept[2])
    assert (result_ref.owner, result_ref.cleanup, result_ref.basename) == (
        kept[1],
        False,
        "result.txt",
    )
    assert lines[6] == f"deleted job {first[1]} and its cleanup file: exists=False"
    assert lines[7] == (f"left the store at {locator}: see it with 'fsjobstore status {locator}'")

    store = JobStore(locator)
    store.resume()
    assert [job.jobName for job in store.jobs()] == ["kept_job"]
    assert store.get_all_file_ids() == [kept[2]]
    with store.read_file_stream(kept[2]) as handle:
        assert handle.read() == DEMO_RESULT
    with store.read_shared_file_stream("demo-notes.txt", encoding="utf-8") as text:
        assert text.read() == "shared files have well-known names\n"


def test_status_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locator = str(tmp_path / "store")
    assert _run(capsys, "demo", locator)[0] == 0
    assert _status_json(capsys, locator) == {"locator": locator, **DEMO_COUNTS}
    status, out, err = _run(capsys, "status", locator)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"job store {locator}"
    assert {line.split()[0]: int(line.split()[1]) for line in lines[1:]} == DEMO_COUNTS


def test_demo_replaces_an_earlier_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locator = str(tmp_path / "store")
    assert _run(capsys, "demo", locator)[0] == 0
    assert _run(capsys, "demo", locator)[0] == 0
    assert _status_json(capsys, locator) == {"locator": locator, **DEMO_COUNTS}


def test_demo_on_memory_filesystem(capsys: pytest.CaptureFixture[str]) -> None:
    locator = f"memory://fsjobstore-cli-{uuid.uuid4().hex}"
    try:
        status, out, err = _run(capsys, "demo", locator)
        assert (status, err) == (0, "")
        assert "(MemoryFileSystem, root " in out
        assert _status_json(capsys, locator) == {"locator": locator, **DEMO_COUNTS}
    finally:
        JobStore(locator).destroy()


def test_status_of_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locator = str(tmp_path / "store")
    JobStore(locator).initialize()
    counts = _status_json(capsys, locator)
    assert counts == {"locator": locator, **dict.fromkeys(DEMO_COUNTS, 0)}


def _missing(path: Path) -> None:
    pass


def _empty_dir(path: Path) -> None:
    path.mkdir()


def _regular_file(path: Path) -> None:
    path.write_text("not a store")


def _corrupt_marker(path: Path) -> None:
    path.mkdir()
    (path / ".fsjobstore.json").write_text("{")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_missing, "fsjobstore: no job store at {locator!r}"),
        (_empty_dir, "fsjobstore: no job store at {locator!r}"),
        (_regular_file, "fsjobstore: no job store at {locator!r}"),
        (_corrupt_marker, "fsjobstore: error: job store {locator!r}: stored marker document"),
    ],
)
def test_status_of_what_is_not_a_store(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None],
    expected: str,
) -> None:
    path = tmp_path / "target"
    make(path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    locator = str(path)
    status, out, err = _run(capsys, "status", locator, "--json")
    assert (status, out) == (1, "")
    assert err.startswith(expected.format(locator=locator))
    # status only reads: nothing is made, nothing removed.
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("make", [_regular_file, _empty_dir])
def test_demo_refuses_to_clobber_foreign_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], None]
) -> None:
    path = tmp_path / "target"
    make(path)
    if path.is_dir():
        (path / "precious.txt").write_text("keep me")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    status, _, err = _run(capsys, "demo", str(path))
    assert status == 1
    assert err.startswith("fsjobstore: error: ")
    assert str(path) in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("command", ["demo", "status"])
@pytest.mark.parametrize(
    ("locator", "reason"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("bogus:thing", "unknown locator type 'bogus'"),
        ("aws:US-WEST-2:bkt", "region 'US-WEST-2' is not a region name"),
        ("aws:us-west-2:bkt:../up", "prefix segment '..'"),
        ("/tmp/a\x00b", "it contains a NUL character"),
        ("s3://", "'s3://' needs a path"),
    ],
)
def test_bad_locators_fail_cleanly(
    capsys: pytest.CaptureFixture[str], command: str, locator: str, reason: str
) -> None:
    status, out, err = _run(capsys, command, locator)
    assert (status, out) == (1, "")
    assert err.startswith(f"fsjobstore: error: invalid job store locator {locator!r}: {reason}")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "the following arguments are required: command"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["status"], "the following arguments are required: locator"),
        (["status", "--json"], "the following arguments are required: locator"),
        (["status", "x", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "a", "b"], "unrecognized arguments: b"),
        (["demo", "--json"], "unrecognized arguments: --json"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: fsjobstore")
    assert fragment in err


def test_console_script_demo_then_status(tmp_path: Path) -> None:
    """The README's main command, as a user runs it: defaults to ./fsjobstore-demo."""
    script = shutil.which("fsjobstore", path=sysconfig.get_path("scripts"))
    assert script is not None, f"no fsjobstore console script beside {sys.executable}"
    demo = subprocess.run(
        [script, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert (demo.returncode, demo.stderr) == (0, "")
    assert DEFAULT_DEMO_STORE == "./fsjobstore-demo"
    assert (tmp_path / "fsjobstore-demo" / ".fsjobstore.json").is_file()
    status = subprocess.run(
        [script, "status", "./fsjobstore-demo", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (status.returncode, status.stderr) == (0, "")
    counts = json.loads(status.stdout)
    assert counts["locator"] == "./fsjobstore-demo"
    for key in ("jobs", "files", "bytes", "logs"):
        assert type(counts[key]) is int, key
        assert counts[key] == DEMO_COUNTS[key], key
