"""PayloadCmsClient: the dealers query, hasNextPage paging, invalid documents, auth and redaction."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from od_scheduler.clients.http import RequestStats
from od_scheduler.clients.payload_cms import DealerListing, PayloadCmsClient
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.models.dealer import Dealer, InvalidDealer
from od_scheduler.models.dealer_com import DealerComConfig

from .conftest import FakeClock, Script

pytestmark = pytest.mark.unit

API_KEY = "pl-key-0a1b2c3d4e5f"


def dealer_doc(n: int, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "name": f"Dealer {n}",
        "slug": f"dealer-{n}",
        "domain": f"dealer{n}.test",
        "status": "active",
        "timezone": "America/Chicago",
        "platforms": ["dealer.com"],
        "schedule": {"interval_minutes": 60, "paused": False},
        "dealer_com_config": {"site_id": f"site{n}", "base_url": f"https://www.dealer{n}.test"},
        "createdAt": "2025-01-01T00:00:00.000Z",
    }
    doc.update(over)
    return doc


def payload_page(docs: list[dict[str, Any]], page: int, total_pages: int, total: int) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "docs": docs,
            "totalDocs": total,
            "limit": 2,
            "totalPages": total_pages,
            "page": page,
            "pagingCounter": (page - 1) * 2 + 1,
            "hasPrevPage": page > 1,
            "hasNextPage": page < total_pages,
            "prevPage": page - 1 if page > 1 else None,
            "nextPage": page + 1 if page < total_pages else None,
        },
    )


def make_client(script: Script, clock: FakeClock, **kw: Any) -> PayloadCmsClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, jitter=False))
    return PayloadCmsClient(
        base_url="https://cms.test",
        api_key=API_KEY,
        transport=script.transport,
        sleep=clock.sleep,
        conn_id="od_payload_cms",
        **kw,
    )


def test_follows_has_next_page_and_always_sends_limit(clock: FakeClock) -> None:
    docs = [dealer_doc(n) for n in range(5)]
    script = Script(
        payload_page(docs[0:2], 1, 3, 5),
        payload_page(docs[2:4], 2, 3, 5),
        payload_page(docs[4:5], 3, 3, 5),
    )
    client = make_client(script, clock, page_size=2)
    dealers = list(client.iter_dealers(platform="dealer.com"))
    assert [d.id for d in dealers] == [d["id"] for d in docs]
    assert len(script.requests) == 3
    for number, request in enumerate(script.requests, start=1):
        assert request.url.path == "/api/dealers"
        assert dict(request.url.params) == {
            "depth": "0",
            "limit": "2",
            "page": str(number),
            "where[status][equals]": "active",
            "where[platforms][contains]": "dealer.com",
        }
        assert request.headers["Authorization"] == f"users API-Key {API_KEY}"
    assert client.stats.pages == 3
    assert client.stats.api_calls == 3


def test_default_limit_is_100_and_dealer_filter(clock: FakeClock) -> None:
    script = Script(payload_page([dealer_doc(7)], 1, 1, 1))
    client = make_client(script, clock, auth_collection="api-users")
    (dealer,) = client.iter_dealers(platform="dealer.com", dealer_id=dealer_doc(7)["id"])
    params = script.requests[0].url.params
    assert params["limit"] == "100"
    assert params["where[id][equals]"] == dealer_doc(7)["id"]
    assert script.requests[0].headers["Authorization"] == f"api-users API-Key {API_KEY}"
    assert dealer.name == "Dealer 7"


def test_a_shards_dealers_are_read_in_one_request_per_50_ids(clock: FakeClock) -> None:
    wanted = [dealer_doc(n)["id"] for n in range(60)]
    script = Script(
        payload_page([dealer_doc(n) for n in range(50)], 1, 1, 50),
        # the CMS answers only the dealers still active on the platform: 55 and 59 left
        payload_page([dealer_doc(n) for n in range(50, 60) if n not in (55, 59)], 1, 1, 8),
    )
    client = make_client(script, clock)
    found = client.get_dealers(platform="dealer.com", dealer_ids=wanted)
    assert len(script.requests) == 2
    assert [r.url.params["where[id][in]"].split(",") for r in script.requests] == [wanted[:50], wanted[50:]]
    assert all(r.url.params["where[platforms][contains]"] == "dealer.com" for r in script.requests)
    assert all(r.url.params["where[status][equals]"] == "active" for r in script.requests)
    assert set(found) == set(wanted) - {wanted[55], wanted[59]}


def test_no_ids_asks_nothing(clock: FakeClock) -> None:
    script = Script()
    assert make_client(script, clock).get_dealers(platform="dealer.com", dealer_ids=[]) == {}
    assert script.requests == []


def test_a_listing_splits_valid_from_invalid_documents_in_cms_order() -> None:
    first, second = (Dealer.model_validate(dealer_doc(n)) for n in (1, 3))
    broken = InvalidDealer.from_document(dealer_doc(2, slug=None), "slug: Input should be a valid string")
    stats = RequestStats(api_calls=2)
    listing = DealerListing.of([first, broken, second], stats)
    assert listing.dealers == [first, second]
    assert listing.invalid == [broken]
    assert listing.stats is stats


def test_invalid_document_becomes_invalid_dealer(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    broken = dealer_doc(2)
    del broken["slug"]
    broken["platforms"] = "dealer.com"  # not a list
    script = Script(payload_page([dealer_doc(1), broken, dealer_doc(3)], 1, 1, 3))
    with caplog.at_level(logging.WARNING):
        dealers = list(make_client(script, clock).iter_dealers(platform="dealer.com"))
    assert len(dealers) == 3
    invalid = dealers[1]
    assert isinstance(invalid, InvalidDealer)
    assert invalid.id == broken["id"]
    assert invalid.name == "Dealer 2"
    assert invalid.slug is None
    assert "slug: Field required" in invalid.error
    assert "platforms: Input should be a valid list" in invalid.error
    assert any(broken["id"] in r.getMessage() for r in caplog.records)


def test_broken_platform_config_only_fails_that_platform(clock: FakeClock) -> None:
    doc = dealer_doc(4, platforms=["dealer.com", "homenet"], homenet_config={"integration_token": "x" * 12})
    doc["dealer_com_config"] = {"site_id": "site4"}  # base_url missing
    script = Script(payload_page([doc], 1, 1, 1))
    (dealer,) = make_client(script, clock).iter_dealers(platform="homenet")
    assert not isinstance(dealer, InvalidDealer)
    with pytest.raises(ConfigError) as info:
        dealer.config_for("dealer.com")
    message = str(info.value)
    assert "dealer 'Dealer 4'" in message
    assert "dealer.com" in message
    assert "dealer_com_config" in message
    assert "base_url" in message
    with pytest.raises(ConfigError, match=r"homenet_config.*rooftop_id"):
        dealer.config_for("homenet")


def test_valid_config_is_returned(clock: FakeClock) -> None:
    script = Script(payload_page([dealer_doc(5)], 1, 1, 1))
    (dealer,) = make_client(script, clock).iter_dealers(platform="dealer.com")
    assert not isinstance(dealer, InvalidDealer)
    config = dealer.config_for("dealer.com")
    assert config == DealerComConfig(site_id="site5", base_url="https://www.dealer5.test")


def test_response_without_docs_is_a_payload_error(clock: FakeClock) -> None:
    script = Script(httpx.Response(200, json={"errors": [{"message": "Not found"}]}))
    with pytest.raises(PayloadError, match="no 'docs' list"):
        list(make_client(script, clock).iter_dealers(platform="homenet"))


def test_unknown_platform_makes_no_request(clock: FakeClock) -> None:
    script = Script()
    with pytest.raises(ConfigError, match="unknown platform 'dealer_com'"):
        list(make_client(script, clock).iter_dealers(platform="dealer_com"))
    assert script.requests == []


def test_bad_key_fails_at_once_without_leaking_it(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    script = Script(
        httpx.Response(502, text=f"upstream said: bad header users API-Key {API_KEY}"),
        httpx.Response(403, json={"errors": [{"message": f"Key {API_KEY} is not allowed"}]}),
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentUpstreamError) as info:
        list(make_client(script, clock).iter_dealers(platform="cobalt"))
    assert len(script.requests) == 2  # the 502 was retried, the 403 was not
    message = str(info.value)
    assert "payload_cms GET https://cms.test/api/dealers?" in message
    assert "HTTP 403" in message
    assert "connection 'od_payload_cms'" in message
    assert API_KEY not in message
    assert caplog.records
    assert all(API_KEY not in r.getMessage() for r in caplog.records)


def test_test_connection(clock: FakeClock) -> None:
    ok = make_client(Script(payload_page([dealer_doc(1)], 1, 9, 9)), clock).test_connection()
    assert ok == (True, "PayloadCMS reachable: 9 dealer documents")
    refused, message = make_client(Script(httpx.Response(401, text="no")), clock).test_connection()
    assert refused is False
    assert "HTTP 401" in message


def test_empty_api_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="API key is empty"):
        PayloadCmsClient(base_url="https://cms.test", api_key="")
