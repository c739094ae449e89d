"""Dealer lots: platform-neutral source vehicles, generated deterministically, and mutable lots.

A ``SourceVehicle`` is what the sandbox knows is on the lot, in plain types (``None`` = the
source does not know). Platform modules render it into their wire format, adding the dirt their
vendor is known for (``"0"`` prices, malformed dates, relative links). Generation uses
``random.Random(f"{seed}:{slug}")`` only, iterates nothing unordered, and takes dates from a fixed
reference day, so the same seed gives byte-identical lots on every start.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from include.sandbox.catalog import MAKES, MAKES_BY_NAME, Make, Model
from include.sandbox.dealers import DealerSpec
from include.sandbox.vin import make_vin

REFERENCE_DATE = date(2025, 11, 14)
"""'Today' for generated data: lot arrival dates and vehicle ages count back from it."""

CONDITIONS = ("new", "used", "certified")


@dataclass(frozen=True)
class SourceVehicle:
    """One vehicle on a dealer's lot, platform-neutral. Prices in whole dollars, ``None`` = unknown."""

    vin: str
    uuid: str
    stock_number: str
    condition: str
    year: int
    make: str
    model: str
    trim: str
    body_style: str
    drivetrain: str
    transmission: str
    engine: str
    engine_size: str
    fuel_type: str
    city_mpg: int | None
    highway_mpg: int | None
    exterior_color: str
    interior_color: str
    mileage: int
    price: int | None
    msrp: int | None
    sale_price: int | None
    image_count: int
    in_stock_since: date | None
    status: str

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict (dates as ISO strings)."""
        record = dataclasses.asdict(self)
        record["in_stock_since"] = self.in_stock_since.isoformat() if self.in_stock_since else None
        return record


MUTABLE_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(SourceVehicle)) - {
    "vin",
    "uuid",
}
"""Fields ``POST /_sandbox/lots/.../update`` may change."""

_INT_FIELDS = frozenset({"year", "mileage", "image_count"})
_OPTIONAL_INT_FIELDS = frozenset({"price", "msrp", "sale_price", "city_mpg", "highway_mpg"})


def _coerce(name: str, value: Any) -> Any:
    """Check one updated field's type; dates come as ISO strings."""
    if name == "in_stock_since":
        return None if value is None else date.fromisoformat(value)
    if name in _INT_FIELDS or (name in _OPTIONAL_INT_FIELDS and value is not None):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"field {name} must be an integer, got {value!r}")
        return value
    if name in _OPTIONAL_INT_FIELDS:
        return None
    if not isinstance(value, str):
        raise ValueError(f"field {name} must be a string, got {value!r}")
    return value


class Lot:
    """A dealer's lot on one platform: ordered vehicles, mutable through the control API."""

    def __init__(self, vehicles: Iterable[SourceVehicle]) -> None:
        self._vehicles: dict[str, SourceVehicle] = {v.vin: v for v in vehicles}
        self.additions = 0
        #: When each vehicle last changed through ``update``/``add`` (seeded ones are absent): what a
        #: source's last-modified field (HomeNet's ``datelastmodified``) reports.
        self.changed_at: dict[str, datetime] = {}
        self._removed: dict[str, SourceVehicle] = {}

    def __len__(self) -> int:
        return len(self._vehicles)

    def __contains__(self, vin: object) -> bool:
        return vin in self._vehicles

    @property
    def vehicles(self) -> list[SourceVehicle]:
        return list(self._vehicles.values())

    def vins(self) -> list[str]:
        return list(self._vehicles)

    def of_condition(self, *conditions: str) -> list[SourceVehicle]:
        return [v for v in self._vehicles.values() if v.condition in conditions]

    def remove(self, vins: Iterable[str]) -> list[str]:
        """Remove VINs (sold); returns those that were on the lot. ``restore`` can bring them back."""
        removed = []
        for vin in vins:
            vehicle = self._vehicles.pop(vin, None)
            if vehicle is not None:
                self._removed[vin] = vehicle
                removed.append(vin)
        return removed

    def revin(self, vin: str, new_vin: str) -> SourceVehicle:
        """Re-key a vehicle under another VIN, as a source with a data-entry typo would (no validation:
        the point is to serve bad VINs); ``KeyError`` for an unknown VIN."""
        vehicle = dataclasses.replace(self._vehicles.pop(vin), vin=new_vin)
        self._vehicles[new_vin] = vehicle
        self.changed_at[new_vin] = datetime.now(UTC)
        return vehicle

    def restore(self, vins: Iterable[str]) -> list[str]:
        """Put removed VINs back on the lot (a sale fell through); returns those restored."""
        restored = []
        for vin in vins:
            vehicle = self._removed.pop(vin, None)
            if vehicle is not None:
                self._vehicles[vin] = vehicle
                self.changed_at[vin] = datetime.now(UTC)
                restored.append(vin)
        return restored

    def update(self, vin: str, fields: dict[str, Any]) -> SourceVehicle:
        """Change fields of one vehicle; ``KeyError`` for an unknown VIN, ``ValueError`` for a bad field."""
        current = self._vehicles[vin]
        bad = sorted(set(fields) - MUTABLE_FIELDS)
        if bad:
            raise ValueError(f"fields {bad} cannot be updated; allowed: {sorted(MUTABLE_FIELDS)}")
        changes = {name: _coerce(name, value) for name, value in fields.items()}
        updated = dataclasses.replace(current, **changes)
        self._vehicles[vin] = updated
        self.changed_at[vin] = datetime.now(UTC)
        return updated

    def add(self, vehicles: Sequence[SourceVehicle]) -> None:
        for vehicle in vehicles:
            self._vehicles[vehicle.vin] = vehicle
            self.changed_at[vehicle.vin] = datetime.now(UTC)
        self.additions += 1


def generate_lot(
    dealer: DealerSpec, seed: int, taken_vins: set[str], *, salt: str = ""
) -> tuple[SourceVehicle, ...]:
    """The dealer's seeded lot (``salt`` gives further deterministic batches, e.g. new arrivals).

    ``taken_vins`` holds every VIN generated so far in this sandbox; it is extended in place so
    VINs stay unique across dealers.
    """
    return generate_vehicles(
        dealer,
        random.Random(f"{seed}:{dealer.slug}{salt}"),
        taken_vins,
        new=dealer.lot.new,
        used=dealer.lot.used,
        certified=dealer.lot.certified,
    )


def generate_vehicles(
    dealer: DealerSpec,
    rng: random.Random,
    taken_vins: set[str],
    *,
    new: int,
    used: int,
    certified: int,
) -> tuple[SourceVehicle, ...]:
    """``new``/``used``/``certified`` vehicles for ``dealer``, shuffled into lot order."""
    conditions = ["new"] * new + ["certified"] * certified + ["used"] * used
    vehicles = [_vehicle(dealer, rng, condition, taken_vins) for condition in conditions]
    rng.shuffle(vehicles)
    return tuple(vehicles)


def _vehicle(dealer: DealerSpec, rng: random.Random, condition: str, taken_vins: set[str]) -> SourceVehicle:
    make = _pick_make(dealer, rng, condition)
    year, model = _pick_year_and_model(make, rng, condition)
    trim, base_msrp = rng.choice(model.trims)
    powertrain = rng.choice(model.powertrains)
    age = max(REFERENCE_DATE.year + 1 - year, 0)
    # Window-sticker price for that model year: about 2.5 % cheaper per year back, plus options.
    msrp = int(base_msrp * 0.975 ** max(age - 1, 0)) + rng.randrange(0, 3200)

    if condition == "new":
        mileage = rng.choice((0, 0, 3, 5, 8, 12, 15, 22, 31))
        price: int | None = msrp - int(msrp * rng.uniform(0.0, 0.07))
    else:
        yearly = rng.uniform(7_000, 15_500)
        mileage = max(int(yearly * max(age - 0.5, 0.4)) + rng.randrange(0, 999), 1_500)
        if condition == "certified":
            mileage = min(mileage, 74_000 + rng.randrange(0, 999))
        # Roughly 15 % off in the first year, 9 % a year after that, less for high mileage.
        depreciation = 0.85 * 0.91 ** max(age - 1, 0)
        mileage_factor = max(1 - mileage / 500_000, 0.5)
        value = msrp * depreciation * mileage_factor * (1.06 if condition == "certified" else 1.0)
        price = max(int(value), 4_000)
        if rng.random() < 0.5:
            price = (price // 500) * 500 + 495 if price % 1000 < 500 else (price // 1000) * 1000 + 995

    listed_msrp: int | None = msrp if condition == "new" else None
    roll = rng.random()
    if roll < 0.04:
        price = None
    elif condition == "new" and roll > 0.98:
        listed_msrp = None
    sale_price = price if price is not None and rng.random() < 0.3 else None

    vin = _unique_vin(rng, model, year, taken_vins)
    in_stock: date | None = REFERENCE_DATE - timedelta(days=rng.randrange(0, 150))
    if rng.random() < 0.03:
        in_stock = None
    image_count = 0 if rng.random() < 0.05 else rng.randrange(4, 25)
    status = "IN_TRANSIT" if condition == "new" and rng.random() < 0.06 else "LIVE"
    prefix = {"new": make.name[0], "used": "U", "certified": "C"}[condition]
    stock_number = f"{prefix}{rng.randrange(10_000, 99_999)}"
    if condition != "new" and rng.random() < 0.3:
        stock_number += rng.choice("ABC")

    return SourceVehicle(
        vin=vin,
        uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        stock_number=stock_number,
        condition=condition,
        year=year,
        make=make.name,
        model=model.name,
        trim=trim,
        body_style=model.body,
        drivetrain=rng.choice(model.drivelines),
        transmission=powertrain.transmission,
        engine=powertrain.engine,
        engine_size=powertrain.engine_size,
        fuel_type=powertrain.fuel,
        city_mpg=powertrain.city or None,
        highway_mpg=powertrain.highway or None,
        exterior_color=rng.choice(make.exterior),
        interior_color=rng.choice(make.interior),
        mileage=mileage,
        price=price,
        msrp=listed_msrp,
        sale_price=sale_price,
        image_count=image_count,
        in_stock_since=in_stock,
        status=status,
    )


def _pick_make(dealer: DealerSpec, rng: random.Random, condition: str) -> Make:
    franchise = [MAKES_BY_NAME[name] for name in dealer.makes]
    if condition == "new":
        if not franchise:
            raise ValueError(f"dealer {dealer.slug} has no franchise make, so it cannot stock new vehicles")
        return rng.choice(franchise)
    if condition == "certified" and franchise:
        return rng.choice(franchise)  # certified pre-owned is a franchise programme
    if franchise and rng.random() < 0.6:
        return rng.choice(franchise)
    return rng.choice(MAKES)


def _pick_year_and_model(make: Make, rng: random.Random, condition: str) -> tuple[int, Model]:
    if condition == "new":
        years, weights = [2025, 2026], [4, 6]
    elif condition == "certified":
        years = list(range(2019, 2026))
        weights = [1, 2, 3, 4, 5, 5, 3]
    else:
        years = list(range(2015, 2025))
        weights = [1, 1, 2, 2, 3, 3, 4, 5, 5, 4]
    for _ in range(20):
        year = rng.choices(years, weights)[0]
        models = [m for m in make.models if m.first_year <= year <= m.last_year]
        if models:
            return year, rng.choice(models)
    raise ValueError(f"no {make.name} model for a {condition} vehicle in {years}")


def _unique_vin(rng: random.Random, model: Model, year: int, taken_vins: set[str]) -> str:
    while True:
        vin = make_vin(rng, rng.choice(model.wmis), year)
        if vin not in taken_vins:
            taken_vins.add(vin)
            return vin
