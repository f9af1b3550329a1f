"""Which store classes take which locators, and errors for protocols fsspec lacks."""

from __future__ import annotations

import importlib.util
import warnings

import pytest
from fsspec.registry import known_implementations

from fsjobstore import (
    AbstractJobStore,
    AWSJobStore,
    FileJobStore,
    GoogleJobStore,
    InvalidLocatorError,
    JobStore,
)


def uninstalled_protocol() -> tuple[str, str]:
    """A protocol fsspec knows whose package is not installed, and fsspec's hint."""
    for protocol, spec in sorted(known_implementations.items()):
        module = spec["class"].split(".", 1)[0]
        if "err" in spec and importlib.util.find_spec(module) is None:
            return protocol, str(spec["err"])
    pytest.skip("every package fsspec knows is installed here")


def test_unknown_protocol_names_the_locator_and_says_why() -> None:
    with pytest.raises(InvalidLocatorError, match="Protocol not known: nosuchfs") as info:
        JobStore("nosuchfs://bucket/prefix")
    assert "nosuchfs://bucket/prefix" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_uninstalled_protocol_says_what_to_install() -> None:
    protocol, hint = uninstalled_protocol()
    with pytest.raises(ImportError) as info:
        JobStore(f"{protocol}://somewhere/store")
    assert hint in str(info.value)
    assert f"{protocol}://somewhere/store" in str(info.value)


@pytest.mark.parametrize(
    ("cls", "locator"),
    [
        (FileJobStore, "/tmp/fsjobstore-family"),
        (FileJobStore, "file:/tmp/fsjobstore-family"),
        (FileJobStore, "file:///tmp/fsjobstore-family"),
        (AWSJobStore, "aws:us-west-2:fsjobstore-family:p"),
        (AWSJobStore, "s3://fsjobstore-family/p"),
        (GoogleJobStore, "gce:us-central1:fsjobstore-family:p"),
        (GoogleJobStore, "google:us-central1:fsjobstore-family"),
        (GoogleJobStore, "gs://fsjobstore-family/p"),
        (JobStore, "memory://fsjobstore-family"),
        (JobStore, "s3://fsjobstore-family/p"),
    ],
)
def test_each_class_takes_its_family(cls: type[JobStore], locator: str) -> None:
    # Making a filesystem object sends no request; nothing is stored here. An
    # anonymous token keeps gcsfs from looking for credentials on the network.
    options = {"token": "anon"} if cls is GoogleJobStore else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        store = cls(locator, **options)
    assert type(store) is cls
    assert store.locator == locator
    assert type(cls.createJobStore(locator, **options)) is cls


@pytest.mark.parametrize(
    ("cls", "locator"),
    [
        (FileJobStore, "memory://elsewhere"),
        (FileJobStore, "s3://bucket/p"),
        (AWSJobStore, "/tmp/local"),
        (AWSJobStore, "gs://bucket/p"),
        (GoogleJobStore, "aws:us-west-2:bucket:p"),
        (GoogleJobStore, "file:/tmp/local"),
    ],
)
def test_each_class_refuses_other_families(cls: type[JobStore], locator: str) -> None:
    with pytest.raises(InvalidLocatorError, match=f"{cls.__name__} takes only") as info:
        cls(locator)
    assert locator in str(info.value)


def test_abstract_store_creates_the_one_implementation() -> None:
    store = AbstractJobStore.createJobStore("memory://fsjobstore-abstract")
    assert type(store) is JobStore
    with pytest.raises(TypeError):
        AbstractJobStore()  # type: ignore[abstract]


@pytest.mark.parametrize("locator", ["/", "file:/", "//", "file:///../", "file:/tmp/.."])
def test_the_root_of_a_filesystem_is_no_store(locator: str) -> None:
    with pytest.raises(InvalidLocatorError, match="root of"):
        JobStore(locator)
