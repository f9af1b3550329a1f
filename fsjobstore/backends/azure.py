"""Azure Blob Storage, through adlfs and the Azure SDK it wraps.

Conditional writes are ``upload_blob`` with ``overwrite=False`` (create) or an
ETag match condition (replace). adlfs commits a stream even when its writer
fails, so large streams go up as staged blocks committed only at the end.
Streamed reads are pinned to the ETag they started with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import IO, Any

from typing_extensions import override

from .common import BLOCK_SIZE, PAGE, Entry, Temporary, VersionConflict, timestamp
from .object import ObjectBackend

__all__ = ["AzureBackend"]

# adlfs marks the blobs it writes as files; do the same so it lists ours alike.
_METADATA = {"is_directory": "false"}


class AzureBackend(ObjectBackend):
    """Backend for :class:`adlfs.AzureBlobFileSystem`."""

    @override
    async def _exists(self, path: str) -> bool:
        # adlfs's own check is one request, and reports errors other than absence.
        return bool(await self.fs._isfile(path))

    def _blob(self, path: str) -> Any:
        container, blob, _ = self.fs.split_path(path)
        return self.fs.service_client.get_blob_client(container=container, blob=blob)

    @override
    async def _get(self, path: str) -> tuple[bytes, str]:
        from azure.core.exceptions import ResourceNotFoundError

        async with self._blob(path) as client:
            try:
                stream = await client.download_blob()
            except ResourceNotFoundError:
                raise FileNotFoundError(path) from None
            return await stream.readall(), str(stream.properties.etag)

    @override
    async def _put(self, path: str, data: bytes, token: str | None) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        condition: dict[str, Any] = (
            {"overwrite": False}
            if token is None
            else {
                "overwrite": True,
                "etag": token,
                "match_condition": MatchConditions.IfNotModified,
            }
        )
        async with self._blob(path) as client:
            try:
                result = await client.upload_blob(data, metadata=_METADATA, **condition)
            except ResourceExistsError:
                raise FileExistsError(path) from None
            except ResourceModifiedError:
                raise await self._missing_or_conflict(path) from None
        return str(result["etag"])

    @override
    async def _delete(self, path: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        async with self._blob(path) as client:
            try:
                await client.delete_blob()
            except ResourceNotFoundError:
                pass

    @override
    async def _first(self, path: str, length: int) -> tuple[bytes, int, str, int]:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        async with self._blob(path) as client:
            try:
                stream = await client.download_blob(offset=0, length=length)
            except ResourceNotFoundError:
                raise FileNotFoundError(path) from None
            except HttpResponseError as exc:
                if getattr(exc, "error_code", None) != "InvalidRange":
                    raise
                empty, token = await self._get(path)  # it has no byte 0 to ask for
                return empty, 0, token, len(empty)
            data: bytes = await stream.readall()
        # properties.size is what was downloaded; the range names the whole.
        whole = stream.properties.content_range  # "bytes 0-N/SIZE"; None if all came
        size = int(whole.rsplit("/", 1)[1]) if whole else len(data)
        return data, 0, str(stream.properties.etag), size

    @override
    async def _range(self, path: str, token: str, start: int, end: int) -> bytes:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        async with self._blob(path) as client:
            try:
                stream = await client.download_blob(
                    offset=start,
                    length=end - start,
                    etag=token,
                    match_condition=MatchConditions.IfNotModified,
                )
                data: bytes = await stream.readall()
            except ResourceModifiedError:
                raise VersionConflict(path) from None
            except ResourceNotFoundError:
                raise FileNotFoundError(path) from None
        return data

    @override
    def listing(self, prefix: str) -> Iterator[list[Entry]]:
        container, key, _ = self.fs.split_path(prefix)
        key = key.strip("/")
        token: str | None = None
        while True:
            page, token = self._run(self._list_page, container, f"{key}/" if key else None, token)
            if page:
                yield page
            if not token:
                return

    async def _list_page(
        self, container: str, prefix: str | None, token: str | None
    ) -> tuple[list[Entry], str | None]:
        from azure.core.exceptions import ResourceNotFoundError

        client = self.fs.service_client.get_container_client(container)
        listed = client.list_blobs(name_starts_with=prefix, results_per_page=PAGE)
        pages = listed.by_page(continuation_token=token)
        entries: list[Entry] = []
        try:
            async for blob in await pages.__anext__():
                if blob.name.endswith("/"):
                    continue
                md5 = blob.content_settings.content_md5 if blob.content_settings else None
                entries.append(
                    Entry(
                        f"{container}/{blob.name}",
                        int(blob.size or 0),
                        bytes(md5).hex() if md5 and len(md5) == 16 else None,
                        timestamp(blob.last_modified),
                    )
                )
        except (ResourceNotFoundError, StopAsyncIteration):  # no container, or no page
            return entries, None
        next_token: str | None = pages.continuation_token
        return entries, next_token

    @override
    def write_stream(self, path: str, source: IO[bytes]) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            while block := source.read(BLOCK_SIZE):
                yield block

        async def upload() -> None:
            async with self._blob(path) as client:
                # Blocks are staged and committed together at the end: if the
                # source fails, nothing is committed.
                await client.upload_blob(chunks(), overwrite=True, metadata=_METADATA)

        self._run(upload)

    # -- blocks a crashed writer staged --------------------------------------------

    @override
    def unfinished_uploads(self) -> list[Temporary]:
        """Uncommitted blobs below the root: blocks staged for a blob never committed."""
        return self._run(self._list_uncommitted)

    async def _list_uncommitted(self) -> list[Temporary]:
        from azure.core.exceptions import ResourceNotFoundError

        container, prefix = self._below_root()
        client = self.fs.service_client.get_container_client(container)
        try:
            # Uncommitted blobs appear only in a listing that asks for them: the
            # difference of the two listings is what was never committed.
            every = {
                b.name: b
                async for b in client.list_blobs(
                    name_starts_with=prefix, include=["uncommittedblobs"]
                )
            }
            committed = {b.name async for b in client.list_blobs(name_starts_with=prefix)}
        except ResourceNotFoundError:  # no container
            return []
        return [
            Temporary("blocks", f"{container}/{name}", None, timestamp(blob.last_modified))
            for name, blob in every.items()
            if name not in committed
        ]

    @override
    def discard_uploads(self, uploads: Sequence[Temporary]) -> None:
        self._run(self._discard_blocks, uploads)

    async def _discard_blocks(self, blobs: Sequence[Temporary]) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )

        for blob in blobs:
            async with self._blob(blob.path) as client:
                try:
                    await client.delete_blob()
                    continue
                except ResourceNotFoundError:
                    pass
                # Where the service will not delete a blob that has no
                # committed version, committing an empty block list (only if
                # still no blob is there) drops the staged blocks, and the
                # empty blob it makes is deleted under the same condition.
                try:
                    made = await client.commit_block_list(
                        [], etag="*", match_condition=MatchConditions.IfMissing
                    )
                    await client.delete_blob(
                        etag=made["etag"], match_condition=MatchConditions.IfNotModified
                    )
                except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                    pass  # committed or removed by someone else meanwhile: not ours
