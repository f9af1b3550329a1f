"""Service limits users meet in production, which the emulators do not enforce.

GCS accepts about one write per second to one object name and answers
faster ones with HTTP 429; S3 limits the request rate of a key prefix and
answers beyond it with 503 SlowDown. The fault proxy enforces both rules in
front of the emulators; the store must back off (through its client's retry
policy) and every write must land. Each test prints how long the writes
took and how many were refused.
"""

from __future__ import annotations

import time

import pytest

from fsjobstore import JobDescription

from .faults.services import GcsObjectWriteRate, S3PrefixRate
from .test_faults import Faulty, azure_proxy, gcs_proxy, place, s3_proxy

__all__ = ["azure_proxy", "gcs_proxy", "place", "s3_proxy"]

#: Updates of one job, as fast as the store takes them.
UPDATES = 20


@pytest.mark.parametrize("place", ["gcs"], indirect=True)
def test_gcs_rapid_updates_of_one_job_all_land(place: Faulty) -> None:
    store = place.open()
    store.initialize()
    job = JobDescription(jobName="hot")
    job.counter = 0
    store.create_job(job)
    job_id = job.jobStoreID or ""
    assert place.proxy is not None
    place.proxy.reset(rules=[GcsObjectWriteRate(per_second=1.0)])
    started = time.monotonic()
    for _ in range(UPDATES):
        current = store.load_job(job_id)
        current.counter += 1
        store.update_job(current)
    took = time.monotonic() - started
    refused = place.proxy.counts["throttled"]
    print(f"gcs: {UPDATES} updates of one job in {took:.1f} s, {refused} answered 429")
    assert store.load_job(job_id).counter == UPDATES
    assert refused > 0, "the rule refused nothing: the updates were not rapid"
    # One write a second is the limit: the updates cannot take less.
    assert took >= UPDATES - 2


@pytest.mark.parametrize("place", ["s3"], indirect=True)
def test_s3_throttled_prefix_backs_off_and_every_job_lands(place: Faulty) -> None:
    store = place.open()
    store.initialize()
    assert place.proxy is not None
    # A prefix far below S3's 3,500 writes a second, so that one process exceeds it.
    place.proxy.reset(rules=[S3PrefixRate(writes=10, reads=100, burst=5)])
    started = time.monotonic()
    made = []
    for number in range(40):
        job = JobDescription(jobName=f"job-{number}")
        store.create_job(job)
        made.append(job.jobStoreID or "")
    took = time.monotonic() - started
    refused = place.proxy.counts["throttled"]
    print(f"s3: 40 creates in one prefix at 10 writes/s: {took:.1f} s, {refused} SlowDowns")
    assert refused > 0
    assert sorted(j.jobStoreID or "" for j in store.jobs()) == sorted(made)
