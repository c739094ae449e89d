"""Raw model of a HomeNet vehicle from the SOAP transformer (docs/contracts.md §2), mapped to ``Vehicle``.

Every HomeNet field arrives as a string, and ``"0"`` or ``""`` means unknown, for every field: a ``"0"``
odometer or a ``"0"`` price is null in the canonical vehicle, never zero. ``certified`` is the text
``"True"``/``"False"`` and refines ``type`` (``New``/``Used``): a used vehicle with ``certified "True"`` is
certified pre-owned; a new one stays new (a new car cannot be certified pre-owned, so the flag is noise).

``dealerurl`` is usually just the dealer's domain (``www.dealer.com``), which is not a vehicle's detail
page. :func:`detail_page_url` keeps it only when it is a page: an absolute http(s) URL (or a bare host
followed by a path) whose path goes beyond ``/``. Anything else is null; a detail URL is never invented.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from od_scheduler.models.normalize import (
    Condition,
    absolute_url,
    absolute_urls,
    clean_str,
    parse_bool,
    parse_condition,
    parse_datetime,
    parse_int,
    parse_money,
    parse_year,
)
from od_scheduler.models.platform_config import NonEmptyStr, PlatformConfig
from od_scheduler.models.vehicle import Vehicle, make_vehicle

#: The platform id (as the CMS spells it): the registry entry's id and every vehicle's Data API ``source``.
SOURCE = "homenet"


class HomenetConfig(PlatformConfig):
    """``homenet_config``: the HomeNet rooftop and, optionally, the dealer's own integration token."""

    rooftop_id: NonEmptyStr
    integration_token: str | None = Field(default=None, repr=False)


#: HomeNet's spellings of "unknown" (after stripping).
UNKNOWN = frozenset({"", "0"})


def known_str(v: object) -> str | None:
    """A stripped string, or ``None`` for HomeNet's unknowns (``""``, ``"0"``) and non-text values."""
    text = clean_str(v)
    return None if text is None or text in UNKNOWN else text


def image_list(v: object) -> list[str]:
    """``imagelist`` as a list of non-blank strings (a single string is split on ``,``/``|``)."""
    if isinstance(v, str):
        v = v.replace("|", ",").split(",")
    if not isinstance(v, list):
        return []
    return [s for s in (known_str(item) for item in v if isinstance(item, str)) if s is not None]


#: A HomeNet string field: ``"0"`` and ``""`` are ``None``.
HomenetStr = Annotated[str | None, BeforeValidator(known_str)]


def detail_page_url(raw: str | None) -> str | None:
    """``dealerurl`` as a detail URL only when it points at a page, not at the dealer's home page.

    ``"www.dealer.com"``, ``"https://www.dealer.com/"`` -> ``None``;
    ``"https://www.dealer.com/used/2021-Honda-Civic-19XFC2F59ME000001.htm"`` -> that URL;
    ``"www.dealer.com/used/x.htm"`` -> ``"https://www.dealer.com/used/x.htm"``. A query string alone
    (``https://www.dealer.com/?utm=x``) is still the home page.
    """
    text = known_str(raw)
    if text is None:
        return None
    if "://" not in text and not text.startswith("//"):
        text = "https://" + text  # a bare host: HomeNet drops the scheme
    url = absolute_url(None, text)
    if url is None:
        return None
    path = urlsplit(url).path
    return url if path.strip("/") else None


class HomenetVehicle(BaseModel):
    """A vehicle as the SOAP transformer returns it: every field a string (``"0"``/``""`` = unknown)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    vin: HomenetStr = None
    stock_number: HomenetStr = None
    type: HomenetStr = None
    year: HomenetStr = None
    make: HomenetStr = None
    model: HomenetStr = None
    trim: HomenetStr = None
    msrp: HomenetStr = None
    price: HomenetStr = None
    extcolor: HomenetStr = None
    intcolor: HomenetStr = None
    miles: HomenetStr = None
    description: HomenetStr = None
    fueltype: HomenetStr = None
    transmission: HomenetStr = None
    drivetype: HomenetStr = None
    bodystyle: HomenetStr = None
    certified: HomenetStr = None
    dealerurl: HomenetStr = None
    imagelist: Annotated[list[str], BeforeValidator(image_list)] = Field(default_factory=list)
    datelastmodified: HomenetStr = None

    def vehicle_condition(self) -> Condition | None:
        """``type`` (New/Used), refined to certified by ``certified "True"`` on a used vehicle."""
        condition = parse_condition(self.type)
        if parse_bool(self.certified) and condition is not Condition.NEW:
            return Condition.CERTIFIED
        return condition

    def price_amount(self) -> Decimal | None:
        """``price`` in dollars (``"0"`` is unknown)."""
        return parse_money(self.price)

    def msrp_amount(self) -> Decimal | None:
        """``msrp`` in dollars (``"0"`` is unknown; used vehicles usually have none)."""
        return parse_money(self.msrp)

    def modified_at(self) -> datetime | None:
        """``datelastmodified`` as UTC (naive means UTC); unparseable is unknown."""
        return parse_datetime(self.datelastmodified)

    def to_vehicle(self, *, dealer_id: str) -> Vehicle:
        """The canonical vehicle; raises ``RecordRejected`` (reason code) when the record is unusable."""
        images = absolute_urls(None, self.imagelist)
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
            body_style=self.bodystyle,
            drivetrain=self.drivetype,
            transmission=self.transmission,
            fuel_type=self.fueltype,
            engine=None,
            exterior_color=self.extcolor,
            interior_color=self.intcolor,
            mileage=parse_int(self.miles),
            price=self.price_amount(),
            msrp=self.msrp_amount(),
            images=images,
            detail_url=detail_page_url(self.dealerurl),
            description=self.description,
            in_stock_since=None,
            source_updated_at=self.modified_at(),
        )
