"""What object stores cost: requests counted where this process sends them."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from fsjobstore import JobDescription, JobStore
from fsjobstore.testing import ContractBase, Target
from fsjobstore.testing.streams import content, digest_of, sha

MiB = 1024 * 1024
#: Requests of a ``delete_job`` of a job owning one file: the listing of its
#: files, the check that the job is there, and the deletes.
DELETE_JOB_REQUESTS = {"s3": 3, "gcs": 4, "azure": 4}
#: Requests per further owned file: S3 deletes up to 1,000 objects in one
#: request; GCS and Azure get one DELETE per object, sent concurrently.
PER_OWNED_FILE = {"s3": 0, "gcs": 1, "azure": 1}


def count_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every HTTP request this process makes: s3fs, gcsfs and adlfs all use aiohttp."""
    seen: list[str] = []
    send = aiohttp.ClientSession._request

    async def counted(self: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any) -> Any:
        seen.append(f"{method} {url}")
        return await send(self, method, url, **kwargs)

    monkeypatch.setattr(aiohttp.ClientSession, "_request", counted)
    return seen


class TestRequests(ContractBase):
    """Requests per operation on the object stores."""

    def test_whole_read_takes_a_few_requests(
        self,
        target: Target,
        store: JobStore,
        reader: JobStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """``read()`` of a whole stream costs about what reading it in big chunks costs.

        io's default ``readall`` reads 8 KiB at a time: a raw stream that makes a
        request per read must replace it, or a 1 MiB ``read()`` takes 128 requests.
        """
        if target.backend not in ("s3", "gcs", "azure"):
            pytest.skip("counts HTTP requests: only the object stores speak HTTP")
        data = content(MiB, "whole")
        with store.write_file_stream(basename="whole.bin") as (handle, file_id):
            handle.write(data)
        seen = count_requests(monkeypatch)
        assert digest_of(reader, file_id) == sha(data)
        chunked = len(seen)
        assert chunked > 0, "the client's requests are not counted"
        seen.clear()
        with reader.read_file_stream(file_id) as stream:
            assert sha(stream.read()) == sha(data)
        assert len(seen) <= chunked + 2, f"{len(seen)} requests; {chunked} in 1 MiB chunks"

    def test_delete_job_costs_what_it_owns(
        self, target: Target, store: JobStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A listing, a check and the deletes; nothing is asked of folders, which are prefixes."""
        if target.backend not in ("s3", "gcs", "azure"):
            pytest.skip("counts HTTP requests: only the object stores speak HTTP")

        def cost(owned: int) -> int:
            job = JobDescription(jobName=f"owns-{owned}")
            store.create_job(job)
            for number in range(owned):
                with store.write_file_stream(job.jobStoreID, cleanup=True) as (out, _):
                    out.write(b"%d" % number)
            seen = count_requests(monkeypatch)
            store.delete_job(job.jobStoreID or "")
            monkeypatch.undo()
            assert not store.job_exists(job.jobStoreID or "")
            return len(seen)

        # A client's retry, or a request of another thread of this process,
        # only adds to a count: the fewest of three runs is the call's own cost.
        counts = {owned: min(cost(owned) for _ in range(3)) for owned in (1, 20)}
        print(target.backend, counts)
        assert counts[1] <= DELETE_JOB_REQUESTS[target.backend], counts
        assert counts[20] - counts[1] == 19 * PER_OWNED_FILE[target.backend], counts
