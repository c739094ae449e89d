"""The control API: request log, reset, truth, lot mutations."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from include.sandbox.dealers import find_dealer

pytestmark = pytest.mark.unit

Widget = Callable[..., httpx.Response]
RIVERSIDE = find_dealer("riverside-toyota")


def test_request_log_records_each_call_without_secrets(
    widget: Widget, cms: Callable[..., httpx.Response], client: httpx.Client
) -> None:
    widget("riverside-toyota", "auto-used", 100)
    widget("broken-arrow-chevrolet", "auto-new")
    cms({"limit": 100, "where[id][equals]": RIVERSIDE.id})
    client.post(
        "/data-api/v1/vehicles/batch",
        json={"vehicles": [], "source": "dealer.com", "dealer_id": RIVERSIDE.id},
        headers={"X-API-Key": "sandbox-data-api-key", "Idempotency-Key": "ik-1", "X-Dealer-ID": RIVERSIDE.id},
    )

    log = client.get("/_sandbox/requests").json()["requests"]
    assert [(e["service"], e["status"]) for e in log] == [
        ("dealer_com", 200),
        ("dealer_com", 500),
        ("cms", 200),
        ("data_api", 200),
    ]
    assert log[0]["n_vehicles"] == 65
    assert log[0]["detail"] == {"segment": "auto-used", "page_start": 100, "page_size": 100}
    assert log[3]["idempotency_key"] == "ik-1"
    assert "sandbox-data-api-key" not in str(log)
    assert "sandbox-cms-key" not in str(log)

    by_slug = client.get("/_sandbox/requests", params={"dealer": "riverside-toyota"}).json()["requests"]
    by_id = client.get("/_sandbox/requests", params={"dealer": RIVERSIDE.id}).json()["requests"]
    assert by_slug == by_id
    assert [e["service"] for e in by_slug] == ["dealer_com", "cms", "data_api"]
    only_cms = client.get("/_sandbox/requests", params={"service": "cms"}).json()["requests"]
    assert [e["service"] for e in only_cms] == ["cms"]


def test_truth_lists_the_lot_once_per_vin(client: httpx.Client) -> None:
    truth = client.get(f"/_sandbox/truth/dealer.com/{RIVERSIDE.id}").json()

    assert truth["dealer_id"] == RIVERSIDE.id
    assert truth["platform"] == "dealer.com"
    assert len(truth["vehicles"]) == len(truth["vins"]) == len(set(truth["vins"])) == 225
    assert truth["vins"] == sorted(v["vin"] for v in truth["vehicles"])
    assert truth["invalid_vins"] == []
    assert set(truth["segments"]) == {"auto-new", "auto-certified", "auto-used"}
    assert client.get("/_sandbox/truth/no-such-platform/bayview-auto-group").status_code == 404
    assert client.get("/_sandbox/truth/dealer.com/bayview-auto-group").status_code == 404  # not on dealer.com


def test_lot_mutations_show_on_the_site_and_reset_restores_them(widget: Widget, client: httpx.Client) -> None:
    seeded = client.get("/_sandbox/truth/dealer.com/evergreen-kia").json()
    sold = seeded["segments"]["auto-new"][0]
    repriced = seeded["segments"]["auto-used"][0]

    removed = client.post(
        "/_sandbox/lots/dealer.com/evergreen-kia/remove", json={"vins": [sold, "NOTONTHELOT"]}
    )
    assert removed.json() == {"removed": [sold], "remaining": 7}
    update = client.post(
        "/_sandbox/lots/dealer.com/evergreen-kia/update", json={"vin": repriced, "fields": {"price": 12345}}
    )
    assert update.json()["record"]["price"] == 12345
    added = client.post("/_sandbox/lots/dealer.com/evergreen-kia/add", json={"used": 2}).json()["added"]
    assert len(added) == 2

    used = {v["vin"]: v for v in widget("evergreen-kia", "auto-used").json()["inventory"]}
    assert used[repriced]["pricing"]["retailPrice"] == "$12,345"
    assert set(added) <= set(used)
    assert sold not in {v["vin"] for v in widget("evergreen-kia", "auto-new").json()["inventory"]}

    bad = client.post(
        "/_sandbox/lots/dealer.com/evergreen-kia/update", json={"vin": repriced, "fields": {"price": "cheap"}}
    )
    assert bad.status_code == 400

    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/truth/dealer.com/evergreen-kia").json() == seeded
    assert client.get("/_sandbox/requests").json()["requests"] == []


def test_reset_clears_the_data_api_and_overrides(client: httpx.Client) -> None:
    headers = {"X-API-Key": "sandbox-data-api-key", "Idempotency-Key": "k", "X-Dealer-ID": "d"}
    body = {"vehicles": [{"vin": "1HGCM82633A004352", "make": "Honda"}], "source": "cobalt", "dealer_id": "d"}
    client.post("/data-api/v1/vehicles/batch", json=body, headers=headers)
    client.put("/_sandbox/data-api/reject-vins", json={"vins": ["1HGCM82633A004352"]})
    client.put("/_sandbox/faults/broken-arrow-chevrolet", json={})

    client.post("/_sandbox/reset")

    assert client.get("/_sandbox/data-api/vehicles").json() == {"vehicles": []}
    assert client.get("/_sandbox/data-api/stats").json()["batch_calls"] == 0
    replay = client.post("/data-api/v1/vehicles/batch", json=body, headers=headers)
    assert replay.json()["errors"] == []  # reject list cleared, idempotency cache cleared
    assert "Idempotent-Replayed" not in replay.headers
    assert client.get("/_sandbox/faults").json()["faults"]["broken-arrow-chevrolet"] == {"status_code": 500}


def test_health(client: httpx.Client) -> None:
    assert client.get("/_sandbox/health").json() == {"ok": True}
