"""What the Toil layer adds beyond Toil's own suite: its Toil-specific promises."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import urlopen

import pytest

pytest.importorskip("toil", reason="Toil is installed by `nox -s toil` only")

from toil.common import Config, Toil
from toil.job import JobDescription
from toil.jobStores import abstractJobStore
from toil.jobStores.fileJobStore import FileJobStore
from toil.lib.url import URLAccess

from fsjobstore import NotAJobStoreError, layout
from fsjobstore.testing import Target
from fsjobstore.toil import FsspecURLAccess, ToilJobStore, activate, is_active
from fsjobstore.toil.environment import (
    is_secret,
    scrub_pickled_environment,
    worker_environment,
)


@pytest.fixture
def toil_store_at(target: Target) -> ToilJobStore:
    """An initialized Toil store on each backend."""
    store = ToilJobStore(target.locator, **target.options)
    store.initialize(Config())
    return store


def _second(target: Target) -> ToilJobStore:
    store = ToilJobStore(target.locator, **target.options)
    store.resume()
    return store


def _job(name: str = "job") -> JobDescription:
    return JobDescription(
        requirements={"memory": 1, "cores": 1, "disk": 1, "preemptible": False}, jobName=name
    )


# -- jobs: Toil's last-writer-wins ------------------------------------------------------


def test_stale_updates_win_as_in_toils_stores(target: Target, toil_store_at: ToilJobStore) -> None:
    job = _job()
    toil_store_at.assign_job_id(job)
    toil_store_at.create_job(job)
    other = _second(target)
    theirs = other.load_job(job.jobStoreID)
    theirs.remainingTryCount = 7
    other.update_job(theirs)
    # This object and this store's version of it are stale now; Toil expects
    # the write to go through, not a ConcurrentFileModificationException.
    job.remainingTryCount = 3
    toil_store_at.update_job(job)
    assert other.load_job(job.jobStoreID).remainingTryCount == 3
    theirs.remainingTryCount = 5
    other.update_job(theirs)
    assert toil_store_at.load_job(job.jobStoreID).remainingTryCount == 5


def test_batch_writes_over_jobs_already_stored(toil_store_at: ToilJobStore) -> None:
    first, second = _job("first"), _job("second")
    toil_store_at.assign_job_id(first)
    toil_store_at.create_job(first)
    first.remainingTryCount = 9
    toil_store_at.assign_job_id(second)
    with toil_store_at.batch():
        toil_store_at.create_job(first)  # stored already: Toil's stores write it as it is
        toil_store_at.create_job(second)
    assert toil_store_at.load_job(first.jobStoreID).remainingTryCount == 9
    assert toil_store_at.job_exists(second.jobStoreID)


def test_update_of_a_deleted_job_does_not_bring_it_back(toil_store_at: ToilJobStore) -> None:
    job = _job()
    toil_store_at.assign_job_id(job)
    toil_store_at.create_job(job)
    toil_store_at.delete_job(job.jobStoreID)
    with pytest.raises(abstractJobStore.NoSuchJobException):
        toil_store_at.update_job(job)
    assert not toil_store_at.job_exists(job.jobStoreID)


def test_job_ids_keep_the_job_name_for_people(toil_store_at: ToilJobStore) -> None:
    job = _job("align reads/sample 7")
    toil_store_at.assign_job_id(job)
    assert job.jobStoreID.startswith("align_reads_sample_7-")
    toil_store_at.create_job(job)
    stored = toil_store_at.store.load_job(job.jobStoreID)
    assert stored.jobName == "align reads/sample 7"  # fsjobstore status shows it


# -- files: Toil's expectations ------------------------------------------------------------


def test_missing_file_raises_on_entering_the_stream(toil_store_at: ToilJobStore) -> None:
    file_id = toil_store_at.get_empty_file_store_id()
    toil_store_at.delete_file(file_id)
    stream = toil_store_at.read_file_stream(file_id)  # no error yet, as in Toil's stores
    with pytest.raises(abstractJobStore.NoSuchFileException):
        stream.__enter__()
    assert toil_store_at.get_file_size(file_id) == 0
    toil_store_at.delete_file(file_id)  # idempotent


def test_hints_are_kept_in_the_file_id(toil_store_at: ToilJobStore, tmp_path: Path) -> None:
    local = tmp_path / "reads.fq"
    local.write_bytes(b"ACGT")
    local.chmod(0o755)
    file_id = toil_store_at.write_file(str(local), hints=["align", "sample 7", "..", ""])
    assert file_id.endswith("~align.sample_7--reads.fq")
    out = tmp_path / "out"
    toil_store_at.read_file(file_id, str(out))
    assert out.read_bytes() == b"ACGT"
    assert out.stat().st_mode & 0o100  # the executable bit survived the hinted name


def test_public_url_can_be_fetched(target: Target, toil_store_at: ToilJobStore) -> None:
    with toil_store_at.write_file_stream() as (f, file_id):
        f.write(b"public")
    if target.backend in ("memory", "gcs", "sftp", "ftp", "kvfs"):
        # Memory has no URL; gcsfs signs only with a service account's key;
        # SFTP, FTP and kvfs sign none.
        with pytest.raises((NotImplementedError, RuntimeError)) as failure:
            toil_store_at.get_public_url(file_id)
        assert file_id in str(failure.value)
        return
    url = toil_store_at.get_public_url(file_id)
    if url.startswith("file:"):
        assert Path(url[len("file:") :]).read_bytes() == b"public"
    else:
        with urlopen(url, timeout=30) as response:  # the emulator, on 127.0.0.1
            assert response.read() == b"public"
    with pytest.raises(abstractJobStore.NoSuchFileException):
        toil_store_at.get_public_url(file_id + "x")


# -- lifecycle ---------------------------------------------------------------------------------


def test_destroy_finishes_a_store_whose_marker_is_gone(
    target: Target, toil_store_at: ToilJobStore
) -> None:
    job = _job()
    toil_store_at.assign_job_id(job)
    toil_store_at.create_job(job)
    inner = toil_store_at.store
    inner.fs.rm_file(f"{inner.root}/{layout.MARKER}")
    ToilJobStore(target.locator, **target.options).destroy()
    assert not ToilJobStore(target.locator, **target.options).store.fs.find(inner.root)


def test_destroy_still_refuses_foreign_data(target: Target, toil_store_at: ToilJobStore) -> None:
    inner = toil_store_at.store
    inner.fs.rm_file(f"{inner.root}/{layout.MARKER}")
    inner.fs.pipe_file(f"{inner.root}/precious.txt", b"not the store's")
    with pytest.raises(NotAJobStoreError):
        ToilJobStore(target.locator, **target.options).destroy()
    assert inner.fs.cat_file(f"{inner.root}/precious.txt") == b"not the store's"


def test_resume_of_nothing_raises_toils_error(target: Target) -> None:
    with pytest.raises(abstractJobStore.NoSuchJobStoreException):
        ToilJobStore(target.locator, **target.options).resume()


def test_locator_with_a_password_is_refused() -> None:
    with pytest.raises(ValueError, match="password") as refused:
        ToilJobStore("sftp://alice:hunter2@127.0.0.1/run")
    assert "hunter2" not in str(refused.value)


# -- credentials -------------------------------------------------------------------------------


def test_environment_file_is_stored_without_credentials(toil_store_at: ToilJobStore) -> None:
    environment = {
        "PATH": "/usr/bin",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
        "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=abc",
        "FSSPEC_SFTP": '{"password": "pw"}',
        "FSSPEC_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
    }
    with toil_store_at.write_shared_file_stream("environment.pickle") as f:
        pickle.dump(environment, f)
    with toil_store_at.read_shared_file_stream("environment.pickle") as f:
        kept = pickle.load(f)
    assert kept == {
        "PATH": "/usr/bin",
        "FSSPEC_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
    }


def test_scrub_refuses_anything_but_plain_data() -> None:
    with pytest.raises(ValueError, match="not a pickled environment"):
        scrub_pickled_environment(pickle.dumps(io.BytesIO()))
    with pytest.raises(ValueError, match="strings"):
        scrub_pickled_environment(pickle.dumps({"A": 1}))


def test_workers_get_the_reach_not_the_secrets() -> None:
    environ = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_SECRET_ACCESS_KEY": "x",
        "FSSPEC_S3_ANON": "false",
        "FSSPEC_S3_SECRET": "y",
        "FSSPEC_GCS_TOKEN": "anon",
        "HOME": "/root",
    }
    assert worker_environment("s3", environ) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "FSSPEC_S3_ANON": "false",
    }
    assert is_secret("AZURE_STORAGE_SAS_TOKEN") and not is_secret("GOOGLE_CLOUD_PROJECT")


# -- activation --------------------------------------------------------------------------------


def _python(code: str, **env: str) -> str:
    import os

    # Outside the source tree, so the process sees the installed wheel only.
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tempfile.gettempdir(),
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_a_new_interpreter_knows_fsjobstore_once_toil_is_imported() -> None:
    # The installed wheel's .pth hook, in a process of its own, as a worker is.
    code = (
        "import sys; import toil.common as c; before = 'fsjobstore' in sys.modules; "
        "import toil.lib.plugins as p; p.get_plugin('url_access', 'az'); "
        "plugin = 'fsjobstore' in sys.modules; "
        "store = c.Toil.getJobStore('fsjobstore:memory://x'); import fsjobstore.toil as t; "
        "print(before, plugin, t.is_active(), type(store).__name__, "
        "type(c.Toil.getJobStore('file:/tmp/x')).__name__)"
    )
    # Toil runs that use no fsjobstore: locator or scheme load none of fsjobstore.
    assert _python(code) == "False False True ToilJobStore FileJobStore"
    assert (
        _python(
            "import fsjobstore.toil as t, toil.common; print(t.is_active())",
            FSJOBSTORE_TOIL_HOOK="0",
        )
        == "False"
    )


def test_the_hook_imports_nothing_until_toil_is_imported() -> None:
    assert _python("import sys; print('fsjobstore' in sys.modules, 'toil' in sys.modules)") == (
        "False False"
    )


def test_activation_wraps_toils_method_once() -> None:
    activate()
    activate()
    assert is_active()
    method = Toil.__dict__["getJobStore"].__func__
    assert getattr(method.__wrapped__, "__fsjobstore_wrapped__", False) is False
    assert isinstance(Toil.getJobStore("fsjobstore:memory://once"), ToilJobStore)
    assert isinstance(Toil.getJobStore(f"file:/tmp/{uuid.uuid4().hex}"), FileJobStore)


def test_a_failed_activation_warns_and_leaves_the_import_alone(tmp_path: Path) -> None:
    import _fsjobstore_toil as _hook

    (tmp_path / "not_toil_common.py").write_text("VALUE = 42\n")
    sys.path.insert(0, str(tmp_path))
    finder = _hook.Finder("not_toil_common")
    sys.meta_path.insert(0, finder)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import not_toil_common  # type: ignore[import-not-found]
        assert not_toil_common.VALUE == 42
        assert isinstance(not_toil_common.__loader__, _hook.Loader)
        assert any("could not add the 'fsjobstore:'" in str(w.message) for w in caught)
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("not_toil_common", None)


# -- the URL-access plug-in --------------------------------------------------------------------


def test_plugin_serves_schemes_toil_lacks() -> None:
    found = URLAccess._find_url_implementation(urlparse("memory://bucket/x"))
    assert found is FsspecURLAccess
    assert URLAccess._find_url_implementation(urlparse("az://container/x")) is FsspecURLAccess
    assert URLAccess._find_url_implementation(urlparse("file:///tmp/x")) is not FsspecURLAccess
    # Toil's own S3 access needs its aws extra; without it, the plug-in's serves.
    try:
        import toil.jobStores.aws.jobStore  # noqa: F401
    except ImportError:
        expected: object = FsspecURLAccess
    else:
        from toil.jobStores.aws.jobStore import AWSJobStore

        expected = AWSJobStore
    assert URLAccess._find_url_implementation(urlparse("s3://bucket/x")) is expected


def test_toils_own_store_imports_and_exports_through_the_plugin(tmp_path: Path) -> None:
    import fsspec

    base = f"memory://fsjobstore-plugin-{uuid.uuid4().hex}"
    fsspec.filesystem("memory").pipe_file(f"{base}/in/data.txt", b"x" * 1000)
    assert URLAccess.url_exists(f"{base}/in/data.txt")
    assert URLAccess.get_size(f"{base}/in/data.txt") == 1000
    assert URLAccess.get_is_directory(f"{base}/in")
    assert URLAccess.list_url(f"{base}") == ["in/"]
    store = FileJobStore(str(tmp_path / "toil-store"))
    store.initialize(Config())
    file_id = store.import_file(f"{base}/in/data.txt")
    assert file_id.size == 1000
    store.export_file(file_id, f"{base}/out/data.txt")
    assert fsspec.filesystem("memory").cat_file(f"{base}/out/data.txt") == b"x" * 1000
    with pytest.raises(FileNotFoundError):
        store.import_file(f"{base}/in/missing.txt")
    store.destroy()


def test_two_copies_of_the_hook_do_not_ask_each_other(tmp_path: Path) -> None:
    # The wheel's top-level copy and the package's own may both be installed.
    import importlib.util

    import _fsjobstore_toil as _hook

    spec = importlib.util.spec_from_file_location("hook_copy", _hook.__file__)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    (tmp_path / "not_toil_common2.py").write_text("VALUE = 7\n")
    sys.path.insert(0, str(tmp_path))
    finders = [copy.Finder("not_toil_common2"), _hook.Finder("not_toil_common2")]
    sys.meta_path[:0] = finders
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # not Toil: activation declines
            import not_toil_common2  # type: ignore[import-not-found]
        assert not_toil_common2.VALUE == 7
        assert isinstance(not_toil_common2.__loader__, copy.Loader)  # wrapped once
        assert not isinstance(not_toil_common2.__loader__.inner, (copy.Loader, _hook.Loader))
    finally:
        for finder in finders:
            sys.meta_path.remove(finder)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("not_toil_common2", None)
