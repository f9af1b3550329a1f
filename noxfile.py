"""Sessions: tests, oldest, lint, typecheck, docs, toil, bench and scale (``nox -s NAME``)."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

#: Distributions of the tests' own, installed like a user's plugins (not
#: editable): kvfs registers an fsspec protocol through its entry point.
PLUGINS = ["./tests/plugins/kvfs"]


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (contract suite on every backend, unit tests, CLI)."""
    session.install("-e", ".[test]", *PLUGINS)
    session.run("pytest", *session.posargs)


@nox.session
def oldest(session: nox.Session) -> None:
    """The contract suite and the CLI tests at the oldest releases ``pyproject.toml`` allows.

    fsjobstore relies on behaviour of its clients that changed between their
    releases (errors they map, arguments they heed): each floor is a release
    this session passed on.
    """
    # One resolution: pinned afterwards, the clients would leave boto3 and
    # botocore at releases that do not go together.
    session.install("-e", ".[test]", *PLUGINS, *floors())
    session.run("pytest", "-n", "2", "tests/contract", "tests/test_cli.py", *session.posargs)


def floors() -> list[str]:
    """The package's and its storage extras' ``>=`` requirements, pinned with ``==``."""
    project = nox.project.load_toml("pyproject.toml")["project"]
    extras = project["optional-dependencies"]
    wanted = [
        *project["dependencies"],
        *(r for e in ("s3", "gcs", "azure", "sftp") for r in extras[e]),
    ]
    return [r.replace(">=", "==") for r in wanted if ">=" in r]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy in strict mode, over the package and the tests."""
    session.install("-e", ".[test]", *PLUGINS, "mypy", "nox")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation; warnings are errors."""
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", "--site-dir", session.create_tmp() + "/site")


@nox.session
def bench(session: nox.Session) -> None:
    """Measure fsjobstore against Toil's job stores and the plain-Python floor.

    Toil is installed here only, never as a dependency of the package; its
    ``aws`` extra brings what its AWSJobStore needs, and its GoogleJobStore
    runs on the google-cloud-storage that gcsfs brings (Toil's ``google``
    extra would pin that, and with it fsspec, back to 2025). Writes
    benchmarks/results/latest.json and ratios.png. Full mode takes about 20
    minutes; ``nox -s bench -- --quick`` is a smoke run of about 3.
    """
    session.install("-e", ".[test]", "toil[aws]==9.6.0", "matplotlib")
    session.run("python", "benchmarks/run.py", *session.posargs)
    session.run("python", "benchmarks/chart.py")


#: The Toil release ``nox -s toil`` tests (the newest on PyPI); another with
#: ``FSJOBSTORE_TOIL_VERSION=9.5.0 nox -s toil``.
TOIL_VERSION = "9.6.0"


@nox.session
def toil(session: nox.Session) -> None:
    """Toil's own job store suite, and a real Toil workflow, on fsjobstore.

    Toil is installed here only. fsjobstore goes in as the real wheel, not
    editable: its start-up hook and Toil plug-in are files at the top of the
    wheel, which an editable install leaves out. Toil's test package runs
    ``rsync --version`` when imported, so rsync must be on PATH.
    """
    if shutil.which("rsync") is None:
        session.error("Toil's test package needs rsync on PATH: apt-get install rsync")
    version = os.environ.get("FSJOBSTORE_TOIL_VERSION", TOIL_VERSION)
    # What Toil's job store tests import (edit_distance), mark (pytest-timeout)
    # and serve FTP from (stubserver).
    toil_test = ["pytest-timeout", "edit-distance", "stubserver"]
    session.install(".[toil,test]", f"toil=={version}", *toil_test, *PLUGINS)
    session.install("--force-reinstall", "--no-deps", ".")  # this tree's wheel, never a cached one
    session.run("pytest", "tests/toil", *session.posargs)


@nox.session
def scale(session: nox.Session) -> None:
    """Scale-out on simulated hosts, and the costs that grow with a workflow.

    Each simulated host is a Linux network namespace the harness makes and
    removes itself, so the session needs root and iproute2's ``ip``; it is
    skipped, saying so, without them (it installs nothing system-wide, and
    ``.ci/run`` does not run it). Writes benchmarks/results/scale.json and
    docs/img/scale.png. ``nox -s scale`` took 95 minutes on this 2-core
    machine under other load (14 for the scale-out, 80 for the costs);
    ``nox -s scale -- --quick`` is a smoke run of about 6; ``-- --only-scale``
    or ``-- --only-costs`` run one half and keep the other's last result.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        session.skip("scale makes network namespaces: run it as root")
    if shutil.which("ip") is None:
        session.skip("scale needs the `ip` command of iproute2 (apt-get install iproute2)")
    session.install("-e", ".[test]", "matplotlib", "py-spy")
    session.run("python", "benchmarks/scale/main.py", *session.posargs)
