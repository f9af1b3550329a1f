"""A store on local disk needs no cloud client: the commands work with none installed.

``pip install fsjobstore`` brings fsspec alone; the S3, GCS, Azure and SFTP
clients come with extras. Each command runs here in a child process in which
those clients cannot be imported, as on a machine without them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.clitools import environment

#: Top-level packages of the clients the extras install.
CLIENTS = (
    "s3fs",
    "aiobotocore",
    "botocore",
    "boto3",
    "gcsfs",
    "google",
    "adlfs",
    "azure",
    "sshfs",
    "asyncssh",
)

CHILD = f"""
import sys
for name in {CLIENTS!r}:
    sys.modules[name] = None  # "import name" now raises ImportError
from fsjobstore.cli import main
sys.exit(main(sys.argv[1:]))
"""


def fsjobstore(cwd: Path, *argv: str, status: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *argv],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == status, f"fsjobstore {' '.join(argv)}: {done.stderr}"
    return done


def test_the_clients_are_out_of_reach() -> None:
    probe = CHILD.split("from fsjobstore.cli", 1)[0] + (
        "import importlib\n"
        f"for name in {CLIENTS!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    sys.exit(name + ' was imported')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["jobs"],
        ["files"],
        ["logs", "--all"],
        ["clean", "--dry-run", "--older-than", "0s"],
        ["clean"],
    ],
    ids="-".join,
)
def test_commands_on_local_disk(tmp_path: Path, command: list[str]) -> None:
    fsjobstore(tmp_path, "demo")
    locator = str(tmp_path / "fsjobstore-demo")
    assert fsjobstore(tmp_path, *command[:1], locator, *command[1:]).stdout


def test_files_in_and_out_and_a_migration(tmp_path: Path) -> None:
    store, copy = str(tmp_path / "store"), str(tmp_path / "copy")
    source = tmp_path / "source.txt"
    source.write_text("from outside")
    fsjobstore(tmp_path, "init", store)
    (file_id,) = fsjobstore(tmp_path, "import", store, source.as_uri()).stdout.split()
    fsjobstore(tmp_path, "export", store, file_id, (tmp_path / "out.txt").as_uri())
    assert (tmp_path / "out.txt").read_text() == "from outside"
    fsjobstore(tmp_path, "migrate", store, copy)
    assert fsjobstore(tmp_path, "cat", copy, file_id).stdout == "from outside"
    fsjobstore(tmp_path, "destroy", "--yes", copy)
    assert not Path(copy).exists()


@pytest.mark.parametrize(
    ("locator", "extra"),
    [
        ("s3://bucket/run", "s3"),
        ("aws:us-west-2:bucket:run", "s3"),
        ("gs://bucket/run", "gcs"),
        ("az://container/run", "azure"),
        ("sftp://127.0.0.1/run", "sftp"),
    ],
)
def test_a_store_elsewhere_names_the_extra_to_install(
    tmp_path: Path, locator: str, extra: str
) -> None:
    done = fsjobstore(tmp_path, "status", locator, status=1)
    assert f"pip install 'fsjobstore[{extra}]'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
