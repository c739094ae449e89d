"""The retry policy: is_transient, Retry-After, backoff, and the client's retry loop."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from od_scheduler.clients.retry import MAX_RETRY_AFTER_S, RetryPolicy, is_transient, parse_retry_after
from od_scheduler.exceptions import (
    PermanentUpstreamError,
    TransientUpstreamError,
)

from .conftest import NO_JITTER, FakeClock, Script, make_client

pytestmark = pytest.mark.unit


# -- is_transient / Retry-After / backoff ---------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        *[(status, True) for status in (408, 425, 429, 500, 502, 503, 504)],
        *[(status, False) for status in (400, 401, 403, 404, 409, 413, 422)],
    ],
)
def test_is_transient_by_status(status: int, expected: bool) -> None:
    assert is_transient(status_code=status) is expected


def test_is_transient_by_exception() -> None:
    request = httpx.Request("GET", "https://x.test")
    for exc in (
        httpx.ReadTimeout("t", request=request),
        httpx.ConnectTimeout("t", request=request),
        httpx.ConnectError("refused", request=request),
        httpx.ReadError("reset", request=request),
        httpx.RemoteProtocolError("peer closed", request=request),
        TransientUpstreamError("x"),
    ):
        assert is_transient(exc=exc), exc
    assert not is_transient(exc=httpx.UnsupportedProtocol("ftp", request=request))
    assert not is_transient(exc=ValueError("a bug"))
    assert not is_transient()


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sat, 01 Mar 2025 11:59:00 GMT", now=now) == 0.0  # in the past
    assert parse_retry_after("86400") == MAX_RETRY_AFTER_S  # capped
    for garbage in (None, "", "soon", "-5", "1.5e3", "Mon, 99 Foo 2025"):
        assert parse_retry_after(garbage, now=now) is None, garbage


def test_backoff_is_capped_exponential() -> None:
    assert [NO_JITTER.backoff(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    jittered = RetryPolicy(base_delay=2.0, max_delay=30.0)
    for attempt in range(1, 10):
        full = min(30.0, 2.0 * 2 ** (attempt - 1))
        for _ in range(20):
            assert full / 2 <= jittered.backoff(attempt) <= full
    with pytest.raises(ValueError, match="1-based"):
        NO_JITTER.backoff(0)


# -- retry loop ------------------------------------------------------------------------------------
def test_429_waits_retry_after_seconds(clock: FakeClock) -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={"ok": True}))
    client = make_client(script, clock)
    assert client.get_json("/things") == {"ok": True}
    assert clock.sleeps == [7.0]
    assert len(script.requests) == 2
    assert client.stats.api_calls == 2
    assert client.stats.retries == 1
    assert client.stats.rate_limits_hit == 1
    assert client.stats.rate_limit_wait_s == 7.0


def test_503_waits_retry_after_http_date(clock: FakeClock) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    script = Script(httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200, json=[]))
    client = make_client(script, clock)
    assert client.get_json("/things") == []
    assert len(clock.sleeps) == 1
    assert 18.0 <= clock.sleeps[0] <= 20.0
    assert client.stats.rate_limits_hit == 0  # a 503 is not a rate limit


def test_timeouts_and_connection_errors_back_off(clock: FakeClock) -> None:
    script = Script(httpx.ReadTimeout, httpx.ConnectError, httpx.Response(502), httpx.Response(200, json={}))
    client = make_client(script, clock)
    assert client.get_json("/things") == {}
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert client.stats.retries == 3
    assert client.stats.api_calls == 4


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_permanent_status_is_not_retried(clock: FakeClock, status: int) -> None:
    script = Script(httpx.Response(status, text="nope"))
    client = make_client(script, clock, conn_id="od_testapi")
    with pytest.raises(PermanentUpstreamError) as info:
        client.get_json("/things")
    assert len(script.requests) == 1
    assert clock.sleeps == []
    assert info.value.status_code == status
    message = str(info.value)
    assert f"testapi GET https://api.test/things returned HTTP {status}: nope" in message
    if status in (401, 403):
        assert "Check the API key / credentials in connection 'od_testapi'" in message
    if status == 404:
        assert "Check the base URL in connection 'od_testapi'" in message


def test_retries_exhausted_raise_transient_error(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    script = Script(*[httpx.Response(503, text="down")] * 5)
    client = make_client(script, clock)
    with (
        caplog.at_level(logging.WARNING, logger="od_scheduler"),
        pytest.raises(TransientUpstreamError) as info,
    ):
        client.get_json("/things")
    assert len(script.requests) == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert info.value.status_code == 503
    assert "testapi GET https://api.test/things still failing after 5 attempts (last: HTTP 503)" in str(
        info.value
    )
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 4
    assert (
        "testapi GET https://api.test/things: HTTP 503 (attempt 1 of 5); retrying in 0.50s"
        in retries[0].getMessage()
    )


def test_timeouts_exhausted_chain_the_cause(clock: FakeClock) -> None:
    script = Script(*[httpx.ReadTimeout] * 3)
    client = make_client(script, clock, retry=RetryPolicy(max_attempts=3, jitter=False))
    with pytest.raises(TransientUpstreamError, match=r"after 3 attempts \(last: ReadTimeout") as info:
        client.get_json("/things")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
