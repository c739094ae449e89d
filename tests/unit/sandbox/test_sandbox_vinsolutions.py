"""The sandbox's VinSolutions API: OAuth2 token endpoint, paged gateway, tokens expiring mid-pagination."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from include.sandbox.dealers import find_dealer

pytestmark = pytest.mark.unit

TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": "sandbox-vs-client",
    "client_secret": "sandbox-vs-secret",
    "scope": "PublicAPI",
}
ACCEPT = "application/vnd.coxauto.v3+json"
API_KEY = "sandbox-vs-api-key"

Page = Callable[..., httpx.Response]


def number(slug: str) -> str:
    dealer = find_dealer(slug)
    assert dealer is not None
    return str(dealer.platforms["vinsolutions"]["dealer_id"])


def issue(client: httpx.Client, **form: str) -> httpx.Response:
    return client.post("/vinsolutions/oauth/token", data={**TOKEN_FORM, **form})


@pytest.fixture
def page(client: httpx.Client) -> Page:
    """``page(slug, n, token=<fresh>, size=100, api_key=..., accept=...)`` -> the gateway's response."""

    def get(
        slug: str,
        n: int = 1,
        *,
        token: str | None = None,
        size: int | str = 100,
        api_key: str = API_KEY,
        accept: str = ACCEPT,
    ) -> httpx.Response:
        if token is None:
            token = issue(client).json()["access_token"]
        return client.get(
            "/vinsolutions/gateway/v1/inventory/vehicles",
            params={"dealerId": number(slug), "pageNumber": n, "pageSize": size},
            headers={"Authorization": f"Bearer {token}", "api_key": api_key, "Accept": accept},
        )

    return get


def test_the_token_endpoint_issues_bearer_tokens(client: httpx.Client) -> None:
    first, second = issue(client), issue(client)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert (body["expires_in"], body["token_type"]) == (3600, "Bearer")
    assert body["access_token"] != second.json()["access_token"]


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "wrong-secret"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"scope": "Admin"}, 400, "invalid_scope"),
    ],
)
def test_the_token_endpoint_refuses_bad_requests(
    client: httpx.Client, form: dict[str, str], status: int, error: str
) -> None:
    response = issue(client, **form)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert "access_token" not in response.json()


def test_pages_add_up_to_the_truth(client: httpx.Client, page: Page) -> None:
    token = issue(client).json()["access_token"]
    pages = [page("beltway-toyota", n, token=token).json() for n in (1, 2, 3, 4)]
    truth = client.get("/_sandbox/truth/vinsolutions/beltway-toyota").json()

    assert [len(p["items"]) for p in pages] == [100, 100, 5, 0]
    assert {(p["totalItems"], p["pageSize"]) for p in pages} == {(205, 100)}
    assert [p["pageNumber"] for p in pages] == [1, 2, 3, 4]
    assert set(pages[0]) == {"items", "totalItems", "pageNumber", "pageSize"}
    items = [item for p in pages for item in p["items"]]
    assert items == truth["vehicles"]
    assert sorted(item["vin"] for item in items) == truth["vins"]
    assert {item["newUsed"] for item in items} == {"New", "Used", "Certified"}


def test_items_carry_the_documented_dirt(client: httpx.Client) -> None:
    items = [
        item
        for slug in ("beltway-toyota", "hourglass-honda", "metro-nissan")
        for item in client.get(f"/_sandbox/truth/vinsolutions/{slug}").json()["vehicles"]
    ]
    prices = [item["pricing"]["internetPrice"] for item in items]
    assert 0 in prices  # unknown prices: both spellings
    assert None in prices
    assert all(item["pricing"]["msrp"] is None for item in items if item["newUsed"] != "New")
    assert all(isinstance(item["year"], int) and isinstance(item["mileage"], int) for item in items)
    assert any(item["vdpUrl"] is None for item in items)
    assert any(item["photos"] == [] for item in items)
    repeated = [i for i in items if len(i["photos"]) > 1 and i["photos"][0] == i["photos"][-1]]
    assert repeated  # the lead photo repeated at the end


def test_page_size_is_capped_at_100(page: Page) -> None:
    body = page("beltway-toyota", size=500).json()
    assert (len(body["items"]), body["pageSize"]) == (100, 100)


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"token": "not-a-token"}, 401),
        ({"api_key": "wrong-key"}, 403),
        ({"accept": "application/json"}, 406),
    ],
)
def test_the_gateway_checks_token_api_key_and_accept(page: Page, kwargs: dict[str, Any], status: int) -> None:
    response = page("metro-nissan", **kwargs)
    assert response.status_code == status
    if status == 401:
        assert response.json()["error"] == "invalid_token"
        assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_unknown_or_missing_dealer(client: httpx.Client) -> None:
    token = issue(client).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "api_key": API_KEY, "Accept": ACCEPT}
    path = "/vinsolutions/gateway/v1/inventory/vehicles"
    assert client.get(path, params={"dealerId": "99999"}, headers=headers).status_code == 404
    assert client.get(path, headers=headers).status_code == 400


def test_hourglass_tokens_expire_mid_pagination(client: httpx.Client, page: Page) -> None:
    token = issue(client).json()["access_token"]
    statuses = [page("hourglass-honda", n, token=token).status_code for n in (1, 2, 3)]
    assert statuses == [200, 200, 401]
    fresh = issue(client).json()["access_token"]
    third = page("hourglass-honda", 3, token=fresh)
    assert (third.status_code, len(third.json()["items"]), third.json()["totalItems"]) == (200, 15, 215)


def test_token_expiry_is_a_fault_profile_any_dealer_can_get(client: httpx.Client, page: Page) -> None:
    assert client.put("/_sandbox/faults/metro-nissan", json={"token_expires_after": 1}).status_code == 200
    token = issue(client).json()["access_token"]
    assert [page("metro-nissan", n, token=token).status_code for n in (1, 1)] == [200, 401]
    dealers = {d["slug"]: d for d in client.get("/_sandbox/dealers").json()["dealers"]}
    assert dealers["metro-nissan"]["fault_description"] == "tokens expire after 1 request(s)"
    assert dealers["hourglass-honda"]["fault_description"] == "tokens expire after 2 request(s)"


def test_faults_apply_after_authentication(client: httpx.Client, page: Page) -> None:
    client.put("/_sandbox/faults/metro-nissan", json={"every_nth": 2})
    assert [page("metro-nissan").status_code for _ in range(4)] == [200, 503, 200, 503]
    assert page("metro-nissan", token="bogus").status_code == 401  # refused before the fault counter


def test_the_request_log_shows_token_serials_never_tokens(client: httpx.Client, page: Page) -> None:
    token = issue(client).json()["access_token"]
    page("metro-nissan", token=token)
    issue(client, client_secret="wrong-secret")
    log = client.get("/_sandbox/requests", params={"service": "vinsolutions"}).json()["requests"]

    assert [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in log] == [
        ("token", 200),
        ("vehicles", 200),
        ("token", 401),
    ]
    assert log[0]["detail"] == {
        "client_id": "sandbox-vs-client",
        "grant_type": "client_credentials",
        "scope": "PublicAPI",
        "outcome": "issued",
        "token_serial": 1,
    }
    assert log[1]["dealer_slug"] == "metro-nissan"
    assert log[1]["detail"] == {
        "token_serial": 1,
        "token_uses": 0,
        "dealer_id": number("metro-nissan"),
        "page_number": 1,
        "page_size": 100,
    }
    assert log[2]["detail"]["outcome"] == "invalid_client"
    text = str(log)
    for secret in (token, "sandbox-vs-secret", "wrong-secret", API_KEY):
        assert secret not in text


def test_the_cms_lists_the_vinsolutions_dealers(cms: Callable[..., httpx.Response]) -> None:
    docs = cms({"limit": 100, "where[platforms][contains]": "vinsolutions"}).json()["docs"]
    assert {d["slug"]: d["vinsolutions_config"] for d in docs} == {
        "metro-nissan": {"dealer_id": "21457"},
        "capitol-hyundai": {"dealer_id": "30982"},
        "beltway-toyota": {"dealer_id": "27735"},
        "hourglass-honda": {"dealer_id": "44610"},
    }
