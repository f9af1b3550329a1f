"""Backend choice and the storage options it implies: no storage needed."""

from __future__ import annotations

import warnings
from pathlib import Path

import fsspec
import pytest

from fsjobstore import Config, JobStore
from fsjobstore.backends import backend_for, default_options
from fsjobstore.backends.base import Backend
from fsjobstore.backends.gcs import GCSBackend
from fsjobstore.backends.local import LocalBackend
from fsjobstore.backends.memory import MemoryBackend
from fsjobstore.backends.s3 import S3Backend


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("s3", {"use_listings_cache": False, "config_kwargs": {"max_pool_connections": 32}}),
        ("s3a", {"use_listings_cache": False, "config_kwargs": {"max_pool_connections": 32}}),
        ("gs", {"use_listings_cache": False}),
        ("az", {"use_listings_cache": False}),
        ("abfs", {"use_listings_cache": False}),
        ("file", {}),
        ("memory", {}),
        ("ftp", {"use_listings_cache": False}),
        ("sftp", {}),
    ],
)
def test_listing_caches_are_off_and_s3_pools_fit_the_bulk_calls(
    protocol: str, expected: dict[str, object]
) -> None:
    assert default_options(protocol) == expected


def test_a_users_pool_size_and_other_client_settings_win() -> None:
    # Nothing is sent: s3fs makes its client on the first request.
    offline = {"key": "k", "secret": "s", "endpoint_url": "http://127.0.0.1:9"}
    store = JobStore(
        "s3://fsjobstore-pool/x",
        **offline,
        config_kwargs={"max_pool_connections": 5, "connect_timeout": 7},
    )
    assert store.fs.config_kwargs == {"max_pool_connections": 5, "connect_timeout": 7}
    store = JobStore("s3://fsjobstore-pool/y", **offline, config_kwargs={"connect_timeout": 7})
    assert store.fs.config_kwargs == {"max_pool_connections": 32, "connect_timeout": 7}


def test_config_options_for_s3(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_text("k" * 32)
    config = Config(awsRegion="eu-west-1", sseKeyFile=str(key_file), awsCredentials="work")
    options = S3Backend.config_options(config)
    assert options["client_kwargs"] == {"region_name": "eu-west-1"}
    assert options["profile"] == "work"
    assert options["s3_additional_kwargs"] == {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": "k" * 32,
    }
    plain = S3Backend.config_options(config, encrypted=False)
    assert "s3_additional_kwargs" not in plain
    assert plain["client_kwargs"] == {"region_name": "eu-west-1"}
    kms = S3Backend.config_options(Config(sseKey="alias/x"))
    assert kms["s3_additional_kwargs"] == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/x",
    }


def test_config_options_belong_to_their_backend(tmp_path: Path) -> None:
    config = Config(awsRegion="eu-west-1", googleCredentials="~/sa.json")
    assert GCSBackend.config_options(config) == {"token": str(Path.home() / "sa.json")}
    assert LocalBackend.config_options(config) == {}
    assert MemoryBackend.config_options(config) == {}
    assert Backend.config_options(config) == {}
    assert "token" not in S3Backend.config_options(config)


def test_missing_key_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"absent\.key"):
        S3Backend.config_options(Config(sseKeyFile=str(tmp_path / "absent.key")))


def test_backend_choice() -> None:
    assert type(backend_for(fsspec.filesystem("file"), "/tmp/x")) is LocalBackend
    assert type(backend_for(fsspec.filesystem("memory"), "/x")) is MemoryBackend
    generic = backend_for(fsspec.filesystem("http"), "http://127.0.0.1:9/x")
    assert type(generic) is Backend
    assert not generic.detects_concurrent_updates


def test_a_store_without_conditional_writes_says_so_once() -> None:
    # Making an HTTP filesystem sends no request: nothing here leaves the process.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = JobStore("http://127.0.0.1:9/store")
    relevant = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(relevant) == 1
    assert "last-writer-wins" in str(relevant[0].message)
    assert store.detects_concurrent_updates is False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert JobStore(f"memory://quiet-{id(caught)}").detects_concurrent_updates
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
