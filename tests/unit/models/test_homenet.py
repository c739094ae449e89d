"""The HomeNet raw vehicle (all strings, "0"/"" = unknown) and its mapping to the canonical Vehicle."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.homenet import HomenetVehicle, detail_page_url
from od_scheduler.models.normalize import Condition

pytestmark = pytest.mark.unit


def transformer_vehicle(**over: Any) -> dict[str, Any]:
    """A vehicle as the SOAP transformer sends it (docs/contracts.md §2): every value a string."""
    data: dict[str, Any] = {
        "vin": "5FNYF6H58NB012345",
        "stock_number": "U28833C",
        "type": "Used",
        "year": "2022",
        "make": "Honda",
        "model": "Pilot",
        "trim": "EX-L",
        "msrp": "0",
        "price": "33495",
        "extcolor": "Platinum White Pearl",
        "intcolor": "Gray",
        "miles": "28114",
        "description": "2022 Honda Pilot EX-L, one owner, clean history.",
        "fueltype": "Gasoline Fuel",
        "transmission": "9-Speed Automatic",
        "drivetype": "AWD",
        "bodystyle": "Sport Utility",
        "certified": "True",
        "dealerurl": "www.lakesidehonda.com",
        "imagelist": [
            "https://imagesdl.homenetinc.com/inventoryphotos/HN-20417/5FNYF6H58NB012345/ip/1.jpg",
            "https://imagesdl.homenetinc.com/inventoryphotos/HN-20417/5FNYF6H58NB012345/ip/2.jpg",
        ],
        "datelastmodified": "2025-11-10T14:22:05Z",
        "someFutureField": "ignored",
    }
    data.update(over)
    return data


def to_vehicle(**over: Any) -> Any:
    return HomenetVehicle.model_validate(transformer_vehicle(**over)).to_vehicle(dealer_id="d-1")


def test_full_mapping_parses_every_string() -> None:
    v = to_vehicle()
    assert (v.vin, v.dealer_id, v.source, v.stock_number) == (
        "5FNYF6H58NB012345",
        "d-1",
        "homenet",
        "U28833C",
    )
    assert v.condition is Condition.CERTIFIED
    assert v.year == 2022
    assert (v.make, v.model, v.trim, v.body_style) == ("Honda", "Pilot", "EX-L", "Sport Utility")
    assert (v.drivetrain, v.transmission, v.fuel_type) == ("AWD", "9-Speed Automatic", "Gasoline Fuel")
    assert (v.exterior_color, v.interior_color) == ("Platinum White Pearl", "Gray")
    assert v.mileage == 28114
    assert v.price == Decimal("33495.00")
    assert v.msrp is None  # "0"
    assert v.images == [
        "https://imagesdl.homenetinc.com/inventoryphotos/HN-20417/5FNYF6H58NB012345/ip/1.jpg",
        "https://imagesdl.homenetinc.com/inventoryphotos/HN-20417/5FNYF6H58NB012345/ip/2.jpg",
    ]
    assert v.detail_url is None  # the bare dealer domain is not a detail page
    assert v.description == "2022 Honda Pilot EX-L, one owner, clean history."
    assert v.source_updated_at == datetime(2025, 11, 10, 14, 22, 5, tzinfo=UTC)
    assert v.engine is None
    assert v.in_stock_since is None


@pytest.mark.parametrize("unknown", ["0", "", "  ", " 0 "])
def test_zero_and_empty_mean_unknown_for_every_field(unknown: str) -> None:
    fields = ("stock_number", "year", "trim", "msrp", "price", "extcolor", "intcolor", "miles")
    fields += ("description", "fueltype", "transmission", "drivetype", "bodystyle", "dealerurl")
    v = to_vehicle(**dict.fromkeys(fields, unknown), datelastmodified=unknown)
    assert v.stock_number is None
    assert v.year is None
    assert v.trim is None
    assert (v.price, v.msrp, v.mileage) == (None, None, None)
    assert (v.exterior_color, v.interior_color, v.description) == (None, None, None)
    assert (v.fuel_type, v.transmission, v.drivetrain, v.body_style) == (None, None, None, None)
    assert v.detail_url is None
    assert v.source_updated_at is None


def test_a_new_car_showing_zero_miles_has_unknown_mileage_not_zero() -> None:
    assert to_vehicle(type="New", certified="False", miles="0").mileage is None


@pytest.mark.parametrize(
    ("type_", "certified", "expected"),
    [
        ("New", "False", Condition.NEW),
        ("Used", "False", Condition.USED),
        ("Used", "True", Condition.CERTIFIED),
        ("used", "true", Condition.CERTIFIED),
        ("New", "True", Condition.NEW),  # a new car cannot be certified pre-owned
        ("", "True", Condition.CERTIFIED),
        ("", "False", None),
        ("Demo", "0", None),
    ],
)
def test_condition_from_type_and_certified(type_: str, certified: str, expected: Condition | None) -> None:
    assert to_vehicle(type=type_, certified=certified).condition == expected


@pytest.mark.parametrize(
    ("dealerurl", "expected"),
    [
        ("www.lakesidehonda.com", None),
        ("lakesidehonda.com", None),
        ("http://www.lakesidehonda.com/", None),
        ("https://www.lakesidehonda.com", None),
        ("https://www.lakesidehonda.com/?utm_source=homenet", None),
        ("https://www.lakesidehonda.com//", None),
        (
            "https://www.lakesidehonda.com/used/2022-Honda-Pilot-5FNYF6H58NB012345.htm",
            "https://www.lakesidehonda.com/used/2022-Honda-Pilot-5FNYF6H58NB012345.htm",
        ),
        (
            "www.lakesidehonda.com/used/2022-Honda-Pilot-5FNYF6H58NB012345.htm",
            "https://www.lakesidehonda.com/used/2022-Honda-Pilot-5FNYF6H58NB012345.htm",
        ),
        ("javascript:alert(1)", None),
        ("mailto:sales@lakesidehonda.com", None),
        ("0", None),
        (None, None),
    ],
)
def test_dealerurl_is_a_detail_url_only_when_it_is_a_page(
    dealerurl: str | None, expected: str | None
) -> None:
    assert detail_page_url(dealerurl) == expected
    assert to_vehicle(dealerurl=dealerurl).detail_url == expected


def test_money_and_miles_tolerate_formatting() -> None:
    v = to_vehicle(price="$33,495.00", msrp="41,280", miles="28,114 mi")
    assert (v.price, v.msrp, v.mileage) == (Decimal("33495.00"), Decimal("41280.00"), 28114)


def test_images_drop_blanks_relative_links_and_duplicates() -> None:
    images = [
        "https://img.test/1.jpg",
        "",
        "0",
        "/relative.jpg",
        "https://img.test/1.jpg",
        "//cdn.test/2.jpg",
    ]
    assert to_vehicle(imagelist=images).images == ["https://img.test/1.jpg", "https://cdn.test/2.jpg"]
    assert to_vehicle(imagelist="https://img.test/1.jpg|https://img.test/2.jpg").images == [
        "https://img.test/1.jpg",
        "https://img.test/2.jpg",
    ]
    assert to_vehicle(imagelist=None).images == []


def test_naive_modified_time_is_utc_and_garbage_is_unknown() -> None:
    assert to_vehicle(datelastmodified="2025-11-10T14:22:05").source_updated_at == datetime(
        2025, 11, 10, 14, 22, 5, tzinfo=UTC
    )
    assert to_vehicle(datelastmodified="11/10/2025 2:22 PM").source_updated_at is None


@pytest.mark.parametrize(
    ("vin", "reason"),
    [("", "missing_vin"), ("0", "missing_vin"), ("5FNYF6H58NB01234", "invalid_vin_length")],
)
def test_bad_vin_is_rejected_with_reason(vin: str, reason: str) -> None:
    with pytest.raises(RecordRejected) as info:
        to_vehicle(vin=vin)
    assert info.value.reason == reason


def test_raw_model_accepts_anything_the_transformer_sends() -> None:
    raw = HomenetVehicle.model_validate({"vin": 12345, "year": 2021, "imagelist": {"a": 1}, "price": None})
    assert raw.vin == "12345"
    assert raw.year == "2021"
    assert raw.imagelist == []
    assert raw.price is None
