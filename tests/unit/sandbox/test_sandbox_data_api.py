"""The sandbox's Data API: auth, batch limits, idempotency replay and conflict, per-VIN errors, delist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from include.sandbox.data_api import BAD_CHECK_DIGIT
from include.sandbox.dealers import find_dealer
from include.sandbox.vin import check_digit

pytestmark = pytest.mark.unit

DataApi = Callable[..., httpx.Response]
DEALER_ID = find_dealer("riverside-toyota").id


def valid_vin(draft: str) -> str:
    """``draft`` with its check digit (position 9) set right."""
    return draft[:8] + check_digit(draft) + draft[9:]


def wrong_check_digit(vin: str) -> str:
    return vin[:8] + ("0" if vin[8] != "0" else "1") + vin[9:]


VINS = [valid_vin(f"1HGCM8260{n}A00435{n}") for n in range(10)]


def vehicle(vin: str, **fields: Any) -> dict[str, Any]:
    return {
        "vin": vin,
        "dealer_id": DEALER_ID,
        "source": "dealer.com",
        "condition": "used",
        "year": 2021,
        "make": "Toyota",
        "model": "Camry",
        "price": "23995.00",
        **fields,
    }


def batch(*vehicles: dict[str, Any]) -> dict[str, Any]:
    return {"vehicles": list(vehicles), "source": "dealer.com", "dealer_id": DEALER_ID}


def stored(client: httpx.Client, include_delisted: bool = False) -> dict[str, dict[str, Any]]:
    params = {"dealer_id": DEALER_ID, "source": "dealer.com", "include_delisted": include_delisted}
    return {v["vin"]: v for v in client.get("/_sandbox/data-api/vehicles", params=params).json()["vehicles"]}


def test_batch_upserts_and_reports(data_api: DataApi, client: httpx.Client) -> None:
    response = data_api("/v1/vehicles/batch", batch(vehicle(VINS[0]), vehicle(VINS[1])))

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "processed": 2,
        "dealer_id": DEALER_ID,
        "source": "dealer.com",
        "errors": [],
    }
    data_api("/v1/vehicles/batch", batch(vehicle(VINS[0], price="21995.00")), idempotency_key="key-2")
    vehicles = stored(client)
    assert set(vehicles) == {VINS[0], VINS[1]}
    assert vehicles[VINS[0]]["price"] == "21995.00"
    assert vehicles[VINS[0]]["writes"] == 2
    assert vehicles[VINS[0]]["delisted"] is False


@pytest.mark.parametrize("api_key", [None, "wrong"])
def test_bad_or_missing_api_key_is_401(data_api: DataApi, client: httpx.Client, api_key: str | None) -> None:
    response = data_api("/v1/vehicles/batch", batch(vehicle(VINS[0])), api_key=api_key)
    assert response.status_code == 401
    assert stored(client) == {}


def test_missing_idempotency_key_is_400(data_api: DataApi) -> None:
    response = data_api("/v1/vehicles/batch", batch(vehicle(VINS[0])), idempotency_key=None)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]


def test_dealer_header_must_match_the_body(data_api: DataApi) -> None:
    response = data_api("/v1/vehicles/batch", batch(vehicle(VINS[0])), dealer_header="someone-else")
    assert response.status_code == 400


def test_more_than_500_vehicles_is_413(data_api: DataApi, client: httpx.Client) -> None:
    too_many = [vehicle(valid_vin(f"1HGCM82603A{n:06d}")) for n in range(501)]
    assert data_api("/v1/vehicles/batch", batch(*too_many)).status_code == 413
    assert data_api("/v1/vehicles/batch", batch(*too_many[:500]), idempotency_key="k500").status_code == 200
    assert len(stored(client)) == 500


def test_same_key_same_body_replays_the_first_response_once(data_api: DataApi, client: httpx.Client) -> None:
    body = batch(vehicle(VINS[0]), vehicle(VINS[1]))
    first = data_api("/v1/vehicles/batch", body, idempotency_key="run-1:batch-0")
    # Same content, different key order: the same body for the idempotency hash.
    replay = data_api("/v1/vehicles/batch", dict(reversed(body.items())), idempotency_key="run-1:batch-0")

    assert replay.status_code == 200
    assert replay.content == first.content
    assert replay.headers["Idempotent-Replayed"] == "true"
    stats = client.get("/_sandbox/data-api/stats").json()
    assert stats["batch_calls"] == 2
    assert stats["batches_applied"] == 1
    assert stats["batches_replayed"] == 1
    assert stats["vehicles_processed"] == 2
    assert stored(client)[VINS[0]]["writes"] == 1


def test_same_key_different_body_is_422(data_api: DataApi, client: httpx.Client) -> None:
    data_api("/v1/vehicles/batch", batch(vehicle(VINS[0])), idempotency_key="k")
    response = data_api("/v1/vehicles/batch", batch(vehicle(VINS[0], price="1.00")), idempotency_key="k")

    assert response.status_code == 422
    assert response.json() == {"error": "Idempotency-Key reuse with a different body"}
    assert stored(client)[VINS[0]]["price"] == "23995.00"


def test_per_vin_rejections_are_reported_and_not_stored(data_api: DataApi, client: httpx.Client) -> None:
    client.put("/_sandbox/data-api/reject-vins", json={"vins": [VINS[2]], "error": "VIN is on a recall hold"})
    response = data_api(
        "/v1/vehicles/batch",
        batch(
            vehicle(VINS[0]),
            vehicle("1HGCM82633A00435"),  # 16 characters
            vehicle("1HGCM82633I004352"),  # I is not a VIN character
            vehicle(VINS[1], make=None),
            vehicle(VINS[2]),
            vehicle(VINS[3], dealer_id="another-dealer"),
        ),
    ).json()

    assert response["processed"] == 1
    errors = {e["vin"]: e["error"] for e in response["errors"]}
    assert set(errors) == {"1HGCM82633A00435", "1HGCM82633I004352", VINS[1], VINS[2], VINS[3]}
    assert "17 characters" in errors["1HGCM82633A00435"]
    assert "make" in errors[VINS[1]]
    assert errors[VINS[2]] == "VIN is on a recall hold"
    assert set(stored(client)) == {VINS[0]}


def test_delist_then_relist(data_api: DataApi, client: httpx.Client) -> None:
    data_api("/v1/vehicles/batch", batch(vehicle(VINS[0]), vehicle(VINS[1])), idempotency_key="a")
    delist = {"dealer_id": DEALER_ID, "source": "dealer.com", "vins": [VINS[0], VINS[5]]}

    assert data_api("/v1/vehicles/delist", delist, idempotency_key=None).json() == {
        "success": True,
        "delisted": 1,
    }
    assert data_api("/v1/vehicles/delist", delist, idempotency_key=None).json()["delisted"] == 0
    assert set(stored(client)) == {VINS[1]}
    assert stored(client, include_delisted=True)[VINS[0]]["delisted"] is True

    data_api("/v1/vehicles/batch", batch(vehicle(VINS[0])), idempotency_key="b")
    assert set(stored(client)) == {VINS[0], VINS[1]}


def test_upsert_key_includes_the_source(data_api: DataApi, client: httpx.Client) -> None:
    data_api("/v1/vehicles/batch", batch(vehicle(VINS[0])), idempotency_key="a")
    other = {"vehicles": [vehicle(VINS[0], source="homenet")], "source": "homenet", "dealer_id": DEALER_ID}
    data_api("/v1/vehicles/batch", other, idempotency_key="b")

    everything = client.get("/_sandbox/data-api/vehicles").json()["vehicles"]
    assert sorted(v["source"] for v in everything) == ["dealer.com", "homenet"]


@pytest.mark.parametrize(
    ("vin", "year", "accepted"),
    [
        ("JT2BF22K1Y0123456", 2021, True),  # Japan, correct check digit
        ("JT2BF22K0Y0123456", 2021, False),  # Japan, wrong check digit: the US rule covers every WMI
        ("WBA3A5C57CF256651", 2021, True),  # Germany
        ("WBA3A5C50CF256651", 2021, False),
        ("KM8J33A45HU123456", None, False),  # Korea, wrong, year unknown: the rule applies
        ("WBA3A5C50CF256651", 1980, True),  # before 1981: exempt from the 17-character rules
        ("F10GCR12345", 1975, True),
        ("F10GCR12345", 1981, False),
    ],
)
def test_the_check_digit_is_required_for_every_wmi_from_1981(
    data_api: DataApi, client: httpx.Client, vin: str, year: int | None, accepted: bool
) -> None:
    response = data_api("/v1/vehicles/batch", batch(vehicle(vin, year=year))).json()
    assert response["processed"] == (1 if accepted else 0)
    assert (vin in stored(client)) is accepted
    if not accepted:
        (error,) = response["errors"]
        assert error["vin"] == vin
        assert "check digit" in error["error"] or "17 characters" in error["error"]


def test_a_wrong_check_digit_is_a_per_vin_rejection_with_its_own_reason(data_api: DataApi) -> None:
    bad = wrong_check_digit(VINS[4])
    response = data_api("/v1/vehicles/batch", batch(vehicle(VINS[0]), vehicle(bad))).json()
    assert response["success"] is True
    assert response["processed"] == 1
    assert response["errors"] == [{"vin": bad, "error": BAD_CHECK_DIGIT}]


def test_source_differing_from_the_batch_is_rejected(data_api: DataApi, client: httpx.Client) -> None:
    response = data_api("/v1/vehicles/batch", batch(vehicle(VINS[0], source="cobalt"))).json()
    assert response["processed"] == 0
    assert response["errors"] == [{"vin": VINS[0], "error": "source does not match the batch's source"}]
    assert stored(client) == {}
