"""Raw model of a VinSolutions inventory item (docs/contracts.md §5) and its mapping to ``Vehicle``.

Fields are camelCase on the wire and every one is optional and tolerant (see ``normalize.Loose*``): prices
and mileage arrive as numbers or strings, ``0`` or ``null`` for unknown. Only ``to_vehicle()`` decides that a
record is unusable, by raising ``RecordRejected``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from od_scheduler.models.normalize import (
    Condition,
    LooseStr,
    absolute_url,
    absolute_urls,
    dict_or_none,
    parse_condition,
    parse_int,
    parse_money,
    parse_year,
)
from od_scheduler.models.platform_config import NonEmptyStr, PlatformConfig
from od_scheduler.models.vehicle import Vehicle, make_vehicle

#: The platform id (as the CMS spells it): the registry entry's id and every vehicle's Data API ``source``.
SOURCE = "vinsolutions"


class VinsolutionsConfig(PlatformConfig):
    """``vinsolutions_config``: the dealer's VinSolutions id."""

    dealer_id: NonEmptyStr


def _photo_objects(v: object) -> list[Any]:
    """``photos`` as ``[{url}]``; a bare URL string in the list is taken as ``{url}`` too."""
    if not isinstance(v, list):
        return []
    return [{"url": item} if isinstance(item, str) else item for item in v if isinstance(item, dict | str)]


class _Raw(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class VinsolutionsPricing(_Raw):
    """``pricing``: ``internetPrice`` (the advertised price) and ``msrp``."""

    internet_price: LooseStr = Field(default=None, alias="internetPrice")
    msrp: LooseStr = None


class VinsolutionsPhoto(_Raw):
    """One ``photos`` entry: ``{url}``."""

    url: LooseStr = None


class VinsolutionsVehicle(_Raw):
    """A vehicle as the VinSolutions inventory gateway returns it."""

    vin: LooseStr = None
    stock_number: LooseStr = Field(default=None, alias="stockNumber")
    new_used: LooseStr = Field(default=None, alias="newUsed")
    year: LooseStr = None
    make: LooseStr = None
    model: LooseStr = None
    trim: LooseStr = None
    mileage: LooseStr = None
    pricing: Annotated[VinsolutionsPricing | None, BeforeValidator(dict_or_none)] = None
    exterior_color: LooseStr = Field(default=None, alias="exteriorColor")
    interior_color: LooseStr = Field(default=None, alias="interiorColor")
    body_style: LooseStr = Field(default=None, alias="bodyStyle")
    transmission: LooseStr = None
    drivetrain: LooseStr = None
    fuel_type: LooseStr = Field(default=None, alias="fuelType")
    photos: Annotated[list[VinsolutionsPhoto], BeforeValidator(_photo_objects)] = Field(default_factory=list)
    vdp_url: LooseStr = Field(default=None, alias="vdpUrl")

    def price(self) -> Decimal | None:
        """``pricing.internetPrice``; ``0``, ``null`` or text is unknown."""
        return parse_money(self.pricing.internet_price) if self.pricing else None

    def msrp(self) -> Decimal | None:
        """``pricing.msrp``; ``0`` or ``null`` is unknown."""
        return parse_money(self.pricing.msrp) if self.pricing else None

    def vehicle_condition(self) -> Condition | None:
        """``newUsed``: ``New``, ``Used`` or ``Certified`` (also wording like ``Certified Pre-Owned``)."""
        return parse_condition(self.new_used)

    def image_urls(self) -> list[str]:
        """Absolute photo URLs in order, each once (the feed sometimes repeats the lead photo)."""
        return absolute_urls(None, (photo.url for photo in self.photos))

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
            body_style=self.body_style,
            drivetrain=self.drivetrain,
            transmission=self.transmission,
            fuel_type=self.fuel_type,
            engine=None,
            exterior_color=self.exterior_color,
            interior_color=self.interior_color,
            mileage=parse_int(self.mileage),
            price=self.price(),
            msrp=self.msrp(),
            images=self.image_urls(),
            detail_url=absolute_url(None, self.vdp_url),
            description=None,
            in_stock_since=None,
            source_updated_at=None,
        )
