"""The ``fsjobstore`` console script on local disk, run as a user runs it (a subprocess)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
from pathlib import Path

import pytest

from fsjobstore import Config, JobDescription, JobStore, __version__
from fsjobstore.cli.support import parse_options
from fsjobstore.layout import parse_file_id
from fsjobstore.maintenance import DEFAULT_DEMO_STORE, DEMO_MARK

from .clitools import Made, lines, populate, run, script

# What the demo leaves: "kept_job" with result.txt (cleanup=False), one shared
# file, one log message never read.
DEMO_RESULT = b"a result that outlives its job\n"
DEMO_COUNTS = {
    "jobs": 1,
    "files": 1,
    "bytes": len(DEMO_RESULT),
    "shared_files": 1,
    "logs": 1,
    "orphans": 0,
    "temporaries": 0,
}
HEX32 = "[0-9a-f]{32}"


@pytest.fixture
def made(tmp_path: Path) -> tuple[str, Made]:
    locator = str(tmp_path / "store")
    return locator, populate(JobStore(locator))


# -- demo -------------------------------------------------------------------------


def test_demo_as_in_the_readme(tmp_path: Path) -> None:
    """``fsjobstore demo`` then ``status``, in a fresh directory, defaults and all."""
    demo = run("demo", cwd=str(tmp_path))
    assert (demo.status, demo.err) == (0, "")
    out = lines(demo.out)
    assert len(out) == 8
    assert DEFAULT_DEMO_STORE == "./fsjobstore-demo"
    assert out[0].startswith("initialized a job store at ./fsjobstore-demo (LocalFileSystem, root ")
    first = re.fullmatch(rf"created job ({HEX32}) \(remainingTryCount=2\)", out[1])
    assert first is not None
    wrote = re.fullmatch(r"wrote input\.txt as file (\S+) \(9 bytes\)", out[3])
    assert wrote is not None
    ref = parse_file_id(wrote[1])
    assert (ref.owner, ref.cleanup, ref.basename) == (first[1], True, "input.txt")
    assert out[6] == f"deleted job {first[1]} and its cleanup file: exists=False"
    status = run("status", "./fsjobstore-demo", "--json", cwd=str(tmp_path))
    assert status.json() == {"locator": "./fsjobstore-demo", **DEMO_COUNTS}
    text = run("status", "./fsjobstore-demo", cwd=str(tmp_path))
    assert lines(text.out)[0] == "job store ./fsjobstore-demo"
    assert {ln.split()[0]: int(ln.split()[1]) for ln in lines(text.out)[1:]} == DEMO_COUNTS


def test_demo_replaces_only_its_own_store(tmp_path: Path) -> None:
    locator = str(tmp_path / "demo")
    assert run("demo", locator).status == 0
    assert run("demo", locator).status == 0  # its own: replaced
    store = JobStore(locator)
    store.resume()
    assert getattr(store.config, DEMO_MARK) is True
    assert [j.jobName for j in store.jobs()] == ["kept_job"]

    precious = str(tmp_path / "precious")
    other = JobStore(precious)
    other.initialize(Config())
    other.create_job(JobDescription({"cores": 1}, jobName="precious"))
    refused = run("demo", precious)
    assert refused.status == 1
    assert lines(refused.err) == [
        f"fsjobstore: error: demo {precious!r}: job store {precious!r} was not made by "
        "'fsjobstore demo'; pass --force to replace it"
    ]
    assert [j.jobName for j in other.jobs()] == ["precious"]
    assert run("demo", precious, "--force").status == 0
    assert [j.jobName for j in other.jobs()] == ["kept_job"]
    quiet = run("demo", locator, "--json").json()
    assert quiet == {"locator": locator, **DEMO_COUNTS}


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_demo_never_touches_other_data(tmp_path: Path, force: list[str]) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    done = run("demo", str(folder), *force)
    assert done.status == 1
    assert done.err.startswith(f"fsjobstore: error: demo {str(folder)!r}: ")
    assert [p.name for p in folder.iterdir()] == ["precious.txt"]


# -- looking inside ---------------------------------------------------------------


def test_init_then_status(tmp_path: Path) -> None:
    locator = str(tmp_path / "new")
    made = run("init", locator, "--retry-count", "5", "--json")
    assert made.json() == {"locator": locator, "retryCount": 5}
    counts = run("status", locator, "--json").json()
    assert counts == {"locator": locator, **dict.fromkeys(DEMO_COUNTS, 0)}
    again = run("init", locator)
    assert again.status == 1
    assert again.err.startswith(f"fsjobstore: error: init {locator!r}: ")


def test_status_jobs_show_files(made: tuple[str, Made]) -> None:
    locator, what = made
    counts = run("status", locator, "--json").json()
    assert counts == {
        "locator": locator,
        "jobs": len(what.jobs),
        "files": len(what.files),
        "bytes": sum(len(d) for d in what.files.values()),
        "shared_files": len(what.shared),
        "logs": len(what.pending),
        "orphans": len(what.orphans),
        "temporaries": 0,
    }
    documents = run("jobs", locator, "--json").json()
    assert {d["jobStoreID"]: d["jobName"] for d in documents} == what.jobs
    assert all(d["remainingTryCount"] == 5 for d in documents)
    text = lines(run("jobs", locator).out)
    assert sorted(text) == sorted(f"{i}\t{n}\t5" for i, n in what.jobs.items())

    job_id = sorted(what.jobs)[0]
    shown = run("show", locator, job_id, "--json").json()
    assert shown == next(d for d in documents if d["jobStoreID"] == job_id)
    assert json.loads(run("show", locator, job_id).out) == shown
    missing = run("show", locator, "0" * 32)
    assert missing.status == 1
    assert "0" * 32 in missing.err

    listed = run("files", locator, "--json").json()
    assert {f["id"]: f["size"] for f in listed} == {i: len(d) for i, d in what.files.items()}
    for item in listed:
        ref = parse_file_id(item["id"])
        assert (item["job"], item["cleanup"], item["executable"]) == (
            ref.owner,
            ref.cleanup,
            ref.executable,
        )
    assert any(f["executable"] for f in listed) and any(f["cleanup"] for f in listed)
    assert {f["id"] for f in run("files", locator, "--orphans", "--json").json()} == what.orphans
    first = next(i for i, o in what.owned.items() if o and i not in what.orphans)
    owner = what.owned[first]
    assert {f["id"] for f in run("files", locator, "--job", owner or "", "--json").json()} == {
        i for i, o in what.owned.items() if o == owner
    }
    rows = [row.split("\t") for row in lines(run("files", locator).out)]
    assert {(r[0], int(r[1]), r[2]) for r in rows} == {
        (i, len(d), what.owned[i] or "-") for i, d in what.files.items()
    }


def test_cat_and_logs(made: tuple[str, Made]) -> None:
    locator, what = made
    for file_id, data in what.files.items():
        done = run("cat", locator, file_id)
        assert (done.status, done.out.encode()) == (0, data)
    assert run("cat", locator, "--shared", "notes.txt").out.encode() == what.shared["notes.txt"]
    assert run("cat", locator).status == 2
    missing = run("cat", locator, "--shared", "nope")
    assert missing.status == 1
    assert "'nope'" in missing.err

    assert set(run("logs", locator, "--json").json()) == what.pending
    assert run("logs", locator, "--json").json() == []  # delivered once, then archived
    everything = run("logs", locator, "--all").out
    assert sorted(lines(everything)) == sorted(what.pending | what.archived)


def test_import_and_export(tmp_path: Path, made: tuple[str, Made]) -> None:
    locator, _ = made
    sources = []
    for name in ("a.txt", "b.bin"):
        (tmp_path / name).write_bytes(name.encode() * 1000)
        sources.append(str(tmp_path / name))
    ids = run("import", locator, *sources, "--json").json()
    assert [parse_file_id(i).basename for i in ids] == ["a.txt", "b.bin"]
    text = run("import", locator, sources[0])
    assert len(lines(text.out)) == 1 and lines(text.out)[0].endswith("~a.txt")
    shared = run("import", locator, sources[1], "--shared", "b-shared", "--json")
    assert shared.json() == []
    assert run("cat", locator, "--shared", "b-shared").out == "b.bin" * 1000

    out = tmp_path / "out"
    out.mkdir()
    done = run("export", locator, ids[0], str(out / "x"), ids[1], str(out / "y"), "--json")
    assert done.json() == [
        {"id": ids[0], "url": str(out / "x")},
        {"id": ids[1], "url": str(out / "y")},
    ]
    assert (out / "x").read_bytes() == b"a.txt" * 1000
    assert (out / "y").read_bytes() == b"b.bin" * 1000
    assert run("export", locator, ids[0]).status == 2
    missing = run("import", locator, str(tmp_path / "nope"))
    assert missing.status == 1
    assert "nope" in missing.err


def test_clean_and_destroy(tmp_path: Path, made: tuple[str, Made]) -> None:
    locator, what = made
    leftover = Path(locator) / "tmp" / ("ab" * 16)
    leftover.write_bytes(b"x" * 1234)
    dry = run("clean", locator, "--dry-run", "--older-than", "0", "--json").json()
    assert dry["dry_run"] is True
    assert {f["id"] for f in dry["orphans"]} == what.orphans
    assert [(t["kind"], t["path"], t["size"]) for t in dry["temporaries"]] == [
        ("file", str(leftover), 1234)
    ]
    assert leftover.exists()
    young = run("clean", locator, "--json").json()  # the default: a day old at least
    assert young["temporaries"] == []
    assert {f["id"] for f in young["orphans"]} == what.orphans
    assert leftover.exists()
    done = run("clean", locator, "--older-than", "0")
    assert lines(done.out)[-1] == "removed 0 orphaned files and 1 temporaries (1234 bytes)"
    assert not leftover.exists()
    assert run("status", locator, "--json").json()["orphans"] == 0
    assert run("clean", locator, "--older-than", "soon").status == 2

    refused = run("destroy", locator)  # no terminal to ask on
    assert refused.status == 1
    assert "pass --yes" in refused.err
    assert Path(locator, ".fsjobstore.json").exists()
    assert run("destroy", locator, "--yes", "--json").json() == {
        "locator": locator,
        "destroyed": True,
    }
    assert not Path(locator).exists()
    again = run("destroy", locator, "--yes")
    assert again.status == 1
    assert again.err == f"fsjobstore: error: destroy {locator!r}: no job store at {locator!r}\n"
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    assert run("destroy", str(folder), "--yes").status == 1
    assert (folder / "keep.txt").exists()


# -- the rules every command follows -----------------------------------------------


def test_version_and_help() -> None:
    assert run("--version").out == f"fsjobstore, version {__version__}\n"
    for command in (
        "init",
        "status",
        "jobs",
        "show",
        "files",
        "cat",
        "logs",
        "import",
        "export",
        "migrate",
        "clean",
        "destroy",
        "demo",
    ):
        shown = run(command, "--help")
        assert shown.status == 0
        assert "Example" in shown.out, command
        assert f"fsjobstore {command}" in shown.out, command


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "Usage: fsjobstore"),
        (["bogus"], "No such command 'bogus'"),
        (["status"], "Missing argument 'LOCATOR'"),
        (["status", "x", "--bogus"], "No such option"),
        (["status", "x", "-o", "novalue"], "'novalue' is not KEY=VALUE"),
        (["demo", "a", "b"], "Got unexpected extra argument (b)"),
        (["clean", "x", "--older-than", "-1"], "is not a duration"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], fragment: str) -> None:
    done = run(*argv)
    assert done.status == 2
    assert done.out == ""
    assert fragment in done.err


@pytest.mark.parametrize(
    ("locator", "reason"),
    [
        ("bogus:thing", "unknown locator type 'bogus'"),
        ("aws:US-WEST-2:bkt", "region 'US-WEST-2' is not a region name"),
        ("s3://", "'s3://' needs a path"),
    ],
)
def test_bad_locators_fail_in_one_line(locator: str, reason: str) -> None:
    done = run("status", locator, "--json")
    assert (done.status, done.out) == (1, "")
    assert len(lines(done.err)) == 1
    assert done.err.startswith(f"fsjobstore: error: status {locator!r}: invalid job store locator")
    assert reason in done.err


def test_credentials_never_shown(tmp_path: Path) -> None:
    # Nothing listens on port 9: the connection fails, and the error names the locator.
    secret = "s3cr3t-Pa55"
    for argv in (
        ["-v", "status", f"ftp://alice:{secret}@127.0.0.1:9/store"],
        ["status", "ftp://127.0.0.1:9/store", "-o", f"password={secret}", "-o", "timeout=2"],
        ["migrate", str(tmp_path / "none"), f"ftp://bob:{secret}@127.0.0.1:9/x"],
    ):
        done = run(*argv, timeout=60)
        assert done.status == 1, done.err
        assert secret not in done.out + done.err
        assert "Traceback" not in done.err
        assert done.err.startswith("fsjobstore: error: ")
    assert (
        "'ftp://***@127.0.0.1:9/store'"
        in run("status", f"ftp://alice:{secret}@127.0.0.1:9/store").err
    )


def test_options_are_json_when_they_parse() -> None:
    assert parse_options(
        [
            "anon=true",
            'client_kwargs={"endpoint_url": "http://127.0.0.1:9000"}',
            "profile=prod",
            "retries=3",
            "token=a=b",
        ]
    ) == {
        "anon": True,
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"},
        "profile": "prod",
        "retries": 3,
        "token": "a=b",
    }


def test_json_output_is_one_document(made: tuple[str, Made]) -> None:
    locator, _ = made
    for argv in (["status"], ["jobs"], ["files"], ["logs", "--all"], ["clean", "--dry-run"]):
        done = run(*argv, locator, "--json")
        assert done.status == 0
        json.loads(done.out)
        assert done.out.count("\n") == 1


def test_progress_on_a_terminal_only(tmp_path: Path, made: tuple[str, Made]) -> None:
    """With stderr a terminal, bars go there; stdout keeps its one JSON document."""
    locator, _ = made
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, and tqdm draws nothing in that.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    shown = b""
    try:
        child = subprocess.Popen(
            [script(), "migrate", locator, str(tmp_path / "copy"), "--json"],
            stdout=subprocess.PIPE,
            stderr=terminal,
            stdin=subprocess.DEVNULL,
        )
        os.close(terminal)
        # Read as it writes: a terminal holds little, and a full one would block it.
        while True:
            ready, _, _ = select.select([controller], [], [], 0.1)
            if ready:
                try:
                    shown += os.read(controller, 65536)
                except OSError:  # EIO: every writer has closed the terminal
                    break
            elif child.poll() is not None:
                break
        out, _ = child.communicate(timeout=120)
    finally:
        os.close(controller)
    done = subprocess.CompletedProcess(child.args, child.returncode, out)
    assert done.returncode == 0
    assert json.loads(done.stdout)["objects"] > 0
    assert b"migrate" in shown and b"object" in shown  # the bar's description and unit
    quiet = run("migrate", locator, str(tmp_path / "again"), "--no-progress", "--json")
    assert quiet.err == ""


def test_progress_never_on_a_pipe(tmp_path: Path, made: tuple[str, Made]) -> None:
    locator, _ = made
    done = run("migrate", locator, str(tmp_path / "copy"))
    assert done.status == 0
    assert done.err == ""  # stderr is a pipe: no bar
    assert os.path.exists(tmp_path / "copy" / ".fsjobstore.json")


def test_links_planted_in_a_store_lead_nowhere(tmp_path: Path) -> None:
    """A link below files/ is neither listed, cleaned through, nor migrated."""
    locator = str(tmp_path / "store")
    store = JobStore(locator)
    store.initialize()
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / f"{'0' * 32}~{'1' * 32}~victim.txt"
    victim.write_text("not the store's")
    (Path(locator) / "files" / ("0" * 32)).symlink_to(outside)  # an "orphan" owner
    (Path(locator) / "tmp" / ("ab" * 16)).symlink_to(victim)
    assert run("files", locator, "--json").json() == []
    report = run("clean", locator, "--older-than", "0", "--json").json()
    assert report["orphans"] == []
    assert [t["path"] for t in report["temporaries"]] == [str(Path(locator, "tmp", "ab" * 16))]
    assert victim.read_text() == "not the store's"  # the link went, not what it pointed at
    copied = run("migrate", locator, str(tmp_path / "copy"), "--json").json()
    assert copied["objects"] == 0


def test_cat_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    locator = str(tmp_path / "store")
    store = JobStore(locator)
    store.initialize()
    with store.write_file_stream() as (out, file_id):
        out.write(os.urandom(4 << 20))  # more than a pipe holds
    done = subprocess.run(
        f"{script()} cat {locator} '{file_id}' | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.stdout, done.stderr) == ("1\n", "")
