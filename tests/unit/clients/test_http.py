"""BaseClient: request stats, unexpected statuses, invalid URLs, JSON handling."""

from __future__ import annotations

import httpx
import pytest

from od_scheduler.clients.http import RequestStats
from od_scheduler.exceptions import (
    ConfigError,
    PayloadError,
    PermanentUpstreamError,
)

from .conftest import FakeClock, Script, make_client

pytestmark = pytest.mark.unit

SECRET = "sk_live_9f8e7d6c5b4a"


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
