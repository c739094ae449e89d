"""Fixtures for the sandbox's own tests: a fresh in-process sandbox and a synchronous httpx client on it.

The client talks to the ASGI app through ``httpx.ASGITransport`` (no socket), with a base URL whose
host:port the sandbox must echo back in the URLs it hands out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from include.sandbox.app import create_app
from include.sandbox.config import DEFAULT_CMS_API_KEY, DEFAULT_DATA_API_KEY, SandboxConfig
from include.sandbox.dealers import find_dealer

BASE_URL = "http://sandbox.test:8765"
CMS_HEADERS = {"Authorization": f"users API-Key {DEFAULT_CMS_API_KEY}"}


class SyncASGITransport(httpx.BaseTransport):
    """Drive an ASGI app from a synchronous ``httpx.Client`` (one event loop per request)."""

    def __init__(self, app: FastAPI) -> None:
        self._transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self._transport.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return anyio.run(send)


@pytest.fixture
def app() -> FastAPI:
    return create_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[httpx.Client]:
    with httpx.Client(transport=SyncASGITransport(app), base_url=BASE_URL) as http:
        yield http


@pytest.fixture
def make_client() -> Iterator[Callable[[SandboxConfig], httpx.Client]]:
    """``make_client(config)`` -> a client on a new, independent sandbox app (closed at teardown)."""
    clients: list[httpx.Client] = []

    def make(config: SandboxConfig) -> httpx.Client:
        http = httpx.Client(transport=SyncASGITransport(create_app(config)), base_url=BASE_URL)
        clients.append(http)
        return http

    yield make
    for http in clients:
        http.close()


def widget_body(
    site_id: str, segment: str, page_start: int | str = 0, page_size: int | str = "100"
) -> dict[str, Any]:
    """The getInventory body of CONTRACTS §3."""
    return {
        "siteId": site_id,
        "locale": "en_US",
        "device": "DESKTOP",
        "pageAlias": "INVENTORY_LISTING_DEFAULT_AUTO_NEW",
        "pageId": f"{site_id}_SITEBUILDER_INVENTORY_SEARCH_RESULTS_AUTO_NEW_V1_1",
        "windowId": "inventory-data-bus1",
        "widgetName": "ws-inv-data",
        "includePricing": True,
        "inventoryParameters": {},
        "preferences": {
            "pageSize": str(page_size),
            "pageStart": str(page_start),
            "listing.config.id": segment,
        },
    }


@pytest.fixture
def widget(client: httpx.Client) -> Callable[..., httpx.Response]:
    """``widget(slug, segment, page_start=0, page_size="100", site_id=<the dealer's>)`` -> getInventory."""

    def post(
        slug: str,
        segment: str,
        page_start: int | str = 0,
        page_size: int | str = "100",
        site_id: str | None = None,
    ) -> httpx.Response:
        if site_id is None:
            dealer = find_dealer(slug)
            assert dealer is not None
            site_id = dealer.platforms["dealer.com"]["site_id"]
        body = widget_body(site_id, segment, page_start, page_size)
        return client.post(f"/dealer-com/{slug}/api/widget/ws-inv-data/getInventory", json=body)

    return post


@pytest.fixture
def cms(client: httpx.Client) -> Callable[..., httpx.Response]:
    """``cms(params)`` -> ``GET /cms/api/dealers`` with the default API key."""

    def get(params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> httpx.Response:
        return client.get("/cms/api/dealers", params=params, headers=CMS_HEADERS)

    return get


@pytest.fixture
def data_api(client: httpx.Client) -> Callable[..., httpx.Response]:
    """``data_api(path, body, idempotency_key=..., dealer_header=..., api_key=...)`` -> POST response."""

    def post(
        path: str,
        body: Any,
        *,
        idempotency_key: str | None = "key-1",
        dealer_header: str | None = None,
        api_key: str | None = DEFAULT_DATA_API_KEY,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if api_key is not None:
            headers["X-API-Key"] = api_key
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        dealer = (
            dealer_header
            if dealer_header is not None
            else body.get("dealer_id")
            if isinstance(body, dict)
            else None
        )
        if dealer is not None:
            headers["X-Dealer-ID"] = dealer
        return client.post(f"/data-api{path}", json=body, headers=headers)

    return post
