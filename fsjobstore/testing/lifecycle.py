"""initialize, resume, destroy, config and the marker, on every backend."""

from __future__ import annotations

import json

import pytest

from .. import (
    Config,
    JobDescription,
    JobStore,
    JobStoreExistsException,
    NoSuchJobStoreException,
)
from ..errors import JobStoreNotOpenError, NotAJobStoreError
from .base import ContractBase
from .raw import raw_keys, raw_read, raw_write
from .target import Target


class LifecycleContract(ContractBase):
    """initialize, resume, destroy, the config and the marker."""

    def test_resume_restores_config_field_by_field(self, target: Target) -> None:
        config = Config(retryCount=4, awsRegion="us-west-2", sseKey="alias/k")
        config.customSetting = {"threads": 3, "names": ["a", "b"]}
        target.open().initialize(config)
        second = target.open()
        second.resume()
        assert second.config == config
        assert second.config.customSetting == {"threads": 3, "names": ["a", "b"]}
        assert second.config.jobStore == target.locator

    def test_initialize_default_config(self, target: Target) -> None:
        store = target.open()
        store.initialize()
        assert store.config.retryCount == 1
        assert store.config.jobStore == target.locator

    def test_marker_is_json_with_format(self, store: JobStore) -> None:
        doc = json.loads(raw_read(store, ".fsjobstore.json"))
        assert doc["format"] == 1
        assert doc["config"]["jobStore"] == store.locator

    def test_initialize_twice_raises(self, store: JobStore, target: Target) -> None:
        with pytest.raises(JobStoreExistsException, match="already exists") as info:
            target.open().initialize()
        assert isinstance(info.value, FileExistsError)

    def test_resume_missing_raises(self, target: Target) -> None:
        with pytest.raises(NoSuchJobStoreException) as info:
            target.open().resume()
        assert isinstance(info.value, FileNotFoundError)
        assert target.locator in str(info.value)

    def test_operations_before_open_raise(self, target: Target) -> None:
        store = target.open()
        with pytest.raises(JobStoreNotOpenError, match="initialize"):
            store.create_job(JobDescription(jobName="j"))
        with pytest.raises(JobStoreNotOpenError):
            store.write_logs("x")
        with pytest.raises(JobStoreNotOpenError):
            _ = store.config
        assert raw_keys(store) == set()

    def test_config_for_another_locator_is_refused(self, target: Target) -> None:
        store = target.open()
        with pytest.raises(ValueError, match=r"config\.jobStore"):
            store.initialize(Config(jobStore="file:/somewhere/else"))
        with pytest.raises(NoSuchJobStoreException):
            target.open().resume()

    def test_unserializable_config_writes_nothing(self, target: Target) -> None:
        config = Config()
        config.callback = object()
        store = target.open()
        with pytest.raises(TypeError, match="'callback'"):
            store.initialize(config)
        assert raw_keys(store) == set()

    def test_destroy_deletes_everything(self, store: JobStore, target: Target) -> None:
        job = store.create_job(JobDescription(jobName="j"))
        with store.write_file_stream(job.jobStoreID, cleanup=False) as (out, _):
            out.write(b"data")
        store.write_logs("log")
        with store.write_shared_file_stream("shared") as out:
            out.write(b"x")
        store.destroy()
        assert raw_keys(store) == set()
        with pytest.raises(NoSuchJobStoreException):
            target.open().resume()
        # A destroyed location can hold a new store.
        target.open().initialize()

    def test_destroy_is_idempotent_and_works_uninitialized(self, target: Target) -> None:
        store = target.open()
        store.destroy()
        store.destroy()
        store.initialize()
        store.destroy()
        store.destroy()
        assert raw_keys(store) == set()

    def test_destroy_finishes_a_half_deleted_store(self, store: JobStore) -> None:
        jobs = [store.create_job(JobDescription(jobName=f"j{i}")) for i in range(3)]
        # Simulate an interrupted destroy: some objects gone, the marker still there.
        store.fs.rm_file(f"{store.root}/jobs/{jobs[0].jobStoreID}.json")
        store.destroy()
        assert raw_keys(store) == set()

    def test_destroy_refuses_foreign_data(self, target: Target) -> None:
        probe = target.open()
        raw_write(probe, "precious.txt", b"not a job store")
        with pytest.raises(NotAJobStoreError, match="not a job store"):
            probe.destroy()
        with pytest.raises(NotAJobStoreError):
            probe.initialize()
        assert raw_keys(probe) == {"precious.txt"}
        assert raw_read(probe, "precious.txt") == b"not a job store"
        probe.fs.rm_file(f"{probe.root}/precious.txt")

    def test_destroy_refuses_foreign_data_in_a_store_like_folder(self, target: Target) -> None:
        probe = target.open()
        raw_write(probe, "jobs/not-ours.txt", b"someone else's")
        with pytest.raises(NotAJobStoreError):
            probe.destroy()
        assert raw_read(probe, "jobs/not-ours.txt") == b"someone else's"
        probe.fs.rm_file(f"{probe.root}/jobs/not-ours.txt")

    def test_create_job_store_returns_uninitialized_store(self, target: Target) -> None:
        from fsjobstore import AbstractJobStore

        store = AbstractJobStore.createJobStore(target.locator, **target.options)
        assert type(store) is JobStore
        with pytest.raises(NoSuchJobStoreException):
            store.resume()
        store.initialize()
        assert store.job_exists("nothing") is False
