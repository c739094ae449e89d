"""Cobalt inventory feeds (CONTRACTS §7): ``GET /cobalt/feeds/<dealer_code>/inventory.csv``.

HTTP Basic auth ``sandbox-cobalt`` / ``sandbox-cobalt-pass`` (missing or wrong: 401 with
``WWW-Authenticate``). Every 200 carries a strong ``ETag`` derived from the feed's bytes, so the same lot
always has the same ETag (also after a reset) and any lot change gives a new one; a request whose
``If-None-Match`` matches gets ``304 Not Modified`` with no body.

Quirks served on purpose, as Cobalt's exporter writes them:

- UTF-8 with a byte-order mark, CRLF line ends, the contract's header row;
- quoted fields with commas: about half the ``Trim`` values carry the drivetrain (``"LT, AWD"``),
  ``Miles`` has thousands separators (``"34,512"``), prices look like ``"$25,999.00"``;
- unknown prices alternate between ``""`` and ``"$0.00"``; used vehicles have an empty ``MSRP``;
- ``Type`` is ``New``/``Used``/``Certified``; ``ImageURLs`` is one field of URLs joined by ``|`` (empty when
  the vehicle has no photos); some ``VDPURL`` values are empty.

The request log records the dealer code, the ``If-None-Match`` sent and the ``ETag`` served.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response

from include.sandbox.dealers import DealerSpec
from include.sandbox.http import arrive, json_response
from include.sandbox.lots import Lot, SourceVehicle
from include.sandbox.platforms import Platform
from include.sandbox.state import Exchange, SandboxState

PLATFORM_ID = "cobalt"
PREFIX = "/cobalt"
LOGIN = "sandbox-cobalt"
PASSWORD = "sandbox-cobalt-pass"
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
BOM = "\ufeff"


def _digest(vin: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{vin}".encode()).digest()[:8], "big")


def _money(dollars: int | None, unknown: str) -> str:
    return f"${dollars:,.2f}" if dollars else unknown


def etag_of(body: bytes) -> str:
    """A strong ETag of the feed's bytes."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or any listed tag equal to ``etag`` (weak comparison)."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


class CobaltPlatform(Platform):
    """Renders lots as Cobalt CSV rows and serves each dealer's feed."""

    platform_id: ClassVar[str] = PLATFORM_ID

    @staticmethod
    def dealer_code(dealer: DealerSpec) -> str:
        return str(dealer.platforms[PLATFORM_ID]["dealer_code"])

    def render(self, dealer: DealerSpec, vehicle: SourceVehicle) -> dict[str, Any]:
        """One feed row, by column."""
        v = vehicle
        unknown = "$0.00" if _digest(v.vin, "unknown") % 2 else ""
        trim = f"{v.trim}, {v.drivetrain}" if _digest(v.vin, "trim") % 2 else v.trim
        vdp = ""
        if _digest(v.vin, "vdp") % 8:
            vdp = f"https://{dealer.domain}/inventory/{v.condition}-{v.year}-{v.make}-{v.model}-{v.vin}"
            vdp = vdp.replace(" ", "-")
        images = [
            f"https://cdn.cobalt.test/{self.dealer_code(dealer)}/{v.vin}/{n:02d}.jpg"
            for n in range(1, v.image_count + 1)
        ]
        return {
            "VIN": v.vin,
            "Stock": v.stock_number,
            "Type": v.condition.capitalize(),
            "Year": str(v.year),
            "Make": v.make,
            "Model": v.model,
            "Trim": trim,
            "Body": v.body_style,
            "ExtColor": v.exterior_color,
            "IntColor": v.interior_color,
            "Miles": f"{v.mileage:,}",
            "SellingPrice": _money(v.price, unknown),
            "MSRP": _money(v.msrp, unknown if v.condition == "new" else ""),
            "Transmission": v.transmission,
            "Drivetrain": v.drivetrain,
            "FuelType": v.fuel_type,
            "ImageURLs": "|".join(images),
            "VDPURL": vdp,
        }

    def feed(self, dealer: DealerSpec, lot: Lot | None) -> bytes:
        """The whole feed: BOM, header, one CRLF-terminated row per vehicle."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        for vehicle in lot.vehicles if lot is not None else []:
            writer.writerow(self.render(dealer, vehicle))
        return (BOM + out.getvalue()).encode("utf-8")

    def airflow_connection(self, base_url: str) -> dict[str, Any]:
        """The scheduler's connection here: the feed server with its Basic-auth credentials."""
        return {"conn_type": "http", "host": f"{base_url}{PREFIX}", "login": LOGIN, "password": PASSWORD}

    def router(self, state: SandboxState) -> APIRouter:
        router = APIRouter(prefix=PREFIX, tags=["cobalt"])

        @router.get("/feeds/{dealer_code}/inventory.csv")
        async def inventory(dealer_code: str, request: Request) -> Response:
            exchange = state.begin(request, "cobalt")
            response = await self._inventory(state, exchange, dealer_code, request)
            state.finish(exchange, response.status_code)
            return response

        return router

    def _dealer_for_code(self, state: SandboxState, code: str) -> DealerSpec | None:
        for dealer in state.dealers:
            if PLATFORM_ID in dealer.platforms and self.dealer_code(dealer) == code:
                return dealer
        return None

    @staticmethod
    def _authorized(request: Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (login, password) == (LOGIN, PASSWORD)

    async def _inventory(
        self, state: SandboxState, exchange: Exchange, dealer_code: str, request: Request
    ) -> Response:
        if not self._authorized(request):
            return Response(
                "Unauthorized",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="Cobalt inventory feeds"'},
                media_type="text/plain",
            )
        if_none_match = request.headers.get("If-None-Match")
        exchange.detail.update(dealer_code=dealer_code, if_none_match=if_none_match)
        dealer = self._dealer_for_code(state, dealer_code)
        if dealer is None:
            return json_response({"error": f"No Cobalt feed for dealer code {dealer_code!r}"}, 404)
        exchange.for_dealer(dealer)
        decision = await arrive(state, dealer.id)
        if decision.fails:
            return json_response(
                {"error": decision.error_message(dealer.slug)},
                decision.status_code or 500,
                decision.headers(),
            )
        lot = state.lot(PLATFORM_ID, dealer)
        body = self.feed(dealer, lot)
        etag = etag_of(body)
        exchange.detail["etag"] = etag
        if etag_matches(if_none_match, etag):
            exchange.n_vehicles = 0
            return Response(status_code=304, headers={"ETag": etag})
        exchange.n_vehicles = len(lot) if lot is not None else 0
        if decision.malformed:
            body = body[: max(len(body) // 2, 1)]  # a feed cut off mid-transfer
        return Response(body, status_code=200, headers={"ETag": etag}, media_type="text/csv; charset=utf-8")
