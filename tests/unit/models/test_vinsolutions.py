"""The VinSolutions raw vehicle and its mapping to the canonical Vehicle."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.normalize import Condition
from od_scheduler.models.vinsolutions import VinsolutionsVehicle

pytestmark = pytest.mark.unit


def gateway_item(**over: Any) -> dict[str, Any]:
    """An item shaped like the gateway's (docs/contracts.md §5), with fields the contract does not name."""
    data: dict[str, Any] = {
        "vin": "5TDYZ3DCXLS031157",
        "stockNumber": "T31157",
        "newUsed": "Used",
        "year": 2020,
        "make": "Toyota",
        "model": "Sienna",
        "trim": "XLE",
        "mileage": 41_877,
        "pricing": {"internetPrice": 28_495, "msrp": None, "invoice": 26_000},
        "exteriorColor": "Predawn Gray Mica ",
        "interiorColor": "Black",
        "bodyStyle": "Minivan",
        "transmission": "8-Speed Automatic",
        "drivetrain": "FWD",
        "fuelType": "Gasoline",
        "photos": [
            {"url": "https://images.vinsolutions.test/21457/5TDYZ3DCXLS031157/1.jpg"},
            {"url": "https://images.vinsolutions.test/21457/5TDYZ3DCXLS031157/2.jpg"},
            {"url": "https://images.vinsolutions.test/21457/5TDYZ3DCXLS031157/1.jpg"},
        ],
        "vdpUrl": "https://www.metronissan.com/vehicle-details/2020-Toyota-Sienna-5TDYZ3DCXLS031157",
        "daysInStock": 12,
    }
    data.update(over)
    return data


def to_vehicle(**over: Any) -> Any:
    return VinsolutionsVehicle.model_validate(gateway_item(**over)).to_vehicle(dealer_id="d-9")


def test_full_mapping() -> None:
    v = to_vehicle()
    assert (v.vin, v.dealer_id, v.source, v.stock_number) == (
        "5TDYZ3DCXLS031157",
        "d-9",
        "vinsolutions",
        "T31157",
    )
    assert v.condition is Condition.USED
    assert (v.year, v.make, v.model, v.trim) == (2020, "Toyota", "Sienna", "XLE")
    assert (v.body_style, v.drivetrain, v.transmission, v.fuel_type) == (
        "Minivan",
        "FWD",
        "8-Speed Automatic",
        "Gasoline",
    )
    assert (v.exterior_color, v.interior_color) == ("Predawn Gray Mica", "Black")
    assert v.mileage == 41_877
    assert (v.price, v.msrp) == (Decimal("28495.00"), None)
    # the repeated lead photo is sent once, order kept
    assert v.images == [
        "https://images.vinsolutions.test/21457/5TDYZ3DCXLS031157/1.jpg",
        "https://images.vinsolutions.test/21457/5TDYZ3DCXLS031157/2.jpg",
    ]
    assert v.detail_url == "https://www.metronissan.com/vehicle-details/2020-Toyota-Sienna-5TDYZ3DCXLS031157"
    assert (v.engine, v.description, v.in_stock_since, v.source_updated_at) == (None, None, None, None)


@pytest.mark.parametrize(
    ("new_used", "expected"),
    [
        ("New", Condition.NEW),
        ("Used", Condition.USED),
        ("Certified", Condition.CERTIFIED),
        ("CERTIFIED PRE-OWNED", Condition.CERTIFIED),
        ("Demo", None),
        (None, None),
    ],
)
def test_new_used_is_the_condition(new_used: str | None, expected: Condition | None) -> None:
    assert to_vehicle(newUsed=new_used).condition == expected


@pytest.mark.parametrize("unknown", [0, None, "", "0", "$0", "Call for price"])
def test_unknown_prices_are_null(unknown: Any) -> None:
    v = to_vehicle(pricing={"internetPrice": unknown, "msrp": unknown})
    assert (v.price, v.msrp) == (None, None)


def test_prices_as_numbers_or_text() -> None:
    v = to_vehicle(pricing={"internetPrice": "$31,250.50", "msrp": 33_905.0})
    assert (v.price, v.msrp) == (Decimal("31250.50"), Decimal("33905.00"))
    assert to_vehicle(pricing=None).price is None
    assert to_vehicle(pricing="n/a").price is None


def test_numbers_may_arrive_as_text() -> None:
    v = to_vehicle(year="2020", mileage="41,877")
    assert (v.year, v.mileage) == (2020, 41_877)
    assert to_vehicle(mileage=None).mileage is None


def test_photos_keep_absolute_urls_only_and_bare_strings_count() -> None:
    photos = [
        "https://img.test/a.jpg",
        {"url": "/relative/b.jpg"},
        {"url": None},
        {"caption": "no url"},
        42,
        {"url": "https://img.test/c.jpg"},
    ]
    assert to_vehicle(photos=photos).images == ["https://img.test/a.jpg", "https://img.test/c.jpg"]
    assert to_vehicle(photos=None).images == []


def test_a_relative_or_missing_vdp_url_is_unknown() -> None:
    assert to_vehicle(vdpUrl="/vehicle-details/123").detail_url is None
    assert to_vehicle(vdpUrl=None).detail_url is None


@pytest.mark.parametrize(
    ("vin", "reason"),
    [(None, "missing_vin"), ("", "missing_vin"), ("5TDYZ3DC9LS031157", "invalid_vin_check_digit")],
)
def test_unusable_vins_are_rejected_with_their_reason(vin: str | None, reason: str) -> None:
    with pytest.raises(RecordRejected) as info:
        to_vehicle(vin=vin)
    assert info.value.reason == reason
