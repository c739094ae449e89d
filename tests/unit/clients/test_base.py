"""BaseClient: retry, Retry-After, permanent errors, redaction, rate limit, JSON handling, auth, paging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from od_scheduler.clients.base import (
    MAX_RETRY_AFTER_S,
    BaseClient,
    BearerAuth,
    HeaderAuth,
    OAuth2ClientCredentials,
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    PullReport,
    Redactor,
    RequestStats,
    RetryPolicy,
    StopReason,
    TokenBucket,
    is_transient,
    parse_retry_after,
)
from od_scheduler.exceptions import (
    ConfigError,
    PayloadError,
    PermanentUpstreamError,
    TransientUpstreamError,
)

from .conftest import FakeClock, Script

pytestmark = pytest.mark.unit

SECRET = "sk_live_9f8e7d6c5b4a"
NO_JITTER = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=30.0, jitter=False)


def make_client(script: Script, clock: FakeClock, **kw: object) -> BaseClient:
    kw.setdefault("retry", NO_JITTER)
    return BaseClient(
        base_url="https://api.test",
        service="testapi",
        transport=script.transport,
        sleep=clock.sleep,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


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


def test_request_stats_metrics() -> None:
    stats = RequestStats(
        api_calls=3, retries=1, rate_limits_hit=1, bytes_fetched=10, pages=2, rate_limit_wait_s=1.23456
    )
    assert stats.as_metrics() == {
        "api_calls": 3,
        "retries": 1,
        "rate_limits_hit": 1,
        "bytes_fetched": 10,
        "pages": 2,
        "rate_limit_wait_s": 1.235,
    }


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


def test_unexpected_success_status_and_redirects_are_permanent(clock: FakeClock) -> None:
    script = Script(httpx.Response(301, headers={"Location": "https://elsewhere.test/"}))
    client = make_client(script, clock)
    with pytest.raises(
        PermanentUpstreamError, match=r"redirect to https://elsewhere\.test/.*check the base URL"
    ):
        client.get_json("/things")
    assert len(script.requests) == 1


def test_ok_statuses_are_returned(clock: FakeClock) -> None:
    script = Script(httpx.Response(304))
    client = make_client(script, clock)
    assert client.request("GET", "/feed.csv", ok=(200, 304)).status_code == 304


def test_invalid_url_is_a_config_error(clock: FakeClock) -> None:
    client = make_client(Script(), clock)
    with pytest.raises(ConfigError, match="invalid URL"):
        client.request("GET", "http://[::1/x")


# -- JSON ------------------------------------------------------------------------------------------
def test_invalid_json_is_retried_once(clock: FakeClock) -> None:
    script = Script(httpx.Response(200, text='{"docs": [1, 2'), httpx.Response(200, json={"docs": [1, 2]}))
    client = make_client(script, clock)
    assert client.get_json("/things") == {"docs": [1, 2]}
    assert len(script.requests) == 2
    assert client.stats.retries == 1


def test_invalid_json_twice_is_a_payload_error_with_short_excerpt(clock: FakeClock) -> None:
    html = "<html><body>" + "Maintenance " * 100 + f"key={SECRET}</body></html>"
    script = Script(*[httpx.Response(200, text=html, headers={"Content-Type": "text/html"})] * 2)
    client = make_client(script, clock, secrets=[SECRET])
    with pytest.raises(PayloadError) as info:
        client.get_json("/things")
    message = str(info.value)
    assert "returned invalid JSON twice (content-type text/html): <html><body>Maintenance" in message
    excerpt = message.split(": ", 1)[1]
    assert len(excerpt) <= 200
    assert SECRET not in message


# -- redaction -------------------------------------------------------------------------------------
def test_redactor_masks_secrets_and_secret_params() -> None:
    redactor = Redactor(["abc", SECRET, "p@ss word/1"])
    assert redactor.redact(f"key {SECRET} here") == "key *** here"
    assert redactor.redact("abc stays: shorter than 4 chars") == "abc stays: shorter than 4 chars"
    assert redactor.redact("https://h/x?q=1&token=zzz&api_key=yyy&apikey=www#f") == (
        "https://h/x?q=1&token=***&api_key=***&apikey=***#f"
    )
    assert redactor.redact("https://u:pw@host.test/p") == "https://***@host.test/p"
    assert redactor.redact("pw=p%40ss%20word%2F1 or p%40ss+word%2F1") == "pw=*** or ***"
    redactor.add("late-secret")
    assert redactor.redact("a late-secret") == "a ***"


def test_secret_never_in_logs_or_errors(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """The key travels in a header; the server echoes it back in bodies, headers and a redirect."""
    echo = f"invalid key {SECRET}"
    script = Script(
        httpx.Response(503, text=echo),
        httpx.Response(429, text=echo, headers={"Retry-After": "1"}),
        httpx.ReadTimeout,
        httpx.Response(401, text=echo),
    )
    client = make_client(script, clock, auth=HeaderAuth("X-API-Key", SECRET), conn_id="od_testapi")
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentUpstreamError) as info:
        client.get_json("/things", params={"token": SECRET})
    assert script.requests[0].headers["X-API-Key"] == SECRET
    assert len(caplog.records) >= 3
    for record in caplog.records:
        if record.name.startswith("httpx"):
            continue  # httpx logs the raw URL; our clients never put secrets in URLs (docs/contracts.md)
        assert SECRET not in record.getMessage()
    assert SECRET not in str(info.value)
    assert "token=***" in str(info.value)
    assert "invalid key ***" in str(info.value)


def test_auth_reprs_hide_secrets() -> None:
    for auth in (
        BearerAuth(SECRET),
        HeaderAuth("Authorization", f"users API-Key {SECRET}"),
        OAuth2ClientCredentials("https://t.test/token", "cid", SECRET),
    ):
        assert SECRET not in repr(auth)


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


# -- OAuth2 client credentials ---------------------------------------------------------------------
def token_response(token: str, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})


def oauth(clock: FakeClock) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        "https://auth.test/token", "client-1", SECRET, "PublicAPI", clock=clock, expiry_margin=60
    )


def test_oauth_token_is_fetched_once_and_reused(clock: FakeClock) -> None:
    script = Script(token_response("tok-1"), httpx.Response(200, json=1), httpx.Response(200, json=2))
    client = make_client(script, clock, auth=oauth(clock))
    assert client.get_json("/a") == 1
    assert client.get_json("/b") == 2
    token_req, first, second = script.requests
    assert token_req.url == "https://auth.test/token"
    assert token_req.method == "POST"
    form = dict(httpx.QueryParams(token_req.content.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "client-1",
        "client_secret": SECRET,
        "scope": "PublicAPI",
    }
    assert first.headers["Authorization"] == second.headers["Authorization"] == "Bearer tok-1"
    assert client.stats.api_calls == 3


def test_oauth_token_is_refreshed_before_expiry(clock: FakeClock) -> None:
    script = Script(
        token_response("tok-1", expires_in=3600),
        httpx.Response(200, json=1),
        token_response("tok-2"),
        httpx.Response(200, json=2),
    )
    client = make_client(script, clock, auth=oauth(clock))
    client.get_json("/a")
    clock.now += 3600 - 60  # within the margin: treat as expired
    client.get_json("/b")
    assert script.requests[3].headers["Authorization"] == "Bearer tok-2"


def test_oauth_401_refreshes_once_then_succeeds(clock: FakeClock) -> None:
    seen: list[str] = []

    def answer(status: int) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers["Authorization"])
            return httpx.Response(status, json=1)

        return handler

    script = Script(token_response("old"), answer(401), token_response("new"), answer(200))
    client = make_client(script, clock, auth=oauth(clock))
    assert client.get_json("/a") == 1
    assert seen == ["Bearer old", "Bearer new"]
    assert client.stats.api_calls == 4


def test_oauth_second_401_fails(clock: FakeClock) -> None:
    script = Script(token_response("old"), httpx.Response(401), token_response("new"), httpx.Response(401))
    client = make_client(script, clock, auth=oauth(clock), conn_id="od_vinsolutions")
    with pytest.raises(PermanentUpstreamError, match=r"HTTP 401.*connection 'od_vinsolutions'"):
        client.get_json("/a")
    assert len(script.requests) == 4


def test_oauth_token_endpoint_refusal_is_permanent(clock: FakeClock) -> None:
    script = Script(httpx.Response(401, json={"error": "invalid_client", "echo": SECRET}))
    client = make_client(script, clock, auth=oauth(clock))
    with pytest.raises(
        PermanentUpstreamError, match=r"token request .* failed with HTTP 401.*client secret"
    ) as info:
        client.get_json("/a")
    assert SECRET not in str(info.value)
    assert len(script.requests) == 1


def test_oauth_token_endpoint_outage_is_retried(clock: FakeClock) -> None:
    script = Script(httpx.Response(503), token_response("tok"), httpx.Response(200, json=1))
    client = make_client(script, clock, auth=oauth(clock))
    assert client.get_json("/a") == 1
    assert clock.sleeps == [0.5]


def test_bearer_auth_sets_header(clock: FakeClock) -> None:
    script = Script(httpx.Response(200, json={}))
    make_client(script, clock, auth=BearerAuth("tkn-1234")).get_json("/a")
    assert script.requests[0].headers["Authorization"] == "Bearer tkn-1234"


# -- pagination ------------------------------------------------------------------------------------
def pages_of(items: list[int], size: int) -> dict[int, list[int]]:
    return {n + 1: items[i : i + size] for n, i in enumerate(range(0, len(items), size))}


def test_page_number_paginator_follows_has_next() -> None:
    data = pages_of(list(range(25)), 10)
    asked: list[int] = []

    def fetch(n: int) -> Page[int]:
        asked.append(n)
        return Page(items=data[n], total=25, has_next=n < 3)

    paginator = PageNumberPaginator(fetch)
    assert list(paginator) == list(range(25))
    assert asked == [1, 2, 3]
    assert paginator.stop_reason is StopReason.LAST_PAGE
    assert paginator.complete
    assert paginator.note is None


def test_page_number_paginator_max_pages_guard() -> None:
    paginator = PageNumberPaginator(lambda n: Page(items=[n], total=None, has_next=True), max_pages=4)
    assert list(paginator) == [1, 2, 3, 4]
    assert paginator.stop_reason is StopReason.MAX_PAGES
    assert not paginator.complete
    assert paginator.note == "stopped at the 4-page limit after 4 items"


def test_offset_paginator_advances_by_items_returned() -> None:
    items = list(range(250))
    asked: list[int] = []

    def fetch(offset: int) -> Page[int]:
        asked.append(offset)
        return Page(items=items[offset : offset + 100], total=250)  # server caps the page at 100

    paginator = OffsetPaginator(fetch, key=lambda i: i)
    assert list(paginator) == items
    assert asked == [0, 100, 200]
    assert paginator.stop_reason is StopReason.TOTAL_REACHED
    assert paginator.complete


def test_offset_paginator_stops_when_a_page_adds_nothing_new() -> None:
    paginator = OffsetPaginator(lambda offset: Page(items=list(range(100)), total=250), key=lambda i: i)
    assert list(paginator) == list(range(100))
    assert paginator.pages == 2
    assert paginator.stop_reason is StopReason.NO_NEW_ITEMS
    assert not paginator.complete
    assert paginator.note is not None
    assert "(the upstream ignores the paging parameter); stopped after 100 of 250 items" in paginator.note


def test_offset_paginator_dedupes_within_and_passes_keyless_items() -> None:
    pages = {0: [1, 2, None], 3: [2, 3], 5: [None, None]}
    paginator = OffsetPaginator(lambda offset: Page(items=pages.get(offset, []), total=7), key=lambda i: i)
    assert list(paginator) == [1, 2, None, 3, None, None]
    assert paginator.duplicates == 1
    assert paginator.stop_reason is StopReason.TOTAL_REACHED


def test_offset_paginator_empty_page() -> None:
    short = OffsetPaginator(lambda offset: Page(items=[] if offset else [1, 2], total=5))
    assert list(short) == [1, 2]
    assert short.stop_reason is StopReason.EMPTY_PAGE
    assert not short.complete  # total said 5, only 2 came
    unknown = OffsetPaginator(lambda offset: Page(items=[] if offset else [1, 2]))
    assert list(unknown) == [1, 2]
    assert unknown.complete
    nothing = OffsetPaginator(lambda offset: Page(items=[], total=0))
    assert list(nothing) == []
    assert nothing.complete


def test_pull_report_records_incomplete_parts() -> None:
    report = PullReport()
    good = OffsetPaginator(lambda o: Page(items=[1] if o == 0 else [], total=1))
    list(good)
    bad = OffsetPaginator(lambda o: Page(items=[1, 2], total=9), key=lambda i: i)
    list(bad)
    report.record("a", good, items=1)
    report.record("b", bad, items=2, duplicates=1)
    assert not report.complete
    assert report.notes == [f"b: {bad.note}"]
    assert report.as_dict()["segments"]["b"] == {
        "pages": 2,
        "items": 2,
        "duplicates": 1,  # the repeated page is a loop, not duplicates
        "total_count": 9,
        "stop_reason": "no_new_items",
        "complete": False,
    }
