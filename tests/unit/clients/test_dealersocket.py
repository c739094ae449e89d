"""DealersocketClient against a fake XML API (docs/contracts.md §6): paging, hardened parsing, hostile XML."""

from __future__ import annotations

import logging
import time
import tracemalloc
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx
import pytest
from defusedxml import DTDForbidden

from od_scheduler.clients.dealersocket import DealersocketClient, vehicles_path
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import PayloadError, PermanentUpstreamError
from od_scheduler.models.vin import check_digit

from .conftest import FakeClock

pytestmark = pytest.mark.unit

BASE = "https://api.dealersocket.test"
API_KEY = "ds-api-key-5be0a4"
CODE = "CSTMZD01"


def vin(n: int) -> str:
    draft = f"JM3KFBCM0P0{n:06d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def vehicle_xml(n: int, **over: str) -> str:
    fields = {"VIN": vin(n), "StockNumber": f"M{n}", "NewUsed": "U", "Certified": "false", "Make": "Mazda"}
    fields.update(over)
    children = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in fields.items())
    photo = quoteattr(f"https://img.test/{n}.jpg?w=640&h=480")
    price = f'<Price type="Internet">{20000 + n}.00</Price>'
    return f"<Vehicle>{children}{price}<Photos><Photo url={photo}/></Photos></Vehicle>"


def page_xml(numbers: list[int], page: int, total_pages: int | None, total: int | None) -> bytes:
    paging = ""
    if total_pages is not None:
        paging = f'<Paging page="{page}" totalPages="{total_pages}" totalCount="{total}" pageSize="50"/>'
    vehicles = "".join(vehicle_xml(n) for n in numbers)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<InventoryResponse dealerCode="{CODE}">{paging}'
        f"<Vehicles>{vehicles}</Vehicles></InventoryResponse>"
    ).encode()


class FakeApi:
    """``count`` vehicles, 50 a page; ``paging`` False leaves the Paging element out."""

    def __init__(self, count: int, *, paging: bool = True) -> None:
        self.count = count
        self.paging = paging
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.path == vehicles_path(CODE)
        if request.headers.get("X-Api-Key") != API_KEY:
            return httpx.Response(401, content=b"<Error><Code>401</Code><Message>bad key</Message></Error>")
        page = int(request.url.params["page"])
        numbers = list(range(self.count))[(page - 1) * 50 : page * 50]
        total_pages = max(-(-self.count // 50), 1) if self.paging else None
        return httpx.Response(200, content=page_xml(numbers, page, total_pages, self.count))

    def pages(self) -> list[str]:
        return [r.url.params["page"] for r in self.requests]


def serve(*bodies: bytes) -> tuple[list[httpx.Request], Any]:
    """A handler answering each request with the next body (200, application/xml)."""
    seen: list[httpx.Request] = []
    queue = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=queue.pop(0), headers={"Content-Type": "application/xml"})

    return seen, handler


def make_client(handler: Any, clock: FakeClock, **kw: Any) -> DealersocketClient:
    kw.setdefault("api_key", API_KEY)
    return DealersocketClient(
        base_url=BASE,
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(max_attempts=3, jitter=False),
        conn_id="od_dealersocket",
        **kw,
    )


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE InventoryResponse [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
        for n in range(1, 10)
    )
    + b"]>\n<InventoryResponse><Vehicles><Vehicle><VIN>&lol9;</VIN></Vehicle></Vehicles></InventoryResponse>"
)


def xxe(path: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE InventoryResponse [<!ENTITY xxe SYSTEM "file://{path}">]>\n'
        "<InventoryResponse><Vehicles><Vehicle><VIN>1HGCM82633A004352</VIN><Make>&xxe;</Make>"
        "</Vehicle></Vehicles></InventoryResponse>"
    ).encode()


def test_pages_follow_the_paging_element(clock: FakeClock) -> None:
    api = FakeApi(120)
    client = make_client(api, clock)
    vehicles = list(client.iter_inventory(CODE))

    assert [v.vin for v in vehicles] == [vin(n) for n in range(120)]
    assert api.pages() == ["1", "2", "3"]
    assert all(r.headers["X-Api-Key"] == API_KEY for r in api.requests)
    assert client.report.complete
    part = client.report.segments["inventory"]
    assert (part.pages, part.items, part.total_count, part.stop_reason) == (3, 120, 120, "last_page")
    assert client.stats.pages == 3


def test_without_a_paging_element_pages_run_until_an_empty_one(clock: FakeClock) -> None:
    api = FakeApi(60, paging=False)
    client = make_client(api, clock)
    assert len(list(client.iter_inventory(CODE))) == 60
    assert api.pages() == ["1", "2", "3"]
    assert client.report.complete
    assert client.report.segments["inventory"].stop_reason == "empty_page"


def test_an_empty_lot_is_one_request(clock: FakeClock) -> None:
    api = FakeApi(0)
    client = make_client(api, clock)
    assert list(client.iter_inventory(CODE)) == []
    assert api.pages() == ["1"]
    assert client.report.complete


def test_a_dealer_code_is_never_a_path(clock: FakeClock) -> None:
    seen, handler = serve(page_xml([], 1, 1, 0))
    list(make_client(handler, clock).iter_inventory("A/../B C"))
    assert seen[0].url.raw_path.startswith(b"/inventory/v2/A%2F..%2FB%20C/vehicles?page=1")


def test_a_billion_laughs_document_fails_fast_with_a_payload_error(
    clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    seen, handler = serve(BILLION_LAUGHS, BILLION_LAUGHS)
    client = make_client(handler, clock)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(PayloadError) as info:
        list(client.iter_inventory(CODE))
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Measured, not asserted (timing targets live in bench/): about a millisecond and well under 1 MiB.
    request.node.user_properties += [("seconds", round(elapsed, 4)), ("peak_bytes", peak)]

    message = str(info.value)
    assert message.startswith(f"dealersocket dealer '{CODE}' page 1: refused a hostile XML document")
    assert "DTDForbidden" in message
    # Refused at the document type declaration, before a single entity was declared or expanded.
    assert isinstance(info.value.__cause__, DTDForbidden)
    assert len(seen) == 1  # a hostile document is not fetched again
    assert client.stats.retries == 0


def test_an_xxe_document_fails_fast_and_reads_nothing(
    clock: FakeClock, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    secret_file = tmp_path / "passwd"
    secret_file.write_text("root:x:0:0:TOP-SECRET-MARKER\n")
    seen, handler = serve(xxe(str(secret_file)))
    started = time.perf_counter()
    with pytest.raises(PayloadError) as info:
        list(make_client(handler, clock).iter_inventory(CODE))
    request.node.user_properties.append(("seconds", round(time.perf_counter() - started, 4)))

    assert "refused a hostile XML document (DTDForbidden" in str(info.value)
    assert "TOP-SECRET-MARKER" not in str(info.value)
    assert isinstance(info.value.__cause__, DTDForbidden)
    assert len(seen) == 1


def test_an_external_dtd_is_refused_without_fetching_it(clock: FakeClock) -> None:
    document = (
        b'<?xml version="1.0"?>\n<!DOCTYPE InventoryResponse SYSTEM "http://evil.test/inventory.dtd">\n'
        b"<InventoryResponse><Vehicles/></InventoryResponse>"
    )
    seen, handler = serve(document)  # a fetch of the DTD would be a second request: serve() has none
    with pytest.raises(PayloadError, match="refused a hostile XML document"):
        list(make_client(handler, clock).iter_inventory(CODE))
    assert [str(r.url.host) for r in seen] == ["api.dealersocket.test"]


def test_a_truncated_document_is_fetched_once_more(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    whole = page_xml([1, 2], 1, 1, 2)
    seen, handler = serve(whole[: len(whole) // 2], whole)
    client = make_client(handler, clock)
    with caplog.at_level(logging.WARNING):
        assert [v.vin for v in client.iter_inventory(CODE)] == [vin(1), vin(2)]
    assert len(seen) == 2
    assert client.stats.retries == 1
    assert clock.sleeps == [0.5]
    assert "not well-formed XML" in caplog.text


def test_a_document_malformed_twice_is_a_payload_error_with_an_excerpt(clock: FakeClock) -> None:
    seen, handler = serve(b"<InventoryResponse><Vehicles>", b"<html>Service Unavailable</html")
    with pytest.raises(PayloadError, match=r"not well-formed XML twice .*<html>Service Unavailable"):
        list(make_client(handler, clock).iter_inventory(CODE))
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<Error><Code>500</Code><Message>Dealer feed disabled</Message></Error>", "error document: Dealer"),
        (b"<Inventory/>", "expected an <InventoryResponse> document, got <Inventory>"),
        (b"<InventoryResponse><Paging page='1'/></InventoryResponse>", "no <Vehicles> element"),
    ],
)
def test_other_documents_are_payload_errors(clock: FakeClock, document: bytes, message: str) -> None:
    _, handler = serve(document)
    with pytest.raises(PayloadError, match=message):
        list(make_client(handler, clock).iter_inventory(CODE))


def test_namespaces_are_ignored_and_predefined_entities_decoded(clock: FakeClock) -> None:
    document = (
        b'<InventoryResponse xmlns="urn:dealersocket:inventory:v2"><Paging page="1" totalPages="1"/>'
        b"<Vehicles><Vehicle><VIN> 1HGCM82633A004352 </VIN><Trim>Sport &amp; Tech</Trim>"
        b'<Photos><Photo url="https://img.test/1.jpg?w=1&amp;h=2"/></Photos></Vehicle></Vehicles>'
        b"</InventoryResponse>"
    )
    _, handler = serve(document)
    (vehicle,) = make_client(handler, clock).iter_inventory(CODE)
    assert (vehicle.vin, vehicle.trim, vehicle.photos) == (
        "1HGCM82633A004352",
        "Sport & Tech",
        ["https://img.test/1.jpg?w=1&h=2"],
    )


def test_a_refused_api_key_is_permanent_and_never_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeApi(10)
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentUpstreamError) as info:
        list(make_client(api, clock, api_key="ds-wrong-key-123").iter_inventory(CODE))
    assert "HTTP 401" in str(info.value)
    assert "connection 'od_dealersocket'" in str(info.value)
    assert len(api.requests) == 1
    assert "ds-wrong-key-123" not in caplog.text + str(info.value)
