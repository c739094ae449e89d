"""The retry policy: is_transient, Retry-After, backoff, idempotency, and its sync and async loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from od_scheduler.clients.alerts import AlertWebhookClient
from od_scheduler.clients.http import RequestStats
from od_scheduler.clients.retry import (
    MAX_RETRY_AFTER_S,
    AmbiguousRequestError,
    RetryBudget,
    RetryPolicy,
    TransientFailure,
    async_retrying,
    is_idempotent,
    is_transient,
    maybe_processed,
    parse_retry_after,
    retrying,
)
from od_scheduler.exceptions import (
    PayloadError,
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


# -- idempotency: a POST that may have reached the upstream is re-sent only when its caller says so -----
def test_methods_idempotent_by_default() -> None:
    assert all(is_idempotent(m) for m in ("GET", "HEAD", "PUT", "DELETE", "get"))
    assert not any(is_idempotent(m) for m in ("POST", "PATCH"))


def test_only_a_refusal_or_no_connection_proves_a_request_was_not_processed() -> None:
    request = httpx.Request("POST", "https://x.test")
    for exc in (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
        assert not maybe_processed(exc=exc("x", request=request)), exc
    for exc in (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError):
        assert maybe_processed(exc=exc("x", request=request)), exc
    assert not maybe_processed(status_code=429)
    assert all(maybe_processed(status_code=s) for s in (408, 500, 502, 503, 504))


def alert_client(script: Script, clock: FakeClock) -> AlertWebhookClient:
    return AlertWebhookClient(
        webhook_url="https://hooks.test/services/T000/B000/secret-path",
        transport=script.transport,
        sleep=clock.sleep,
        clock=clock,
        retry=NO_JITTER,
    )


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.Response(503)],
    ids=["timeout-after-send", "write-timeout", "dropped", "503"],
)
def test_an_alert_post_that_may_have_arrived_is_not_retried(clock: FakeClock, failure: Any) -> None:
    script = Script(failure, httpx.Response(200, text="ok"))
    client = alert_client(script, clock)

    with pytest.raises(AmbiguousRequestError, match="Not re-sent") as info:
        client.post_alert({"text": "3 dealers failed"})

    assert len(script.requests) == 1, "a second POST would be a second alert"
    assert clock.sleeps == []
    assert client.stats.retries == 0
    assert isinstance(info.value, TransientUpstreamError)
    assert "secret-path" not in str(info.value)


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError, httpx.Response(429, headers={"Retry-After": "2"})],
    ids=["never-connected", "429"],
)
def test_an_alert_post_that_certainly_did_not_arrive_is_retried(clock: FakeClock, failure: Any) -> None:
    script = Script(failure, httpx.Response(200, text="ok"))
    client = alert_client(script, clock)

    assert client.post_alert({"text": "3 dealers failed"}) == 200
    assert len(script.requests) == 2
    assert client.stats.retries == 1


def test_an_opted_in_post_is_retried_after_a_timeout(clock: FakeClock) -> None:
    script = Script(httpx.ReadTimeout, httpx.Response(502), httpx.Response(200, json={"ok": True}))
    client = make_client(script, clock)

    assert client.post_json("/batch", json={"vins": ["x"]}, idempotent=True) == {"ok": True}
    assert [r.method for r in script.requests] == ["POST"] * 3
    assert clock.sleeps == [0.5, 1.0]
    assert client.stats.retries == 2


def test_a_post_not_opted_in_is_not_resent_for_invalid_json(clock: FakeClock) -> None:
    script = Script(httpx.Response(200, text='{"ok": tr'), httpx.Response(200, json={"ok": True}))
    client = make_client(script, clock)

    with pytest.raises(PayloadError, match="Not re-sent"):
        client.post_json("/things", json={})
    assert len(script.requests) == 1


# -- the loop itself, sync and async ---------------------------------------------------------------
def fail_with(failures: list[TransientFailure], result: str = "done") -> Callable[[], str]:
    def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return result

    return attempt


def test_the_loop_counts_and_waits_retry_after_without_a_budget_up_to_its_cap(clock: FakeClock) -> None:
    stats = RequestStats()
    failures = [
        TransientFailure("HTTP 429", status_code=429, retry_after="9999"),
        TransientFailure("HTTP 503"),
    ]
    loop = retrying(NO_JITTER, label="svc GET /x", counters=stats, sleep=clock.sleep)

    assert loop(fail_with(failures)) == "done"
    assert clock.sleeps == [MAX_RETRY_AFTER_S, 1.0]  # the capped Retry-After, then backoff for attempt 2
    assert (stats.retries, stats.rate_limits_hit, stats.rate_limit_wait_s) == (2, 1, MAX_RETRY_AFTER_S)


def test_the_loop_gives_up_when_retry_after_does_not_fit_its_budget(clock: FakeClock) -> None:
    stats = RequestStats()
    budget = RetryBudget(clock() + 60, "its 60s deadline", clock)
    failures = [TransientFailure("HTTP 429", status_code=429, retry_after="120")]
    loop = retrying(NO_JITTER, label="svc GET /x", counters=stats, sleep=clock.sleep, budget=budget)

    with pytest.raises(TransientUpstreamError, match=r"Retry-After asks for 120s, more than the 60s") as info:
        loop(fail_with(failures))
    assert info.value.status_code == 429
    assert clock.sleeps == []
    assert (stats.retries, stats.rate_limits_hit) == (0, 1)


def test_the_async_loop_is_the_same_policy() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> str:
        failures = [TransientFailure("HTTP 503", status_code=503), TransientFailure("HTTP 502")]
        async for attempt in async_retrying(NO_JITTER, label="svc GET /x", counters=stats, sleep=sleep):
            with attempt:
                return fail_with(failures)() + f" after {attempt.retry_state.attempt_number}"
        raise AssertionError("unreachable")

    stats = RequestStats()
    assert asyncio.run(go()) == "done after 3"
    assert slept == [0.5, 1.0]
    assert stats.retries == 2


def test_the_async_loop_gives_up_after_its_attempts_with_the_cause() -> None:
    async def sleep(seconds: float) -> None:
        return None

    async def go() -> None:
        policy = RetryPolicy(max_attempts=2, jitter=False)
        async for attempt in async_retrying(policy, label="svc GET /x", counters=RequestStats(), sleep=sleep):
            with attempt:
                try:
                    raise httpx.ReadTimeout("slow")
                except httpx.ReadTimeout as err:
                    raise TransientFailure("ReadTimeout: slow") from err

    with pytest.raises(TransientUpstreamError, match=r"svc GET /x still failing after 2 attempts") as info:
        asyncio.run(go())
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
