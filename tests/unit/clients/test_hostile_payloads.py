"""Property-based: whatever an upstream or the CMS sends, each record ends as a vehicle or a counted reject,
or the whole response is a ``PayloadError`` -- never another exception, never a hang.

Every client parser is fed through its real request path (a ``MockTransport`` answering every request
with the generated body), and every raw model through ``model_validate`` + ``to_vehicle``. Bodies mix
well-formed envelopes holding hostile values (wrong types, huge and non-finite numbers, NUL bytes, BOMs,
lone surrogates escaped in JSON) with hostile documents (deep nesting, invalid UTF-8, truncation, DTDs and
entities, random bytes). Examples are few and small so each test stays within a few seconds.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from od_scheduler.clients.apify import ApifyClient
from od_scheduler.clients.cobalt import CobaltClient
from od_scheduler.clients.dealer_com import DealerComClient
from od_scheduler.clients.dealersocket import DealersocketClient
from od_scheduler.clients.homenet import HomenetClient
from od_scheduler.clients.payload_cms import PayloadCmsClient
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.clients.vinsolutions import VinsolutionsClient
from od_scheduler.exceptions import PayloadError, RecordRejected
from od_scheduler.models.cobalt import COLUMNS, CobaltVehicle
from od_scheduler.models.dealer import Dealer, InvalidDealer
from od_scheduler.models.dealer_com import DealerComVehicle
from od_scheduler.models.dealersocket import DealersocketVehicle
from od_scheduler.models.homenet import HomenetVehicle
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.models.vinsolutions import VinsolutionsVehicle
from od_scheduler.models.web_scraping import ScrapedVehicle

pytestmark = pytest.mark.unit

HOSTILE = settings(
    max_examples=40,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)

VALID_VIN = "1HGCM82633A004352"
NASTY_STRINGS = [
    "",
    " ",
    "0",
    "$0",
    "N/A",
    "\x00",
    "1HGCM82633A004352\x00",
    "\ufeff" + VALID_VIN,
    "1e999999999",
    "-1e999999999",
    "9" * 5000,
    "1" + "0" * 400 + " mi",
    "$1e400",
    "NaN",
    "Infinity",
    "-0",
    "0x1F",
    "١٢٣",  # Arabic-Indic digits
    "12/31/9999",
    "00/24/2025",
    "9999-99-99T99:99:99Z",
    "javascript:alert(1)",
    "//evil.example/x.jpg",
    "http://[::1",
    "https://" + "a" * 3000 + ".example/",
    "<!channel>",
    "\U0010ffff",
    "Civic \ud800 Sport",  # a lone surrogate: JSON may escape one, UTF-8 cannot carry it
    "a|b|c" * 50,
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**300, -(10**300), 1e308, -1e308]),
    st.text(max_size=30),
    st.sampled_from(NASTY_STRINGS),
    st.just(VALID_VIN),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def keys_of(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def records(model: type[BaseModel], values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[Any]:
    """Dicts with the model's keys (some) holding any values, plus the odd non-dict."""
    keys = keys_of(model)
    as_dict = st.dictionaries(st.sampled_from(keys) | st.text(max_size=5), values, max_size=len(keys) + 2)
    return st.one_of(as_dict, as_dict, as_dict, json_values)


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def mangle(body: bytes) -> st.SearchStrategy[bytes]:
    """The body as is, with a BOM, truncated, with invalid UTF-8 or a NUL spliced in."""
    return st.one_of(
        st.just(body),
        st.just(codecs.BOM_UTF8 + body),
        st.integers(min_value=0, max_value=max(len(body) - 1, 0)).map(lambda n: body[:n]),
        st.integers(min_value=0, max_value=len(body)).map(lambda n: body[:n] + b"\xff\xfe\xc3" + body[n:]),
        st.integers(min_value=0, max_value=len(body)).map(lambda n: body[:n] + b"\x00" + body[n:]),
    )


def json_bodies(envelope: Callable[[list[Any]], Any], model: type[BaseModel]) -> st.SearchStrategy[bytes]:
    well_formed = st.lists(records(model), max_size=4).map(
        lambda items: json.dumps(envelope(items), allow_nan=True).encode()
    )
    return st.one_of(
        well_formed.flatmap(mangle),
        json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
        st.sampled_from(
            [deep(100_000), b'{"a":' * 50_000, b"1" * 5000, b"\xef\xbb\xbf\xef\xbb\xbf{}", b"\x00"]
        ),
        st.binary(max_size=200),
    )


def outcome(build: Callable[[], Iterable[Any]], to_vehicle: Callable[[Any], Vehicle]) -> None:
    """Run a parse; every record must become a Vehicle or RecordRejected; the only other end: PayloadError."""
    try:
        raws = list(build())
    except PayloadError:
        return
    for raw in raws:
        try:
            vehicle = to_vehicle(raw)
        except RecordRejected as rejected:
            reasons = [rejected.reason]  # a counted reject: it must carry its reason code
            assert all(reasons)
            continue
        assert isinstance(vehicle, Vehicle)
        json.dumps(vehicle.to_api(), ensure_ascii=False).encode("utf-8")  # as staged and sent
        vehicle.content_hash()


def answering(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(200, json={"access_token": "tok-123456", "expires_in": 3600})
        return httpx.Response(200, content=body, headers={"Content-Type": content_type, **(headers or {})})

    return httpx.MockTransport(handler)


COMMON: dict[str, Any] = {
    "retry": RetryPolicy(max_attempts=2, base_delay=0, max_delay=0, jitter=False),
    "sleep": lambda _s: None,
}


# -- JSON clients ------------------------------------------------------------------------------------
@HOSTILE
@given(
    json_bodies(lambda items: {"inventory": items, "pageInfo": {"totalCount": len(items)}}, DealerComVehicle)
)
def test_dealer_com_pages(body: bytes) -> None:
    client = DealerComClient(
        base_url="https://www.dealer.test",
        transport=answering(body, "application/json"),
        requests_per_second=None,
        max_pages_per_segment=3,
        **COMMON,
    )
    with client:
        outcome(
            lambda: client.iter_inventory("site"),
            lambda raw: raw.to_vehicle(dealer_id="d-1", base_url="https://www.dealer.test"),
        )


@HOSTILE
@given(json_bodies(lambda items: {"items": items, "totalItems": len(items)}, VinsolutionsVehicle))
def test_vinsolutions_pages(body: bytes) -> None:
    client = VinsolutionsClient(
        base_url="https://gw.vs.test",
        client_id="c",
        client_secret="secret-1",
        token_url="https://auth.vs.test/oauth/token",
        api_key="key-1234",
        transport=answering(body, "application/json"),
        max_pages=3,
        **COMMON,
    )
    with client:
        outcome(lambda: client.iter_inventory("D-1"), lambda raw: raw.to_vehicle(dealer_id="d-1"))


@HOSTILE
@given(json_bodies(lambda items: {"rooftop": "R1", "vehicles": items}, HomenetVehicle))
def test_homenet_rooftop(body: bytes) -> None:
    client = HomenetClient(
        base_url="https://soap.test",
        token="token-1234",
        integration_token="integration-1",
        transport=answering(body, "application/json"),
        **COMMON,
    )
    with client:
        outcome(lambda: client.iter_inventory("R1"), lambda raw: raw.to_vehicle(dealer_id="d-1"))


@HOSTILE
@given(json_bodies(lambda items: items, ScrapedVehicle), st.sampled_from(["3", "", "x", "9" * 5000, "-1"]))
def test_apify_dataset_items(body: bytes, total: str) -> None:
    client = ApifyClient(
        base_url="https://api.apify.test",
        token="apify-token-1",
        transport=answering(body, "application/json", {"X-Apify-Pagination-Total": total}),
        max_pages=3,
        **COMMON,
    )
    with client:
        outcome(
            lambda: client.iter_items("ds-1"),
            lambda raw: raw.to_vehicle(dealer_id="d-1", base_url="https://www.dealer.test/inventory"),
        )


DEALER_KEYS = [
    "id",
    "name",
    "slug",
    "domain",
    "status",
    "timezone",
    "platforms",
    "schedule",
    "homenet_config",
    "dealer_com_config",
    "web_scraping_config",
    "vinsolutions_config",
    "dealersocket_config",
    "cobalt_config",
]


@HOSTILE
@given(
    st.one_of(
        st.lists(
            st.dictionaries(st.sampled_from(DEALER_KEYS), json_values, max_size=8) | json_values, max_size=3
        ).map(
            lambda docs: json.dumps(
                {"docs": docs, "totalDocs": len(docs), "hasNextPage": False, "page": 1}, allow_nan=True
            ).encode()
        ),
        json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
        st.sampled_from([deep(100_000), b"\xff\xfe{}"]),
    )
)
def test_payload_cms_dealer_documents(body: bytes) -> None:
    client = PayloadCmsClient(
        base_url="https://cms.test",
        api_key="cms-key-1",
        transport=answering(body, "application/json"),
        **COMMON,
    )
    with client:
        try:
            dealers = list(client.iter_dealers(platform="dealer.com"))
        except PayloadError:
            return
    for dealer in dealers:
        assert isinstance(dealer, Dealer | InvalidDealer)


# -- Cobalt CSV --------------------------------------------------------------------------------------
def csv_cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, allow_nan=True)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


csv_values = st.one_of(st.text(max_size=20), st.sampled_from(NASTY_STRINGS), st.just(VALID_VIN))


@st.composite
def csv_feeds(draw: st.DrawFn) -> bytes:
    header = draw(
        st.lists(st.sampled_from(COLUMNS) | st.text(max_size=6), min_size=0, max_size=len(COLUMNS) + 2)
    )
    rows = draw(st.lists(st.lists(csv_values, max_size=len(header) + 2), max_size=4))
    text = "\r\n".join(",".join(csv_cell(c) for c in line) for line in [header, *rows])
    return draw(mangle(text.encode("utf-8", errors="surrogatepass")))


@HOSTILE
@given(
    st.one_of(csv_feeds(), st.binary(max_size=300), st.sampled_from([b'"' * 1000, b"VIN\n" + b"x" * 200_000]))
)
def test_cobalt_feed(body: bytes) -> None:
    client = CobaltClient(
        base_url="https://feeds.test",
        login="od",
        password="cobalt-pw",
        transport=answering(body, "text/csv"),
        **COMMON,
    )
    with client:
        outcome(lambda: client.iter_inventory("ACME"), lambda raw: raw.to_vehicle(dealer_id="d-1"))


def test_cobalt_a_header_of_a_million_columns_is_a_payload_error_not_a_memory_blowup() -> None:
    body = ("VIN," + ",".join(f"c{i}" for i in range(1_000_000)) + "\r\n" + VALID_VIN + "\r\n").encode()
    client = CobaltClient(
        base_url="https://feeds.test", login="od", password="cobalt-pw", transport=answering(body, "text/csv")
    )
    with client, pytest.raises(PayloadError, match="columns"):
        list(client.iter_inventory("ACME"))


# -- DealerSocket XML --------------------------------------------------------------------------------
XML_ODDITIES = [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>',
    b'<!DOCTYPE r SYSTEM "file:///etc/passwd"><r/>',
    b'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/></r>',
    b"<InventoryResponse><Vehicles><Vehicle><VIN><![CDATA[" + VALID_VIN.encode() + b"]]></VIN></Vehicle>"
    b"</Vehicles></InventoryResponse>",
    b'<?xml version="1.0" encoding="UTF-16"?><InventoryResponse/>',
    b"<InventoryResponse>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</InventoryResponse>",
    b"<?pi data?><InventoryResponse><Vehicles/></InventoryResponse><!-- trailing -->",
    b"<Error><Message>" + b"x" * 5000 + b"</Message></Error>",
    b"\xef\xbb\xbf<InventoryResponse><Vehicles/></InventoryResponse>",
    b"<InventoryResponse><Vehicles><Vehicle>\x00</Vehicle></Vehicles></InventoryResponse>",
]


def xml_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, allow_nan=True)
    # XML 1.0 cannot carry most control characters even escaped: a real document would not have them either.
    return escape("".join(c for c in text if c in "\t\n\r" or (ord(c) >= 0x20 and c not in "\ufffe\uffff")))


@st.composite
def xml_documents(draw: st.DrawFn) -> bytes:
    vehicles = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        fields = draw(st.dictionaries(st.sampled_from(keys_of(DealersocketVehicle)), csv_values, max_size=8))
        children = "".join(
            f"<{name}>{xml_text(value)}</{name}>"
            for name, value in fields.items()
            if name not in ("Price", "Photos")
        )
        prices = "".join(
            f"<Price type={quoteattr(xml_text(kind))}>{xml_text(value)}</Price>"
            for kind, value in draw(
                st.lists(st.tuples(st.sampled_from(["Internet", "MSRP", ""]), csv_values), max_size=2)
            )
        )
        photos = "".join(
            f"<Photo url={quoteattr(xml_text(url))}/>" for url in draw(st.lists(csv_values, max_size=2))
        )
        vehicles.append(f"<Vehicle>{children}{prices}<Photos>{photos}</Photos></Vehicle>")
    page, pages, count = (quoteattr(xml_text(v)) for v in draw(st.tuples(csv_values, csv_values, csv_values)))
    doc = (
        f"<InventoryResponse><Paging page={page} totalPages={pages} totalCount={count}/>"
        f"<Vehicles>{''.join(vehicles)}</Vehicles></InventoryResponse>"
    )
    return draw(mangle(doc.encode("utf-8", errors="surrogatepass")))


@HOSTILE
@given(st.one_of(xml_documents(), st.sampled_from(XML_ODDITIES), st.binary(max_size=200)))
def test_dealersocket_pages(body: bytes) -> None:
    client = DealersocketClient(
        base_url="https://ds.test",
        api_key="ds-key-1234",
        transport=answering(body, "application/xml"),
        max_pages=3,
        **COMMON,
    )
    with client:
        outcome(lambda: client.iter_inventory("ACME"), lambda raw: raw.to_vehicle(dealer_id="d-1"))


# -- raw models on their own -------------------------------------------------------------------------
MODELS: list[tuple[type[BaseModel], Callable[[Any], Vehicle]]] = [
    (DealerComVehicle, lambda raw: raw.to_vehicle(dealer_id="d-1", base_url="https://www.dealer.test")),
    (VinsolutionsVehicle, lambda raw: raw.to_vehicle(dealer_id="d-1")),
    (HomenetVehicle, lambda raw: raw.to_vehicle(dealer_id="d-1")),
    (ScrapedVehicle, lambda raw: raw.to_vehicle(dealer_id="d-1", base_url=None)),
    (DealersocketVehicle, lambda raw: raw.to_vehicle(dealer_id="d-1")),
    (CobaltVehicle, lambda raw: raw.to_vehicle(dealer_id="d-1")),
]


@pytest.mark.parametrize(("model", "to_vehicle"), MODELS, ids=[m.__name__ for m, _ in MODELS])
def test_raw_models_take_any_values_of_their_fields(
    model: type[BaseModel], to_vehicle: Callable[[Any], Vehicle]
) -> None:
    """The raw models are tolerant: any JSON value in any of their fields validates, then becomes a vehicle
    or a counted reject (a ValidationError here would fail a whole page as a PayloadError)."""

    @HOSTILE
    @given(st.dictionaries(st.sampled_from(keys_of(model)), json_values, max_size=12))
    def check(record: dict[str, Any]) -> None:
        if model is CobaltVehicle:  # the CSV parser only ever gives it strings (and its own line/problem)
            record = {
                k: v for k, v in record.items() if isinstance(v, str) and k not in ("line", "row_problem")
            }
        if model is DealersocketVehicle:  # the XML reader gives strings, Price dicts and Photos strings
            record = {k: v for k, v in record.items() if isinstance(v, str | list)}
        raw = model.model_validate(record)
        outcome(lambda: [raw], to_vehicle)

    check()
