"""The main commands through the console script on every object store and local disk.

The store is made with the Python API (with the target's storage options);
the command line reaches it with no options at all, through the client's own
configuration (environment variables), as a user's shell would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fsjobstore.redaction import redact
from fsjobstore.testing import Target

from .clitools import environment, open_store, populate, raw_keys, run
from .conftest import make_target


@pytest.fixture(params=["file", "s3", "gcs", "azure", "sftp"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    return make_target(request, request.param, tmp_path)


def test_main_commands(target: Target, tmp_path: Path) -> None:
    store = open_store(target)
    made = populate(store)
    env = environment(target)
    where = target.locator
    shown = redact(where)  # an SFTP locator's user is not shown

    counts = run("status", where, "--json", env=env).json()
    assert counts == {
        "locator": shown,
        "jobs": len(made.jobs),
        "files": len(made.files),
        "bytes": sum(len(d) for d in made.files.values()),
        "shared_files": len(made.shared),
        "logs": len(made.pending),
        "orphans": len(made.orphans),
        "temporaries": 0,
    }
    assert {d["jobStoreID"] for d in run("jobs", where, "--json", env=env).json()} == set(made.jobs)
    listed = run("files", where, "--json", env=env).json()
    assert {f["id"]: f["job"] for f in listed} == made.owned
    file_id, data = next(iter(made.files.items()))
    assert run("cat", where, file_id, env=env).out.encode() == data
    assert set(run("logs", where, "--json", env=env).json()) == made.pending

    source = tmp_path / "in.txt"
    source.write_bytes(b"imported\n")
    (new_id,) = run("import", where, str(source), "--json", env=env).json()
    exported = tmp_path / "out.txt"
    assert run("export", where, new_id, str(exported), env=env).status == 0
    assert exported.read_bytes() == b"imported\n"

    cleaned = run("clean", where, "--json", env=env).json()
    assert {f["id"] for f in cleaned["orphans"]} == made.orphans
    assert not any(store.file_exists(f) for f in made.orphans)
    assert store.file_exists(new_id)

    assert run("destroy", where, "--yes", env=env).status == 0
    assert raw_keys(store) == set()
    gone = run("status", where, env=env)
    assert gone.status == 1
    # (The message's own locator is scrubbed of every secret met, and a user
    # name counts as one: "root" in an SFTP path becomes "***" too.)
    assert gone.err.startswith(f"fsjobstore: error: status {shown!r}: no job store at "), gone.err
    assert len(gone.err.splitlines()) == 1
