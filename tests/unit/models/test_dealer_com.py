"""The Dealer.com raw vehicle and its mapping to the canonical Vehicle."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.dealer_com import DealerComVehicle
from od_scheduler.models.normalize import Condition

pytestmark = pytest.mark.unit

BASE = "https://www.acmemotors.test"


def widget_item(**over: Any) -> dict[str, Any]:
    """A vehicle shaped like the real widget's (docs/contracts.md §3), including noise fields."""
    data: dict[str, Any] = {
        "vin": "1HGCM82633A004352",
        "uuid": "a1b2c3",
        "stockNumber": "H4352",
        "year": 2003,
        "make": "Honda",
        "model": "Accord",
        "trim": "EX V6",
        "title": ["2003 Honda Accord", "EX V6 Sedan"],
        "link": "/used/Honda/2003-Honda-Accord-a1b2c3.htm",
        "type": "Used",
        "condition": "used",
        "certified": False,
        "status": "LIVE",
        "bodyStyle": "Sedan",
        "fuelType": "Gasoline",
        "inventoryDate": "02/03/2025",
        "trackingAttributes": [
            {"name": "driveLine", "value": "FWD"},
            {"name": "odometer", "value": "123,456"},
            {"name": "exteriorColor", "value": "Satin Silver"},
            {"name": "interiorColor", "value": "Black"},
            {"name": "transmission", "value": "5-Speed Automatic"},
            {"name": "engine", "value": "3.0L V6"},
            {"name": "engineSize", "value": "3.0L"},
            {"name": "cityFuelEconomy", "value": "21"},
        ],
        "pricing": {
            "retailPrice": "$7,495",
            "dprice": [
                {"typeClass": "msrp", "value": "$26,700"},
                {"typeClass": "internetPrice", "value": "$5,999"},
            ],
        },
        "trackingPricing": {"internetPrice": "5999", "salePrice": "0", "msrp": "26700"},
        "images": [
            {"uri": "https://pictures.test/1.jpg", "alt": "front"},
            {"uri": "//pictures.test/2.jpg", "alt": "side"},
            {"uri": "/static/3.jpg"},
            {"uri": "https://pictures.test/1.jpg"},
            {"uri": ""},
        ],
        "somethingNew": {"nested": True},
    }
    data.update(over)
    return data


def to_vehicle(**over: Any) -> Any:
    return DealerComVehicle.model_validate(widget_item(**over)).to_vehicle(dealer_id="d-1", base_url=BASE)


def test_full_mapping() -> None:
    v = to_vehicle()
    assert v.vin == "1HGCM82633A004352"
    assert v.dealer_id == "d-1"
    assert v.source == "dealer.com"
    assert v.stock_number == "H4352"
    assert v.condition is Condition.USED
    assert (v.year, v.make, v.model, v.trim, v.body_style, v.fuel_type) == (
        2003,
        "Honda",
        "Accord",
        "EX V6",
        "Sedan",
        "Gasoline",
    )
    assert v.drivetrain == "FWD"
    assert v.mileage == 123456
    assert v.exterior_color == "Satin Silver"
    assert v.interior_color == "Black"
    assert v.transmission == "5-Speed Automatic"
    assert v.engine == "3.0L V6"
    assert v.price == Decimal("5999.00")
    assert v.msrp == Decimal("26700.00")
    assert v.in_stock_since == date(2025, 2, 3)
    assert v.detail_url == f"{BASE}/used/Honda/2003-Honda-Accord-a1b2c3.htm"
    assert v.images == [
        "https://pictures.test/1.jpg",
        "https://pictures.test/2.jpg",
        f"{BASE}/static/3.jpg",
    ]
    assert v.description is None
    assert v.source_updated_at is None


def test_price_falls_back_through_the_sources() -> None:
    zero_dprice = {"dprice": [{"typeClass": "internetPrice", "value": "$0"}]}
    assert to_vehicle(pricing=zero_dprice).price == Decimal("5999.00")  # trackingPricing.internetPrice
    only_sale = {"internetPrice": "0", "salePrice": "$4,250", "msrp": "0"}
    v = to_vehicle(pricing=zero_dprice, trackingPricing=only_sale)
    assert v.price == Decimal("4250.00")
    assert v.msrp is None
    nothing = to_vehicle(pricing=None, trackingPricing={"internetPrice": "0", "salePrice": "0"})
    assert nothing.price is None
    assert nothing.msrp is None


def test_msrp_falls_back_to_tracking_pricing() -> None:
    v = to_vehicle(pricing={"dprice": [{"typeClass": "internetPrice", "value": "$5,000"}]})
    assert v.msrp == Decimal("26700.00")


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"certified": True, "type": "Used", "condition": "used"}, Condition.CERTIFIED),
        ({"certified": "true", "type": "Used", "condition": None}, Condition.CERTIFIED),
        ({"certified": False, "type": "New", "condition": "new"}, Condition.NEW),
        ({"certified": None, "type": "Certified Pre-Owned", "condition": None}, Condition.CERTIFIED),
        ({"certified": None, "type": "Used", "condition": None}, Condition.USED),
        ({"certified": None, "type": None, "condition": None}, None),
    ],
)
def test_condition(over: dict[str, Any], expected: Condition | None) -> None:
    assert to_vehicle(**over).condition == expected


def test_malformed_date_and_odd_values_are_unknown() -> None:
    v = to_vehicle(
        inventoryDate="00/24/2025",
        year="0",
        trackingAttributes=[
            {"name": "odometer", "value": "n/a"},
            "garbage",
            {"name": "engineSize", "value": "2.0L"},
        ],
        images="not-a-list",
        pricing="call us",
    )
    assert v.in_stock_since is None
    assert v.year is None
    assert v.mileage is None
    assert v.engine == "2.0L"
    assert v.images == []
    assert v.price == Decimal("5999.00")


def test_unsafe_detail_link_is_dropped() -> None:
    assert to_vehicle(link="javascript:void(0)").detail_url is None


@pytest.mark.parametrize(
    ("vin", "reason"),
    [(None, "missing_vin"), ("  ", "missing_vin"), ("1HGCM82633A004353", "invalid_vin_check_digit")],
)
def test_bad_vin_is_rejected_with_reason(vin: str | None, reason: str) -> None:
    with pytest.raises(RecordRejected) as info:
        to_vehicle(vin=vin)
    assert info.value.reason == reason
    assert info.value.ref == ("H4352" if reason == "missing_vin" else vin)  # stock number when no VIN


def test_raw_model_accepts_anything_a_site_sends() -> None:
    raw = DealerComVehicle.model_validate(
        {"vin": 12345, "year": {"y": 1}, "certified": "maybe", "trackingPricing": [], "images": None}
    )
    assert raw.vin == "12345"
    assert raw.year is None
    assert raw.certified is None
    assert raw.tracking_pricing is None
    assert raw.images == []
