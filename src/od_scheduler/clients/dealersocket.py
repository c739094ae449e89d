"""DealerSocket inventory client (docs/contracts.md §6): paged XML behind an ``X-Api-Key`` header.

``GET /inventory/v2/<dealer_code>/vehicles?page=N`` answers ``<InventoryResponse>`` with a ``<Paging page
totalPages totalCount/>`` element and ``<Vehicles><Vehicle>...``. Pages are followed by number until the
last one (``totalPages``), the announced ``totalCount`` or an empty page; a page that repeats only VINs
already seen stops the pull and marks it incomplete (``client.report``).

XML is parsed with ``defusedxml`` and nothing else: a document type declaration, entity declarations and
external references are refused before anything is expanded or fetched, so a billion-laughs or XXE
document fails the dealer at once (``PayloadError``) instead of eating the worker's memory or reading its
files. A document that is not well-formed is fetched once more (a body cut off in transit usually is
transient), then is a ``PayloadError`` with a short excerpt. Namespaces are ignored: tags are matched by
local name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError  # types and errors only: defusedxml parses

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from pydantic import ValidationError

from od_scheduler.clients.auth import HeaderAuth
from od_scheduler.clients.http import BaseClient
from od_scheduler.clients.pagination import Page, PageNumberPaginator, PullReport
from od_scheduler.clients.redaction import excerpt
from od_scheduler.exceptions import ConfigError, PayloadError
from od_scheduler.models.dealer import summarize_validation_error
from od_scheduler.models.dealersocket import SOURCE, DealersocketVehicle
from od_scheduler.models.normalize import clean_str, parse_int
from od_scheduler.models.vin import normalize_vin

logger = logging.getLogger(__name__)

VEHICLES_PATH = "/inventory/v2/{dealer_code}/vehicles"


def vehicles_path(dealer_code: str) -> str:
    """The inventory path for ``dealer_code`` (percent-encoded: a code is never a path)."""
    return VEHICLES_PATH.format(dealer_code=quote(dealer_code, safe=""))


def parse_xml(content: bytes) -> Element:
    """The document's root, with namespaces stripped from tags; hardened against hostile XML.

    Raises ``DefusedXmlException`` for a DTD, an entity declaration or an external reference (before
    anything is expanded) and ``ParseError`` for a document that is not well-formed.
    """
    root = defused_fromstring(content, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.rsplit("}", 1)[1]
    return root


def vehicle_record(element: Element) -> dict[str, Any]:
    """A ``<Vehicle>`` as the dict :class:`DealersocketVehicle` validates.

    Child elements by name (the first of a repeated name wins), ``Price`` as ``[{type, value}]`` and
    ``Photos`` as the ``url`` attributes of its ``Photo`` children, in document order.
    """
    record: dict[str, Any] = {}
    prices: list[dict[str, str | None]] = []
    photos: list[str | None] = []
    for child in element:
        if child.tag == "Price":
            prices.append({"type": child.get("type"), "value": child.text})
        elif child.tag == "Photos":
            photos.extend(photo.get("url") for photo in child if photo.tag == "Photo")
        elif child.tag not in record:
            record[child.tag] = child.text
    record["Price"] = prices
    record["Photos"] = photos
    return record


def parse_page(root: Element, where: str) -> Page[DealersocketVehicle]:
    """An ``<InventoryResponse>`` as a page of raw vehicles; ``PayloadError`` for any other document."""
    if root.tag == "Error":
        message = clean_str(root.findtext("Message")) or "no message"
        raise PayloadError(f"{where}: DealerSocket answered with an error document: {excerpt(message)}")
    if root.tag != "InventoryResponse":
        raise PayloadError(f"{where}: expected an <InventoryResponse> document, got <{root.tag}>")
    listing = root.find("Vehicles")
    if listing is None:
        raise PayloadError(f"{where}: the response has no <Vehicles> element")
    vehicles = []
    for index, element in enumerate(listing.findall("Vehicle")):
        try:
            vehicles.append(DealersocketVehicle.model_validate(vehicle_record(element)))
        except ValidationError as err:  # the model is tolerant; this means the format changed
            raise PayloadError(f"{where}: vehicle {index}: {summarize_validation_error(err)}") from err
    paging = root.find("Paging")
    total = has_next = None
    if paging is not None:
        total = parse_int(paging.get("totalCount"))
        page, pages = parse_int(paging.get("page")), parse_int(paging.get("totalPages"))
        if page is not None and pages is not None:
            has_next = page < pages
    return Page(items=vehicles, total=total, has_next=has_next)


def _vin_key(vehicle: DealersocketVehicle) -> str | None:
    return normalize_vin(vehicle.vin)


class DealersocketClient(BaseClient):
    """Reads DealerSocket inventory pages (one client per connection; one dealer per call)."""

    def __init__(self, *, base_url: str, api_key: str, max_pages: int = 1000, **kw: Any) -> None:
        if not api_key:
            raise ConfigError("DealerSocket needs an API key: set the connection's password")
        kw.setdefault("service", SOURCE)
        super().__init__(
            base_url=base_url.rstrip("/"),
            auth=HeaderAuth("X-Api-Key", api_key),
            headers={"Accept": "application/xml"},
            **kw,
        )
        self.max_pages = max_pages
        self.report = PullReport()

    def get_xml(self, url: str, *, where: str, **kwargs: Any) -> Element:
        """GET and parse XML (hardened); a malformed document is fetched once more, a hostile one never."""
        for attempt in (1, 2):
            response = self.request("GET", url, **kwargs)
            try:
                return parse_xml(response.content)
            except DefusedXmlException as err:
                raise PayloadError(
                    f"{where}: refused a hostile XML document ({err}). DTDs, entity "
                    "declarations and external references are never processed; DealerSocket must send "
                    "plain XML for this dealer."
                ) from err
            except ParseError as err:
                body = excerpt(response.content, self.redactor)
                if attempt == 2:
                    raise PayloadError(
                        f"{where}: the response is not well-formed XML twice ({err}): {body}"
                    ) from err
                wait = self.retry.backoff(1)
                logger.warning(
                    "%s: the response is not well-formed XML (%s, %d bytes); retrying once in %.2fs",
                    where,
                    err,
                    len(response.content),
                    wait,
                )
                self.stats.retries += 1
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def fetch_page(self, dealer_code: str, page: int) -> Page[DealersocketVehicle]:
        """One page of the dealer's inventory, parsed."""
        where = f"dealersocket dealer {dealer_code!r} page {page}"
        root = self.get_xml(vehicles_path(dealer_code), where=where, params={"page": page})
        self.stats.pages += 1
        return parse_page(root, where)

    def iter_inventory(self, dealer_code: str) -> Iterator[DealersocketVehicle]:
        """Every vehicle of the dealer, lazily; then ``self.report`` tells whether the pull was complete."""
        self.report = PullReport()
        paginator: PageNumberPaginator[DealersocketVehicle] = PageNumberPaginator(
            partial(self.fetch_page, dealer_code), key=_vin_key, max_pages=self.max_pages
        )
        for page in paginator.iter_pages():
            logger.info(
                "dealersocket dealer %s page %d: %d vehicles, %d of %s so far",
                dealer_code,
                page.number,
                page.returned,
                paginator.items,
                page.total if page.total is not None else "?",
            )
            yield from page.items
        part = self.report.record("inventory", paginator, items=paginator.items)
        logger.info(
            "dealersocket dealer %s done: %d pages, %d vehicles, %d duplicate(s), totalCount %s, stopped: %s",
            dealer_code,
            part.pages,
            part.items,
            part.duplicates,
            part.total_count,
            part.stop_reason,
        )
        if not part.complete:
            logger.warning("dealersocket dealer %s: pull incomplete: %s", dealer_code, self.report.notes[-1])
