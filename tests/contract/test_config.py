"""Config fields and locators that reach the storage service, on every backend.

Encryption and AWS settings are S3's; the other backends skip those tests
with that reason. Requests are checked where they arrive: at the server.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from fsjobstore import Config, JobDescription, JobStore, NoSuchJobException
from fsjobstore.backends.common import BLOCK_SIZE
from fsjobstore.backends.s3 import PART_SIZE
from fsjobstore.testing import ContractBase, Target, raw_keys, raw_read

from ..conftest import BUCKET
from ..servers import S3Server

KMS_KEY = "alias/fsjobstore-test"


def only_s3(target: Target) -> None:
    if target.backend != "s3":
        pytest.skip("encryption and AWS credentials are S3 settings (Config.sse*, aws*)")


def boto_client(server: S3Server) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=S3Server.KEY,
        aws_secret_access_key=S3Server.SECRET,
        region_name="us-west-2",
    )


def exercise(store: JobStore, tmp_path: Path) -> list[str]:
    """Touch every kind of item; return the keys that hold data."""
    job = store.create_job(JobDescription(jobName="secret-job"))
    job.remainingTryCount = 0
    store.update_job(job)
    store.load_job(job.jobStoreID or "")
    src = tmp_path / "in.txt"
    src.write_bytes(b"file data")
    file_id = store.write_file(src, job.jobStoreID)
    store.read_file(file_id, tmp_path / "out.txt")
    with store.write_shared_file_stream("shared.txt") as handle:
        handle.write(b"shared data")
    with store.read_shared_file_stream("shared.txt") as handle:
        handle.read()
    store.write_logs("a log message")
    for size in (BLOCK_SIZE + 1, PART_SIZE + 1):  # one PUT of a spool; a multipart upload
        with store.write_file_stream(job.jobStoreID, basename=f"big{size}") as (out, big):
            out.write(b"\0" * size)
        with store.read_file_stream(big) as handle:
            assert len(handle.read()) == size
    return sorted(k for k in raw_keys(store) if k != ".fsjobstore.json")


class TestConfig(ContractBase):
    """Config fields and locators that reach the storage service."""

    def test_sse_kms_reaches_every_data_object(
        self, target: Target, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        only_s3(target)
        store = target.open()
        store.initialize(Config(sseKey=KMS_KEY))
        keys = exercise(store, tmp_path)
        assert len(keys) >= 4
        client = boto_client(request.getfixturevalue("s3"))
        prefix = store.root.split("/", 1)[1]
        for key in keys:
            head = client.head_object(Bucket=BUCKET, Key=f"{prefix}/{key}")
            assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == (
                "aws:kms",
                KMS_KEY,
            )

    def test_sse_c_key_goes_with_every_data_request_and_nowhere_else(
        self,
        target: Target,
        tmp_path: Path,
        request: pytest.FixtureRequest,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        only_s3(target)
        server: S3Server = request.getfixturevalue("s3")
        secret = uuid.uuid4().hex  # 32 ASCII characters
        key_file = tmp_path / "sse.key"
        key_file.write_text(secret + "\n")
        key_md5 = base64.b64encode(hashlib.md5(secret.encode()).digest()).decode()
        caplog.set_level(logging.DEBUG)
        server.requests.clear()
        store = target.open()
        store.initialize(Config(sseKeyFile=str(key_file)))
        exercise(store, tmp_path)
        second = target.open()
        second.resume()  # reads the marker before it knows the key
        assert second.config.sseKeyFile == str(key_file)
        assert [j.jobName for j in second.jobs()] == ["secret-job"]
        with pytest.raises(NoSuchJobException) as info:
            second.load_job("absent")

        data_requests = marker_requests = 0
        for seen in server.requests.snapshot():
            if seen.method not in ("GET", "PUT", "HEAD") or not seen.path.startswith(f"/{BUCKET}/"):
                continue
            if seen.query.startswith("list-type") or "delete" in seen.query:
                continue
            headers = seen.headers
            if seen.path.endswith("/.fsjobstore.json"):
                marker_requests += 1
                assert "x-amz-server-side-encryption-customer-key" not in headers
            else:
                data_requests += 1
                assert headers.get("x-amz-server-side-encryption-customer-algorithm") == "AES256"
                assert headers.get("x-amz-server-side-encryption-customer-key-md5") == key_md5
        assert data_requests >= 8
        assert marker_requests >= 2
        # The key is written nowhere: not in the store, the logs or an error,
        # in no encoding (botocore logs its headers, the key in base64).
        for key in raw_keys(store):
            assert secret.encode() not in raw_read(store, key)
        raw = secret.encode()
        forms = {
            secret,
            base64.b64encode(raw).decode(),
            base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode(),
            raw.hex(),
        }
        logged = "\n".join(caplog.messages)
        assert "x-amz-server-side-encryption-customer-key" in logged.lower(), "no header logged"
        for form in forms:
            assert form not in logged, f"the key is in the logs as {form!r}"
            assert form not in caplog.text
            assert form not in str(info.value)
            assert form not in repr(second.config)

    @pytest.mark.parametrize(
        ("content", "problem"),
        [(b"short", "32-byte key, not 5"), (b"\xff" * 32, "ASCII")],
    )
    def test_bad_key_file_writes_nothing(
        self, target: Target, tmp_path: Path, content: bytes, problem: str
    ) -> None:
        only_s3(target)
        key_file = tmp_path / "bad.key"
        key_file.write_bytes(content)
        store = target.open()
        with pytest.raises(ValueError, match=problem) as info:
            store.initialize(Config(sseKeyFile=str(key_file)))
        assert str(key_file) in str(info.value)
        assert raw_keys(store) == set()
        with pytest.raises(ValueError, match="not both"):
            store.initialize(Config(sseKey=KMS_KEY, sseKeyFile=str(key_file)))

    def test_region_and_credentials_file(
        self, target: Target, tmp_path: Path, request: pytest.FixtureRequest
    ) -> None:
        only_s3(target)
        credentials = tmp_path / "credentials"
        credentials.write_text(
            f"[default]\naws_access_key_id = {S3Server.KEY}\n"
            f"aws_secret_access_key = {S3Server.SECRET}\n"
        )
        options = {k: v for k, v in target.options.items() if k not in ("key", "secret")}
        bucket = f"fsjobstore-region-{uuid.uuid4().hex[:8]}"
        store = JobStore(f"s3://{bucket}/run", **options)
        store.initialize(Config(awsRegion="eu-west-1", awsCredentials=str(credentials)))
        job = store.create_job(JobDescription(jobName="regional"))
        assert store.load_job(job.jobStoreID or "").jobName == "regional"
        client = boto_client(request.getfixturevalue("s3"))
        assert client.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "eu-west-1"
        store.destroy()

    def test_toil_locators_and_endpoints_from_the_environment(
        self, target: Target, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if target.backend not in ("s3", "gcs"):
            pytest.skip("aws: and gce: locators name S3 and GCS")
        for name, value in target.env.items():
            monkeypatch.setenv(name, value)
        prefix = target.locator.rsplit("/", 1)[1]
        kind = {"s3": "aws:us-west-2", "gcs": "gce:us-central1"}[target.backend]
        store = JobStore(f"{kind}:{BUCKET}:runs/{prefix}")
        store.initialize()
        job = store.create_job(JobDescription(jobName="from-env"))
        again = JobStore(f"{kind}:{BUCKET}:runs/{prefix}")
        again.resume()
        assert again.load_job(job.jobStoreID or "").jobName == "from-env"
        assert again.root == f"{BUCKET}/runs/{prefix}"
        store.destroy()

    def test_initialize_makes_a_missing_bucket(self, target: Target) -> None:
        if target.backend not in ("s3", "gcs", "azure"):
            spot = target  # a missing directory; its parents exist or not, alike
        else:
            scheme = target.locator.split("://", 1)[0]
            spot = Target(
                target.backend,
                f"{scheme}://fsjobstore-new-{uuid.uuid4().hex[:12]}/deep/prefix",
                target.options,
            )
        store = spot.open()
        assert not store.fs.exists(store.root)
        store.initialize()
        assert store.fs.exists(store.root)
        job = store.create_job(JobDescription(jobName="first"))
        assert store.job_exists(job.jobStoreID or "")
        store.destroy()
