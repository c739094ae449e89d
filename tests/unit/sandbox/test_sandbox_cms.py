"""The sandbox's PayloadCMS: Payload's envelope, its default limit of 10, where-filters, auth."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from include.sandbox.dealers import DEALERS, find_dealer

pytestmark = pytest.mark.unit

ENVELOPE_KEYS = {
    "docs",
    "totalDocs",
    "limit",
    "totalPages",
    "page",
    "pagingCounter",
    "hasPrevPage",
    "hasNextPage",
    "prevPage",
    "nextPage",
}
ACTIVE_DEALER_COM = {"where[status][equals]": "active", "where[platforms][contains]": "dealer.com"}


def test_without_limit_payload_returns_only_ten_docs(cms: Callable[..., httpx.Response]) -> None:
    body = cms().json()

    assert set(body) == ENVELOPE_KEYS
    assert len(body["docs"]) == 10
    assert body["limit"] == 10
    assert body["totalDocs"] == len(DEALERS)
    assert body["totalPages"] == -(-len(DEALERS) // 10)
    assert (body["page"], body["pagingCounter"], body["hasPrevPage"], body["prevPage"]) == (1, 1, False, None)
    assert (body["hasNextPage"], body["nextPage"]) == (True, 2)


def test_paging_while_has_next_page_yields_every_dealer_once(cms: Callable[..., httpx.Response]) -> None:
    seen: list[str] = []
    page = 1
    while True:
        body = cms({"depth": 0, "limit": 7, "page": page}).json()
        assert body["pagingCounter"] == (page - 1) * 7 + 1
        seen += [doc["id"] for doc in body["docs"]]
        if not body["hasNextPage"]:
            break
        page = body["nextPage"]

    assert seen == [dealer.id for dealer in DEALERS]
    assert body["prevPage"] == page - 1


def test_active_dealer_com_filter_and_base_url_from_the_request_host(
    cms: Callable[..., httpx.Response],
) -> None:
    body = cms({"depth": 0, "limit": 100, "page": 1, **ACTIVE_DEALER_COM}).json()

    assert body["totalDocs"] == 20
    assert (body["totalPages"], body["hasNextPage"]) == (1, False)
    slugs = {doc["slug"] for doc in body["docs"]}
    assert "old-mill-chrysler" not in slugs  # inactive
    assert "bayview-auto-group" not in slugs  # homenet only
    for doc in body["docs"]:
        assert doc["status"] == "active"
        assert "dealer.com" in doc["platforms"]
        config = doc["dealer_com_config"]
        assert config["base_url"] == f"http://sandbox.test:8765/dealer-com/{doc['slug']}"
        assert config["site_id"] == find_dealer(doc["slug"]).platforms["dealer.com"]["site_id"]


def test_id_filter_selects_one_dealer(cms: Callable[..., httpx.Response]) -> None:
    dealer = find_dealer("riverside-toyota")
    body = cms({"limit": 100, **ACTIVE_DEALER_COM, "where[id][equals]": dealer.id}).json()
    assert [doc["name"] for doc in body["docs"]] == ["Riverside Toyota"]

    empty = cms({"limit": 100, "where[id][equals]": "00000000-0000-0000-0000-000000000000"}).json()
    assert (empty["docs"], empty["totalDocs"], empty["totalPages"], empty["hasNextPage"]) == ([], 0, 1, False)


def test_optional_fields_vary_between_dealers(cms: Callable[..., httpx.Response]) -> None:
    docs = {doc["slug"]: doc for doc in cms({"limit": 100}).json()["docs"]}

    assert docs["riverside-toyota"]["schedule"] == {"interval_minutes": 60, "paused": False}
    assert docs["granite-state-subaru"]["schedule"]["paused"] is True
    assert "schedule" not in docs["summit-ford"]
    assert docs["evergreen-kia"]["timezone"] is None
    assert docs["lakeside-honda"]["platforms"] == ["dealer.com", "homenet"]
    assert docs["lakeside-honda"]["homenet_config"]["rooftop_id"] == "HN-20417"
    assert docs["hilltop-used-cars"]["web_scraping_config"]["start_urls"][0].startswith("https://")
    assert set(docs["capitol-hyundai"]) >= {"vinsolutions_config", "cobalt_config"}
    assert {p for doc in docs.values() for p in doc["platforms"]} == {
        "homenet",
        "dealer.com",
        "web_scraping",
        "vinsolutions",
        "dealersocket",
        "cobalt",
    }


def test_platform_filter_lists_only_that_platforms_dealers(cms: Callable[..., httpx.Response]) -> None:
    body = cms({"limit": 100, "where[platforms][contains]": "homenet"}).json()
    assert {doc["slug"] for doc in body["docs"]} == {
        "lakeside-honda",
        "bayview-auto-group",
        "twin-rivers-auto",
        "northgate-subaru",
    }


@pytest.mark.parametrize(
    "authorization",
    [None, "users API-Key wrong-key", "admins API-Key sandbox-cms-key", "Bearer sandbox-cms-key"],
)
def test_bad_or_missing_key_is_401(client: httpx.Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/cms/api/dealers", params={"limit": 100}, headers=headers)

    assert response.status_code == 401
    assert response.json()["errors"][0]["message"]


def test_where_on_an_unknown_path_is_400(cms: Callable[..., httpx.Response]) -> None:
    response = cms({"where[colour][equals]": "red"})
    assert response.status_code == 400
    assert "colour" in response.json()["errors"][0]["message"]
