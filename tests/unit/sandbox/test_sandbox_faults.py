"""Fault profiles fire exactly as documented, on counters, and can be replaced and restored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx
import pytest

from include.sandbox.faults import FaultProfile

pytestmark = pytest.mark.unit

Widget = Callable[..., httpx.Response]


def _statuses(widget: Widget, slug: str, n: int) -> list[int]:
    return [widget(slug, "auto-new").status_code for _ in range(n)]


def test_broken_site_always_fails_with_500(widget: Widget) -> None:
    assert _statuses(widget, "broken-arrow-chevrolet", 5) == [500] * 5


def test_rush_hour_site_sends_429_bursts_with_retry_after_in_both_forms(widget: Widget) -> None:
    responses = [widget("rush-hour-hyundai", "auto-new") for _ in range(12)]

    assert [r.status_code for r in responses] == [429, 429] + [200] * 8 + [429, 429]
    assert responses[0].headers["Retry-After"] == "1"
    retry_at = parsedate_to_datetime(responses[1].headers["Retry-After"])
    assert 0 < retry_at.timestamp() - time.time() <= 2.5
    assert responses[10].headers["Retry-After"] == "1"


def test_flaky_site_fails_every_fourth_request_with_503(widget: Widget) -> None:
    assert _statuses(widget, "flaky-ridge-kia", 8) == [200, 200, 200, 503, 200, 200, 200, 503]


def test_glitch_site_truncates_only_its_first_response(widget: Widget) -> None:
    first = widget("glitch-point-mazda", "auto-used")
    second = widget("glitch-point-mazda", "auto-used")

    assert first.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(first.content)
    assert second.json()["pageInfo"]["totalCount"] == 26
    assert first.content == second.content[: len(first.content)]


def test_slow_site_answers_after_its_latency(widget: Widget) -> None:
    started = time.monotonic()
    response = widget("slow-creek-subaru", "auto-new")

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


def test_clean_sites_never_fail(widget: Widget) -> None:
    assert _statuses(widget, "riverside-toyota", 12) == [200] * 12


def test_a_profile_can_be_replaced_and_restored(widget: Widget, client: httpx.Client) -> None:
    put = client.put("/_sandbox/faults/riverside-toyota", json={"every_nth": 2, "status_code": 502})
    assert put.status_code == 200
    assert _statuses(widget, "riverside-toyota", 4) == [200, 502, 200, 502]

    client.delete("/_sandbox/faults/riverside-toyota")
    assert _statuses(widget, "riverside-toyota", 4) == [200] * 4

    client.put("/_sandbox/faults/flaky-ridge-kia", json={})
    assert _statuses(widget, "flaky-ridge-kia", 4) == [200] * 4
    client.delete("/_sandbox/faults/flaky-ridge-kia")  # back to the seeded profile, counter from zero
    assert _statuses(widget, "flaky-ridge-kia", 4) == [200, 200, 200, 503]


def test_dealer_targets_accept_id_or_slug_and_unknown_targets_are_404(client: httpx.Client) -> None:
    dealers = {d["slug"]: d for d in client.get("/_sandbox/dealers").json()["dealers"]}
    by_id = client.put(f"/_sandbox/faults/{dealers['summit-ford']['id']}", json={"latency_s": 0.01})

    assert by_id.json()["target"] == "summit-ford"
    assert client.get("/_sandbox/faults").json()["faults"]["summit-ford"] == {"latency_s": 0.01}
    assert client.put("/_sandbox/faults/nobody", json={}).status_code == 404
    assert client.put("/_sandbox/faults/cms", json={"every_n": 2}).status_code == 422


def test_service_targets_cms_and_data_api(client: httpx.Client) -> None:
    client.put("/_sandbox/faults/cms", json={"status_code": 503, "retry_after": "2"})
    cms = client.get("/cms/api/dealers", headers={"Authorization": "users API-Key sandbox-cms-key"})
    assert cms.status_code == 503
    assert cms.headers["Retry-After"] == "2"

    client.put("/_sandbox/faults/data_api", json={"first_n_of_every": [1, 3], "retry_after": "1"})
    headers = {"X-API-Key": "sandbox-data-api-key", "Idempotency-Key": "k", "X-Dealer-ID": "d"}
    body = {"vehicles": [], "source": "dealer.com", "dealer_id": "d"}
    statuses = [
        client.post("/data-api/v1/vehicles/batch", json=body, headers=headers).status_code for _ in range(4)
    ]
    assert statuses == [429, 200, 200, 429]


def test_fault_rules() -> None:
    burst = FaultProfile(first_n_of_every=(2, 10))
    assert [n for n in range(1, 31) if burst.fails(n)] == [1, 2, 11, 12, 21, 22]
    assert burst.failure_status() == 429
    assert FaultProfile(every_nth=3).failure_status() == 503
    assert not any(FaultProfile(latency_s=1).fails(n) for n in range(1, 10))
    with pytest.raises(ValueError, match="first_n_of_every"):
        FaultProfile(first_n_of_every=(3, 2))
