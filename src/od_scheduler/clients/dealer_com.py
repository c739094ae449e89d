"""Dealer.com site-widget inventory client (docs/contracts.md §3).

One dealer site per client (``base_url``); no auth; a token bucket keeps the request rate polite.
Inventory comes in segments (``auto-new``, ``auto-certified``, ``auto-used``) paged by offset. The quirks
it survives:

- the server caps ``pageSize`` at 100 whatever is asked: the offset advances by the items returned;
- segments overlap (certified vehicles are also in used): VINs are deduped across the whole pull, the
  first segment wins, and segment totals are never summed;
- some sites ignore ``pageStart`` and return the first page again: a page that adds no VIN new *to its
  segment* stops that segment and marks the pull incomplete. The guard is per segment on purpose: a
  used page made only of VINs already yielded by the certified segment is progress, not a loop.

After ``iter_inventory`` is exhausted, ``client.report``
(a :class:`~od_scheduler.clients.pagination.PullReport`) says whether the pull was complete, per segment,
and ``client.segment_counts`` how many distinct vehicles each segment listed
(overlap included: a certified car counts in ``auto-certified`` and in ``auto-used``).
The operator compares those counts with the last complete pull's: a segment that answers empty (even with
a consistent ``totalCount: 0``) after it had vehicles makes the pull partial.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

from pydantic import ValidationError

from od_scheduler.clients.http import BaseClient
from od_scheduler.clients.pagination import FetchedPage, OffsetPaginator, Page, PullReport
from od_scheduler.clients.redaction import excerpt
from od_scheduler.exceptions import PayloadError
from od_scheduler.models.dealer import summarize_validation_error
from od_scheduler.models.dealer_com import SOURCE, DealerComVehicle
from od_scheduler.models.normalize import parse_int
from od_scheduler.models.vin import normalize_vin

logger = logging.getLogger(__name__)

INVENTORY_PATH = "/api/widget/ws-inv-data/getInventory"
DEFAULT_SEGMENTS = ("auto-new", "auto-certified", "auto-used")


def _vin_key(vehicle: DealerComVehicle) -> str | None:
    return normalize_vin(vehicle.vin)


class DealerComClient(BaseClient):
    """Reads one Dealer.com site's inventory through its ``getInventory`` widget endpoint."""

    def __init__(
        self,
        *,
        base_url: str,
        requests_per_second: float | None = 2.0,
        page_size: int = 100,
        segments: Sequence[str] = DEFAULT_SEGMENTS,
        max_pages_per_segment: int = 500,
        **kw: Any,
    ) -> None:
        kw.setdefault("service", SOURCE)
        base_url = base_url.strip().rstrip("/")
        if "://" not in base_url:  # CMS configs often hold "www.dealer-site.com"
            base_url = f"https://{base_url.lstrip('/')}"
        super().__init__(base_url=base_url, requests_per_second=requests_per_second, **kw)
        self.page_size = page_size
        self.segments = tuple(segments)
        self.max_pages_per_segment = max_pages_per_segment
        self.report = PullReport()
        self.segment_counts: dict[str, int] = {}

    def inventory_body(self, site_id: str, segment: str, page_start: int) -> dict[str, Any]:
        """The widget request body of docs/contracts.md §3 (the server wants the numbers as strings)."""
        return {
            "siteId": site_id,
            "locale": "en_US",
            "device": "DESKTOP",
            "pageAlias": "INVENTORY_LISTING_DEFAULT_AUTO_NEW",
            "pageId": f"{site_id}_SITEBUILDER_INVENTORY_SEARCH_RESULTS_AUTO_NEW_V1_1",
            "windowId": "inventory-data-bus1",
            "widgetName": "ws-inv-data",
            "includePricing": True,
            "inventoryParameters": {},
            "preferences": {
                "pageSize": str(self.page_size),
                "pageStart": str(page_start),
                "listing.config.id": segment,
            },
        }

    def fetch_page(self, site_id: str, segment: str, page_start: int) -> Page[DealerComVehicle]:
        """One page of one segment, parsed; ``PayloadError`` for an error body or a wrong shape."""
        where = f"dealer.com site {site_id!r} segment {segment!r} pageStart {page_start}"
        body = self.post_json(  # a read sent as POST: idempotent
            INVENTORY_PATH, json=self.inventory_body(site_id, segment, page_start), idempotent=True
        )
        self.stats.pages += 1
        if not isinstance(body, dict):
            raise PayloadError(f"{where}: expected a JSON object, got {type(body).__name__}")
        error = body.get("error")
        if isinstance(error, str) and error.strip():
            raise PayloadError(f"{where}: the widget returned an error: {excerpt(error, self.redactor)}")
        inventory = body.get("inventory")
        if not isinstance(inventory, list):
            raise PayloadError(f"{where}: the response has no 'inventory' list")
        page_info = body.get("pageInfo")
        total = parse_int(page_info.get("totalCount")) if isinstance(page_info, dict) else None
        vehicles = []
        for index, item in enumerate(inventory):
            if not isinstance(item, dict):
                raise PayloadError(
                    f"{where}: inventory item {index} is a {type(item).__name__}, not an object"
                )
            try:
                vehicles.append(DealerComVehicle.model_validate(item))
            except ValidationError as err:  # the model is tolerant; this means the format changed
                raise PayloadError(
                    f"{where}: inventory item {index}: {summarize_validation_error(err)}"
                ) from err
        return Page(items=vehicles, total=total)

    def iter_inventory(self, site_id: str) -> Iterator[DealerComVehicle]:
        """Every vehicle of the site, each VIN once, lazily; then ``self.report`` tells if it was complete."""
        self.report = PullReport()
        self.segment_counts = {}
        seen: set[str] = set()
        so_far = 0
        for segment in self.segments:
            paginator: OffsetPaginator[DealerComVehicle] = OffsetPaginator(
                partial(self.fetch_page, site_id, segment),
                key=_vin_key,
                max_pages=self.max_pages_per_segment,
            )
            yielded = duplicates = 0
            for page in paginator.iter_pages():
                fresh = self._new_across_segments(page, seen)
                duplicates += len(page.items) - len(fresh)
                yielded += len(fresh)
                so_far += len(fresh)
                logger.info(
                    "dealer.com site %s segment %s pageStart %d: %d items on page, %d vehicles so far",
                    site_id,
                    segment,
                    page.offset,
                    page.returned,
                    so_far,
                )
                yield from fresh
            part = self.report.record(segment, paginator, items=yielded, duplicates=duplicates)
            # What the segment itself listed, each vehicle once (its repeats within the segment dropped).
            self.segment_counts[segment] = paginator.items
            logger.info(
                "dealer.com site %s segment %s done: %d pages, %d new vehicles, %d already seen, "
                "totalCount %s, stopped: %s",
                site_id,
                segment,
                part.pages,
                part.items,
                part.duplicates,
                part.total_count,
                part.stop_reason,
            )
            if not part.complete:
                logger.warning("dealer.com site %s: pull incomplete: %s", site_id, self.report.notes[-1])

    @staticmethod
    def _new_across_segments(page: FetchedPage[DealerComVehicle], seen: set[str]) -> list[DealerComVehicle]:
        # First segment wins; a vehicle without a VIN passes through (rejected later as missing_vin).
        fresh = []
        for vehicle in page.items:
            vin = normalize_vin(vehicle.vin)
            if vin is None:
                fresh.append(vehicle)
            elif vin not in seen:
                seen.add(vin)
                fresh.append(vehicle)
        return fresh
