"""HomenetClient against a fake SOAP transformer with the quirks and failures of docs/contracts.md §2."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from od_scheduler.clients.homenet import INTEGRATION_HEADER, TRANSFORM_PATH, HomenetClient, since_param
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import (
    ConfigError,
    PayloadError,
    PermanentUpstreamError,
    TransientUpstreamError,
)

from .conftest import FakeClock, Script

pytestmark = pytest.mark.unit

BASE = "https://transformer.test"
BEARER = "bearer-7f3a9c1e55"
DEALER_TOKEN = "hn-int-acme-5b8e2d71"
ROOFTOP = "HN-20417"


def wire(vin: str = "1HGCM82633A004352", **over: Any) -> dict[str, Any]:
    """A transformer vehicle: every field a string."""
    data: dict[str, Any] = {
        "vin": vin,
        "stock_number": "H4352",
        "type": "Used",
        "year": "2021",
        "make": "Honda",
        "model": "Accord",
        "trim": "EX",
        "msrp": "0",
        "price": "24995",
        "miles": "31,200",
        "certified": "False",
        "dealerurl": "www.acmehonda.test",
        "imagelist": ["https://img.test/1.jpg"],
        "datelastmodified": "2025-11-10T14:22:05Z",
    }
    data.update(over)
    return data


def ok(vehicles: list[dict[str, Any]], rooftop: str = ROOFTOP) -> httpx.Response:
    return httpx.Response(200, json={"rooftop": rooftop, "vehicles": vehicles})


def make_client(script: Script, clock: FakeClock, **kw: Any) -> HomenetClient:
    kw.setdefault("integration_token", DEALER_TOKEN)
    kw.setdefault("retry", RetryPolicy(max_attempts=3, jitter=False))
    return HomenetClient(
        base_url=BASE,
        token=BEARER,
        transport=script.transport,
        sleep=clock.sleep,
        clock=clock,
        conn_id="od_soap_transformer",
        **kw,
    )


def test_full_pull_sends_rooftop_bearer_and_the_dealers_own_token(clock: FakeClock) -> None:
    script = Script(ok([wire(), wire("5YJSA1E26HF000337", type="New")]))
    vehicles = list(make_client(script, clock).iter_inventory(ROOFTOP))

    assert [v.vin for v in vehicles] == ["1HGCM82633A004352", "5YJSA1E26HF000337"]
    (request,) = script.requests
    assert request.method == "GET"
    assert request.url.path == TRANSFORM_PATH
    assert dict(request.url.params) == {"rooftop": ROOFTOP}  # no updatedSince: the whole rooftop
    assert request.headers["Authorization"] == f"Bearer {BEARER}"
    assert request.headers[INTEGRATION_HEADER] == DEALER_TOKEN


def test_incremental_pull_sends_updated_since_in_utc(clock: FakeClock) -> None:
    script = Script(ok([wire()]))
    since = datetime(2026, 11, 28, 4, 0, tzinfo=timezone(timedelta(hours=-5)))
    list(make_client(script, clock).iter_inventory(ROOFTOP, updated_since=since))

    assert script.requests[0].url.params["updatedSince"] == "2026-11-28T09:00:00Z"
    assert since_param(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"  # naive = UTC


def test_all_string_fields_are_parsed_into_the_raw_model(clock: FakeClock) -> None:
    script = Script(ok([wire(year="2019", price="0", miles="", certified="True")]))
    (vehicle,) = make_client(script, clock).fetch_rooftop(ROOFTOP)

    assert vehicle.year == "2019"
    assert vehicle.price is None  # "0" means unknown
    assert vehicle.miles is None  # "" means unknown
    assert vehicle.certified == "True"
    assert vehicle.imagelist == ["https://img.test/1.jpg"]


def test_an_empty_rooftop_is_an_empty_pull(clock: FakeClock) -> None:
    assert list(make_client(Script(ok([])), clock).iter_inventory(ROOFTOP)) == []


def test_401_is_permanent_and_not_retried(clock: FakeClock) -> None:
    script = Script(httpx.Response(401, json={"error": "Unauthorized"}))
    with pytest.raises(PermanentUpstreamError) as info:
        make_client(script, clock).fetch_rooftop(ROOFTOP)

    assert info.value.status_code == 401
    assert len(script.requests) == 1
    assert clock.sleeps == []
    assert "od_soap_transformer" in str(info.value)  # where to fix the bearer token


def test_403_names_the_rooftop_and_where_the_token_came_from_not_the_token(clock: FakeClock) -> None:
    script = Script(httpx.Response(403, json={"error": f"token {DEALER_TOKEN} not valid for {ROOFTOP}"}))
    client = make_client(script, clock, credential_source="the dealer's homenet_config")
    with pytest.raises(PermanentUpstreamError) as info:
        client.fetch_rooftop(ROOFTOP)

    assert info.value.status_code == 403
    assert len(script.requests) == 1
    message = str(info.value)
    assert ROOFTOP in message
    assert "the dealer's homenet_config" in message
    assert DEALER_TOKEN not in message
    assert DEALER_TOKEN not in str(info.value.__cause__)  # the chained error is redacted too


def test_5xx_is_retried_then_succeeds(clock: FakeClock) -> None:
    script = Script(httpx.Response(503), httpx.Response(502), ok([wire()]))
    client = make_client(script, clock)
    assert len(list(client.iter_inventory(ROOFTOP))) == 1

    assert len(script.requests) == 3
    assert clock.sleeps == [0.5, 1.0]
    assert client.stats.retries == 2
    assert client.stats.api_calls == 3


def test_5xx_until_attempts_run_out_is_transient(clock: FakeClock) -> None:
    script = Script(httpx.Response(500), httpx.Response(500), httpx.Response(500))
    with pytest.raises(TransientUpstreamError, match="still failing after 3 attempts"):
        make_client(script, clock).fetch_rooftop(ROOFTOP)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"rooftop": ROOFTOP}, "no 'vehicles' list"),
        ({"rooftop": ROOFTOP, "vehicles": None}, "no 'vehicles' list"),
        ({"rooftop": ROOFTOP, "vehicles": {"vin": "x"}}, "no 'vehicles' list"),
        ({"Fault": {"faultstring": "Server was unable to process request"}}, r"no 'vehicles' list.*Fault"),
        ([{"vin": "1HGCM82633A004352"}], "expected a JSON object, got list"),
        ({"rooftop": ROOFTOP, "vehicles": ["1HGCM82633A004352"]}, "vehicle 0 is a str"),
        ({"rooftop": "HN-99999", "vehicles": []}, "answered for rooftop 'HN-99999'"),
    ],
)
def test_unusable_bodies_are_payload_errors(clock: FakeClock, body: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        make_client(Script(httpx.Response(200, json=body)), clock).fetch_rooftop(ROOFTOP)


def test_tokens_never_reach_a_log_line_or_an_error(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The transformer echoes both tokens back in error bodies; a retried, then refused pull logs nothing."""
    echo = f"bearer {BEARER} / integration {DEALER_TOKEN} rejected"
    script = Script(
        httpx.Response(503, text=echo),
        httpx.Response(429, text=echo, headers={"Retry-After": "1"}),
        httpx.ReadTimeout,
        httpx.Response(403, text=echo),
    )
    client = make_client(script, clock, retry=RetryPolicy(max_attempts=5, jitter=False))
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentUpstreamError) as info:
        list(client.iter_inventory(ROOFTOP, updated_since=datetime(2026, 11, 28, tzinfo=UTC)))

    assert script.requests[-1].headers[INTEGRATION_HEADER] == DEALER_TOKEN
    assert len([r for r in caplog.records if "retrying in" in r.getMessage()]) == 3
    for record in caplog.records:
        text = record.getMessage()
        assert BEARER not in text, record.name
        assert DEALER_TOKEN not in text, record.name
    for error in (info.value, info.value.__cause__):
        assert BEARER not in str(error)
        assert DEALER_TOKEN not in str(error)


def test_a_successful_pull_logs_what_it_did_without_tokens(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(Script(ok([wire()])), clock, credential_source="connection 'od_soap_transformer'")
    with caplog.at_level(logging.INFO, logger="od_scheduler.clients.homenet"):
        list(client.iter_inventory(ROOFTOP))

    lines = [r.getMessage() for r in caplog.records if r.name == "od_scheduler.clients.homenet"]
    assert lines == [
        f"homenet rooftop {ROOFTOP}: 1 vehicle(s) (full rooftop), "
        "integration token from connection 'od_soap_transformer'"
    ]


def test_a_client_without_an_integration_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="integration token"):
        HomenetClient(base_url=BASE, token=BEARER, integration_token="")
