"""DataApiClient: batch headers and body, per-VIN errors, 413/422 handling, retries, delist."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import httpx
import pytest

from od_scheduler.clients.data_api import MAX_BATCH_SIZE, BatchResult, DataApiClient, VinError
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import BatchTooLarge, PayloadError, PermanentUpstreamError
from od_scheduler.models.vehicle import Vehicle

from .conftest import FakeClock, Script

pytestmark = pytest.mark.unit

API_KEY = "od-data-key-77aa88bb"
DEALER = "00000000-0000-0000-0000-000000000042"


def vehicle(vin: str = "1HGCM82633A004352") -> dict[str, Any]:
    return Vehicle(
        vin=vin, dealer_id=DEALER, source="dealer.com", price=Decimal("25999.00"), year=2003, make="Honda"
    ).to_api()


def make_client(script: Script, clock: FakeClock) -> DataApiClient:
    return DataApiClient(
        base_url="https://data.test",
        api_key=API_KEY,
        transport=script.transport,
        sleep=clock.sleep,
        retry=RetryPolicy(max_attempts=3, jitter=False),
        conn_id="od_data_api",
    )


def batch_ok(processed: int, errors: list[dict[str, str]] | None = None) -> httpx.Response:
    body = {"success": True, "processed": processed, "dealer_id": DEALER, "source": "dealer.com"}
    return httpx.Response(200, json={**body, "errors": errors or []})


def test_post_batch_sends_headers_and_body_and_parses_vin_errors(clock: FakeClock) -> None:
    script = Script(batch_ok(1, [{"vin": "1M8GDM9AXKP042788", "error": "duplicate stock number"}]))
    vehicles = [vehicle(), vehicle("1M8GDM9AXKP042788")]
    result = make_client(script, clock).post_batch(
        dealer_id=DEALER, source="dealer.com", vehicles=vehicles, idempotency_key="idem-1"
    )
    assert result == BatchResult(
        success=True,
        processed=1,
        dealer_id=DEALER,
        source="dealer.com",
        errors=[VinError(vin="1M8GDM9AXKP042788", error="duplicate stock number")],
    )
    (request,) = script.requests
    assert request.method == "POST"
    assert request.url == "https://data.test/v1/vehicles/batch"
    assert request.headers["X-API-Key"] == API_KEY
    assert request.headers["X-Dealer-ID"] == DEALER
    assert request.headers["Idempotency-Key"] == "idem-1"
    body = json.loads(request.content)
    assert body == {"vehicles": vehicles, "source": "dealer.com", "dealer_id": DEALER}
    assert body["vehicles"][0]["price"] == 25999.0


def test_413_raises_batch_too_large_without_retry(clock: FakeClock) -> None:
    script = Script(httpx.Response(413, text="Payload Too Large"))
    with pytest.raises(BatchTooLarge, match="HTTP 413"):
        make_client(script, clock).post_batch(
            dealer_id=DEALER, source="homenet", vehicles=[vehicle()], idempotency_key="k"
        )
    assert len(script.requests) == 1


def test_oversized_batch_is_refused_before_sending(clock: FakeClock) -> None:
    script = Script()
    with pytest.raises(BatchTooLarge, match="at most 500"):
        make_client(script, clock).post_batch(
            dealer_id=DEALER,
            source="homenet",
            vehicles=[vehicle()] * (MAX_BATCH_SIZE + 1),
            idempotency_key="k",
        )
    assert script.requests == []


def test_422_idempotency_conflict_carries_the_api_message(clock: FakeClock) -> None:
    script = Script(httpx.Response(422, json={"error": "Idempotency-Key reused with a different body"}))
    with pytest.raises(PermanentUpstreamError) as info:
        make_client(script, clock).post_batch(
            dealer_id=DEALER, source="homenet", vehicles=[vehicle()], idempotency_key="k"
        )
    assert not isinstance(info.value, BatchTooLarge)
    assert info.value.status_code == 422
    assert "HTTP 422): Idempotency-Key reused with a different body." in str(info.value)
    assert len(script.requests) == 1


def test_429_is_retried_with_the_same_idempotency_key(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(
        httpx.Response(429, headers={"Retry-After": "2"}, text=f"slow down {API_KEY}"), batch_ok(1)
    )
    with caplog.at_level(logging.DEBUG):
        result = make_client(script, clock).post_batch(
            dealer_id=DEALER, source="homenet", vehicles=[vehicle()], idempotency_key="stable-key"
        )
    assert result.processed == 1
    assert clock.sleeps == [2.0]
    assert [r.headers["Idempotency-Key"] for r in script.requests] == ["stable-key", "stable-key"]
    assert script.requests[0].content == script.requests[1].content
    assert all(API_KEY not in r.getMessage() for r in caplog.records)


def test_unexpected_response_shape_is_a_payload_error(clock: FakeClock) -> None:
    script = Script(httpx.Response(200, json={"ok": 1}))
    with pytest.raises(PayloadError, match="unexpected response shape: success: Field required"):
        make_client(script, clock).post_batch(
            dealer_id=DEALER, source="homenet", vehicles=[], idempotency_key="k"
        )


def test_delist(clock: FakeClock) -> None:
    script = Script(httpx.Response(200, json={"success": True, "delisted": 2}))
    client = make_client(script, clock)
    result = client.delist(dealer_id=DEALER, source="cobalt", vins=["A" * 17, "B" * 17])
    assert (result.success, result.delisted) == (True, 2)
    (request,) = script.requests
    assert request.url.path == "/v1/vehicles/delist"
    assert request.headers["X-Dealer-ID"] == DEALER
    assert json.loads(request.content) == {
        "dealer_id": DEALER,
        "source": "cobalt",
        "vins": ["A" * 17, "B" * 17],
    }


def test_delist_nothing_sends_nothing(clock: FakeClock) -> None:
    script = Script()
    assert make_client(script, clock).delist(dealer_id=DEALER, source="cobalt", vins=[]).delisted == 0
    assert script.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"success": True},
        {"delisted": 1},
        {"success": True, "delisted": True},
        {"success": True, "delisted": -1},
    ],
    ids=["no count", "no success", "boolean count", "negative count"],
)
def test_a_delist_answer_without_success_and_count_is_a_payload_error(
    clock: FakeClock, body: dict[str, Any]
) -> None:
    script = Script(httpx.Response(200, json=body))
    with pytest.raises(PayloadError, match=r"unexpected response shape \(expected \{success, delisted\}\)"):
        make_client(script, clock).delist(dealer_id=DEALER, source="cobalt", vins=["X"])


@pytest.mark.parametrize(
    ("body", "level"),
    [({"success": False, "delisted": 0}, "WARNING"), ({"success": True, "delisted": 1}, "WARNING")],
    ids=["success false", "short count"],
)
def test_a_failed_or_short_delist_is_returned_as_the_api_said_and_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture, body: dict[str, Any], level: str
) -> None:
    script = Script(httpx.Response(200, json=body))
    with caplog.at_level("INFO", logger="od_scheduler.clients.data_api"):
        result = make_client(script, clock).delist(
            dealer_id=DEALER, source="cobalt", vins=["A" * 17, "B" * 17]
        )
    assert (result.success, result.delisted) == (body["success"], body["delisted"])
    assert len(script.requests) == 1, "a 200 answer is not retried"
    (record,) = [r for r in caplog.records if "delist" in r.getMessage()]
    assert record.levelname == level
    assert (
        f"2 asked, success={str(body['success']).lower()}, {body['delisted']} delisted" in record.getMessage()
    )


def test_success_false_is_returned_as_the_api_said_not_retried(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    body = {
        "success": False,
        "processed": 0,
        "dealer_id": DEALER,
        "source": "homenet",
        "errors": [{"vin": None, "error": "dealer is not onboarded"}],
    }
    script = Script(httpx.Response(200, json=body))
    with caplog.at_level(logging.INFO):
        result = make_client(script, clock).post_batch(
            dealer_id=DEALER, source="homenet", vehicles=[vehicle()], idempotency_key="k"
        )
    assert result.success is False
    assert result.errors == [VinError(vin=None, error="dealer is not onboarded")]
    assert len(script.requests) == 1
    (line,) = [r for r in caplog.records if "data_api batch" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert "success=false" in line.getMessage()


def test_a_negative_processed_count_is_a_payload_error(clock: FakeClock) -> None:
    script = Script(
        httpx.Response(200, json={"success": True, "processed": -1, "dealer_id": DEALER, "source": "x"})
    )
    with pytest.raises(PayloadError, match="processed"):
        make_client(script, clock).post_batch(
            dealer_id=DEALER, source="homenet", vehicles=[vehicle()], idempotency_key="k"
        )


def test_an_error_without_text_is_kept(clock: FakeClock) -> None:
    script = Script(batch_ok(0, [{"vin": "1M8GDM9AXKP042788"}]))  # type: ignore[list-item]
    result = make_client(script, clock).post_batch(
        dealer_id=DEALER, source="dealer.com", vehicles=[vehicle("1M8GDM9AXKP042788")], idempotency_key="k"
    )
    assert result.errors == [VinError(vin="1M8GDM9AXKP042788", error="")]
