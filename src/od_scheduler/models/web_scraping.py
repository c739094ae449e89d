"""Raw models of web scraping through Apify (docs/contracts.md §4): the actor run and one scraped item.

A scraped item is whatever the dealer-inventory actor managed to read off a dealer's web page, so every
field is optional and tolerant (see ``normalize.Loose*``): ``price`` comes as a number, as ``"$25,995"`` or
as ``"Call for price"``; ``mileage`` as ``34512`` or ``"34,512 mi"``; ``year`` as a number or text.
Missing and mangled VINs are normal: ``to_vehicle()`` rejects such items with the VIN problem as the
reason (``missing_vin``, ``invalid_vin_check_digit``, ...) and never invents a VIN or any other value.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Final

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from od_scheduler.models.normalize import (
    LooseInt,
    LooseStr,
    LooseStrList,
    absolute_url,
    absolute_urls,
    parse_condition,
    parse_datetime,
    parse_money,
    parse_year,
)
from od_scheduler.models.platform_config import NonEmptyStr, PlatformConfig
from od_scheduler.models.vehicle import Vehicle, make_vehicle

#: The platform id (as the CMS spells it): the registry entry's id and every vehicle's Data API ``source``.
SOURCE = "web_scraping"


class WebScrapingConfig(PlatformConfig):
    """``web_scraping_config``: the Apify actor and the pages it starts from."""

    actor_id: NonEmptyStr
    start_urls: list[NonEmptyStr] = Field(min_length=1)
    max_items: int | None = Field(default=None, ge=1)
    #: Our own limit on the run (seconds); past it the run is aborted. Default: setting apify_max_wait_s.
    max_wait_s: int | None = Field(default=None, ge=1)


#: Apify run statuses (docs/contracts.md §4). Only SUCCEEDED is a success.
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
TIMED_OUT: Final = "TIMED-OUT"
ABORTED: Final = "ABORTED"
#: Statuses after which a run never changes again.
TERMINAL_STATUSES: Final = frozenset({SUCCEEDED, FAILED, TIMED_OUT, ABORTED})

#: A money amount from a number or text; unknown ("Call for price", 0) is ``None``.
LooseMoney = Annotated[Decimal | None, BeforeValidator(parse_money)]
LooseDatetime = Annotated[datetime | None, BeforeValidator(parse_datetime)]


class ApifyRun(BaseModel):
    """An actor run as ``{"data": {...}}`` of the runs endpoints describes it (only the fields we use)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1)
    status: str = Field(min_length=1)
    status_message: LooseStr = Field(default=None, alias="statusMessage")
    default_dataset_id: LooseStr = Field(default=None, alias="defaultDatasetId")
    started_at: LooseDatetime = Field(default=None, alias="startedAt")
    finished_at: LooseDatetime = Field(default=None, alias="finishedAt")

    @property
    def finished(self) -> bool:
        """The run reached a terminal status (it will not change any more)."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        """Only ``SUCCEEDED`` is a success; ``FAILED``, ``TIMED-OUT`` and ``ABORTED`` are not."""
        return self.status == SUCCEEDED

    def describe(self) -> str:
        """``run <id> <STATUS>`` plus Apify's status message when it has one, for logs and errors."""
        text = f"run {self.id} {self.status}"
        return f"{text} ({self.status_message})" if self.status_message else text


class ScrapedVehicle(BaseModel):
    """One dataset item of the dealer-inventory actor (docs/contracts.md §4 "Item fields")."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    vin: LooseStr = None
    stock_number: LooseStr = Field(default=None, alias="stockNumber")
    condition: LooseStr = None
    year: LooseStr = None
    make: LooseStr = None
    model: LooseStr = None
    trim: LooseStr = None
    price: LooseMoney = None
    mileage: LooseInt = None
    exterior_color: LooseStr = Field(default=None, alias="exteriorColor")
    interior_color: LooseStr = Field(default=None, alias="interiorColor")
    body_style: LooseStr = Field(default=None, alias="bodyStyle")
    drivetrain: LooseStr = None
    transmission: LooseStr = None
    fuel_type: LooseStr = Field(default=None, alias="fuelType")
    images: LooseStrList = Field(default_factory=list)
    url: LooseStr = None

    def to_vehicle(self, *, dealer_id: str, base_url: str | None = None) -> Vehicle:
        """The canonical vehicle; raises ``RecordRejected`` (reason code) when the item is unusable.

        ``base_url`` (the dealer's start URL) makes relative detail and image links absolute; images are
        resolved against the item's own detail page first. A link that cannot be made absolute is dropped.
        """
        detail_url = absolute_url(base_url, self.url)
        images = absolute_urls(detail_url or base_url, self.images)
        return make_vehicle(
            vin=self.vin,
            dealer_id=dealer_id,
            source=SOURCE,
            stock_number=self.stock_number,
            condition=parse_condition(self.condition),
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
            mileage=self.mileage,
            price=self.price,
            msrp=None,
            images=images,
            detail_url=detail_url,
            description=None,
            in_stock_since=None,
            source_updated_at=None,
        )
