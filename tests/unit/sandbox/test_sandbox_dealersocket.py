"""The sandbox's DealerSocket API: X-Api-Key, paged XML with a Paging element, hostile documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import httpx
import pytest
from defusedxml import DTDForbidden
from defusedxml.ElementTree import fromstring

from include.sandbox.dealers import find_dealer

pytestmark = pytest.mark.unit

API_KEY = "sandbox-dealersocket-key"

Get = Callable[..., httpx.Response]


def code(slug: str) -> str:
    dealer = find_dealer(slug)
    assert dealer is not None
    return str(dealer.platforms["dealersocket"]["dealer_code"])


@pytest.fixture
def get(client: httpx.Client) -> Get:
    """``get(slug, page=None, api_key=API_KEY)`` -> the inventory page response."""

    def fetch(slug: str, page: Any = None, api_key: str | None = API_KEY) -> httpx.Response:
        params = {} if page is None else {"page": page}
        headers = {"X-Api-Key": api_key} if api_key else {}
        return client.get(f"/dealersocket/inventory/v2/{code(slug)}/vehicles", params=params, headers=headers)

    return fetch


def parse(response: httpx.Response) -> Element:
    assert response.headers["content-type"].startswith("application/xml")
    return fromstring(response.content, forbid_dtd=True)


def as_record(vehicle: Element) -> dict[str, Any]:
    """A <Vehicle> in the truth endpoint's shape."""
    record: dict[str, Any] = {}
    for child in vehicle:
        if child.tag == "Price":
            record.setdefault("Price", []).append({"type": child.get("type"), "value": child.text})
        elif child.tag == "Photos":
            record["Photos"] = [photo.get("url") for photo in child]
        else:
            record[child.tag] = child.text or ""
    record.setdefault("Price", [])
    return record


def test_pages_carry_a_paging_element_and_add_up_to_the_truth(get: Get, client: httpx.Client) -> None:
    roots = [parse(get("magnolia-ford", n)) for n in (1, 2, 3, 4)]
    truth = client.get("/_sandbox/truth/dealersocket/magnolia-ford").json()

    assert [dict(root.find("Paging").attrib) for root in roots] == [  # type: ignore[union-attr]
        {"page": str(n), "totalPages": "3", "totalCount": "130", "pageSize": "50"} for n in (1, 2, 3, 4)
    ]
    assert [len(root.findall("Vehicles/Vehicle")) for root in roots] == [50, 50, 30, 0]
    assert roots[0].get("dealerCode") == "MAGFRD22"
    records = [as_record(v) for root in roots for v in root.findall("Vehicles/Vehicle")]
    assert records == truth["vehicles"]
    assert sorted(r["VIN"] for r in records) == truth["vins"]


def test_page_defaults_to_one_and_is_validated(get: Get) -> None:
    assert parse(get("coastal-mazda")).find("Paging").get("page") == "1"  # type: ignore[union-attr]
    for bad in ("0", "two", "-1"):
        response = get("coastal-mazda", bad)
        assert response.status_code == 400
        assert parse(response).findtext("Code") == "400"


def test_the_documented_quirks(client: httpx.Client, get: Get) -> None:
    vehicles = [
        v
        for slug in ("coastal-mazda", "magnolia-ford")
        for v in client.get(f"/_sandbox/truth/dealersocket/{slug}").json()["vehicles"]
    ]
    assert {(v["NewUsed"], v["Certified"]) for v in vehicles} == {
        ("N", "false"),
        ("U", "false"),
        ("U", "true"),
    }
    orders = {tuple(p["type"] for p in v["Price"]) for v in vehicles}
    assert ("Internet", "MSRP") in orders
    assert ("MSRP", "Internet") in orders
    assert () in orders or ("MSRP",) in orders  # an unknown internet price left out...
    assert any(p == {"type": "Internet", "value": "0.00"} for v in vehicles for p in v["Price"])  # ...or 0.00
    assert all("MSRP" not in [p["type"] for p in v["Price"]] for v in vehicles if v["NewUsed"] == "U")
    assert any(v["DetailUrl"] == "" for v in vehicles)
    assert any(v["Photos"] == [] for v in vehicles)
    raw = get("coastal-mazda").content
    assert b"?w=1024&amp;h=768" in raw  # the attribute's & is escaped on the wire
    assert b"\n      <VIN>" in raw  # indented


def test_the_api_key_is_required(get: Get) -> None:
    for key in (None, "wrong-key"):
        response = get("coastal-mazda", api_key=key)
        assert response.status_code == 401
        assert parse(response).findtext("Message") == "Invalid or missing X-Api-Key"


def test_an_unknown_dealer_code_is_404(client: httpx.Client) -> None:
    response = client.get("/dealersocket/inventory/v2/NOPE/vehicles", headers={"X-Api-Key": API_KEY})
    assert response.status_code == 404


def test_the_hostile_dealer_serves_billion_laughs(get: Get, client: httpx.Client) -> None:
    response = get("trojan-horse-motors")
    assert response.status_code == 200
    assert b"<!DOCTYPE InventoryResponse [" in response.content
    assert b'<!ENTITY lol9 "&lol8;&lol8;' in response.content
    assert b"<VIN>&lol9;</VIN>" in response.content
    with pytest.raises(DTDForbidden):
        parse(response)
    (entry,) = client.get("/_sandbox/requests", params={"service": "dealersocket"}).json()["requests"]
    assert entry["detail"] == {"dealer_code": "TRJHRS07", "page": 1, "hostile": "billion_laughs"}
    dealers = {d["slug"]: d for d in client.get("/_sandbox/dealers").json()["dealers"]}
    assert dealers["trojan-horse-motors"]["fault_description"] == "hostile XML (billion_laughs)"


def test_any_dealer_can_be_given_an_xxe_document(get: Get, client: httpx.Client) -> None:
    assert client.put("/_sandbox/faults/coastal-mazda", json={"hostile_xml": "xxe"}).status_code == 200
    response = get("coastal-mazda", 2)
    assert b'<!ENTITY xxe SYSTEM "file:///etc/passwd">' in response.content
    assert b"<Make>&xxe;</Make>" in response.content
    assert client.delete("/_sandbox/faults/coastal-mazda").status_code == 200
    assert len(parse(get("coastal-mazda")).findall("Vehicles/Vehicle")) == 50


def test_unknown_hostile_kinds_are_refused(client: httpx.Client) -> None:
    assert client.put("/_sandbox/faults/coastal-mazda", json={"hostile_xml": "quadratic"}).status_code == 422


def test_status_faults_and_truncation(client: httpx.Client, get: Get) -> None:
    client.put("/_sandbox/faults/coastal-mazda", json={"every_nth": 2, "retry_after": "1"})
    first, second = get("coastal-mazda"), get("coastal-mazda")
    assert (first.status_code, second.status_code) == (200, 503)
    assert second.headers["Retry-After"] == "1"
    assert parse(second).findtext("Code") == "503"
    client.put("/_sandbox/faults/coastal-mazda", json={"malformed_first_n": 1})
    cut = get("coastal-mazda")
    assert cut.status_code == 200
    with pytest.raises(ParseError):
        parse(cut)
    assert parse(get("coastal-mazda")).tag == "InventoryResponse"
