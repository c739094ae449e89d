"""DealerSocket inventory (CONTRACTS §6): ``GET /dealersocket/inventory/v2/<dealer_code>/vehicles?page=N``.

Header ``X-Api-Key: sandbox-dealersocket-key`` (missing or wrong: 401). XML, 50 vehicles a page::

    <InventoryResponse dealerCode="..."><Paging page="1" totalPages="2" totalCount="55" pageSize="50"/>
      <Vehicles><Vehicle><VIN>..</VIN>..<Price type="Internet">..</Price>..<Photos><Photo url=".."/></Photos>
      ..</Vehicle></Vehicles></InventoryResponse>

``page`` defaults to 1; a page past ``totalPages`` has an empty ``<Vehicles/>``; ``page`` that is not a
positive integer is 400; an unknown dealer code 404. Errors are ``<Error><Code/><Message/></Error>``.

Quirks served on purpose: the document is indented (text must be stripped); ``NewUsed`` is ``N``/``U`` and
certified pre-owned is ``U`` + ``Certified`` ``true``; the two ``Price`` elements come in either order
(decided per VIN); an unknown internet price is ``0.00`` or absent, used vehicles have no MSRP element;
photo URLs carry a query string whose ``&`` is escaped as ``&amp;`` in the ``url`` attribute; some vehicles
have an empty ``<Photos/>``; one ``DetailUrl`` in eight is empty.

The fault profile's ``hostile_xml`` serves, on every page, a hostile document instead: ``billion_laughs``
(nested internal entities that expand to gigabytes) or ``xxe`` (an external entity naming
``file:///etc/passwd``). ``malformed_first_n`` cuts the XML in half. The request log records the dealer
code, the page and (``hostile``) which hostile document was served.
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET  # the sandbox only writes XML; it never parses any
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response

from include.sandbox.dealers import DealerSpec
from include.sandbox.http import arrive
from include.sandbox.lots import SourceVehicle
from include.sandbox.platforms import Platform
from include.sandbox.state import Exchange, SandboxState

PLATFORM_ID = "dealersocket"
PREFIX = "/dealersocket"
API_KEY = "sandbox-dealersocket-key"
PAGE_SIZE = 50
MEDIA_TYPE = "application/xml"
#: Child elements of ``<Vehicle>`` in document order (``Price`` and ``Photos`` are rendered specially).
FIELDS: tuple[str, ...] = (
    "VIN",
    "StockNumber",
    "NewUsed",
    "Certified",
    "Year",
    "Make",
    "Model",
    "Trim",
    "Odometer",
    "Price",
    "ExteriorColor",
    "InteriorColor",
    "Body",
    "Drivetrain",
    "Transmission",
    "Fuel",
    "Photos",
    "DetailUrl",
)

BILLION_LAUGHS = b"""\
<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE InventoryResponse [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<InventoryResponse><Paging page="1" totalPages="1" totalCount="1" pageSize="50"/>
<Vehicles><Vehicle><VIN>&lol9;</VIN></Vehicle></Vehicles></InventoryResponse>
"""
"""The classic: ``&lol9;`` expands to 10**9 ``lol``s (3 GB) in a parser that expands entities."""

XXE = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<!DOCTYPE InventoryResponse [\n  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
    b'<InventoryResponse><Paging page="1" totalPages="1" totalCount="1" pageSize="50"/>'
    b"<Vehicles><Vehicle><VIN>1HGCM82633A004352</VIN><Make>&xxe;</Make></Vehicle></Vehicles>"
    b"</InventoryResponse>\n"
)
"""An external entity: a parser that resolves it puts the server's ``/etc/passwd`` into ``Make``."""

HOSTILE: dict[str, bytes] = {"billion_laughs": BILLION_LAUGHS, "xxe": XXE}


def _digest(vin: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{vin}".encode()).digest()[:8], "big")


def _xml(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def error_document(code: int, message: str) -> bytes:
    """DealerSocket's error body."""
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = str(code)
    ET.SubElement(root, "Message").text = message
    return _xml(root)


def _error(code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_document(code, message), status_code=code, headers=headers, media_type=MEDIA_TYPE)


class DealersocketPlatform(Platform):
    """Renders lots as DealerSocket XML vehicles and serves the paged inventory endpoint."""

    platform_id: ClassVar[str] = PLATFORM_ID

    @staticmethod
    def dealer_code(dealer: DealerSpec) -> str:
        return str(dealer.platforms[PLATFORM_ID]["dealer_code"])

    def render(self, dealer: DealerSpec, vehicle: SourceVehicle) -> dict[str, Any]:
        """One vehicle's element values by tag: ``Price`` a list of ``{type, value}``, ``Photos`` of URLs."""
        v = vehicle
        prices: list[dict[str, str]] = []
        if v.price:
            prices.append({"type": "Internet", "value": f"{v.price:.2f}"})
        elif _digest(v.vin, "unknown") % 2:
            prices.append({"type": "Internet", "value": "0.00"})
        if v.msrp:
            prices.append({"type": "MSRP", "value": f"{v.msrp:.2f}"})
        if _digest(v.vin, "price-order") % 3 == 0:
            prices.reverse()
        detail = ""
        if _digest(v.vin, "detail") % 8:
            name = f"{v.year}-{v.make}-{v.model}".replace(" ", "-")
            detail = f"https://{dealer.domain}/inventory/{v.vin}/{name}"
        return {
            "VIN": v.vin,
            "StockNumber": v.stock_number,
            "NewUsed": "N" if v.condition == "new" else "U",
            "Certified": "true" if v.condition == "certified" else "false",
            "Year": str(v.year),
            "Make": v.make,
            "Model": v.model,
            "Trim": v.trim,
            "Odometer": str(v.mileage),
            "Price": prices,
            "ExteriorColor": v.exterior_color,
            "InteriorColor": v.interior_color,
            "Body": v.body_style,
            "Drivetrain": v.drivetrain,
            "Transmission": v.transmission,
            "Fuel": v.fuel_type,
            "Photos": [
                f"https://img.dealersocket.test/{self.dealer_code(dealer)}/{v.vin}/{n:02d}.jpg?w=1024&h=768"
                for n in range(1, v.image_count + 1)
            ],
            "DetailUrl": detail,
        }

    def page_document(self, dealer: DealerSpec, vehicles: list[SourceVehicle], page: int) -> bytes:
        """Page ``page`` (1-based) of ``vehicles`` as an ``InventoryResponse`` document."""
        total_pages = max(math.ceil(len(vehicles) / PAGE_SIZE), 1)
        root = ET.Element("InventoryResponse", dealerCode=self.dealer_code(dealer))
        ET.SubElement(
            root,
            "Paging",
            page=str(page),
            totalPages=str(total_pages),
            totalCount=str(len(vehicles)),
            pageSize=str(PAGE_SIZE),
        )
        listing = ET.SubElement(root, "Vehicles")
        for vehicle in vehicles[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
            record = self.render(dealer, vehicle)
            element = ET.SubElement(listing, "Vehicle")
            for tag in FIELDS:
                if tag == "Price":
                    for price in record["Price"]:
                        ET.SubElement(element, "Price", type=price["type"]).text = price["value"]
                elif tag == "Photos":
                    photos = ET.SubElement(element, "Photos")
                    for url in record["Photos"]:
                        ET.SubElement(photos, "Photo", url=url)
                else:
                    ET.SubElement(element, tag).text = record[tag] or None
        return _xml(root)

    def airflow_connection(self, base_url: str) -> dict[str, Any]:
        """The scheduler's connection here: the XML API and its key."""
        return {"conn_type": "http", "host": f"{base_url}{PREFIX}", "password": API_KEY}

    def router(self, state: SandboxState) -> APIRouter:
        router = APIRouter(prefix=PREFIX, tags=["dealersocket"])

        @router.get("/inventory/v2/{dealer_code}/vehicles")
        async def vehicles(dealer_code: str, request: Request) -> Response:
            exchange = state.begin(request, "dealersocket")
            response = await self._vehicles(state, exchange, dealer_code, request)
            state.finish(exchange, response.status_code)
            return response

        return router

    def _dealer_for_code(self, state: SandboxState, code: str) -> DealerSpec | None:
        for dealer in state.dealers:
            if PLATFORM_ID in dealer.platforms and self.dealer_code(dealer) == code:
                return dealer
        return None

    async def _vehicles(
        self, state: SandboxState, exchange: Exchange, dealer_code: str, request: Request
    ) -> Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return _error(401, "Invalid or missing X-Api-Key")
        raw_page = request.query_params.get("page", "1")
        exchange.detail.update(dealer_code=dealer_code, page=raw_page)
        if not raw_page.isdigit() or int(raw_page) < 1:
            return _error(400, f"page must be a positive integer, got {raw_page!r}")
        page = int(raw_page)
        exchange.detail["page"] = page
        dealer = self._dealer_for_code(state, dealer_code)
        if dealer is None:
            return _error(404, f"Unknown dealer code {dealer_code!r}")
        exchange.for_dealer(dealer)
        decision = await arrive(state, dealer.id)
        if decision.fails:
            return _error(
                decision.status_code or 500, decision.error_message(dealer.slug), decision.headers()
            )
        hostile = state.profile(dealer.id).hostile_xml
        if hostile is not None:
            exchange.detail["hostile"] = hostile
            return Response(HOSTILE[hostile], media_type=MEDIA_TYPE)
        lot = state.lot(PLATFORM_ID, dealer)
        listed = lot.vehicles if lot is not None else []
        body = self.page_document(dealer, listed, page)
        exchange.n_vehicles = len(listed[(page - 1) * PAGE_SIZE : page * PAGE_SIZE])
        if decision.malformed:
            body = body[: max(len(body) // 2, 1)]  # a document cut off mid-transfer
        return Response(body, media_type=MEDIA_TYPE)
