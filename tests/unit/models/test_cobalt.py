"""The Cobalt feed row and its mapping to the canonical Vehicle ("$25,999.00" prices, "|" images, Type)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.cobalt import MALFORMED_ROW, CobaltVehicle, split_urls
from od_scheduler.models.normalize import Condition

pytestmark = pytest.mark.unit


def feed_row(**over: Any) -> dict[str, Any]:
    """One row as the CSV client hands it over: the contract's column names, text values."""
    data: dict[str, Any] = {
        "VIN": "1GCUYDED7NZ100001",
        "Stock": "C1001",
        "Type": "Certified",
        "Year": "2022",
        "Make": "Chevrolet",
        "Model": "Silverado 1500",
        "Trim": "LT Trail Boss, 4WD",
        "Body": "Crew Cab 5'8\" Box",
        "ExtColor": "Summit White",
        "IntColor": "Jet Black",
        "Miles": "34,512",
        "SellingPrice": "$41,999.00",
        "MSRP": "",
        "Transmission": "10-Speed Automatic",
        "Drivetrain": "4WD",
        "FuelType": "Gasoline Fuel",
        "ImageURLs": "https://cdn.cobalt.test/HERCHEV/1.jpg|https://cdn.cobalt.test/HERCHEV/2.jpg",
        "VDPURL": "https://www.heritagechevrolet.com/inventory/certified-2022-Chevrolet-Silverado-1500",
        "line": 2,
    }
    data.update(over)
    return data


def to_vehicle(**over: Any) -> Any:
    return CobaltVehicle.model_validate(feed_row(**over)).to_vehicle(dealer_id="d-9")


def test_full_mapping() -> None:
    v = to_vehicle()
    assert (v.vin, v.dealer_id, v.source, v.stock_number) == ("1GCUYDED7NZ100001", "d-9", "cobalt", "C1001")
    assert v.condition is Condition.CERTIFIED
    assert (v.year, v.make, v.model) == (2022, "Chevrolet", "Silverado 1500")
    assert v.trim == "LT Trail Boss, 4WD"  # the quoted comma is part of the value
    assert v.body_style == "Crew Cab 5'8\" Box"
    assert (v.exterior_color, v.interior_color) == ("Summit White", "Jet Black")
    assert v.mileage == 34512
    assert v.price == Decimal("41999.00")
    assert v.msrp is None
    assert (v.transmission, v.drivetrain, v.fuel_type) == ("10-Speed Automatic", "4WD", "Gasoline Fuel")
    assert v.images == ["https://cdn.cobalt.test/HERCHEV/1.jpg", "https://cdn.cobalt.test/HERCHEV/2.jpg"]
    assert (
        v.detail_url == "https://www.heritagechevrolet.com/inventory/certified-2022-Chevrolet-Silverado-1500"
    )
    assert (v.engine, v.description, v.in_stock_since, v.source_updated_at) == (None, None, None, None)


@pytest.mark.parametrize(
    ("type_", "expected"),
    [("New", Condition.NEW), ("Used", Condition.USED), ("Certified", Condition.CERTIFIED), ("", None)],
)
def test_type_is_the_condition(type_: str, expected: Condition | None) -> None:
    assert to_vehicle(Type=type_).condition == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$25,999.00", Decimal("25999.00")),
        ("25999", Decimal("25999.00")),
        ("$1,234,567.89", Decimal("1234567.89")),
        ("$0.00", None),
        ("", None),
        ("Call for price", None),
    ],
)
def test_prices(text: str, expected: Decimal | None) -> None:
    v = to_vehicle(SellingPrice=text, MSRP=text)
    assert (v.price, v.msrp) == (expected, expected)


def test_a_new_car_with_zero_miles_has_zero_miles() -> None:
    # Unlike HomeNet, the feed's "0" is a reading, and a new car's odometer can read 0.
    assert to_vehicle(Type="New", Miles="0").mileage == 0
    assert to_vehicle(Miles="").mileage is None


def test_images_split_on_pipes_dropping_blanks_relative_and_duplicates() -> None:
    urls = " https://img.test/1.jpg | |/rel.jpg|https://img.test/1.jpg|//cdn.test/2.jpg|"
    assert split_urls(urls) == [
        "https://img.test/1.jpg",
        "/rel.jpg",
        "https://img.test/1.jpg",
        "//cdn.test/2.jpg",
    ]
    assert to_vehicle(ImageURLs=urls).images == ["https://img.test/1.jpg", "https://cdn.test/2.jpg"]
    assert to_vehicle(ImageURLs="").images == []


def test_a_relative_or_unsafe_vdp_url_is_no_detail_url() -> None:
    assert to_vehicle(VDPURL="/inventory/x").detail_url is None
    assert to_vehicle(VDPURL="javascript:void(0)").detail_url is None
    assert to_vehicle(VDPURL="").detail_url is None


def test_a_malformed_row_is_rejected_not_ingested_with_shifted_columns() -> None:
    with pytest.raises(RecordRejected) as info:
        to_vehicle(row_problem="line 7: 19 fields, the header has 18")
    assert info.value.reason == MALFORMED_ROW
    assert info.value.ref == "1GCUYDED7NZ100001"
    assert "19 fields" in str(info.value)


@pytest.mark.parametrize(
    ("vin", "reason"),
    [
        ("", "missing_vin"),
        ("1GCUYDED5NZ100001", "invalid_vin_check_digit"),
        ("1GCUYDED7NZ10000I", "invalid_vin_charset"),
    ],
)
def test_bad_vin_is_rejected_with_reason(vin: str, reason: str) -> None:
    with pytest.raises(RecordRejected) as info:
        to_vehicle(VIN=vin)
    assert info.value.reason == reason


def test_missing_columns_are_unknown() -> None:
    raw = CobaltVehicle.model_validate({"VIN": "1GCUYDED7NZ100001"})
    v = raw.to_vehicle(dealer_id="d-9")
    assert (v.condition, v.price, v.images, v.detail_url, v.mileage) == (None, None, [], None, None)
