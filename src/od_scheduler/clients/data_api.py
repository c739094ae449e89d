"""Open Dealer Data API client: batch upsert and delist (docs/contracts.md §8).

Every POST carries ``X-Dealer-ID``; batches carry an ``Idempotency-Key``, which is what makes the base
client's retry of a POST safe. Statuses the caller must act on get their own errors: 413 ->
``BatchTooLarge`` (split and resend), 422 -> ``PermanentUpstreamError`` with the API's message (an
``Idempotency-Key`` reused with a different body, or a body the API refuses).

A 200 answer is returned as it came (:class:`BatchResult`, :class:`DelistResult`), ``success: false``
included: what it means for the vehicles sent (failed, unconfirmed, accepted, rejected; delisted or not) is
decided by ``od_scheduler.delta.reconcile`` and ``od_scheduler.delta.reconcile_delist``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from od_scheduler.clients.auth import HeaderAuth
from od_scheduler.clients.http import BaseClient
from od_scheduler.clients.redaction import excerpt
from od_scheduler.exceptions import BatchTooLarge, ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.models.dealer import summarize_validation_error

logger = logging.getLogger(__name__)

BATCH_PATH = "/v1/vehicles/batch"
DELIST_PATH = "/v1/vehicles/delist"
#: The API's limit per batch request; larger batches are refused locally, before any request.
MAX_BATCH_SIZE = 500


class VinError(BaseModel):
    """One per-VIN rejection in a batch response (partial success: reported, not retried)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    vin: str | None = None
    error: str = ""


class BatchResult(BaseModel):
    """The Data API's answer to one batch."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    success: bool
    processed: int = Field(ge=0)
    dealer_id: str
    source: str
    errors: list[VinError] = Field(default_factory=list)


class DelistResult(BaseModel):
    """The Data API's answer to one delist request: ``delisted`` of the VINs sent stopped being advertised."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    success: bool
    delisted: int = Field(ge=0, strict=True)


class DataApiClient(BaseClient):
    """Sends canonical vehicles to the Data API and delists sold ones (``X-API-Key`` auth)."""

    def __init__(self, *, base_url: str, api_key: str, **kw: Any) -> None:
        if not api_key:
            raise ConfigError("Data API key is empty")
        kw.setdefault("service", "data_api")
        secrets = [api_key, *kw.pop("secrets", ())]
        super().__init__(base_url=base_url, auth=HeaderAuth("X-API-Key", api_key), secrets=secrets, **kw)

    def post_batch(
        self, *, dealer_id: str, source: str, vehicles: Sequence[Mapping[str, Any]], idempotency_key: str
    ) -> BatchResult:
        """Upsert up to 500 vehicles (``Vehicle.to_api()`` dicts); per-VIN rejections are in ``errors``."""
        if len(vehicles) > MAX_BATCH_SIZE:
            raise BatchTooLarge(
                f"data_api batch for dealer {dealer_id} has {len(vehicles)} vehicles; "
                f"the API takes at most {MAX_BATCH_SIZE} per request: split it"
            )
        body = {"vehicles": [dict(v) for v in vehicles], "source": source, "dealer_id": dealer_id}
        headers = {"X-Dealer-ID": dealer_id, "Idempotency-Key": idempotency_key}
        # Idempotent: an upsert keyed by VIN, under an Idempotency-Key; a repeat changes nothing.
        data = self.post_json(BATCH_PATH, json=body, headers=headers, idempotent=True)
        try:
            result = BatchResult.model_validate(data)
        except ValidationError as err:
            raise PayloadError(
                f"data_api POST {BATCH_PATH} for dealer {dealer_id}: unexpected response shape: "
                f"{summarize_validation_error(err)}"
            ) from err
        logger.log(
            logging.INFO if result.success else logging.WARNING,
            "data_api batch for dealer %s (%s): %d sent, success=%s, %d processed, %d error(s)",
            dealer_id,
            source,
            len(vehicles),
            str(result.success).lower(),
            result.processed,
            len(result.errors),
        )
        return result

    def delist(self, *, dealer_id: str, source: str, vins: Sequence[str]) -> DelistResult:
        """Stop advertising ``vins`` (sold); returns the answer as it came. No request for no VINs."""
        if not vins:
            return DelistResult(success=True, delisted=0)
        body = {"dealer_id": dealer_id, "source": source, "vins": list(vins)}
        # Idempotent: keyed by VIN; a VIN delisted twice is delisted once.
        data = self.post_json(DELIST_PATH, json=body, headers={"X-Dealer-ID": dealer_id}, idempotent=True)
        try:
            result = DelistResult.model_validate(data)
        except ValidationError as err:
            raise PayloadError(
                f"data_api POST {DELIST_PATH} for dealer {dealer_id}: unexpected response shape "
                f"(expected {{success, delisted}}): {summarize_validation_error(err)}"
            ) from err
        logger.log(
            logging.INFO if result.success and result.delisted >= len(vins) else logging.WARNING,
            "data_api delist for dealer %s (%s): %d asked, success=%s, %d delisted",
            dealer_id,
            source,
            len(vins),
            str(result.success).lower(),
            result.delisted,
        )
        return result

    def _permanent_error(self, *, method: str, url: str, response: httpx.Response) -> PermanentUpstreamError:
        status = response.status_code
        if status == 413:
            return BatchTooLarge(
                f"data_api {method} {url} refused the batch as too large (HTTP 413): split it and resend",
                status_code=status,
            )
        if status == 422:
            return PermanentUpstreamError(
                f"data_api {method} {url} refused the request (HTTP 422): {self._api_message(response)}. "
                "An Idempotency-Key reused with a different body, or a body the API does not accept.",
                status_code=status,
            )
        return super()._permanent_error(method=method, url=url, response=response)

    def _api_message(self, response: httpx.Response) -> str:
        """The API's own ``error``/``message``/``detail`` text when the body is JSON, else an excerpt."""
        try:
            data = response.json()
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict):
            for key in ("error", "message", "detail"):
                value = data.get(key)
                if isinstance(value, str) and value.strip():
                    return excerpt(value, self.redactor)
        return excerpt(response.content, self.redactor)
