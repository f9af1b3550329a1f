"""A real Toil workflow through Toil's command line, with ``--jobStore fsjobstore:…``.

Each run is a fresh ``python workflow.py`` process: the leader and every
worker (Toil's single-machine batch system) find the ``fsjobstore:`` job
store type through the import hook the installed wheel carries, and reach
the emulators through the environment alone, as a user's workflow would.
Memory is left out: a store in one process's memory is not there for the
worker processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("toil", reason="Toil is installed by `nox -s toil` only")

import fsspec

from fsjobstore.errors import JobStoreError
from fsjobstore.testing import Target

from ..conftest import FOREIGN_BUCKET, make_target

WORKFLOW = Path(__file__).with_name("workflow.py")
TEXT = "the quick brown fox jumps over the lazy dog again and again\n"
WORDS = len(TEXT.split())
JOBS = ["root", "count-1", "count-2", "count-3", "total", "greet", "finish"]
#: A credential of the leader's environment that must never reach the store or
#: the output (moto takes any secret).
SECRET = f"fsjobstore-test-secret-{uuid.uuid4().hex}"


@dataclass
class Run:
    """One workflow: its job store, its inputs and output, and how to run it."""

    locator: str
    target: Target
    env: dict[str, str]
    workdir: Path
    text: str
    greeting: str
    output: str
    read_output: fsspec.AbstractFileSystem | None

    @property
    def runs(self) -> Path:
        return self.workdir / "runs.txt"

    @property
    def fail_flag(self) -> Path:
        return self.workdir / "fail"

    def __call__(self, *extra: str) -> subprocess.CompletedProcess[str]:
        script = self.workdir / "workflow.py"  # Toil will not load a script from a package
        shutil.copy(WORKFLOW, script)
        args = [sys.executable, str(script), self.locator, "--batchSystem", "single_machine"]
        args += ["--retryCount", "0", "--text", self.text, "--greeting", self.greeting]
        args += ["--output", self.output, "--runs", str(self.runs)]
        args += ["--fail-flag", str(self.fail_flag), "--workDir", str(self.workdir), *extra]
        return subprocess.run(
            args,
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def jobs_run(self) -> Counter[str]:
        return Counter(self.runs.read_text().split()) if self.runs.exists() else Counter()

    def result(self) -> str:
        if self.read_output is None:
            return Path(self.output.removeprefix("file://")).read_text()
        fs = self.read_output
        return bytes(fs.cat_file(fs._strip_protocol(self.output))).decode()

    def stored_bytes(self) -> bytes:
        """Everything the job store holds, concatenated."""
        store = self.target.open()
        fs, root = store.fs, store.root
        return b"".join(bytes(fs.cat_file(p)) for p in fs.find(root))

    def store_is_gone(self) -> bool:
        store = self.target.open()
        try:
            return not store.fs.find(store.root)
        except FileNotFoundError:
            return True


@pytest.fixture(params=["file", "s3", "gcs", "azure", "sftp"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Run]:
    target = make_target(request, request.param, tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {**os.environ, **target.env}
    # What a user sets once for every process, leader and workers alike:
    # fsspec's own configuration, one JSON object per protocol.
    for protocol, options in target.config.items():
        env[f"FSSPEC_{protocol.upper()}"] = json.dumps(options)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    if request.param == "s3":
        env["AWS_SECRET_ACCESS_KEY"] = SECRET
    greeting = workdir / "greeting.txt"
    greeting.write_text("hello\n")
    if request.param == "file":
        text_path = workdir / "text.txt"
        text_path.write_text(TEXT)
        text, output, fs = f"file://{text_path}", f"file://{workdir / 'out.txt'}", None
        locator = f"fsjobstore:file:{target.locator}"
    else:
        # Import from, and export to, the backend's own service.
        scheme, rest = target.locator.split("://", 1)
        fs = fsspec.filesystem(scheme, **target.options)
        if scheme == "sftp":  # a folder beside the store, on the same server
            account, path = rest.split("/", 1)
            base = f"/{path.rsplit('/', 2)[0]}/foreign-{uuid.uuid4().hex}"
            url = f"{scheme}://{account}{base}"
        else:
            if not fs.exists(FOREIGN_BUCKET):
                fs.mkdir(FOREIGN_BUCKET)
            base = f"{FOREIGN_BUCKET}/{uuid.uuid4().hex}"
            url = f"{scheme}://{base}"
        fs.pipe_file(f"{base}/text.txt", TEXT.encode())
        text, output = f"{url}/text.txt", f"{url}/out.txt"
        locator = f"fsjobstore:{target.locator}"
    yield Run(locator, target, env, workdir, text, f"file://{greeting}", output, fs)
    try:
        target.open().destroy()
    except JobStoreError:
        pass  # Toil's data without fsjobstore's marker: the store's own destroy() handles it


def _failure(process: subprocess.CompletedProcess[str]) -> str:
    return f"exit {process.returncode}\n{process.stdout[-3000:]}\n{process.stderr[-6000:]}"


def test_workflow_runs_on_fsjobstore(run: Run) -> None:
    process = run()
    assert process.returncode == 0, _failure(process)
    assert run.result() == f"hello: {WORDS} words\n"
    assert run.jobs_run() == Counter(JOBS)
    log = process.stdout + process.stderr
    # logToMaster messages reached the leader, through the store's log inbox.
    parts = [line for line in log.splitlines() if "Got message from job" in line]
    assert sum("has" in line and "words" in line for line in parts) == 3, log[-4000:]
    assert any(f"{WORDS} words in all" in line for line in parts), log[-4000:]
    assert SECRET not in log
    assert run.store_is_gone()  # --clean onSuccess: Toil destroyed it


def test_restart_reruns_only_the_failed_job(run: Run) -> None:
    run.fail_flag.write_text("fail")
    failed = run()
    assert failed.returncode != 0, _failure(failed)
    assert "injected failure" in failed.stdout + failed.stderr
    first = run.jobs_run()
    assert first == Counter(["root", "count-1", "count-2", "count-3"])
    assert not run.store_is_gone()
    stored = run.stored_bytes()
    assert SECRET.encode() not in stored, "a credential of the leader's environment was stored"
    for name in ("AccountKey=", "AZURE_STORAGE_CONNECTION_STRING", "AWS_SECRET_ACCESS_KEY"):
        assert name.encode() not in stored, f"{name} was stored"

    # Toil's utilities open the store by its locator too.
    status = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "toil"), "status", run.locator],
        env=run.env,
        cwd=run.workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert status.returncode == 0, _failure(status)
    assert "1 completely failed jobs" in status.stdout + status.stderr, _failure(status)

    run.fail_flag.unlink()
    restarted = run("--restart")
    assert restarted.returncode == 0, _failure(restarted)
    assert run.result() == f"hello: {WORDS} words\n"
    again = run.jobs_run() - first
    assert again == Counter(["count-3", "total", "greet", "finish"])
    assert SECRET not in restarted.stdout + restarted.stderr
    assert run.store_is_gone()
