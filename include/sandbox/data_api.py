"""Open Dealer Data API ingestion (CONTRACTS §8), served under ``/data-api``.

- ``POST /data-api/v1/vehicles/batch``: headers ``X-API-Key``, ``X-Dealer-ID`` (must equal the
  body's ``dealer_id``), ``Idempotency-Key`` (required); body ``{vehicles, source, dealer_id}``,
  at most 500 vehicles (413 above). Upsert key ``(dealer_id, source, vin)``, latest content wins,
  a delisted VIN is listed again. Per-VIN rejections go to ``errors`` and are not stored: a VIN that
  is not 17 characters of ``[A-HJ-NPR-Z0-9]`` with a correct check digit (position 9) for every WMI
  (the US rule, 49 CFR 565), unless ``year`` is before 1981; a null ``make``; a VIN on the runtime
  reject list; ``dealer_id``/``source`` differing from the batch's. ``processed`` counts stored
  records. ``success`` is true for every applied batch.
- Idempotency: the same key with the same body (hash of canonical JSON) replays the first response
  (header ``Idempotent-Replayed: true``) without applying it again; the same key with another body
  is 422. Only applied (200) batches are remembered.
- ``POST /data-api/v1/vehicles/delist`` ``{dealer_id, source, vins}`` -> ``{success, delisted}``
  (VINs that were live and are now delisted).
- Faults (target ``data_api``) are decided after authentication and before the body is read: a
  failed request changes nothing. A "malformed" response is sent *after* the batch was applied,
  like a connection lost on the way back; retrying with the same key replays it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import APIRouter, Request, Response

from include.sandbox.dealers import PLATFORM_IDS
from include.sandbox.http import arrive, json_response, truncated_json_response
from include.sandbox.state import CachedResponse, DataApiStore, Exchange, SandboxState, StoredVehicle
from include.sandbox.vin import VIN_PATTERN, check_digit

PREFIX = "/data-api"
TARGET = "data_api"

BAD_VIN = "invalid VIN: must be 17 characters from A-H, J-N, P, R-Z and 0-9 (no I, O or Q)"
MISSING_VIN = "vin is required"
BAD_CHECK_DIGIT = "invalid VIN: wrong check digit (position 9)"
#: The first model year whose VIN must follow the 17-character standard (49 CFR 565).
FIRST_STANDARD_MODEL_YEAR = 1981
MISSING_MAKE = "make is required"


def body_hash(body: Any) -> str:
    """Hash of the canonical JSON of a request body (key order and whitespace do not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def build_router(state: SandboxState) -> APIRouter:
    """The Data API endpoints, bound to ``state``."""
    router = APIRouter(prefix=PREFIX, tags=["data-api"])
    store = state.data_api

    async def _preflight(request: Request, exchange: Exchange) -> tuple[Response | None, Any, bool]:
        """Auth, fault, JSON body. Returns (error response or None, body, malformed)."""
        exchange.idempotency_key = request.headers.get("idempotency-key")
        exchange.dealer = request.headers.get("x-dealer-id")
        if request.headers.get("x-api-key") != state.config.data_api_key:
            return _error("Invalid or missing X-API-Key", 401), None, False
        decision = await arrive(state, TARGET)
        if decision.fails:
            return (
                _error(decision.error_message(TARGET), decision.status_code or 500, decision.headers()),
                None,
                False,
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error("Request body is not JSON", 400), None, False
        if not isinstance(body, dict):
            return _error("Request body must be a JSON object", 400), None, False
        if exchange.dealer is None and isinstance(body.get("dealer_id"), str):
            exchange.dealer = body["dealer_id"]
        header_dealer = request.headers.get("x-dealer-id")
        if header_dealer is not None and header_dealer != body.get("dealer_id"):
            return _error("X-Dealer-ID header does not match the body's dealer_id", 400), None, False
        if not isinstance(body.get("dealer_id"), str) or not body["dealer_id"]:
            return _error("dealer_id must be a non-empty string", 400), None, False
        if body.get("source") not in PLATFORM_IDS:
            return _error(f"source must be one of {list(PLATFORM_IDS)}", 400), None, False
        return None, body, decision.malformed

    def _annotate(exchange: Exchange) -> None:
        dealer = state.dealer(exchange.dealer) if exchange.dealer else None
        if dealer is not None:
            exchange.dealer_slug = dealer.slug

    @router.post("/v1/vehicles/batch")
    async def batch(request: Request) -> Response:
        exchange = state.begin(request, "data_api")
        store.stats["batch_calls"] += 1
        response = await _batch(request, exchange)
        _annotate(exchange)
        state.finish(exchange, response.status_code)
        return response

    async def _batch(request: Request, exchange: Exchange) -> Response:
        failure, body, malformed = await _preflight(request, exchange)
        if failure is not None:
            return failure
        key = request.headers.get("idempotency-key", "").strip()
        if not key:
            return _error("Idempotency-Key header is required", 400)
        if request.headers.get("x-dealer-id") is None:
            return _error("X-Dealer-ID header is required", 400)
        vehicles = body.get("vehicles")
        if not isinstance(vehicles, list):
            return _error("vehicles must be a list", 400)
        exchange.n_vehicles = len(vehicles)
        limit = state.config.data_api_max_batch
        if len(vehicles) > limit:
            return _error(f"at most {limit} vehicles per request, got {len(vehicles)}", 413)

        digest = body_hash(body)
        cached = store.idempotency.get(key)
        if cached is not None:
            if cached.body_hash != digest:
                return _error("Idempotency-Key reuse with a different body", 422)
            store.stats["batches_replayed"] += 1
            exchange.detail["replayed"] = True
            return json_response(cached.body, cached.status, {"Idempotent-Replayed": "true"})

        result = apply_batch(store, body["dealer_id"], body["source"], vehicles)
        store.idempotency[key] = CachedResponse(digest, 200, result)
        exchange.detail.update(processed=result["processed"], rejected=len(result["errors"]))
        return truncated_json_response(result) if malformed else json_response(result)

    @router.post("/v1/vehicles/delist")
    async def delist(request: Request) -> Response:
        exchange = state.begin(request, "data_api")
        store.stats["delist_calls"] += 1
        response = await _delist(request, exchange)
        _annotate(exchange)
        state.finish(exchange, response.status_code)
        return response

    async def _delist(request: Request, exchange: Exchange) -> Response:
        failure, body, malformed = await _preflight(request, exchange)
        if failure is not None:
            return failure
        vins = body.get("vins")
        if not isinstance(vins, list) or not all(isinstance(vin, str) for vin in vins):
            return _error("vins must be a list of strings", 400)
        exchange.n_vehicles = len(vins)
        delisted = 0
        for vin in dict.fromkeys(vins):
            stored = store.vehicles.get((body["dealer_id"], body["source"], vin))
            if stored is not None and not stored.delisted:
                stored.delisted = True
                delisted += 1
        store.stats["vehicles_delisted"] += delisted
        exchange.detail["delisted"] = delisted
        result = {"success": True, "delisted": delisted}
        return truncated_json_response(result) if malformed else json_response(result)

    return router


def apply_batch(store: DataApiStore, dealer_id: str, source: str, vehicles: list[Any]) -> dict[str, Any]:
    """Validate and upsert each vehicle; the batch response."""
    errors: list[dict[str, Any]] = []
    processed = 0
    for vehicle in vehicles:
        problem = _problem(store, dealer_id, source, vehicle)
        if problem is not None:
            errors.append(
                {"vin": vehicle.get("vin") if isinstance(vehicle, dict) else None, "error": problem}
            )
            continue
        key = (dealer_id, source, str(vehicle["vin"]))
        previous = store.vehicles.get(key)
        store.vehicles[key] = StoredVehicle(vehicle=vehicle, writes=previous.writes + 1 if previous else 1)
        processed += 1
    store.stats["batches_applied"] += 1
    store.stats["vehicles_processed"] += processed
    store.stats["vehicles_rejected"] += len(errors)
    return {
        "success": True,
        "processed": processed,
        "dealer_id": dealer_id,
        "source": source,
        "errors": errors,
    }


def _problem(store: DataApiStore, dealer_id: str, source: str, vehicle: Any) -> str | None:
    if not isinstance(vehicle, dict):
        return "vehicle must be a JSON object"
    vin = vehicle.get("vin")
    problem = vin_problem(vin, vehicle.get("year"))
    if problem is not None:
        return problem
    if vin in store.reject_vins:
        return store.reject_vins[vin]
    if vehicle.get("make") in (None, ""):
        return MISSING_MAKE
    if vehicle.get("dealer_id", dealer_id) != dealer_id:
        return "dealer_id does not match the batch's dealer_id"
    if vehicle.get("source", source) != source:
        return "source does not match the batch's source"
    return None


def vin_problem(vin: Any, year: Any) -> str | None:
    """Why the Data API refuses ``vin`` (CONTRACTS section 8), or ``None``.

    The check digit applies to every WMI: 49 CFR 565 requires it on every vehicle made for sale in the
    US, wherever it was built. Model years before 1981 predate the standard: any non-empty VIN.
    """
    if not isinstance(vin, str) or not vin.strip():
        return MISSING_VIN
    exempt = isinstance(year, int) and not isinstance(year, bool) and year < FIRST_STANDARD_MODEL_YEAR
    if exempt:
        return None
    if not VIN_PATTERN.match(vin):
        return BAD_VIN
    if vin[8] != check_digit(vin):
        return BAD_CHECK_DIGIT
    return None
