"""PayloadCMS client for dealer configuration (docs/contracts.md §1).

Payload's default ``limit`` is 10, so ``limit`` is always sent and pages are followed while
``hasNextPage`` is true. A dealer document that fails validation is yielded as an ``InvalidDealer``
(never dropped): the run then shows that dealer as failed with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from od_scheduler.clients.auth import HeaderAuth
from od_scheduler.clients.http import BaseClient, RequestStats
from od_scheduler.clients.pagination import Page, PageNumberPaginator
from od_scheduler.exceptions import ConfigError, PayloadError, UpstreamError
from od_scheduler.models.dealer import Dealer, InvalidDealer, summarize_validation_error
from od_scheduler.models.normalize import parse_int
from od_scheduler.platforms import PLATFORMS

logger = logging.getLogger(__name__)

DEALERS_PATH = "/api/dealers"
#: Dealer ids per ``where[id][in]`` request (36-character UUIDs: about 2 KB of query string).
IDS_PER_REQUEST = 50


@dataclass(frozen=True)
class DealerListing:
    """What one read of dealer documents found, in the CMS's order: the valid documents, those that failed
    validation, and the requests the read cost."""

    dealers: list[Dealer]
    invalid: list[InvalidDealer]
    stats: RequestStats

    @classmethod
    def of(cls, docs: Iterable[Dealer | InvalidDealer], stats: RequestStats) -> DealerListing:
        """The read's documents split into valid and invalid."""
        dealers: list[Dealer] = []
        invalid: list[InvalidDealer] = []
        for doc in docs:
            if isinstance(doc, Dealer):
                dealers.append(doc)
            else:
                invalid.append(doc)
        return cls(dealers=dealers, invalid=invalid, stats=stats)


class PayloadCmsClient(BaseClient):
    """Lists active dealers per platform from PayloadCMS (``Authorization: <collection> API-Key <key>``)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        auth_collection: str = "users",
        page_size: int = 100,
        max_pages: int = 1000,
        **kw: Any,
    ) -> None:
        if not api_key:
            raise ConfigError("PayloadCMS API key is empty")
        kw.setdefault("service", "payload_cms")
        secrets = [api_key, *kw.pop("secrets", ())]
        auth = HeaderAuth("Authorization", f"{auth_collection} API-Key {api_key}")
        super().__init__(base_url=base_url, auth=auth, secrets=secrets, **kw)
        self.page_size = page_size
        self.max_pages = max_pages

    def _dealer_params(
        self, page: int, *, platform: str | None, dealer_id: str | None, dealer_ids: Sequence[str] = ()
    ) -> dict[str, str | int]:
        params: dict[str, str | int] = {
            "depth": 0,
            "limit": self.page_size,
            "page": page,
            "where[status][equals]": "active",
        }
        if platform is not None:
            params["where[platforms][contains]"] = platform
        if dealer_id is not None:
            params["where[id][equals]"] = dealer_id
        if dealer_ids:
            params["where[id][in]"] = ",".join(dealer_ids)
        return params

    def _fetch_dealers(
        self, page: int, *, platform: str | None, dealer_id: str | None, dealer_ids: Sequence[str] = ()
    ) -> Page[Any]:
        body = self.get_json(
            DEALERS_PATH,
            params=self._dealer_params(page, platform=platform, dealer_id=dealer_id, dealer_ids=dealer_ids),
        )
        self.stats.pages += 1
        docs = body.get("docs") if isinstance(body, dict) else None
        if not isinstance(docs, list):
            raise PayloadError(
                f"payload_cms GET {DEALERS_PATH} page {page}: the response has no 'docs' list "
                "(is the base URL a PayloadCMS server?)"
            )
        total = parse_int(body.get("totalDocs"))
        logger.info(
            "payload_cms dealers for %s page %d of %s: %d documents (%s in total)",
            platform or "all platforms",
            page,
            body.get("totalPages", "?"),
            len(docs),
            total if total is not None else "?",
        )
        return Page(items=docs, total=total, has_next=body.get("hasNextPage") is True)

    def get_dealers(self, *, platform: str, dealer_ids: Sequence[str]) -> dict[str, Dealer | InvalidDealer]:
        """The current documents of the active ``platform`` dealers among ``dealer_ids``, by id (a dealer
        missing from the answer is no longer active on the platform)."""
        return {str(doc.id): doc for doc in self.iter_dealers(platform=platform, dealer_ids=dealer_ids)}

    def iter_dealers(
        self,
        *,
        platform: str | None,
        dealer_id: str | None = None,
        dealer_ids: Sequence[str] | None = None,
    ) -> Iterator[Dealer | InvalidDealer]:
        """Active dealers on ``platform`` (``None``: any platform), lazily: every one, only ``dealer_id``,
        or only those among ``dealer_ids``. The one read of dealer documents and their one validation.

        ``dealer_ids`` are asked for in one request per :data:`IDS_PER_REQUEST` (``where[id][in]``), so a
        shard of dealers costs a few requests instead of one each and the URL stays short; an empty
        ``dealer_ids`` asks nothing.
        """
        if platform is not None and platform not in PLATFORMS:
            raise ConfigError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
        if dealer_ids is None:
            yield from self._read_dealers(platform=platform, dealer_id=dealer_id)
            return
        for start in range(0, len(dealer_ids), IDS_PER_REQUEST):
            chunk = list(dealer_ids[start : start + IDS_PER_REQUEST])
            for doc in self._read_dealers(platform=platform, dealer_id=dealer_id, dealer_ids=chunk):
                if doc.id in chunk:
                    yield doc

    def _read_dealers(
        self, *, platform: str | None, dealer_id: str | None, dealer_ids: Sequence[str] = ()
    ) -> Iterator[Dealer | InvalidDealer]:
        """Every page of one dealers query, each document validated into a ``Dealer`` or ``InvalidDealer``."""
        paginator: PageNumberPaginator[Any] = PageNumberPaginator(
            lambda page: self._fetch_dealers(
                page, platform=platform, dealer_id=dealer_id, dealer_ids=dealer_ids
            ),
            max_pages=self.max_pages,
        )
        valid = invalid = 0
        for doc in paginator:
            try:
                dealer: Dealer | InvalidDealer = Dealer.model_validate(doc)
                valid += 1
            except ValidationError as err:
                dealer = InvalidDealer.from_document(doc, summarize_validation_error(err))
                invalid += 1
                logger.warning(
                    "payload_cms dealer %s (%s) is invalid: %s",
                    dealer.id,
                    dealer.slug or dealer.name,
                    dealer.error,
                )
            yield dealer
        if not paginator.complete:
            raise PayloadError(
                f"payload_cms dealers for {platform or 'all platforms'}: {paginator.note}; "
                "the dealer list is incomplete"
            )
        logger.info(
            "payload_cms dealers for %s: %d valid, %d invalid", platform or "all platforms", valid, invalid
        )

    def test_connection(self) -> tuple[bool, str]:
        """One small authenticated read: ``(True, message)`` when the CMS answers as expected."""
        try:
            body = self.get_json(DEALERS_PATH, params={"depth": 0, "limit": 1})
        except (UpstreamError, PayloadError, ConfigError) as err:
            return False, str(err)
        if not isinstance(body, dict) or not isinstance(body.get("docs"), list):
            return False, "PayloadCMS answered, but /api/dealers did not return a 'docs' list"
        return True, f"PayloadCMS reachable: {body.get('totalDocs', '?')} dealer documents"
