"""Unit tests for fsjobstore.locator: parsing locators and merging storage options."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from fsjobstore.errors import InvalidLocatorError, JobStoreError
from fsjobstore.locator import FAMILIES, Locator, merge_options, parse_locator

AWS_REGION = {"client_kwargs": {"region_name": "us-west-2"}}

# (locator, url, protocol, family, region, storage_options); local paths are absolute.
VALID: list[tuple[str, str, str, str, str | None, dict[str, Any]]] = [
    ("/abs/path", "/abs/path", "file", "file", None, {}),
    ("/abs/with:colon", "/abs/with:colon", "file", "file", None, {}),
    ("/abs/../norm", "/norm", "file", "file", None, {}),
    ("file:/abs/path", "/abs/path", "file", "file", None, {}),
    ("FILE:/abs/path", "/abs/path", "file", "file", None, {}),
    ("file:///abs/path", "file:///abs/path", "file", "file", None, {}),
    ("local:///abs/path", "local:///abs/path", "file", "file", None, {}),
    (
        "aws:us-west-2:my-toil-bucket:workflow-123",
        "s3://my-toil-bucket/workflow-123",
        "s3",
        "aws",
        "us-west-2",
        AWS_REGION,
    ),
    ("aws:us-west-2:bkt", "s3://bkt", "s3", "aws", "us-west-2", AWS_REGION),
    ("aws:us-west-2:bkt:", "s3://bkt", "s3", "aws", "us-west-2", AWS_REGION),
    ("AWS:us-west-2:bkt:/a//b/", "s3://bkt/a/b", "s3", "aws", "us-west-2", AWS_REGION),
    ("aws:us-west-2:a.b_c-d:x.y/z_1", "s3://a.b_c-d/x.y/z_1", "s3", "aws", "us-west-2", AWS_REGION),
    (
        "gce:us-central1:my-gcs-bucket:workflow-path",
        "gs://my-gcs-bucket/workflow-path",
        "gs",
        "google",
        "us-central1",
        {},
    ),
    ("google:us-central1:bkt", "gs://bkt", "gs", "google", "us-central1", {}),
    (
        "aws:r:" + "b" * 222,
        "s3://" + "b" * 222,
        "s3",
        "aws",
        "r",
        {"client_kwargs": {"region_name": "r"}},
    ),
    ("s3://bucket/prefix", "s3://bucket/prefix", "s3", "aws", None, {}),
    ("S3://bucket", "S3://bucket", "s3", "aws", None, {}),
    ("s3a://bucket/p", "s3a://bucket/p", "s3a", "aws", None, {}),
    ("gs://bucket/p", "gs://bucket/p", "gs", "google", None, {}),
    ("gcs://bucket/p", "gcs://bucket/p", "gcs", "google", None, {}),
    ("az://container/p", "az://container/p", "az", "azure", None, {}),
    ("memory://store", "memory://store", "memory", "memory", None, {}),
    ("simplecache::s3://b/p", "simplecache::s3://b/p", "s3", "aws", None, {}),
]


@pytest.mark.parametrize("row", VALID, ids=[row[0] for row in VALID])
def test_parse_valid_locators(row: tuple[str, str, str, str, str | None, dict[str, Any]]) -> None:
    text, url, protocol, family, region, options = row
    parsed = parse_locator(text)
    assert parsed == Locator(text, url, protocol, region, options)
    assert parsed.family == family


@pytest.mark.parametrize(
    ("text", "relative"),
    [("rel/path", "rel/path"), ("file:rel/path", "rel/path"), ("./a:b", "a:b"), ("x", "x")],
)
def test_relative_paths_are_made_absolute(
    text: str, relative: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    parsed = parse_locator(text)
    assert parsed.text == text
    assert parsed.url == str(tmp_path / relative)
    assert (parsed.protocol, parsed.family, parsed.region) == ("file", "file", None)


def test_path_like_is_accepted(tmp_path: Path) -> None:
    parsed = parse_locator(tmp_path)  # type: ignore[arg-type]  # runtime accepts PathLike
    assert parsed.text == str(tmp_path)
    assert parsed.url == str(tmp_path)
    assert parsed.family == "file"


def test_locator_is_frozen() -> None:
    parsed = parse_locator("/abs/path")
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.url = "/elsewhere"  # type: ignore[misc]


# (bad locator, a fragment the message must contain besides the locator itself)
INVALID: list[Any] = [
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("\t\n", "it is empty"),
    (None, "expected a string, got NoneType"),
    (123, "expected a string, got int"),
    (b"/tmp/x", "expected a string, got bytes"),
    (["/tmp/x"], "expected a string, got list"),
    ("/tmp/a\x00b", "NUL"),
    ("aws:us-west-2:bkt\x00", "NUL"),
    ("file:", "'file:' needs a path"),
    ("bogus:thing", "unknown locator type 'bogus'"),
    ("http:host/x", "unknown locator type 'http'"),
    ("s3://", "'s3://' needs a path"),
    ("s3:///", "'s3://' needs a path"),
    ("memory://", "'memory://' needs a path"),
    ("a::b", "expected PROTOCOL://PATH"),
    ("://x", "expected PROTOCOL://PATH"),
    ("s3://b/p::", "expected PROTOCOL://PATH"),
    ("aws:", "expected 'aws:REGION:BUCKET[:PREFIX]'"),
    ("aws:us-west-2", "expected 'aws:REGION:BUCKET[:PREFIX]'"),
    ("gce:us-central1", "expected 'gce:REGION:BUCKET[:PREFIX]'"),
    # "::" reads as a chained URL before the "aws:" form is considered.
    ("aws::bkt", "expected PROTOCOL://PATH"),
    ("aws:us-west-2:", "bucket ''"),
    ("aws:/x:bkt", "region '/x'"),
    ("aws:US-WEST-2:bkt", "region 'US-WEST-2'"),
    ("aws:us_west:bkt", "region 'us_west'"),
    ("aws:-us:bkt", "region '-us'"),
    ("aws:us-west-2:ab", "bucket 'ab'"),
    ("aws:us-west-2:" + "b" * 223, "is not a valid bucket name"),
    ("aws:us-west-2:Bucket", "bucket 'Bucket'"),
    ("aws:us-west-2:-bkt", "bucket '-bkt'"),
    ("aws:us-west-2:bkt-", "bucket 'bkt-'"),
    ("aws:us-west-2:a..b", "bucket 'a..b'"),
    ("gce:us-central1:b/k", "bucket 'b/k'"),
    ("aws:us-west-2:bkt:../x", "prefix segment '..'"),
    ("aws:us-west-2:bkt:a/../../x", "prefix segment '..'"),
    ("aws:us-west-2:bkt:a/./b", "prefix segment '.'"),
    ("aws:us-west-2:bkt:a b", "prefix segment 'a b'"),
    ("aws:us-west-2:bkt:a:b", "prefix segment 'a:b'"),
    ("gce:us-central1:bkt:\u00e9", "prefix segment '\u00e9'"),
    pytest.param("aws:us-west-2:bkt\n", "bucket"),
    pytest.param("aws:us-west-2\n:bkt", "region"),
    pytest.param("aws:us-west-2:bkt:pre\n", "prefix"),
    pytest.param("file:   ", "path"),
]


@pytest.mark.parametrize(("bad", "fragment"), INVALID)
def test_invalid_locators_are_rejected_by_name(bad: Any, fragment: str) -> None:
    with pytest.raises(InvalidLocatorError) as info:
        parse_locator(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert fragment in message
    assert info.value.locator is bad


def test_invalid_locator_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown locator type") as info:
        parse_locator("nope:x")
    assert isinstance(info.value, JobStoreError)


@pytest.mark.parametrize(
    ("protocol", "family"),
    [
        ("file", "file"),
        ("local", "file"),
        ("s3", "aws"),
        ("s3a", "aws"),
        ("gs", "google"),
        ("gcs", "google"),
        ("az", "azure"),
        ("abfs", "azure"),
        ("sftp", "sftp"),
        ("ssh", "sftp"),
        ("memory", "memory"),
        ("ftp", "ftp"),
        ("kvfs", "kvfs"),
    ],
)
def test_family_of_protocol(protocol: str, family: str) -> None:
    assert Locator(text="t", url="u", protocol=protocol).family == family


def test_families_are_disjoint() -> None:
    assert set(FAMILIES) == {"file", "aws", "google", "azure", "sftp"}
    seen: set[str] = set()
    for protocols in FAMILIES.values():
        assert not seen & protocols
        seen |= protocols


MERGES: list[tuple[list[Mapping[str, Any]], dict[str, Any]]] = [
    ([], {}),
    ([{"anon": True}], {"anon": True}),
    ([{"anon": True}, {"anon": False}], {"anon": False}),
    ([{"a": 1}, {"b": 2}, {"a": 3}], {"a": 3, "b": 2}),
    (
        [{"client_kwargs": {"region_name": "r"}}, {"client_kwargs": {"endpoint_url": "u"}}],
        {"client_kwargs": {"region_name": "r", "endpoint_url": "u"}},
    ),
    (
        [{"client_kwargs": {"region_name": "r"}}, {"client_kwargs": {"region_name": "s"}}],
        {"client_kwargs": {"region_name": "s"}},
    ),
    # Only one level deep: deeper mappings are replaced, not merged.
    ([{"c": {"d": {"x": 1}}}, {"c": {"d": {"y": 2}}}], {"c": {"d": {"y": 2}}}),
    # A non-mapping on either side replaces.
    ([{"c": {"x": 1}}, {"c": None}], {"c": None}),
    ([{"c": "s"}, {"c": {"x": 1}}], {"c": {"x": 1}}),
    (
        [MappingProxyType({"c": MappingProxyType({"x": 1})}), {"c": {"y": 2}}],
        {"c": {"x": 1, "y": 2}},
    ),
]


@pytest.mark.parametrize(("layers", "expected"), MERGES)
def test_merge_options(layers: list[Mapping[str, Any]], expected: dict[str, Any]) -> None:
    before = [_plain(layer) for layer in layers]
    merged = merge_options(*layers)
    assert merged == expected
    assert type(merged) is dict
    # The inputs are left as they were.
    assert [_plain(layer) for layer in layers] == before


def _plain(value: Any) -> Any:
    """Deep, independent copy of nested mappings as dicts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return copy.deepcopy(value)


def test_user_endpoint_keeps_locator_region() -> None:
    implied = parse_locator("aws:eu-west-1:bkt:p").storage_options
    merged = merge_options(implied, {"client_kwargs": {"endpoint_url": "http://minio:9000"}})
    assert merged == {
        "client_kwargs": {"region_name": "eu-west-1", "endpoint_url": "http://minio:9000"}
    }
    assert implied == {"client_kwargs": {"region_name": "eu-west-1"}}
