"""The DealerSocket raw vehicle and its mapping to the canonical Vehicle, from realistic XML."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from od_scheduler.clients.dealersocket import parse_xml, vehicle_record
from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.dealersocket import DealersocketVehicle
from od_scheduler.models.normalize import Condition

pytestmark = pytest.mark.unit

VEHICLE = b"""<?xml version="1.0" encoding="utf-8"?>
<Vehicle>
  <VIN>3MVDMBCM9PM512345</VIN>
  <StockNumber>M23456</StockNumber>
  <NewUsed>U</NewUsed>
  <Certified>true</Certified>
  <Year>2023</Year>
  <Make>Mazda</Make>
  <Model>CX-30</Model>
  <Trim>2.5 S Preferred</Trim>
  <Odometer>18422</Odometer>
  <Price type="MSRP">31870.00</Price>
  <Price type="Internet">27995.00</Price>
  <ExteriorColor>Soul Red Crystal Metallic</ExteriorColor>
  <InteriorColor>Black</InteriorColor>
  <Body>Sport Utility</Body>
  <Drivetrain>AWD</Drivetrain>
  <Transmission>6-Speed Automatic</Transmission>
  <Fuel>Gasoline Fuel</Fuel>
  <Photos>
    <Photo url="https://img.dealersocket.test/CSTMZD01/3MVDMBCM9PM512345/01.jpg?w=1024&amp;h=768"/>
    <Photo url="https://img.dealersocket.test/CSTMZD01/3MVDMBCM9PM512345/02.jpg?w=1024&amp;h=768"/>
    <Photo url="/relative/03.jpg"/>
    <Photo/>
  </Photos>
  <DetailUrl>https://www.coastalmazda.com/inventory/3MVDMBCM9PM512345/2023-Mazda-CX-30</DetailUrl>
  <DaysInStock>21</DaysInStock>
</Vehicle>
"""


def raw(document: bytes = VEHICLE, **over: Any) -> DealersocketVehicle:
    record = vehicle_record(parse_xml(document))
    record.update(over)
    return DealersocketVehicle.model_validate(record)


def test_full_mapping_from_xml() -> None:
    v = raw().to_vehicle(dealer_id="d-3")
    assert (v.vin, v.dealer_id, v.source, v.stock_number) == (
        "3MVDMBCM9PM512345",
        "d-3",
        "dealersocket",
        "M23456",
    )
    assert v.condition is Condition.CERTIFIED
    assert (v.year, v.make, v.model, v.trim) == (2023, "Mazda", "CX-30", "2.5 S Preferred")
    assert v.mileage == 18_422
    # the two Price elements by their type attribute, whatever their order
    assert (v.price, v.msrp) == (Decimal("27995.00"), Decimal("31870.00"))
    assert (v.body_style, v.drivetrain, v.transmission, v.fuel_type) == (
        "Sport Utility",
        "AWD",
        "6-Speed Automatic",
        "Gasoline Fuel",
    )
    assert (v.exterior_color, v.interior_color) == ("Soul Red Crystal Metallic", "Black")
    assert v.images == [  # &amp; decoded; relative and empty photos dropped
        "https://img.dealersocket.test/CSTMZD01/3MVDMBCM9PM512345/01.jpg?w=1024&h=768",
        "https://img.dealersocket.test/CSTMZD01/3MVDMBCM9PM512345/02.jpg?w=1024&h=768",
    ]
    assert v.detail_url == "https://www.coastalmazda.com/inventory/3MVDMBCM9PM512345/2023-Mazda-CX-30"


@pytest.mark.parametrize(
    ("new_used", "certified", "expected"),
    [
        ("N", "false", Condition.NEW),
        ("N", "true", Condition.NEW),  # a new car cannot be certified pre-owned
        ("U", "false", Condition.USED),
        ("U", "true", Condition.CERTIFIED),
        ("u", "TRUE", Condition.CERTIFIED),
        ("U", None, Condition.USED),
        ("New", "false", Condition.NEW),
        ("Used", "true", Condition.CERTIFIED),
        (None, "true", Condition.CERTIFIED),
        (None, None, None),
        ("X", "false", None),
    ],
)
def test_new_used_and_certified_make_the_condition(
    new_used: str | None, certified: str | None, expected: Condition | None
) -> None:
    vehicle = raw(NewUsed=new_used, Certified=certified).to_vehicle(dealer_id="d")
    assert vehicle.condition == expected


@pytest.mark.parametrize(
    ("prices", "price", "msrp"),
    [
        ([{"type": "Internet", "value": "0.00"}], None, None),
        (
            [{"type": "internet", "value": "$24,500"}, {"type": "msrp", "value": ""}],
            Decimal("24500.00"),
            None,
        ),
        (
            [{"type": "Internet", "value": "0"}, {"type": "Internet", "value": "23995"}],
            Decimal("23995.00"),
            None,
        ),
        ([{"type": None, "value": "19995"}, {"type": "Wholesale", "value": "17000"}], None, None),
        ([], None, None),
    ],
)
def test_prices_by_type_unknown_is_null(
    prices: list[Any], price: Decimal | None, msrp: Decimal | None
) -> None:
    vehicle = raw(Price=prices).to_vehicle(dealer_id="d")
    assert (vehicle.price, vehicle.msrp) == (price, msrp)


def test_missing_elements_are_unknown() -> None:
    document = b"<Vehicle><VIN>3MVDMBCM9PM512345</VIN><Make>Mazda</Make><Photos/><DetailUrl/></Vehicle>"
    v = raw(document).to_vehicle(dealer_id="d")
    assert (v.year, v.model, v.mileage, v.price, v.images, v.detail_url, v.condition) == (
        None,
        None,
        None,
        None,
        [],
        None,
        None,
    )


@pytest.mark.parametrize(
    ("vin", "reason"),
    [(None, "missing_vin"), ("  ", "missing_vin"), ("3MVDMBCM1PM512345", "invalid_vin_check_digit")],
)
def test_unusable_vins_are_rejected_with_their_reason(vin: str | None, reason: str) -> None:
    with pytest.raises(RecordRejected) as info:
        raw(VIN=vin).to_vehicle(dealer_id="d")
    assert info.value.reason == reason
