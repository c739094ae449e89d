"""Raw model of a Dealer.com site-widget vehicle (docs/contracts.md §3) and its mapping to ``Vehicle``.

Every field is optional and tolerant (see ``normalize.Loose*``): the widget's JSON varies between sites
and releases, and one odd field must not fail a record. Only ``to_vehicle()`` decides that a record is
unusable, by raising ``RecordRejected``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from od_scheduler.models.normalize import (
    Condition,
    LooseBool,
    LooseStr,
    absolute_url,
    absolute_urls,
    clean_str,
    dict_or_none,
    dicts_only,
    parse_condition,
    parse_int,
    parse_money,
    parse_us_date,
    parse_year,
)
from od_scheduler.models.platform_config import NonEmptyStr, PlatformConfig
from od_scheduler.models.vehicle import Vehicle, make_vehicle

#: The platform id (as the CMS spells it): the registry entry's id and every vehicle's Data API ``source``.
SOURCE = "dealer.com"


class DealerComConfig(PlatformConfig):
    """``dealer_com_config``: the Dealer.com site id and the dealer site's base URL."""

    site_id: NonEmptyStr
    base_url: NonEmptyStr


class _Raw(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def attribute_map(v: object) -> dict[str, str]:
    """``trackingAttributes`` (a list of ``{name, value}`` objects) as ``{name: value}``.

    Names and values are cleaned text; the first occurrence of a name wins and entries without a name or a
    value are skipped. A dict rather than a model per entry: a vehicle has a dozen of them.
    """
    out: dict[str, str] = {}
    for attr in dicts_only(v):
        name, value = clean_str(attr.get("name")), clean_str(attr.get("value"))
        if name and value is not None and name not in out:
            out[name] = value
    return out


class DealerComPrice(_Raw):
    """One ``pricing.dprice`` entry: ``{typeClass, value}`` (``internetPrice``, ``msrp``, ...)."""

    type_class: LooseStr = Field(default=None, alias="typeClass")
    value: LooseStr = None


class DealerComPricing(_Raw):
    """``pricing``: the displayed prices (``retailPrice`` is not used)."""

    dprice: Annotated[list[DealerComPrice], BeforeValidator(dicts_only)] = Field(default_factory=list)


class DealerComTrackingPricing(_Raw):
    """``trackingPricing``: analytics copy of the prices (``"0"`` means unknown)."""

    internet_price: LooseStr = Field(default=None, alias="internetPrice")
    sale_price: LooseStr = Field(default=None, alias="salePrice")
    msrp: LooseStr = None


def image_uris(v: object) -> list[str]:
    """``images`` (a list of ``{uri, alt}`` objects) as the list of their non-blank ``uri`` texts.

    A plain list rather than a model per image: a lot has a dozen images or more per vehicle, and only the
    links are used.
    """
    uris = (clean_str(image.get("uri")) for image in dicts_only(v))
    return [uri for uri in uris if uri is not None]


class DealerComVehicle(_Raw):
    """A vehicle as the Dealer.com ``getInventory`` widget returns it."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    vin: LooseStr = None
    uuid: LooseStr = None
    stock_number: LooseStr = Field(default=None, alias="stockNumber")
    year: LooseStr = None
    make: LooseStr = None
    model: LooseStr = None
    trim: LooseStr = None
    link: LooseStr = None
    type: LooseStr = None
    condition: LooseStr = None
    certified: LooseBool = None
    status: LooseStr = None
    body_style: LooseStr = Field(default=None, alias="bodyStyle")
    fuel_type: LooseStr = Field(default=None, alias="fuelType")
    inventory_date: LooseStr = Field(default=None, alias="inventoryDate")
    tracking_attributes: Annotated[dict[str, str], BeforeValidator(attribute_map)] = Field(
        default_factory=dict, alias="trackingAttributes"
    )
    pricing: Annotated[DealerComPricing | None, BeforeValidator(dict_or_none)] = None
    tracking_pricing: Annotated[DealerComTrackingPricing | None, BeforeValidator(dict_or_none)] = Field(
        default=None, alias="trackingPricing"
    )
    images: Annotated[list[str], BeforeValidator(image_uris)] = Field(default_factory=list)

    def attributes(self) -> dict[str, str]:
        """``trackingAttributes`` as ``{name: value}`` (first occurrence wins, blanks skipped)."""
        return dict(self.tracking_attributes)

    def _dprice(self, type_class: str) -> Decimal | None:
        if self.pricing is None:
            return None
        for price in self.pricing.dprice:
            if price.type_class == type_class:
                amount = parse_money(price.value)
                if amount is not None:
                    return amount
        return None

    def price(self) -> Decimal | None:
        """dprice ``internetPrice``, else trackingPricing ``internetPrice``, else ``salePrice``."""
        tracking = self.tracking_pricing or DealerComTrackingPricing()
        return (
            self._dprice("internetPrice")
            or parse_money(tracking.internet_price)
            or parse_money(tracking.sale_price)
        )

    def msrp(self) -> Decimal | None:
        """dprice ``msrp``, else trackingPricing ``msrp``."""
        tracking = self.tracking_pricing or DealerComTrackingPricing()
        return self._dprice("msrp") or parse_money(tracking.msrp)

    def vehicle_condition(self) -> Condition | None:
        """``certified`` flag first, then ``condition``, then ``type``."""
        if self.certified:
            return Condition.CERTIFIED
        return parse_condition(self.condition) or parse_condition(self.type)

    def to_vehicle(self, *, dealer_id: str, base_url: str) -> Vehicle:
        """The canonical vehicle; raises ``RecordRejected`` (reason code) when the record is unusable."""
        attrs = self.attributes()
        images = absolute_urls(base_url, self.images)
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
            drivetrain=clean_str(attrs.get("driveLine")),
            transmission=clean_str(attrs.get("transmission")),
            fuel_type=self.fuel_type,
            engine=clean_str(attrs.get("engine")) or clean_str(attrs.get("engineSize")),
            exterior_color=clean_str(attrs.get("exteriorColor")),
            interior_color=clean_str(attrs.get("interiorColor")),
            mileage=parse_int(attrs.get("odometer")),
            price=self.price(),
            msrp=self.msrp(),
            images=images,
            detail_url=absolute_url(base_url, self.link),
            description=None,
            in_stock_since=parse_us_date(self.inventory_date),
            source_updated_at=None,
        )
