"""Google Cloud Storage, through gcsfs.

Conditional writes are one multipart upload with ``ifGenerationMatch``
(``0``: create only). gcsfs exposes only the create-only form, so the upload
is made here, through gcsfs's own authenticated session. Reads return the
generation with the bytes; streamed reads ask for one generation.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from typing_extensions import override

from .common import PAGE, Entry
from .object import ObjectBackend

if TYPE_CHECKING:
    from ..job import Config

__all__ = ["GCSBackend"]


class GCSBackend(ObjectBackend):
    """Backend for :class:`gcsfs.GCSFileSystem`."""

    @override
    @classmethod
    def config_options(cls, config: Config, *, encrypted: bool = True) -> dict[str, Any]:
        """Use the service-account file of ``Config.googleCredentials``."""
        if not config.googleCredentials:
            return {}
        return {"token": os.path.expanduser(config.googleCredentials)}

    @override
    async def _exists(self, path: str) -> bool:
        # The object's metadata, one request. gcsfs's _info also lists the
        # path as a folder at the same time and takes the first answer: one
        # request or two, by timing, for keys that are never folders here.
        try:
            info = await self.fs._get_object(path)
        except FileNotFoundError:
            return False
        return bool(info.get("type") == "file")

    @override
    async def _get(self, path: str) -> tuple[bytes, str]:
        headers, data = await self.fs._call("GET", self.fs.url(path))
        return data, str(headers["X-Goog-Generation"])

    @override
    async def _put(self, path: str, data: bytes, token: str | None) -> str:
        bucket, key, _ = self.fs.split_path(path)
        boundary = uuid.uuid4().hex
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps({"name": key}).encode(),
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                data,
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        try:
            resource = await self.fs._call(
                "POST",
                f"{self.fs._location}/upload/storage/v1/b/{quote(bucket)}/o",
                uploadType="multipart",
                ifGenerationMatch="0" if token is None else token,
                data=body,
                headers={"Content-Type": f'multipart/related; boundary="{boundary}"'},
                json_out=True,
            )
        except FileExistsError:
            # gcsfs reports every failed precondition (HTTP 412) this way.
            if token is None:
                raise
            raise await self._missing_or_conflict(path) from None
        self.fs.invalidate_cache(self.fs._parent(path))
        return str(resource["generation"])

    @override
    async def _delete(self, path: str) -> None:
        try:
            await self.fs._rm_file(path)
        except FileNotFoundError:
            pass

    @override
    async def _first(self, path: str, length: int) -> tuple[bytes, int, str, int]:
        # The last ``length`` bytes: a suffix range, which an empty object
        # satisfies too, where a range from byte 0 answers 416 (which gcsfs
        # logs as an error).
        headers, data = await self.fs._call(
            "GET", self.fs.url(path), headers={"Range": f"bytes=-{length}"}
        )
        whole = headers.get("Content-Range")  # "bytes START-END/SIZE"; absent if all came
        size = int(whole.rsplit("/", 1)[1]) if whole else len(data)
        return data, size - len(data), str(headers["X-Goog-Generation"]), size

    @override
    async def _range(self, path: str, token: str, start: int, end: int) -> bytes:
        # A replaced generation is gone (FileNotFoundError): never mixed in.
        # The request is made here, as _get's is: gcsfs's _cat_file ignored
        # a generation in releases up to 2025.12.0 at least, and read whatever
        # was stored by then.
        _, data = await self.fs._call(
            "GET",
            f"{self.fs.url(path)}&generation={token}",
            headers={"Range": f"bytes={start}-{end - 1}"},
        )
        return bytes(data)

    @override
    def listing(self, prefix: str) -> Iterator[list[Entry]]:
        bucket, key, _ = self.fs.split_path(prefix)
        key = key.strip("/")
        token: str | None = None
        while True:
            try:
                page = self._run(self._list_page, bucket, f"{key}/" if key else "", token)
            except FileNotFoundError:  # no bucket
                return
            entries = [
                Entry(
                    f"{bucket}/{item['name']}",
                    int(item.get("size") or 0),
                    _hex(item.get("md5Hash")),
                    _when(item.get("updated")),
                )
                for item in page.get("items", [])
                if not item["name"].endswith("/")
            ]
            if entries:
                yield entries
            token = page.get("nextPageToken")
            if not token:
                return

    async def _list_page(self, bucket: str, prefix: str, token: str | None) -> dict[str, Any]:
        page: dict[str, Any] = await self.fs._call(
            "GET",
            "b/{}/o",
            bucket,
            json_out=True,
            prefix=prefix,
            maxResults=PAGE,
            pageToken=token,
        )
        return page

    @override
    def write_stream(self, path: str, source: IO[bytes]) -> None:
        self._commit_stream(path, source)


def _hex(md5: object) -> str | None:
    """Return the hex of a base64 MD5, as GCS lists it; None if there is none."""
    try:
        return base64.b64decode(md5).hex() if isinstance(md5, str) else None
    except (binascii.Error, ValueError):
        return None


def _when(updated: object) -> float | None:
    try:
        return datetime.fromisoformat(updated).timestamp() if isinstance(updated, str) else None
    except ValueError:
        return None
