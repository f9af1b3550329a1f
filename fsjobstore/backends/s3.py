"""Amazon S3 and S3-compatible stores, through s3fs.

Conditional writes are ``If-None-Match: *`` (create) and ``If-Match: <ETag>``
(replace) on a single ``PutObject``; reads are one ``GetObject``, which
returns the ETag with the bytes; deletes of many keys are one
``DeleteObjects`` request. Streamed reads send ``If-Match`` with every range,
so a replaced object raises instead of mixing versions. Streams bigger than a
spool block go up from the spool file, in one ``PutObject`` up to 50 MiB and
in 50 MiB parts beyond, each part a view of the file that the client streams.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import stat
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

import tenacity
from s3fs.core import S3_RETRYABLE_ERRORS
from typing_extensions import override

from ..redaction import SCRUBBER
from .common import Entry, SizedReader, Temporary, VersionConflict, timestamp
from .object import CONCURRENCY, ObjectBackend

if TYPE_CHECKING:
    from ..job import Config

__all__ = ["PART_SIZE", "S3Backend"]

#: Part size of multipart uploads, as Toil's (which sends 50 MiB parts).
PART_SIZE = 50 * 1024 * 1024
#: The largest object one CopyObject copies.
_SINGLE_COPY = 5 * 1024**3
#: Extra arguments that encrypt objects: their ETags are no MD5 then.
_SSE = frozenset({"ServerSideEncryption", "SSECustomerAlgorithm", "SSECustomerKey"})
_MD5 = re.compile(r"[0-9a-f]{32}")


def _md5_of(etag: object) -> str | None:
    """Return the MD5 an ETag is, for an object written in one request; None otherwise."""
    tag = etag.strip('"').lower() if isinstance(etag, str) else ""
    return tag if _MD5.fullmatch(tag) else None  # a multipart ETag ends in "-N"


def _error_code(exc: BaseException) -> str | None:
    response: dict[str, Any] = getattr(exc.__cause__, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    return code if isinstance(code, str) else None


class S3Backend(ObjectBackend):
    """Backend for :class:`s3fs.S3FileSystem`."""

    @override
    @classmethod
    def default_options(cls) -> dict[str, Any]:
        # botocore keeps 10 connections unless told otherwise, which would cap
        # a bulk call at 10 requests in flight instead of the backend's 32.
        return {"config_kwargs": {"max_pool_connections": CONCURRENCY}}

    @override
    @classmethod
    def config_options(cls, config: Config, *, encrypted: bool = True) -> dict[str, Any]:
        """Region, credentials and encryption from ``Config``'s AWS fields.

        Raises
        ------
        ValueError
            Both ``sseKey`` and ``sseKeyFile`` are set, or the key file does not
            hold a 32-byte key. The message names the file, never the key.
        """
        options: dict[str, Any] = {}
        if config.awsRegion:
            options["client_kwargs"] = {"region_name": config.awsRegion}
        if config.sseKey and config.sseKeyFile:
            raise ValueError("set Config.sseKey (SSE-KMS) or Config.sseKeyFile (SSE-C), not both")
        if config.awsCredentials:
            options.update(_aws_credentials(config.awsCredentials))
        if not encrypted:
            return options
        if config.sseKey:
            options["s3_additional_kwargs"] = {
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": config.sseKey,
            }
        if config.sseKeyFile:
            key = _read_key(config.sseKeyFile)
            options["s3_additional_kwargs"] = {
                "SSECustomerAlgorithm": "AES256",
                "SSECustomerKey": key,
            }
            # s3fs and botocore log every call's arguments and headers at DEBUG
            # level, the key included (botocore in base64).
            SCRUBBER.learn(frozenset({key}))
        return options

    @override
    async def _get(self, path: str) -> tuple[bytes, str]:
        bucket, key, _ = self.fs.split_path(path)
        response, data = await self._get_object(Bucket=bucket, Key=key)
        return data, str(response["ETag"])

    async def _get_object(self, **request: Any) -> tuple[dict[str, Any], bytes]:
        """Send one ``GetObject`` and read its body; a body cut short asks again.

        s3fs retries the request, but not the reading of the body that
        follows it: a connection dropped mid-body would reach the caller. A
        body that fails to arrive, with an error s3fs calls retryable, is
        asked for again, as often as s3fs tries a request. A request that
        failed has had s3fs's retries already, and is not tried again here.
        """
        reading = False

        def body_failed(error: BaseException) -> bool:
            return reading and isinstance(error, S3_RETRYABLE_ERRORS)

        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(max(1, self.fs.retries)),
            wait=tenacity.wait_exponential(multiplier=0.1, max=15),
            retry=tenacity.retry_if_exception(body_failed),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                reading = False
                response: dict[str, Any] = await self.fs._call_s3("get_object", **request)
                reading = True
                async with response["Body"] as body:
                    data: bytes = await body.read()
        return response, data

    @override
    async def _put(self, path: str, data: bytes, token: str | None) -> str:
        bucket, key, _ = self.fs.split_path(path)
        condition = {"IfNoneMatch": "*"} if token is None else {"IfMatch": token}
        try:
            response = await self.fs._call_s3(
                "put_object", Bucket=bucket, Key=key, Body=data, **condition
            )
        except FileExistsError:
            raise  # s3fs's translation of a failed If-None-Match
        except OSError as exc:
            # s3fs turns a failed If-Match into OSError(EINVAL).
            if exc.errno == errno.EINVAL and _error_code(exc) == "PreconditionFailed":
                raise await self._missing_or_conflict(path) from None
            raise
        return str(response["ETag"])

    @override
    async def _delete(self, path: str) -> None:
        await self.fs._rm_file(path)

    @override
    async def _first(self, path: str, length: int) -> tuple[bytes, int, str, int]:
        bucket, key, _ = self.fs.split_path(path)
        try:
            response, data = await self._get_object(
                Bucket=bucket, Key=key, Range=f"bytes=0-{length - 1}"
            )
        except OSError as exc:
            if _error_code(exc) != "InvalidRange":
                raise
            data, token = await self._get(path)  # empty: it has no byte 0 to ask for
            return data, 0, token, len(data)
        whole = response.get("ContentRange")  # "bytes 0-N/SIZE"; absent if all came
        size = int(whole.rsplit("/", 1)[1]) if whole else len(data)
        return data, 0, str(response["ETag"]), size

    @override
    async def _range(self, path: str, token: str, start: int, end: int) -> bytes:
        bucket, key, _ = self.fs.split_path(path)
        try:
            _, data = await self._get_object(
                Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", IfMatch=token
            )
        except OSError as exc:
            if _error_code(exc) == "PreconditionFailed":
                raise VersionConflict(path) from None
            raise
        return data

    @override
    def delete_many(self, paths: list[str]) -> None:
        # One DeleteObjects request per 1,000 keys; missing keys are fine.
        if paths:
            self.fs.rm(paths)

    @override
    def listing(self, prefix: str) -> Iterator[list[Entry]]:
        # One ListObjectsV2 per page: s3fs's find() follows an empty listing
        # with a HEAD and a second LIST, to see whether the prefix is itself
        # an object, which no prefix of a store is.
        bucket, key, _ = self.fs.split_path(prefix)
        key = key.strip("/")
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": f"{key}/" if key else ""}
        # Only a plain object's ETag is the MD5 of its bytes: not one written
        # with KMS or a customer's key.
        encrypted = bool(set(getattr(self.fs, "s3_additional_kwargs", None) or ()) & _SSE)
        while True:
            try:
                response = self._run(self._list_page, request)
            except FileNotFoundError:  # no bucket
                return
            entries = [
                Entry(
                    f"{bucket}/{item['Key']}",
                    int(item["Size"]),
                    None if encrypted else _md5_of(item.get("ETag")),
                    timestamp(item.get("LastModified")),
                )
                for item in response.get("Contents", [])
                if not item["Key"].endswith("/")  # a console's "folder" marker
            ]
            if entries:
                yield entries
            if not response.get("IsTruncated"):
                return
            request["ContinuationToken"] = response["NextContinuationToken"]

    async def _list_page(self, request: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = await self.fs._call_s3("list_objects_v2", **request)
        return response

    @override
    def write_stream(self, path: str, source: IO[bytes]) -> None:
        try:
            fd = source.fileno()
            info = os.fstat(fd)
        except (AttributeError, OSError, io.UnsupportedOperation):
            info = None
        if info is None or not stat.S_ISREG(info.st_mode):
            self._commit_stream(path, source)  # not a file: s3fs buffers it
            return
        start = source.tell()
        self._run(self._upload_file, path, fd, start, info.st_size - start)

    async def _upload_file(self, path: str, fd: int, offset: int, size: int) -> None:
        # Bodies are views of the file, which the client streams: memory stays
        # flat however large the parts. So parts can be as large as Toil's
        # (50 MiB), and a stream never costs more requests than Toil's.
        bucket, key, _ = self.fs.split_path(path)
        if size <= PART_SIZE:
            await self.fs._call_s3(
                "put_object",
                Bucket=bucket,
                Key=key,
                Body=_Slice(fd, offset, size),
                ContentLength=size,
            )
            return
        upload = await self.fs._call_s3("create_multipart_upload", Bucket=bucket, Key=key)
        ids = {"Bucket": bucket, "Key": key, "UploadId": upload["UploadId"]}
        try:
            parts = []
            for number, start in enumerate(range(offset, offset + size, PART_SIZE), 1):
                length = min(PART_SIZE, offset + size - start)
                part = await self.fs._call_s3(
                    "upload_part",
                    PartNumber=number,
                    Body=_Slice(fd, start, length),
                    ContentLength=length,
                    **ids,
                )
                parts.append({"PartNumber": number, "ETag": part["ETag"]})
            await self.fs._call_s3(
                "complete_multipart_upload", MultipartUpload={"Parts": parts}, **ids
            )
        except BaseException:
            # The upload's own error is the one to report; parts left by a
            # failed abort are removed by the bucket's lifecycle rules.
            with contextlib.suppress(Exception):
                await self.fs._call_s3("abort_multipart_upload", **ids)
            raise

    # -- copies by the service (for migrations) ------------------------------------

    @override
    def copy_many(self, pairs: Sequence[tuple[str, int, str]]) -> None:
        """Copy objects within the service: under 5 GiB, one ``CopyObject`` each, concurrently.

        s3fs's own copy first asks each object's size (a HEAD request): the
        sizes given spare them, which halves the requests. Bigger objects
        need a multipart copy, which s3fs makes.
        """
        small = [(s, p) for s, size, p in pairs if 0 <= size < _SINGLE_COPY]
        for result in self._run(self._gather, [self._copy_object(s, p) for s, p in small]):
            if isinstance(result, BaseException):
                raise result
        super().copy_many([pair for pair in pairs if not 0 <= pair[1] < _SINGLE_COPY])

    async def _copy_object(self, source: str, path: str) -> None:
        src_bucket, src_key, _ = self.fs.split_path(source)
        bucket, key, _ = self.fs.split_path(path)
        await self.fs._call_s3(
            "copy_object",
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": src_bucket, "Key": src_key},
        )

    # -- multipart uploads a crashed writer left -----------------------------------

    @override
    def unfinished_uploads(self) -> list[Temporary]:
        """Incomplete multipart uploads of keys below the root, with their parts' size."""
        return self._run(self._list_uploads)

    async def _list_uploads(self) -> list[Temporary]:
        bucket, prefix = self._below_root()
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        found: list[Temporary] = []
        while True:
            try:
                response = await self.fs._call_s3("list_multipart_uploads", **request)
            except FileNotFoundError:  # no bucket, so no uploads
                return found
            for upload in response.get("Uploads", []):
                ids = {"Bucket": bucket, "Key": upload["Key"], "UploadId": upload["UploadId"]}
                found.append(
                    Temporary(
                        "upload",
                        f"{bucket}/{upload['Key']}",
                        await self._upload_size(ids),
                        timestamp(upload.get("Initiated")),
                        upload["UploadId"],
                    )
                )
            if not response.get("IsTruncated"):
                return found
            request["KeyMarker"] = response["NextKeyMarker"]
            request["UploadIdMarker"] = response["NextUploadIdMarker"]

    async def _upload_size(self, ids: dict[str, Any]) -> int | None:
        # One more request per upload, for the report: leftovers are rare, and
        # their size is what they cost.
        size, request = 0, dict(ids)
        while True:
            try:
                response = await self.fs._call_s3("list_parts", **request)
            except FileNotFoundError:  # finished or aborted meanwhile
                return None
            size += sum(int(part.get("Size", 0)) for part in response.get("Parts", []))
            if not response.get("IsTruncated"):
                return size
            request["PartNumberMarker"] = response["NextPartNumberMarker"]

    @override
    def discard_uploads(self, uploads: Sequence[Temporary]) -> None:
        async def abort() -> None:
            for upload in uploads:
                bucket, key, _ = self.fs.split_path(upload.path)
                try:
                    await self.fs._call_s3(
                        "abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload.upload_id
                    )
                except FileNotFoundError:  # NoSuchUpload: finished or aborted meanwhile
                    pass

        self._run(abort)


class _Slice(SizedReader):
    """A seekable, read-only view of ``length`` bytes of a file from ``start``.

    The client reads it twice (to sign and to send) and never holds it whole.
    """

    def __init__(self, fd: int, start: int, length: int) -> None:
        super().__init__(length)
        self._fd, self._start = fd, start

    def __len__(self) -> int:
        return self._size

    @override
    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._start + self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _read_key(path: str) -> str:
    with open(os.path.expanduser(path), "rb") as handle:
        raw = handle.read()
    key = raw[:-1] if raw.endswith(b"\n") else raw
    if len(key) != 32:
        raise ValueError(
            f"Config.sseKeyFile {path!r} must hold a 32-byte key, not {len(key)} bytes"
        )
    try:
        return key.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"Config.sseKeyFile {path!r} must hold an ASCII key") from None


def _aws_credentials(value: str) -> dict[str, Any]:
    """Turn a credentials file into a session that reads it; anything else is a profile."""
    path = os.path.expanduser(value)
    if not os.path.isfile(path):
        return {"profile": value}
    from aiobotocore.session import AioSession

    session = AioSession()
    session.set_config_variable("credentials_file", path)
    return {"session": session}
