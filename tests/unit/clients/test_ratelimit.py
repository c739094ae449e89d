"""The token bucket, alone and in the client."""

from __future__ import annotations

import httpx
import pytest

from od_scheduler.clients.ratelimit import TokenBucket

from .conftest import FakeClock, Script, make_client

pytestmark = pytest.mark.unit


# -- token bucket ----------------------------------------------------------------------------------
def test_token_bucket_spaces_requests(clock: FakeClock) -> None:
    bucket = TokenBucket(2.0, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == [0.0, 0.5, 0.5, 0.5]
    assert clock.sleeps == [0.5, 0.5, 0.5]
    clock.now += 10.0  # idle: capacity 1 allows only one immediate request
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == 0.5


def test_token_bucket_burst_capacity(clock: FakeClock) -> None:
    bucket = TokenBucket(1.0, capacity=3, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 1.0]
    clock.now += 1.5  # refills 1.5 tokens
    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.5)


def test_token_bucket_accounts_for_elapsed_time(clock: FakeClock) -> None:
    bucket = TokenBucket(4.0, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    clock.now += 0.1  # work between requests counts toward the 0.25 s spacing
    assert bucket.acquire() == pytest.approx(0.15)


def test_client_rate_limit_is_counted(clock: FakeClock) -> None:
    script = Script(*[httpx.Response(200, json={})] * 3)
    client = make_client(script, clock, requests_per_second=2.0)
    for _ in range(3):
        client.get_json("/things")
    assert clock.sleeps == [0.5, 0.5]
    assert client.stats.rate_limit_wait_s == 1.0


def test_token_bucket_rejects_bad_rate() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        TokenBucket(0)
