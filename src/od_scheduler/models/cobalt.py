"""Raw model of one Cobalt inventory-feed CSV row (docs/contracts.md §7) and its mapping to ``Vehicle``.

The CSV client hands over each row as ``{column: text}`` with the header names of the contract (``VIN,
Stock, Type, Year, Make, Model, Trim, Body, ExtColor, IntColor, Miles, SellingPrice, MSRP, Transmission,
Drivetrain, FuelType, ImageURLs, VDPURL``). Prices look like ``"$25,999.00"`` (``""``/``"$0.00"`` =
unknown), ``ImageURLs`` is one field of URLs separated by ``|``, ``Type`` is ``New``/``Used``/
``Certified``. A row whose field count differs from the header's (an unquoted comma shifted its columns)
carries ``row_problem`` and is rejected as ``malformed_csv_row`` rather than ingested with shifted values.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from od_scheduler.exceptions import RecordRejected
from od_scheduler.models.normalize import (
    LooseStr,
    absolute_url,
    absolute_urls,
    clean_str,
    parse_condition,
    parse_int,
    parse_money,
    parse_year,
)
from od_scheduler.models.platform_config import NonEmptyStr, PlatformConfig
from od_scheduler.models.vehicle import Vehicle, make_vehicle
from od_scheduler.models.vin import normalize_vin

#: The platform id (as the CMS spells it): the registry entry's id and every vehicle's Data API ``source``.
SOURCE = "cobalt"


class CobaltConfig(PlatformConfig):
    """``cobalt_config``: the dealer's Cobalt feed code."""

    dealer_code: NonEmptyStr


MALFORMED_ROW = "malformed_csv_row"

#: The header row of the contract, in order.
COLUMNS: tuple[str, ...] = (
    "VIN",
    "Stock",
    "Type",
    "Year",
    "Make",
    "Model",
    "Trim",
    "Body",
    "ExtColor",
    "IntColor",
    "Miles",
    "SellingPrice",
    "MSRP",
    "Transmission",
    "Drivetrain",
    "FuelType",
    "ImageURLs",
    "VDPURL",
)


def split_urls(v: object) -> list[str]:
    """``"a.jpg|b.jpg| |c.jpg"`` -> ``["a.jpg", "b.jpg", "c.jpg"]``; anything else -> ``[]``."""
    if not isinstance(v, str):
        return []
    return [s for s in (clean_str(part) for part in v.split("|")) if s is not None]


class CobaltVehicle(BaseModel):
    """One row of a Cobalt inventory feed, by the contract's column names."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    vin: LooseStr = Field(default=None, alias="VIN")
    stock: LooseStr = Field(default=None, alias="Stock")
    type: LooseStr = Field(default=None, alias="Type")
    year: LooseStr = Field(default=None, alias="Year")
    make: LooseStr = Field(default=None, alias="Make")
    model: LooseStr = Field(default=None, alias="Model")
    trim: LooseStr = Field(default=None, alias="Trim")
    body: LooseStr = Field(default=None, alias="Body")
    ext_color: LooseStr = Field(default=None, alias="ExtColor")
    int_color: LooseStr = Field(default=None, alias="IntColor")
    miles: LooseStr = Field(default=None, alias="Miles")
    selling_price: LooseStr = Field(default=None, alias="SellingPrice")
    msrp: LooseStr = Field(default=None, alias="MSRP")
    transmission: LooseStr = Field(default=None, alias="Transmission")
    drivetrain: LooseStr = Field(default=None, alias="Drivetrain")
    fuel_type: LooseStr = Field(default=None, alias="FuelType")
    image_urls: Annotated[list[str], BeforeValidator(split_urls)] = Field(
        default_factory=list, alias="ImageURLs"
    )
    vdp_url: LooseStr = Field(default=None, alias="VDPURL")
    #: 1-based line of the row in the feed (the header is line 1), for messages.
    line: int | None = None
    #: Why the row cannot be trusted (set by the client, e.g. a field count that differs from the header).
    row_problem: str | None = None

    def price(self) -> Decimal | None:
        """``SellingPrice`` in dollars (``"$25,999.00"``; empty or ``$0`` is unknown)."""
        return parse_money(self.selling_price)

    def msrp_amount(self) -> Decimal | None:
        """``MSRP`` in dollars (empty or ``$0`` is unknown)."""
        return parse_money(self.msrp)

    def to_vehicle(self, *, dealer_id: str) -> Vehicle:
        """The canonical vehicle; raises ``RecordRejected`` (reason code) when the row is unusable."""
        if self.row_problem is not None:
            raise RecordRejected(
                MALFORMED_ROW, ref=normalize_vin(self.vin) or self.stock, detail=self.row_problem
            )
        images = absolute_urls(None, self.image_urls)
        return make_vehicle(
            vin=self.vin,
            dealer_id=dealer_id,
            source=SOURCE,
            stock_number=self.stock,
            condition=parse_condition(self.type),
            year=parse_year(self.year),
            make=self.make,
            model=self.model,
            trim=self.trim,
            body_style=self.body,
            drivetrain=self.drivetrain,
            transmission=self.transmission,
            fuel_type=self.fuel_type,
            engine=None,
            exterior_color=self.ext_color,
            interior_color=self.int_color,
            mileage=parse_int(self.miles),
            price=self.price(),
            msrp=self.msrp_amount(),
            images=images,
            detail_url=absolute_url(None, self.vdp_url),
            description=None,
            in_stock_since=None,
            source_updated_at=None,
        )
