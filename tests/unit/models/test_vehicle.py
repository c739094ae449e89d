"""The canonical Vehicle: validation, the Data API shape, round trips and the content hash."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.normalize import Condition
from od_scheduler.models.vehicle import (
    HASH_FIELDS,
    HASH_VERSION,
    Vehicle,
    make_vehicle,
)

pytestmark = pytest.mark.unit

FIELDS: dict[str, Any] = {
    "vin": "1HGCM82633A004352",
    "dealer_id": "00000000-0000-0000-0000-000000000042",
    "source": "dealer.com",
    "stock_number": "H4352",
    "condition": "used",
    "year": 2003,
    "make": "Honda",
    "model": "Accord",
    "trim": "EX V6",
    "body_style": "Sedan",
    "drivetrain": "FWD",
    "transmission": "Automatic",
    "fuel_type": "Gasoline",
    "engine": "3.0L V6",
    "exterior_color": "Silver",
    "interior_color": "Black",
    "mileage": 123456,
    "price": Decimal("5999.50"),
    "msrp": Decimal("26700"),
    "images": ["https://img.test/1.jpg", "https://img.test/2.jpg"],
    "detail_url": "https://www.dealer.test/used/Honda/2003-Honda-Accord.htm",
    "description": "One owner.",
    "in_stock_since": date(2025, 2, 3),
    "source_updated_at": datetime(2025, 2, 4, 5, 6, 7, tzinfo=UTC),
}

#: Pinned: if this changes, every stored fingerprint changes and every vehicle is re-sent once.
EXPECTED_HASH = "3d47d10e27f28edd074979b84bd10260dfbfb78da6f7a3861a4c4767739ba946"


def test_field_list_is_the_canonical_one() -> None:
    assert list(Vehicle.model_fields) == list(FIELDS)


def test_to_api_is_json_safe_and_complete() -> None:
    api = Vehicle(**FIELDS).to_api()
    assert list(api) == list(FIELDS)
    assert api["price"] == 5999.5
    assert api["msrp"] == 26700.0
    assert api["condition"] == "used"
    assert api["in_stock_since"] == "2025-02-03"
    assert api["source_updated_at"] == "2025-02-04T05:06:07Z"
    assert json.loads(json.dumps(api)) == api
    sparse = Vehicle(vin=FIELDS["vin"], dealer_id="d", source="cobalt").to_api()
    assert sparse["price"] is None
    assert sparse["images"] == []
    assert all(sparse[k] is None for k in FIELDS if k not in ("vin", "dealer_id", "source", "images"))


def test_from_api_round_trips_through_json() -> None:
    vehicle = Vehicle(**FIELDS)
    line = json.dumps(vehicle.to_api())
    again = Vehicle.from_api(json.loads(line))
    assert again == vehicle
    assert again.price == Decimal("5999.50")
    assert again.content_hash() == vehicle.content_hash()


def test_content_hash_is_pinned() -> None:
    assert HASH_VERSION == 1
    assert Vehicle(**FIELDS).content_hash() == EXPECTED_HASH


def test_content_hash_tracks_content_not_timestamps() -> None:
    base = Vehicle(**FIELDS)
    assert Vehicle(**{**FIELDS, "price": "$5,999.5"}).content_hash() == base.content_hash()
    assert Vehicle(**{**FIELDS, "price": Decimal("5899.50")}).content_hash() != base.content_hash()
    assert Vehicle(**{**FIELDS, "images": FIELDS["images"][::-1]}).content_hash() != base.content_hash()
    restamped = Vehicle(**{**FIELDS, "source_updated_at": datetime(2030, 1, 1, tzinfo=UTC)})
    assert restamped.content_hash() == base.content_hash()


def test_every_field_is_hashed_or_deliberately_not() -> None:
    """A new model field must be a conscious choice: hashing it changes every fingerprint."""
    assert set(Vehicle.model_fields) - set(HASH_FIELDS) == {"source_updated_at"}
    assert set(HASH_FIELDS) <= set(Vehicle.model_fields)


def test_canonicalization() -> None:
    v = Vehicle(
        vin=" 1hgcm82633a004352 ",
        dealer_id=" d1 ",
        source="homenet",
        stock_number="  ",
        make=" Honda ",
        condition="Certified Pre-Owned",
        year="2003",
        mileage="12,345",
        price="0",
        msrp="$0",
        images=["https://img.test/1.jpg", "https://img.test/1.jpg"],
        source_updated_at="2025-01-01T00:00:00+01:00",
    )
    assert v.vin == "1HGCM82633A004352"
    assert v.dealer_id == "d1"
    assert v.stock_number is None
    assert v.make == "Honda"
    assert v.condition is Condition.CERTIFIED
    assert v.year == 2003
    assert v.mileage == 12345
    assert v.price is None
    assert v.msrp is None
    assert v.images == ["https://img.test/1.jpg"]
    assert v.source_updated_at == datetime(2024, 12, 31, 23, 0, tzinfo=UTC)


def test_frozen_and_strict_about_unknown_fields() -> None:
    vehicle = Vehicle(**FIELDS)
    with pytest.raises(ValidationError):
        vehicle.price = Decimal(1)  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Vehicle(**FIELDS, colour="red")


def test_dealer_and_source_are_required() -> None:
    for field in ("dealer_id", "source"):
        with pytest.raises(ValidationError, match=field):
            Vehicle(**{**FIELDS, field: "  "})


def test_invalid_vin_is_rejected_by_the_model() -> None:
    with pytest.raises(ValidationError) as info:
        Vehicle(**{**FIELDS, "vin": "1HGCM82633A004353"})
    assert info.value.errors()[0]["type"] == "invalid_vin_check_digit"


def test_pre_1981_vehicle_keeps_its_short_vin() -> None:
    v = Vehicle(vin="F10GCR12345", dealer_id="d", source="cobalt", year=1975)
    assert v.vin == "F10GCR12345"


@pytest.mark.parametrize(
    ("vin", "reason"),
    [
        (None, "missing_vin"),
        ("", "missing_vin"),
        ("1HGCM82633A00435", "invalid_vin_length"),
        ("1HGCM82633AO04352", "invalid_vin_charset"),
        ("1HGCM82633A004353", "invalid_vin_check_digit"),
    ],
)
def test_make_vehicle_rejects_bad_vins_with_their_reason(vin: str | None, reason: str) -> None:
    with pytest.raises(RecordRejected) as info:
        make_vehicle(**{**FIELDS, "vin": vin, "year": "not a year"})  # the VIN is reported first
    assert info.value.reason == reason
    assert info.value.ref == (vin or FIELDS["stock_number"])


def test_bad_optional_fields_become_unknown_with_warnings_not_rejections() -> None:
    vehicle = make_vehicle(
        **{**FIELDS, "images": ["/relative.jpg", "https://img.example.com/a.jpg"], "year": 1850}
    )
    assert vehicle.year is None
    assert vehicle.images == ["https://img.example.com/a.jpg"]
    assert vehicle.warnings == ("implausible_year", "invalid_image_url")
    assert "warnings" not in vehicle.to_api()


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"price": "$1"}, "price", "implausible_price"),
        ({"msrp": 9_999_999}, "msrp", "implausible_msrp"),
        ({"mileage": 9_999_999}, "mileage", "implausible_mileage"),
        ({"mileage": "0", "condition": "used"}, "mileage", "zero_mileage_used"),
        ({"year": 2099}, "year", "implausible_year"),
        ({"detail_url": "javascript:void(0)"}, "detail_url", "invalid_detail_url"),
        ({"condition": "Demo"}, "condition", "invalid_condition"),
        ({"source_updated_at": "yesterday"}, "source_updated_at", "invalid_source_updated_at"),
    ],
)
def test_each_implausible_value_is_nulled_with_its_reason(fields: dict, field: str, code: str) -> None:
    vehicle = make_vehicle(**{**FIELDS, **fields})
    assert getattr(vehicle, field) is None
    assert code in vehicle.warnings


def test_zero_miles_on_a_new_car_is_true() -> None:
    vehicle = make_vehicle(**{**FIELDS, "mileage": 0, "condition": "new"})
    assert vehicle.mileage == 0
    assert vehicle.warnings == ()


def test_an_unusable_identity_is_still_an_invalid_record() -> None:
    with pytest.raises(RecordRejected) as info:
        make_vehicle(**{**FIELDS, "dealer_id": None})
    assert info.value.reason == "invalid_record"
    assert info.value.ref == FIELDS["vin"]


def test_make_vehicle_returns_the_vehicle() -> None:
    assert make_vehicle(**FIELDS) == Vehicle(**FIELDS)


def _same_vehicle(a: Vehicle, b: Vehicle) -> None:
    """Equal field for field, in type and text (``Decimal("1.50") == Decimal("1.5")``, but not as text)."""
    assert a == b
    for name in Vehicle.model_fields:
        x, y = getattr(a, name), getattr(b, name)
        assert (type(x), str(x), repr(x)) == (type(y), str(y), repr(y)), name
    assert a.model_fields_set == b.model_fields_set
    assert a.__pydantic_private__ == b.__pydantic_private__
    assert a.__pydantic_extra__ == b.__pydantic_extra__
    assert a.warnings == b.warnings == ()
    assert a.content_hash() == b.content_hash()
    assert a.to_api() == b.to_api()
    assert a.to_api_json() == b.to_api_json()


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"condition": None, "price": None, "msrp": None, "in_stock_since": None, "source_updated_at": None},
        {"price": Decimal("0.01"), "msrp": Decimal("4999999.99"), "condition": "certified"},
        {"description": 'é "quoted" \\ back\nslash \u2028 \x01', "images": []},
        {
            "year": 1975,
            "vin": "ABC123",
            "source_updated_at": datetime(2025, 2, 4, 5, 6, 7, 123456, tzinfo=UTC),
        },
    ],
)
def test_a_verified_staged_line_builds_the_vehicle_validation_builds(over: dict[str, Any]) -> None:
    vehicle = Vehicle(**{**FIELDS, **over})
    for line in (json.dumps(vehicle.to_api(), sort_keys=True).encode(), vehicle.to_api_json()):
        _same_vehicle(Vehicle.from_verified_staging(json.loads(line)), Vehicle.from_api(json.loads(line)))


def test_to_api_json_holds_the_to_api_values() -> None:
    vehicle = Vehicle(**{**FIELDS, "description": 'Grün ✓ "1" \\'})
    assert json.loads(vehicle.to_api_json()) == vehicle.to_api()


def test_a_staged_line_of_another_shape_is_validated_in_full() -> None:
    api = Vehicle(**FIELDS).to_api()
    older = {k: v for k, v in api.items() if k != "description"}  # staged by a release without the field
    assert Vehicle.from_verified_staging(older).description is None
    with pytest.raises(ValidationError, match="extra"):
        Vehicle.from_verified_staging({**api, "colour": "red"})
    with pytest.raises(ValidationError, match="in_stock_since"):
        Vehicle.from_verified_staging({**api, "in_stock_since": 20250203.5})


def _content_hash_before_issue_12(vehicle: Vehicle) -> str:
    import hashlib

    values = []
    for name in HASH_FIELDS:
        value = getattr(vehicle, name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, date):
            value = value.isoformat()
        values.append([name, value])
    payload = json.dumps([HASH_VERSION, values], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def test_content_hash_matches_the_old_computation_on_random_text() -> None:
    import random

    rng = random.Random(12)
    alphabet = "aZ09 \"\\/\n\t\x00\x1f\x7f\u00e9\u2028\u2029\U0001f697<>&'"
    for _ in range(2_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        vehicle = Vehicle(
            **{**FIELDS, "description": text or None, "trim": text[::-1] or None, "images": [], "price": None}
        )
        assert vehicle.content_hash() == _content_hash_before_issue_12(vehicle)
    assert (
        Vehicle(**FIELDS).content_hash() == _content_hash_before_issue_12(Vehicle(**FIELDS)) == EXPECTED_HASH
    )


def test_content_hash_matches_the_old_computation_on_arbitrary_values() -> None:
    """Any text hypothesis makes (Unicode, controls, quotes), any amount, date, mileage and condition."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    text = st.one_of(st.none(), st.text(max_size=40))
    amount = st.one_of(st.none(), st.decimals(min_value=100, max_value=5_000_000, places=2))

    @settings(max_examples=500)
    @given(
        description=text,
        make=text,
        stock_number=text,
        price=amount,
        msrp=amount,
        mileage=st.one_of(st.none(), st.integers(0, 1_500_000)),
        in_stock_since=st.one_of(st.none(), st.dates()),
        condition=st.sampled_from([None, *Condition]),
        year=st.one_of(st.none(), st.integers(1981, 2026)),
    )
    def check(**over: Any) -> None:
        vehicle = Vehicle(**{**FIELDS, **over})
        assert vehicle.content_hash() == _content_hash_before_issue_12(vehicle)
        staged = Vehicle.from_verified_staging(json.loads(vehicle.to_api_json()))
        assert staged.content_hash() == _content_hash_before_issue_12(staged)

    check()


def test_canonical_fields_build_the_vehicle_validation_builds() -> None:
    """make_vehicle's shortcut (no pydantic-core when every value is already canonical) on arbitrary input:
    whenever it builds a vehicle, validation builds the same one, field for field, type for type."""
    from datetime import timedelta, timezone

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from od_scheduler.models.vehicle import _canonical_vehicle

    odd = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(), st.text(max_size=6))
    text = st.one_of(odd, st.text(max_size=12), st.sampled_from(["Honda", " Honda ", "", "  ", "é\x1f"]))
    urls = st.sampled_from(
        [
            "https://img.test/1.jpg",
            "https://img.test/2.jpg?w=1",
            "http://img.test/a b.jpg",
            "/relative.jpg",
            "javascript:alert(1)",
            "https://img.test/x.jpg#",
            " https://img.test/3.jpg",
            "https://img.test:99999/p.jpg",
            "https://[::1/x",
        ]
    )
    instants = st.datetimes(
        timezones=st.sampled_from([None, UTC, timezone.utc, timezone(timedelta(hours=-5))])  # noqa: UP017
    )
    strategies = {
        "vin": st.one_of(
            st.sampled_from(["1HGCM82633A004352", " 1hgcm82633a004352 ", "1HGCM82633A004353"]), odd
        ),
        "dealer_id": st.one_of(st.sampled_from(["d1", " d1 ", ""]), odd),
        "source": st.one_of(st.just("dealer.com"), odd),
        "stock_number": text,
        "make": text,
        "description": text,
        "condition": st.one_of(st.sampled_from([*Condition, "Used", "CPO", "demo"]), odd),
        "year": st.one_of(st.integers(1800, 2200), st.sampled_from(["2003", "0", 0, 1975]), odd),
        "mileage": st.one_of(st.integers(-5, 10**19), st.sampled_from(["12,000", "1.5"]), odd),
        "price": st.one_of(st.decimals(allow_nan=True), st.sampled_from(["$5,999", "0", 12.345]), odd),
        "msrp": st.one_of(st.decimals(places=2, min_value=-1, max_value=10**7), odd),
        "images": st.one_of(st.lists(urls, max_size=4), st.lists(urls).map(tuple), odd),
        "detail_url": st.one_of(urls, odd),
        "in_stock_since": st.one_of(st.dates(), st.datetimes(), st.just("2025-02-03"), odd),
        "source_updated_at": st.one_of(instants, st.just("2025-02-04T05:06:07Z"), odd),
        "colour": st.just("red"),
    }
    built = 0

    @settings(max_examples=1_500, deadline=None)
    @given(st.data())
    def check(draw: Any) -> None:
        nonlocal built
        names = draw.draw(st.lists(st.sampled_from(sorted(strategies)), max_size=4, unique=True))
        data = {**FIELDS, **{name: draw.draw(strategies[name], label=name) for name in names}}
        for name in draw.draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=3, unique=True)):
            del data[name]  # absent: the field's default
        fast = _canonical_vehicle(data, ())
        if fast is None:
            return
        built += 1
        _same_vehicle(fast, Vehicle(**data))

    check()
    assert built > 100  # the shortcut is taken, not only ever refused
    assert _canonical_vehicle(FIELDS, ("w",)) is not None
