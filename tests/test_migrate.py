"""``fsjobstore migrate`` across backends, through the console script: every ID arrives."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fsjobstore import Config, JobDescription, JobStore
from fsjobstore.maintenance import MIGRATION_RECORD, migrate
from fsjobstore.testing import Target

from .clitools import assert_holds, environment, open_store, populate, raw_keys, run, script
from .conftest import make_target
from .servers import S3Server

#: Keys a store holds that a migration does not copy as data: the marker, its
#: temporaries, and a log reader's lease (a live process's, not the store's).
_OWN = (".fsjobstore.json", "tmp/", "stats/reader.lease")


def _data_keys(store: JobStore) -> set[str]:
    return {k for k in raw_keys(store) if not k.startswith(_OWN)}


def _check_arrived(src: Target, dst: Target, keys: set[str]) -> JobStore:
    """The destination is a store holding exactly the source's keys, and nothing more."""
    copy = open_store(dst)
    copy.resume()
    assert {k for k in raw_keys(copy) if not k.startswith(_OWN[1:])} == keys | {".fsjobstore.json"}
    assert copy.config.jobStore == dst.locator
    return copy


def _env(*targets: Target) -> dict[str, str]:
    env = environment(targets[0])
    for other in targets[1:]:
        env.update(environment(other))
    return env


def test_local_to_s3(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    src, dst = make_target(request, "file", tmp_path), make_target(request, "s3", tmp_path)
    made = populate(open_store(src))
    keys = _data_keys(open_store(src))
    report = run("migrate", src.locator, dst.locator, "--json", env=_env(dst)).json()
    assert report["objects"] == report["copied"] == len(keys)
    assert (report["skipped"], report["removed"], report["resumed"]) == (0, 0, False)
    assert report["server_side"] is False
    assert report["checksums"] == len(keys)  # local files hashed against S3's MD5 ETags
    assert report["bytes"] == sum(p.stat().st_size for p in _files(src, keys))
    assert_holds(_check_arrived(src, dst, keys), made)
    refused = run("migrate", src.locator, dst.locator, env=_env(dst))
    assert refused.status == 1
    assert "a job store is there already" in refused.err


def _files(target: Target, keys: set[str]) -> list[Path]:
    return [Path(target.locator, key) for key in keys]


def test_s3_to_gcs(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    src, dst = make_target(request, "s3", tmp_path), make_target(request, "gcs", tmp_path)
    made = populate(open_store(src))
    keys = _data_keys(open_store(src))
    done = run("migrate", src.locator, dst.locator, env=_env(src, dst))
    assert done.status == 0, done.err
    assert done.out.startswith(f"migrated {src.locator} to {dst.locator}: {len(keys)} objects")
    assert_holds(_check_arrived(src, dst, keys), made)


def test_s3_to_s3_is_copied_by_the_service(
    request: pytest.FixtureRequest, tmp_path: Path, s3: S3Server
) -> None:
    src, dst = make_target(request, "s3", tmp_path), make_target(request, "s3", tmp_path)
    made = populate(open_store(src))
    keys = _data_keys(open_store(src))
    s3.requests.clear()
    report = run("migrate", src.locator, dst.locator, "--json", env=_env(src)).json()
    assert report["server_side"] is True
    copies = [r for r in s3.requests.snapshot() if "x-amz-copy-source" in r.headers]
    assert len(copies) == report["copied"] == len(keys)
    # One request per object: no HEAD before each copy.
    assert len(s3.requests.snapshot()) < len(keys) + 20
    assert report["checksums"] == len(keys)  # a copy keeps a single-part object's MD5 ETag
    assert_holds(_check_arrived(src, dst, keys), made)


def test_refuses_a_destination_with_other_data(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    src = make_target(request, "file", tmp_path)
    populate(open_store(src))
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    done = run("migrate", src.locator, str(other))
    assert (done.status, done.out) == (1, "")
    assert done.err == (
        f"fsjobstore: error: migrate {src.locator!r} to {str(other)!r}: "
        f"migration to {str(other)!r} refused: it holds other data\n"
    )
    assert [p.name for p in other.iterdir()] == ["precious.txt"]

    # An unfinished migration from another store is not this one's to finish.
    third = tmp_path / "third"
    JobStore(str(third)).initialize(Config())
    half = tmp_path / "half"
    assert run("migrate", str(third), str(half)).status == 0
    (half / ".fsjobstore.json").unlink()
    (half / MIGRATION_RECORD).write_text(json.dumps({"source": str(third), "marker": "x"}))
    done = run("migrate", src.locator, str(half))
    assert done.status == 1
    assert f"unfinished migration from {str(third)!r}, not from this store" in done.err
    assert not (half / ".fsjobstore.json").exists()
    # ... but it can be destroyed: the record says what it is.
    assert run("destroy", str(half), "--yes").status == 0
    assert not half.exists()
    same = run("migrate", src.locator, src.locator)
    assert same.status == 1
    assert "the same place, or one is inside the other" in same.err


def test_a_resumed_migration_follows_the_source(tmp_path: Path) -> None:
    """What the source lost since an interrupted run is removed from the destination."""
    source, copy = str(tmp_path / "src"), str(tmp_path / "copy")
    store = JobStore(source)
    made = populate(store)
    assert run("migrate", source, copy).status == 0
    # As if the first run had been killed after copying: no marker, the record there.
    Path(copy, ".fsjobstore.json").unlink()
    marker = Path(source, ".fsjobstore.json").read_bytes()
    record = {"source": source, "marker": hashlib.sha256(marker).hexdigest()}
    Path(copy, MIGRATION_RECORD).write_text(json.dumps(record))
    gone = next(j for j in sorted(made.jobs) if j not in made.owned.values())  # owns no file
    store.delete_job(gone)
    del made.jobs[gone]
    store.read_logs(lambda _: None)  # the pending messages move to the archive
    made.archived |= made.pending
    made.pending = set()
    report = run("migrate", source, copy, "--json").json()
    assert report["resumed"] is True
    assert report["removed"] == 1 + 3  # the job, and the three messages' inbox keys
    assert report["copied"] == 3  # the three messages' archive keys
    assert report["skipped"] == report["objects"] - 3
    copied = JobStore(copy)
    copied.resume()
    assert_holds(copied, made)


def _many(store: JobStore, jobs: int, files: int) -> None:
    store.initialize(Config())
    with store.batch():
        ids = [store.create_job(JobDescription({"cores": 1}, jobName=f"j{i}")) for i in range(jobs)]
    for i in range(files):
        owner = ids[i % jobs].jobStoreID
        with store.write_file_stream(owner, cleanup=bool(i % 2), basename=f"f{i}") as (out, _):
            out.write(f"file {i}\n".encode() * (1 + i % 7))
    for i in range(jobs // 10):
        store.write_logs(f"message {i}")


def _wait_for(condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_interrupted_migration_resumes_without_copying_again(
    request: pytest.FixtureRequest, tmp_path: Path, s3: S3Server
) -> None:
    src, dst = make_target(request, "file", tmp_path), make_target(request, "s3", tmp_path)
    _many(open_store(src), jobs=300, files=900)
    keys = _data_keys(open_store(src))
    raw = open_store(dst)
    env = _env(dst)

    def copied() -> int:
        try:
            return len([k for k in raw_keys(raw) if k.startswith(("jobs/", "files/", "stats/"))])
        except FileNotFoundError:  # no bucket yet
            return 0

    # Ctrl-C stops it cleanly: exit status 130, no marker, the record kept.
    # One copy at a time (32 objects), so that there is time to interrupt it.
    args = [script(), "migrate", src.locator, dst.locator, "--concurrency", "1"]
    interrupted = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: copied() > 0 or interrupted.poll() is not None)
    before_sigint = copied()
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130, err
    assert err.decode().splitlines()[-1] == "fsjobstore: interrupted"
    after_sigint = copied()
    assert 0 < after_sigint < len(keys), (before_sigint, after_sigint, err)
    assert ".fsjobstore.json" not in raw_keys(raw)
    assert run("status", dst.locator, env=env).status == 1  # no store until it is finished

    # A killed one too: whatever it copied stays, nothing half-made is visible.
    killed = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for(lambda: copied() > after_sigint + 50 or killed.poll() is not None)
    killed.kill()
    killed.wait(timeout=60)
    there = copied()
    assert killed.returncode == -signal.SIGKILL
    assert there < len(keys)

    s3.requests.clear()
    report = run("migrate", src.locator, dst.locator, "--json", env=env).json()
    assert report["resumed"] is True
    assert report["skipped"] >= there - 1  # an object may have been written as it was killed
    assert report["copied"] + report["skipped"] == report["objects"] == len(keys)
    prefix = "/" + dst.locator.removeprefix("s3://") + "/"
    writes = [
        r
        for r in s3.requests.snapshot()
        if r.method == "PUT" and r.path.startswith(prefix) and "/" in r.path[len(prefix) :]
    ]
    assert len(writes) == report["copied"]  # data objects only: nothing copied twice
    _check_arrived(src, dst, keys)
    assert MIGRATION_RECORD not in raw_keys(raw)


@pytest.mark.slow
def test_a_thousand_jobs_between_object_stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """1,000 jobs and 2,000 files, S3 → GCS, killed half way and resumed: every ID arrives."""
    local = make_target(request, "file", tmp_path)
    src, dst = make_target(request, "s3", tmp_path), make_target(request, "gcs", tmp_path)
    _many(open_store(local), jobs=1000, files=2000)
    migrate(local.locator, src.locator, destination_options=src.options)
    expected = open_store(src)
    expected.resume()
    jobs = {j.jobStoreID for j in expected.jobs()}
    file_ids = set(expected.get_all_file_ids())
    assert (len(jobs), len(file_ids)) == (1000, 2000)
    raw, env = open_store(dst), _env(src, dst)

    def copied() -> int:
        try:
            return len([k for k in raw_keys(raw) if k.startswith(("jobs/", "files/"))])
        except FileNotFoundError:
            return 0

    started = time.monotonic()
    killed = subprocess.Popen(
        [script(), "migrate", src.locator, dst.locator],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while (there := copied()) < 500 and killed.poll() is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    killed.kill()
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL, "the migration ended before it was killed"
    report = run("migrate", src.locator, dst.locator, "--json", env=env, timeout=600).json()
    took = time.monotonic() - started
    assert report["resumed"] is True
    assert report["skipped"] >= there - 1
    assert report["copied"] + report["skipped"] == report["objects"] == 1000 + 2000 + 100
    copy = open_store(dst)
    copy.resume()
    assert {j.jobStoreID for j in copy.jobs()} == jobs
    assert set(copy.get_all_file_ids()) == file_ids
    print(
        f"\nS3 → GCS, 1,000 jobs and 2,000 files, killed after {there} objects: "
        f"{took:.1f} s in all, the resumed run {report['seconds']} s"
    )


@pytest.mark.parametrize("backend", ["gcs", "azure"])
def test_same_service_copies(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    src, dst = make_target(request, backend, tmp_path), make_target(request, backend, tmp_path)
    made = populate(open_store(src))
    keys = _data_keys(open_store(src))
    report = run("migrate", src.locator, dst.locator, "--json", env=_env(src)).json()
    assert report["server_side"] is True
    assert report["copied"] == len(keys)
    assert_holds(_check_arrived(src, dst, keys), made)


def test_a_changed_object_of_the_same_size_is_copied_again(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Checksums, not only sizes, decide what a resumed run copies again."""
    src, dst = make_target(request, "file", tmp_path), make_target(request, "s3", tmp_path)
    made = populate(open_store(src))
    env = _env(dst)
    assert run("migrate", src.locator, dst.locator, env=env).status == 0
    copy = open_store(dst)
    marker = Path(src.locator, ".fsjobstore.json").read_bytes()
    record = {"source": src.locator, "marker": hashlib.sha256(marker).hexdigest()}
    copy.fs.pipe_file(f"{copy.root}/{MIGRATION_RECORD}", json.dumps(record).encode())
    copy.fs.rm_file(f"{copy.root}/.fsjobstore.json")
    file_id = next(i for i, o in made.owned.items() if o is None)
    key = f"{copy.root}/files/_/{file_id.split('~', 1)[1]}"
    data = copy.fs.cat_file(key)
    copy.fs.pipe_file(key, bytes(reversed(data)))  # same size, other bytes
    report = run("migrate", src.locator, dst.locator, "--json", env=env).json()
    assert (report["resumed"], report["copied"]) == (True, 1)
    copy.resume()
    assert_holds(copy, made)
