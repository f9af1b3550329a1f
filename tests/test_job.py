"""Unit tests for fsjobstore.job: JobDescription, Config, FileID and their JSON codec."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from fsjobstore.errors import JobStoreError
from fsjobstore.job import (
    DEFAULT_RETRY_COUNT,
    Config,
    FileID,
    JobDescription,
    decode_config,
    decode_job,
    encode_config,
    encode_job,
)

GiB = 1024**3


def _pickled(protocol: int) -> Callable[[FileID], FileID]:
    return lambda file_id: pickle.loads(pickle.dumps(file_id, protocol=protocol))


CLONES = [copy.copy, copy.deepcopy, *(_pickled(p) for p in range(pickle.HIGHEST_PROTOCOL + 1))]


@pytest.mark.parametrize("clone", CLONES)
@pytest.mark.parametrize(("size", "executable"), [(0, False), (9, True), (5 * GiB, False)])
def test_file_id_survives_pickle_and_copy(
    clone: Callable[[FileID], FileID], size: int, executable: bool
) -> None:
    original = FileID("j~0123456789abcdef0123456789abcdefX~run.sh", size, executable)
    restored = clone(original)
    assert type(restored) is FileID
    assert restored == original
    assert (restored.size, restored.executable) == (size, executable)


def test_file_id_is_a_str() -> None:
    file_id = FileID("abc", 3)
    assert isinstance(file_id, str)
    assert file_id == "abc"
    assert hash(file_id) == hash("abc")
    by_id: dict[str, int] = {file_id: 1}
    assert by_id["abc"] == 1
    assert file_id.executable is False
    assert repr(file_id) == "FileID('abc', size=3, executable=False)"


PACKED = [FileID("abc", 0), FileID("abc", 9, True), FileID("a:b:c", 12), FileID("", 1, True)]
PACKED.append(FileID("x~y", 2**40, True))


@pytest.mark.parametrize("original", PACKED)
def test_file_id_pack_round_trip(original: FileID) -> None:
    packed = original.pack()
    assert isinstance(packed, str)
    restored = FileID.unpack(packed)
    assert type(restored) is FileID
    assert str(restored) == str(original)
    assert (restored.size, restored.executable) == (original.size, original.executable)


def test_file_id_pack_matches_toil() -> None:
    assert FileID("id", 9, False).pack() == "9:0:id"
    toil_packed = FileID.unpack("9:1:id")
    assert (toil_packed.size, toil_packed.executable) == (9, True)


@pytest.mark.parametrize("bad", ["", "garbage", "1:5", "1:abc:id", "2:5:id", "1:-5:id"])
def test_file_id_unpack_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad)):
        FileID.unpack(bad)


def test_job_description_defaults() -> None:
    job = JobDescription()
    assert job.requirements == {}
    assert (job.jobName, job.unitName, job.displayName, job.jobStoreID) == ("", "", "", None)
    assert (job.memory, job.cores, job.disk, job.preemptible) == (0, 0.0, 0, False)
    # Config.retryCount (1) + 1.
    assert Config().retryCount == DEFAULT_RETRY_COUNT == 1
    assert job.remainingTryCount == 2


def test_job_description_fields() -> None:
    requirements = {"memory": GiB, "cores": 1, "disk": 2 * GiB, "preemptible": True}
    job = JobDescription(requirements, "test_job", "test_unit")
    requirements["memory"] = 1
    assert job.requirements["memory"] == GiB  # copied, not shared
    assert (job.memory, job.cores, job.disk, job.preemptible) == (GiB, 1.0, 2 * GiB, True)
    assert (job.jobName, job.unitName, job.displayName) == ("test_job", "test_unit", "test_job")
    assert JobDescription(jobName="j", unitName=None, displayName="d").unitName == ""
    assert JobDescription(jobName="j", displayName="").displayName == ""


# (remainingTryCount given, assigned later, Config.retryCount, remainingTryCount after default)
TryCounts = list[tuple[int | None, int | None, int, int]]
TRY_COUNTS: TryCounts = [(None, None, 5, 6), (None, None, 0, 1), (3, None, 5, 3)]
# An explicit value, even one equal to the default, is kept.
TRY_COUNTS += [(0, None, 5, 0), (2, None, 5, 2), (None, 7, 5, 7), (None, 2, 5, 2), (4, 1, 5, 1)]


@pytest.mark.parametrize(("given", "assigned", "retry_count", "expected"), TRY_COUNTS)
def test_set_default_try_count(
    given: int | None, assigned: int | None, retry_count: int, expected: int
) -> None:
    job = JobDescription(remainingTryCount=given)
    if assigned is not None:
        job.remainingTryCount = assigned
    job._set_default_try_count(retry_count)
    assert job.remainingTryCount == expected


def test_job_equality_ignores_private_attributes() -> None:
    a, b = JobDescription(jobName="x"), JobDescription(jobName="x")
    b._version = "token"
    assert a == b
    b.extra = 1
    assert a != b
    assert a != JobDescription(jobName="y")
    assert a != Config()
    with pytest.raises(TypeError):
        hash(a)
    assert "jobName='x'" in repr(a)
    assert "_version" not in repr(b)


def _jobs() -> list[JobDescription]:
    seed = JobDescription(
        {"memory": GiB, "cores": 1, "disk": GiB}, "test_job", "test_unit", jobStoreID="j1"
    )
    extras = JobDescription(jobName="e", remainingTryCount=0)
    extras.nested = {"a": [1, 2.5, None, True], "b": {"c": "\u00e9\u2603"}}
    # User attributes named like the document's own keys must not confuse it.
    extras.format = 99
    extras.revision = "mine"
    extras.attributes = {"x": 1}
    return [JobDescription(), seed, extras]


@pytest.mark.parametrize("job", _jobs(), ids=["default", "seed", "extras"])
def test_job_round_trip(job: JobDescription) -> None:
    job._version = "ignored"
    data = encode_job(job)
    assert isinstance(data, bytes)
    assert b"_version" not in data
    decoded = decode_job(data)
    assert type(decoded) is JobDescription
    assert decoded == job
    assert decoded._version is None
    # A loaded job's try count is its own: the store's default does not replace it.
    decoded._set_default_try_count(5)
    assert decoded.remainingTryCount == job.remainingTryCount
    # Each encoding carries a fresh revision, so the bytes differ but decode the same.
    again = encode_job(job)
    assert again != data
    assert decode_job(again) == job


def test_tuples_come_back_as_lists_and_private_attributes_are_not_stored() -> None:
    job = JobDescription()
    job.pair = (1, 2)
    job._cache = object()  # not JSON, but private, so never encoded
    decoded = decode_job(encode_job(job))
    assert decoded.pair == [1, 2]
    assert not hasattr(decoded, "_cache")


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


UNSERIALIZABLE: list[tuple[str, Callable[[], Any]]] = [
    ("blob", lambda: b"bytes"),
    ("things", lambda: {1, 2}),
    ("obj", object),
    ("keyed", lambda: {(1, 2): "tuple key"}),
    ("loop", _circular),
    ("jobName", object),
    ("requirements", lambda: {"gpu": object()}),
]


@pytest.mark.parametrize(("name", "make"), UNSERIALIZABLE)
@pytest.mark.parametrize("kind", ["job", "config"])
def test_unserializable_attribute_is_named(kind: str, name: str, make: Callable[[], Any]) -> None:
    item = JobDescription() if kind == "job" else Config()
    setattr(item, name, make())
    with pytest.raises(TypeError, match=f"{kind} attribute '{name}' is not JSON-serializable"):
        encode_job(item) if isinstance(item, JobDescription) else encode_config(item)


JOB_FIELDS = {"jobStoreID", "jobName", "unitName", "displayName", "requirements"}
JOB_FIELDS.add("remainingTryCount")


def _job_doc(**changes: Any) -> bytes:
    doc = {**json.loads(encode_job(JobDescription(jobName="j"))), **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not _DROP}).encode()


_DROP = object()
_DEEP = b"[" * 100_000 + b"]" * 100_000

# Bytes that are not a document of the current format, for both decoders.
NOT_A_DOCUMENT: list[Any] = [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"\xff\xfe\x00", "not JSON"),
    (b"[]", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b"null", "not a JSON object"),
    (b"{}", "format None"),
    (b'{"format": 2, "config": {}}', "format 2"),
    (b'{"format": "1", "config": {}}', "format '1'"),
    (_DEEP, ""),
]

BAD_JOB_DOCS: list[Any] = [
    *NOT_A_DOCUMENT,
    *[(_job_doc(**{field: _DROP}), field) for field in ("jobName", "requirements", "attributes")],
    (_job_doc(remainingTryCount=_DROP), "remainingTryCount"),
    (_job_doc(attributes=[1, 2]), "malformed"),
    (_job_doc(attributes="x"), "malformed"),
    (_job_doc(attributes={"memory": 5}), "malformed"),  # a read-only property
    (_job_doc(requirements=5), "malformed"),
    (_job_doc(requirements=[1]), "malformed"),
    (_job_doc(requirements="abc"), ""),
    (_job_doc(requirements=["ab"]), ""),
]


@pytest.mark.parametrize(("data", "fragment"), BAD_JOB_DOCS)
def test_decode_job_rejects_foreign_documents(data: bytes, fragment: str) -> None:
    with pytest.raises(JobStoreError, match="stored job document") as info:
        decode_job(data)
    assert fragment in str(info.value)


def test_decoding_never_sets_private_attributes() -> None:
    forged: dict[str, Any] = {"__dict__": {"jobName": "evil"}, "ok": "kept"}
    forged.update(dict.fromkeys(["_version", "_try_count_set", "__class__", "_public"], "x"))
    job = decode_job(_job_doc(attributes=forged, _version="top-level"))
    assert type(job) is JobDescription
    assert job._version is None
    assert job._try_count_set is True
    assert job.jobName == "j"
    assert job.ok == "kept"
    assert set(vars(job)) == {*JOB_FIELDS, "ok", "_try_count_set", "_version"}


def test_config_defaults_and_fields() -> None:
    config = Config()
    assert config.retryCount == 1
    for name in ("jobStore", "awsRegion", "sseKey", "sseKeyFile", "awsCredentials"):
        assert getattr(config, name) is None
    assert config.googleCredentials is None
    custom = Config(jobStore="file:/x", retryCount=4, workDir="/w")
    assert (custom.jobStore, custom.retryCount, custom.workDir) == ("file:/x", 4, "/w")
    assert custom != config


@pytest.mark.parametrize(
    "config",
    [Config(), Config(jobStore="aws:us-west-2:b:p", retryCount=3, extra={"a": [1, None]})],
)
def test_config_round_trip(config: Config) -> None:
    config._cache = object()  # private: not stored
    data = encode_config(config)
    assert json.loads(data)["format"] == 1
    assert "_cache" not in json.loads(data)["config"]
    assert decode_config(data) == config


def test_config_attribute_named_self_round_trips() -> None:
    config = Config()
    config.self = "me"
    assert decode_config(encode_config(config)).self == "me"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        *NOT_A_DOCUMENT,
        (b'{"format": 1}', "no 'config' object"),
        (b'{"format": 1, "config": null}', "no 'config' object"),
        (b'{"format": 1, "config": [1]}', "no 'config' object"),
    ],
)
def test_decode_config_rejects_foreign_documents(data: bytes, fragment: str) -> None:
    with pytest.raises(JobStoreError, match="marker") as info:
        decode_config(data)
    assert fragment in str(info.value)


def test_decoding_config_never_sets_private_attributes() -> None:
    data = json.dumps(
        {"format": 1, "config": {"_x": 1, "__class__": "x", "__init__": 2, "retryCount": 3}}
    ).encode()
    config = decode_config(data)
    assert type(config) is Config
    assert config.retryCount == 3
    assert not any(name.startswith("_") for name in vars(config))
