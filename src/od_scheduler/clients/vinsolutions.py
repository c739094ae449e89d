"""VinSolutions inventory client (docs/contracts.md §5): OAuth2 client credentials, then paged JSON.

Auth is the base's :class:`~od_scheduler.clients.auth.OAuth2ClientCredentials` (scope ``PublicAPI``): one
token, fetched on the first request and shared by every page of the client until shortly before it
expires; a 401 on a page refreshes it once and resends that page; a second 401 is a
``PermanentUpstreamError`` naming the connection. Every request also carries the ``api_key`` header and
``Accept: application/vnd.coxauto.v3+json``.

``GET /gateway/v1/inventory/vehicles?dealerId=&pageNumber=&pageSize=100`` is paged by page number until
``totalItems`` is reached or a page comes back empty; a page that repeats only VINs already seen (the
gateway ignoring ``pageNumber``) stops the pull and marks it incomplete. After ``iter_inventory`` is
exhausted, ``client.report`` says whether the pull was complete and ``client.oauth.token_requests`` how
many tokens it took.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterator
from functools import partial
from typing import Any

import httpx
from pydantic import ValidationError

from od_scheduler.clients.auth import OAuth2ClientCredentials
from od_scheduler.clients.http import BaseClient
from od_scheduler.clients.pagination import Page, PageNumberPaginator, PullReport
from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.models.dealer import summarize_validation_error
from od_scheduler.models.normalize import parse_int
from od_scheduler.models.vin import normalize_vin
from od_scheduler.models.vinsolutions import SOURCE, VinsolutionsVehicle

logger = logging.getLogger(__name__)

INVENTORY_PATH = "/gateway/v1/inventory/vehicles"
ACCEPT = "application/vnd.coxauto.v3+json"
SCOPE = "PublicAPI"
MAX_PAGE_SIZE = 100


def _vin_key(vehicle: VinsolutionsVehicle) -> str | None:
    return normalize_vin(vehicle.vin)


class VinsolutionsClient(BaseClient):
    """Reads one VinSolutions tenant's inventory, one dealer per ``iter_inventory`` call."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        token_url: str,
        api_key: str,
        page_size: int = MAX_PAGE_SIZE,
        max_pages: int = 500,
        **kw: Any,
    ) -> None:
        missing = [
            name
            for name, value in (
                ("client id", client_id),
                ("client secret", client_secret),
                ("token URL", token_url),
                ("api_key", api_key),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"VinSolutions needs {', '.join(missing)}: set them in the connection")
        kw.setdefault("service", SOURCE)
        # The token's lifetime is measured on the client's clock (injectable in tests).
        self.oauth = OAuth2ClientCredentials(
            token_url, client_id, client_secret, SCOPE, clock=kw.get("clock", time.monotonic)
        )
        super().__init__(
            base_url=base_url.rstrip("/"),
            auth=self.oauth,
            headers={"api_key": api_key, "Accept": ACCEPT},
            **kw,
        )
        self.redactor.add(api_key)
        self.page_size = min(page_size, MAX_PAGE_SIZE)
        self.max_pages = max_pages
        self.report = PullReport()

    # -- errors that say where to fix them ---------------------------------------------------------
    def _where(self) -> str:
        return f"connection {self.conn_id!r}" if self.conn_id else "the VinSolutions client settings"

    def _hint(self, status: int) -> str:
        if status == 401:
            return (
                "VinSolutions refused the access token even after one refresh: check the client id (login), "
                f"client secret (password) and extra token_url in {self._where()}, and that the client "
                "may read this dealer."
            )
        if status == 403:
            return f"VinSolutions refused the request: check the extra api_key in {self._where()}."
        return super()._hint(status)

    def request(
        self, method: str, url: str, *, ok: Collection[int] = (200,), **kwargs: Any
    ) -> httpx.Response:
        """The base request; a refusal at the token endpoint also names the connection to fix."""
        try:
            return super().request(method, url, ok=ok, **kwargs)
        except PermanentUpstreamError as err:
            if self.conn_id is None or self.conn_id in str(err):
                raise
            raise PermanentUpstreamError(
                f"{err} They are the login, password and extra token_url of {self._where()}.",
                status_code=err.status_code,
            ) from err

    # -- inventory ---------------------------------------------------------------------------------
    def fetch_page(self, dealer_id: str, page_number: int) -> Page[VinsolutionsVehicle]:
        """One page of the dealer's inventory, parsed; ``PayloadError`` for a body of the wrong shape."""
        where = f"vinsolutions dealer {dealer_id!r} page {page_number}"
        params = {"dealerId": dealer_id, "pageNumber": page_number, "pageSize": self.page_size}
        body = self.get_json(INVENTORY_PATH, params=params)
        self.stats.pages += 1
        if not isinstance(body, dict):
            raise PayloadError(f"{where}: expected a JSON object, got {type(body).__name__}")
        items = body.get("items")
        if not isinstance(items, list):
            raise PayloadError(f"{where}: the response has no 'items' list")
        vehicles = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise PayloadError(f"{where}: item {index} is a {type(item).__name__}, not an object")
            try:
                vehicles.append(VinsolutionsVehicle.model_validate(item))
            except ValidationError as err:  # the model is tolerant; this means the format changed
                raise PayloadError(f"{where}: item {index}: {summarize_validation_error(err)}") from err
        return Page(items=vehicles, total=parse_int(body.get("totalItems")))

    def iter_inventory(self, dealer_id: str) -> Iterator[VinsolutionsVehicle]:
        """Every vehicle of the dealer, lazily; then ``self.report`` tells whether the pull was complete."""
        self.report = PullReport()
        paginator: PageNumberPaginator[VinsolutionsVehicle] = PageNumberPaginator(
            partial(self.fetch_page, dealer_id), key=_vin_key, max_pages=self.max_pages
        )
        tokens = self.oauth.token_requests
        for page in paginator.iter_pages():
            if tokens and self.oauth.token_requests > tokens:
                logger.info(
                    "vinsolutions dealer %s page %d: the access token expired or was refused; refreshed it "
                    "(%d token request(s) so far)",
                    dealer_id,
                    page.number,
                    self.oauth.token_requests,
                )
            tokens = self.oauth.token_requests
            logger.info(
                "vinsolutions dealer %s page %d: %d items, %d of %s so far",
                dealer_id,
                page.number,
                page.returned,
                paginator.items,
                page.total if page.total is not None else "?",
            )
            yield from page.items
        part = self.report.record("inventory", paginator, items=paginator.items)
        logger.info(
            "vinsolutions dealer %s done: %d pages, %d vehicles, %d duplicate(s), totalItems %s, "
            "stopped: %s; %d token request(s)",
            dealer_id,
            part.pages,
            part.items,
            part.duplicates,
            part.total_count,
            part.stop_reason,
            self.oauth.token_requests,
        )
        if not part.complete:
            logger.warning("vinsolutions dealer %s: pull incomplete: %s", dealer_id, self.report.notes[-1])
