"""Raw model of a DealerSocket ``<Vehicle>`` (docs/contracts.md §6) and its mapping to ``Vehicle``.

The client turns each ``<Vehicle>`` element into a dict keyed by element name (the XML's own spelling:
``VIN``, ``NewUsed``, ...), with ``Price`` as a list of ``{type, value}`` and ``Photos`` as the list of
``Photo@url`` values; this model validates that dict. Every field is optional and tolerant; only
``to_vehicle()`` decides that a record is unusable, by raising ``RecordRejected``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from od_scheduler.models.normalize import (
    Condition,
    LooseBool,
    LooseStr,
    LooseStrList,
    absolute_url,
    absolute_urls,
    dicts_only,
    parse_condition,
    parse_int,
    parse_money,
    parse_year,
)
from od_scheduler.models.platform_config import NonEmptyStr, PlatformConfig
from od_scheduler.models.vehicle import Vehicle, make_vehicle

#: The platform id (as the CMS spells it): the registry entry's id and every vehicle's Data API ``source``.
SOURCE = "dealersocket"


class DealersocketConfig(PlatformConfig):
    """``dealersocket_config``: the dealer's DealerSocket code."""

    dealer_code: NonEmptyStr


INTERNET = "internet"
MSRP = "msrp"


class _Raw(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class DealersocketPrice(_Raw):
    """One ``<Price type="...">`` element: ``Internet`` or ``MSRP``."""

    type: LooseStr = None
    value: LooseStr = None


class DealersocketVehicle(_Raw):
    """A vehicle as a DealerSocket inventory page lists it."""

    vin: LooseStr = Field(default=None, alias="VIN")
    stock_number: LooseStr = Field(default=None, alias="StockNumber")
    new_used: LooseStr = Field(default=None, alias="NewUsed")
    certified: LooseBool = Field(default=None, alias="Certified")
    year: LooseStr = Field(default=None, alias="Year")
    make: LooseStr = Field(default=None, alias="Make")
    model: LooseStr = Field(default=None, alias="Model")
    trim: LooseStr = Field(default=None, alias="Trim")
    odometer: LooseStr = Field(default=None, alias="Odometer")
    prices: Annotated[list[DealersocketPrice], BeforeValidator(dicts_only)] = Field(
        default_factory=list, alias="Price"
    )
    exterior_color: LooseStr = Field(default=None, alias="ExteriorColor")
    interior_color: LooseStr = Field(default=None, alias="InteriorColor")
    body: LooseStr = Field(default=None, alias="Body")
    drivetrain: LooseStr = Field(default=None, alias="Drivetrain")
    transmission: LooseStr = Field(default=None, alias="Transmission")
    fuel: LooseStr = Field(default=None, alias="Fuel")
    photos: LooseStrList = Field(default_factory=list, alias="Photos")
    detail_url: LooseStr = Field(default=None, alias="DetailUrl")

    def price_of(self, kind: str) -> Decimal | None:
        """The first usable amount among the ``Price`` elements whose ``type`` is ``kind`` (any case)."""
        for price in self.prices:
            if (price.type or "").lower() == kind:
                amount = parse_money(price.value)
                if amount is not None:
                    return amount
        return None

    def vehicle_condition(self) -> Condition | None:
        """``NewUsed`` ``N`` is new; ``U`` is certified when ``Certified`` is true, else used.

        A vehicle cannot be new and certified pre-owned: ``N`` wins over the flag. Words (``New``,
        ``Used``) are understood too; without ``NewUsed`` a true ``Certified`` still means certified.
        """
        code = (self.new_used or "").upper()
        if code == "N":
            return Condition.NEW
        condition = Condition.USED if code == "U" else parse_condition(self.new_used)
        if self.certified and condition in (Condition.USED, None):
            return Condition.CERTIFIED
        return condition

    def image_urls(self) -> list[str]:
        """Absolute photo URLs in order, each once."""
        return absolute_urls(None, self.photos)

    def to_vehicle(self, *, dealer_id: str) -> Vehicle:
        """The canonical vehicle; raises ``RecordRejected`` (reason code) when the record is unusable."""
        return make_vehicle(
            vin=self.vin,
            dealer_id=dealer_id,
            source=SOURCE,
            stock_number=self.stock_number,
            condition=self.vehicle_condition(),
            year=parse_year(self.year),
            make=self.make,
            model=self.model,
            trim=self.trim,
            body_style=self.body,
            drivetrain=self.drivetrain,
            transmission=self.transmission,
            fuel_type=self.fuel,
            engine=None,
            exterior_color=self.exterior_color,
            interior_color=self.interior_color,
            mileage=parse_int(self.odometer),
            price=self.price_of(INTERNET),
            msrp=self.price_of(MSRP),
            images=self.image_urls(),
            detail_url=absolute_url(None, self.detail_url),
            description=None,
            in_stock_since=None,
            source_updated_at=None,
        )
