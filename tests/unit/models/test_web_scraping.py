"""Scraped Apify items and their mapping to the canonical Vehicle: noisy input, nothing invented."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.normalize import Condition
from od_scheduler.models.vin import check_digit
from od_scheduler.models.web_scraping import ApifyRun, ScrapedVehicle

pytestmark = pytest.mark.unit

DEALER = "dealer-1"
BASE = "https://www.hilltopusedcars.test/used-inventory/"
VIN = "1HGCM82633A004352"


def scraped(**over: Any) -> dict[str, Any]:
    """An item shaped like the dealer-inventory actor's output (docs/contracts.md §4), hidden field too."""
    data: dict[str, Any] = {
        "vin": VIN,
        "stockNumber": "U4352A",
        "condition": "Used",
        "year": 2003,
        "make": "Honda",
        "model": "Accord",
        "trim": "EX V6",
        "price": "$5,999",
        "mileage": "123,456 mi",
        "exteriorColor": "Satin Silver",
        "interiorColor": "Black",
        "bodyStyle": "Sedan",
        "drivetrain": "FWD",
        "transmission": "5-Speed Automatic",
        "fuelType": "Gasoline",
        "images": ["https://cdn.test/1.jpg", "/photos/U4352A/2.jpg", "javascript:void(0)"],
        "url": "/vehicle-details/2003-Honda-Accord-U4352A",
        "#debug": {"requestId": "abc"},
    }
    data.update(over)
    return data


def to_vehicle(**over: Any):
    return ScrapedVehicle.model_validate(scraped(**over)).to_vehicle(dealer_id=DEALER, base_url=BASE)


def rejected_reason(**over: Any) -> str:
    with pytest.raises(RecordRejected) as excinfo:
        to_vehicle(**over)
    return excinfo.value.reason


def test_a_clean_item_maps_every_field() -> None:
    v = to_vehicle()

    assert v.vin == VIN
    assert v.dealer_id == DEALER
    assert v.source == "web_scraping"
    assert v.stock_number == "U4352A"
    assert v.condition is Condition.USED
    assert (v.year, v.make, v.model, v.trim) == (2003, "Honda", "Accord", "EX V6")
    assert v.price == Decimal("5999.00")
    assert v.mileage == 123456
    assert (v.exterior_color, v.interior_color) == ("Satin Silver", "Black")
    assert (v.body_style, v.drivetrain, v.transmission, v.fuel_type) == (
        "Sedan",
        "FWD",
        "5-Speed Automatic",
        "Gasoline",
    )
    assert v.detail_url == "https://www.hilltopusedcars.test/vehicle-details/2003-Honda-Accord-U4352A"
    # relative images resolve against the detail page; a javascript: link is dropped, not repaired
    assert v.images == ["https://cdn.test/1.jpg", "https://www.hilltopusedcars.test/photos/U4352A/2.jpg"]


def test_what_the_page_does_not_say_stays_unknown() -> None:
    v = ScrapedVehicle.model_validate({"vin": VIN}).to_vehicle(dealer_id=DEALER)

    assert v.vin == VIN
    for name in ("stock_number", "condition", "year", "make", "price", "msrp", "mileage", "detail_url"):
        assert getattr(v, name) is None, name
    assert v.images == []


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (25995, Decimal("25995.00")),
        (25995.5, Decimal("25995.50")),
        ("$25,995", Decimal("25995.00")),
        ("$25,995.00", Decimal("25995.00")),
        (" 25995 ", Decimal("25995.00")),
        ("Call for Price", None),
        ("", None),
        (None, None),
        (0, None),
        ("$0", None),
    ],
)
def test_price_number_or_dollar_string(price: Any, expected: Decimal | None) -> None:
    assert to_vehicle(price=price).price == expected


@pytest.mark.parametrize(
    ("mileage", "expected"), [(34512, 34512), ("34,512 mi", 34512), ("34512", 34512), ("N/A", None)]
)
def test_mileage_number_or_text(mileage: Any, expected: int | None) -> None:
    assert to_vehicle(mileage=mileage).mileage == expected


@pytest.mark.parametrize(
    ("text", "condition"),
    [
        ("Used", Condition.USED),
        ("New", Condition.NEW),
        ("Certified Pre-Owned", Condition.CERTIFIED),
        ("Demo", None),
        (None, None),
    ],
)
def test_condition_from_the_page_text(text: str | None, condition: Condition | None) -> None:
    assert to_vehicle(condition=text).condition == condition


def test_year_as_text_is_read_and_nonsense_is_unknown() -> None:
    assert to_vehicle(year="2003").year == 2003
    assert to_vehicle(year="twenty").year is None


@pytest.mark.parametrize("vin", [None, "", "   "])
def test_items_without_a_vin_are_rejected_as_missing(vin: str | None) -> None:
    assert rejected_reason(vin=vin) == "missing_vin"


def test_an_item_without_a_vin_key_is_rejected_as_missing() -> None:
    item = scraped()
    del item["vin"]
    with pytest.raises(RecordRejected) as excinfo:
        ScrapedVehicle.model_validate(item).to_vehicle(dealer_id=DEALER, base_url=BASE)
    assert excinfo.value.reason == "missing_vin"
    assert excinfo.value.ref == "U4352A"  # the stock number names the record


def test_bad_vins_are_rejected_by_reason_never_repaired() -> None:
    wrong_digit = "0" if check_digit(VIN) != "0" else "1"
    assert rejected_reason(vin=VIN[:8] + wrong_digit + VIN[9:]) == "invalid_vin_check_digit"
    assert rejected_reason(vin=VIN[:16]) == "invalid_vin_length"
    assert rejected_reason(vin=VIN.replace("0", "O", 1)) == "invalid_vin_charset"


def test_vin_case_and_blanks_are_normalized() -> None:
    assert to_vehicle(vin=f"  {VIN.lower()} ").vin == VIN


def test_hidden_and_unknown_fields_are_ignored_and_odd_types_do_not_fail_the_item() -> None:
    v = to_vehicle(images="not a list", trim=["x"], extra={"a": 1})

    assert v.images == []
    assert v.trim is None


def test_apify_run_statuses() -> None:
    def run(status: str, **over: Any) -> ApifyRun:
        return ApifyRun.model_validate({"id": "r1", "status": status, "defaultDatasetId": "d1", **over})

    assert run("SUCCEEDED").succeeded
    assert run("SUCCEEDED").finished
    for status in ("FAILED", "TIMED-OUT", "ABORTED"):
        assert run(status).finished
        assert not run(status).succeeded
    for status in ("READY", "RUNNING", "TIMING-OUT", "ABORTING"):
        assert not run(status).finished
    failed = run("FAILED", statusMessage="exit code 1", startedAt="2026-01-01T09:00:00.000Z")
    assert failed.describe() == "run r1 FAILED (exit code 1)"
    assert failed.started_at is not None
    assert failed.started_at.year == 2026
    assert run("RUNNING").describe() == "run r1 RUNNING"
