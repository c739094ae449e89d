"""Dealer.com site widget (CONTRACTS §3): ``POST /dealer-com/<slug>/api/widget/ws-inv-data/getInventory``.

Quirks served on purpose, as real Dealer.com sites do:

- ``pageSize`` is capped at 100 whatever is asked; ``pageStart`` is a string offset.
- Segments overlap: ``auto-used`` lists every used vehicle *including* certified ones, so
  ``auto-certified`` is a subset of ``auto-used``; ``auto-new`` is disjoint from both.
- Sites with the ``ignore_page_start`` fault return the first page for every ``pageStart`` (and
  echo the requested ``pageStart`` in ``pageInfo``, so only "no new VIN" gives it away).
- An unknown ``listing.config.id`` answers 200 with a string ``error`` (a failure by contract).
- Data dirt, decided per VIN: unknown prices as ``"0"``/``"$0"`` or as missing, a few malformed
  ``inventoryDate`` (``"00/24/2025"`` or ``""``), relative ``link``, ``salePrice`` ``"0"``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response

from include.sandbox.dealers import DealerSpec
from include.sandbox.http import arrive, json_response, truncated_json_response
from include.sandbox.lots import Lot, SourceVehicle
from include.sandbox.platforms import Platform
from include.sandbox.state import Exchange, SandboxState

PLATFORM_ID = "dealer.com"
PREFIX = "/dealer-com"

SEGMENTS: dict[str, tuple[str, ...]] = {
    "auto-new": ("new",),
    "auto-certified": ("certified",),
    "auto-used": ("used", "certified"),
}
"""``listing.config.id`` -> the conditions it lists."""


def _digest(vin: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{vin}".encode()).digest()[:8], "big")


def _photo_id(vin: str, n: int) -> str:
    return hashlib.md5(f"{vin}:{n}".encode(), usedforsecurity=False).hexdigest()


def _money(dollars: int) -> str:
    return f"${dollars:,}"


def _url_part(text: str) -> str:
    return text.replace(" ", "+").replace("/", "-")


class DealerComPlatform(Platform):
    """Renders lots as Dealer.com ``ws-inv-data`` vehicles and serves the widget endpoint."""

    platform_id: ClassVar[str] = PLATFORM_ID

    def cms_config(self, dealer: DealerSpec, base_url: str) -> dict[str, Any]:
        return {"site_id": self.site_id(dealer), "base_url": f"{base_url}{PREFIX}/{dealer.slug}"}

    @staticmethod
    def site_id(dealer: DealerSpec) -> str:
        return str(dealer.platforms[PLATFORM_ID]["site_id"])

    def segments(self, lot: Lot) -> dict[str, list[str]]:
        return {name: [v.vin for v in lot.of_condition(*conditions)] for name, conditions in SEGMENTS.items()}

    def render(self, dealer: DealerSpec, vehicle: SourceVehicle) -> dict[str, Any]:
        v = vehicle
        site_id = self.site_id(dealer)
        name = f"{v.year} {v.make} {v.model}"
        image_dir = f"https://pictures.dealer.com/{site_id[0]}/{site_id}/{_digest(v.vin, 'dir') % 10000:04d}"
        images = [
            {"uri": f"{image_dir}/{_photo_id(v.vin, n)}x.jpg", "alt": f"{name} {v.trim}"}
            for n in range(v.image_count)
        ]
        return {
            "vin": v.vin,
            "uuid": v.uuid,
            "stockNumber": v.stock_number,
            "year": v.year,
            "make": v.make,
            "model": v.model,
            "trim": v.trim,
            "title": [f"Certified {name}" if v.condition == "certified" else name, v.trim],
            "link": f"/{v.condition}/{_url_part(v.make)}/{v.year}-{_url_part(v.make)}-{_url_part(v.model)}-"
            f"{_url_part(dealer.city)}-{dealer.state}-{v.uuid.replace('-', '')[:12]}.htm",
            "type": v.condition,
            "condition": "new" if v.condition == "new" else "used",
            "certified": v.condition == "certified",
            "status": v.status,
            "bodyStyle": v.body_style,
            "fuelType": v.fuel_type,
            "inventoryDate": self._inventory_date(v),
            "trackingAttributes": [
                {"name": "driveLine", "value": v.drivetrain},
                {"name": "odometer", "value": f"{v.mileage:,}"},
                {"name": "exteriorColor", "value": v.exterior_color},
                {"name": "interiorColor", "value": v.interior_color},
                {"name": "transmission", "value": v.transmission},
                {"name": "engine", "value": v.engine},
                {"name": "engineSize", "value": v.engine_size},
                {"name": "cityFuelEconomy", "value": str(v.city_mpg) if v.city_mpg else ""},
                {"name": "highwayFuelEconomy", "value": str(v.highway_mpg) if v.highway_mpg else ""},
            ],
            "pricing": self._pricing(dealer, v),
            "trackingPricing": {
                "internetPrice": str(v.price or 0),
                "salePrice": str(v.sale_price or 0),
                "msrp": str(v.msrp or 0),
            },
            "images": images,
        }

    @staticmethod
    def _inventory_date(v: SourceVehicle) -> str:
        if v.in_stock_since is not None:
            return v.in_stock_since.strftime("%m/%d/%Y")
        digest = _digest(v.vin, "date")
        return "" if digest % 2 else f"00/{digest % 28 + 1:02d}/2025"

    @staticmethod
    def _pricing(dealer: DealerSpec, v: SourceVehicle) -> dict[str, Any]:
        dprice: list[dict[str, Any]] = []
        if v.msrp is not None:
            dprice.append(
                {"typeClass": "msrp", "label": "MSRP", "value": _money(v.msrp), "isFinalPrice": False}
            )
        if v.price is not None:
            label = f"{dealer.name} Price"
            dprice.append(
                {"typeClass": "internetPrice", "label": label, "value": _money(v.price), "isFinalPrice": True}
            )
            return {"retailPrice": _money(v.price), "dprice": dprice}
        # Unknown price: some sites say "0", others leave it out.
        if _digest(v.vin, "price") % 2:
            dprice.append(
                {"typeClass": "internetPrice", "label": "Price", "value": "$0", "isFinalPrice": True}
            )
            return {"retailPrice": "0", "dprice": dprice}
        return {"retailPrice": "", "dprice": dprice}

    def airflow_connection(self, base_url: str) -> dict[str, Any]:
        """The scheduler's connection here: no host (each dealer's site is in the CMS), a faster
        politeness cap than the production default."""
        return {
            "conn_type": "http",
            "description": "Dealer.com: per-dealer base_url comes from the CMS",
            "extra": {"requests_per_second": 20},
        }

    def router(self, state: SandboxState) -> APIRouter:
        router = APIRouter(prefix=PREFIX, tags=["dealer.com"])

        @router.post("/{slug}/api/widget/ws-inv-data/getInventory")
        async def get_inventory(slug: str, request: Request) -> Response:
            exchange = state.begin(request, "dealer_com")
            response = await self._get_inventory(state, exchange, slug, request)
            state.finish(exchange, response.status_code)
            return response

        return router

    async def _get_inventory(
        self, state: SandboxState, exchange: Exchange, slug: str, request: Request
    ) -> Response:
        dealer = state.dealer(slug)
        if dealer is None or PLATFORM_ID not in dealer.platforms:
            return json_response({"error": f"No Dealer.com site at /{slug}"}, 404)
        exchange.for_dealer(dealer)
        decision = await arrive(state, dealer.id)
        if decision.fails:
            return json_response(
                {"error": decision.error_message(slug)}, decision.status_code or 500, decision.headers()
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return json_response({"error": "Request body is not JSON"}, 400)
        if not isinstance(body, dict):
            return json_response({"error": "Request body must be a JSON object"}, 400)
        if body.get("siteId") != self.site_id(dealer):
            return json_response(
                {"error": f"Site configuration not found for siteId {body.get('siteId')!r}"}, 404
            )

        raw_preferences = body.get("preferences")
        preferences: dict[str, Any] = raw_preferences if isinstance(raw_preferences, dict) else {}
        segment = preferences.get("listing.config.id")
        cap = state.config.dealer_com_max_page_size
        page_size = min(_as_int(preferences.get("pageSize"), cap), cap)
        page_start = _as_int(preferences.get("pageStart"), 0, minimum=0)
        exchange.detail.update(segment=segment, page_start=page_start, page_size=page_size)
        if segment not in SEGMENTS:
            return json_response(
                {
                    "error": f"Unknown listing.config.id {segment!r}",
                    "inventory": [],
                    "pageInfo": {"totalCount": 0, "pageSize": page_size, "pageStart": page_start},
                }
            )

        lot = state.lot(PLATFORM_ID, dealer)
        listed = lot.of_condition(*SEGMENTS[segment]) if lot is not None else []
        offset = 0 if state.profile(dealer.id).ignore_page_start else page_start
        page = listed[offset : offset + page_size]
        exchange.n_vehicles = len(page)
        payload = {
            "inventory": [self.render(dealer, v) for v in page],
            "pageInfo": {"totalCount": len(listed), "pageSize": page_size, "pageStart": page_start},
        }
        return truncated_json_response(payload) if decision.malformed else json_response(payload)


def _as_int(value: Any, default: int, *, minimum: int = 1) -> int:
    """Widget preferences arrive as strings ("100"); anything unparseable falls back to the default."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return max(number, minimum)
