"""The control API under ``/_sandbox`` (no auth): what tests and ``make demo`` use to steer and inspect.

Health, reset, the dealer table, the request log, fault profiles, the Data API's reject list and
store, the source "truth" of a dealer's lot, and lot mutations (sold vehicles, price changes,
new arrivals). Lot mutations live under ``/_sandbox/lots/<platform>/<dealer>/...``; add new ones
there.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from include.sandbox.dealers import PLATFORM_IDS, DealerSpec
from include.sandbox.faults import FaultProfile
from include.sandbox.http import json_response
from include.sandbox.lots import Lot
from include.sandbox.platforms import PLATFORMS
from include.sandbox.state import SERVICE_TARGETS, SandboxState
from include.sandbox.vin import is_valid

PREFIX = "/_sandbox"


class RejectVins(BaseModel):
    """Body of ``PUT /_sandbox/data-api/reject-vins``: replaces the list (``[]`` clears it)."""

    model_config = ConfigDict(extra="forbid")

    vins: list[str]
    error: str = "VIN rejected by the Data API"


class RemoveVehicles(BaseModel):
    """Body of ``POST /_sandbox/lots/<platform>/<dealer>/remove``: vehicles sold off the lot."""

    model_config = ConfigDict(extra="forbid")

    vins: list[str]


class UpdateVehicle(BaseModel):
    """Body of ``POST /_sandbox/lots/<platform>/<dealer>/update``: source fields to change."""

    model_config = ConfigDict(extra="forbid")

    vin: str
    fields: dict[str, Any]


class AddVehicles(BaseModel):
    """Body of ``POST /_sandbox/lots/<platform>/<dealer>/add``: new arrivals, generated deterministically."""

    model_config = ConfigDict(extra="forbid")

    new: int = Field(default=0, ge=0, le=500)
    used: int = Field(default=0, ge=0, le=500)
    certified: int = Field(default=0, ge=0, le=500)


def _not_found(message: str) -> Response:
    return json_response({"error": message}, 404)


def _platform_id(name: str) -> str | None:
    """Accept ``dealer.com`` and ``dealer_com``."""
    for platform in PLATFORM_IDS:
        if name in (platform, platform.replace(".", "_")):
            return platform
    return None


def build_router(state: SandboxState) -> APIRouter:
    """The control endpoints, bound to ``state``."""
    router = APIRouter(prefix=PREFIX, tags=["control"])

    def target_name(target: str) -> str:
        dealer = state.dealer(target)
        return dealer.slug if dealer else target

    def resolve_lot(platform_name: str, dealer_key: str) -> tuple[str, DealerSpec, Lot] | Response:
        platform = _platform_id(platform_name)
        dealer = state.dealer(dealer_key)
        if platform is None:
            return _not_found(f"unknown platform {platform_name!r}; known: {list(PLATFORM_IDS)}")
        if dealer is None:
            return _not_found(f"unknown dealer {dealer_key!r} (use a slug or an id)")
        lot = state.lot(platform, dealer)
        if lot is None:
            return _not_found(f"dealer {dealer.slug} is not on {platform}")
        return platform, dealer, lot

    @router.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @router.post("/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"ok": True}

    @router.get("/dealers")
    async def dealers() -> dict[str, Any]:
        rows = []
        for dealer in state.dealers:
            profile = state.profile(dealer.id)
            rows.append(
                {
                    "id": dealer.id,
                    "slug": dealer.slug,
                    "name": dealer.name,
                    "status": dealer.status,
                    "platforms": list(dealer.platforms),
                    "lot": {
                        platform: len(state.lots[(platform, dealer.id)]) for platform in dealer.platforms
                    },
                    "fault": profile.model_dump(mode="json", exclude_defaults=True) or None,
                    "fault_description": profile.describe(),
                    "scenario": dealer.note
                    or (None if profile.describe() == "clean" else profile.describe()),
                }
            )
        return {"dealers": rows}

    @router.get("/requests")
    async def requests(service: str | None = None, dealer: str | None = None) -> dict[str, Any]:
        known = state.dealer(dealer) if dealer else None
        wanted = known.id if known else dealer
        entries = [
            exchange.to_json()
            for exchange in state.request_log
            if (service is None or exchange.service == service)
            and (wanted is None or exchange.dealer == wanted)
        ]
        return {"requests": entries}

    @router.get("/faults")
    async def faults() -> dict[str, Any]:
        return {
            "faults": {
                target_name(target): profile.model_dump(mode="json", exclude_defaults=True)
                for target, profile in state.faults.items()
            }
        }

    @router.put("/faults/{target}")
    async def put_fault(target: str, profile: FaultProfile) -> Response:
        key = state.fault_target(target)
        if key is None:
            return _not_found(
                f"unknown fault target {target!r}: use {list(SERVICE_TARGETS)} or a dealer slug/id"
            )
        state.set_profile(key, profile)
        return json_response({"target": target_name(key), "profile": profile.model_dump(mode="json")})

    @router.delete("/faults/{target}")
    async def delete_fault(target: str) -> Response:
        key = state.fault_target(target)
        if key is None:
            return _not_found(
                f"unknown fault target {target!r}: use {list(SERVICE_TARGETS)} or a dealer slug/id"
            )
        state.set_profile(key, None)
        return json_response(
            {"target": target_name(key), "profile": state.profile(key).model_dump(mode="json")}
        )

    @router.put("/data-api/reject-vins")
    async def reject_vins(body: RejectVins) -> dict[str, Any]:
        state.data_api.reject_vins = dict.fromkeys(body.vins, body.error)
        return {"vins": list(state.data_api.reject_vins), "error": body.error}

    @router.get("/data-api/vehicles")
    async def stored_vehicles(
        dealer_id: str | None = None, source: str | None = None, include_delisted: bool = False
    ) -> dict[str, Any]:
        rows = [
            {
                **stored.vehicle,
                "dealer_id": key[0],
                "source": key[1],
                "delisted": stored.delisted,
                "writes": stored.writes,
            }
            for key, stored in sorted(state.data_api.vehicles.items())
            if (dealer_id is None or key[0] == dealer_id)
            and (source is None or key[1] == source)
            and (include_delisted or not stored.delisted)
        ]
        return {"vehicles": rows}

    @router.get("/data-api/stats")
    async def stats() -> dict[str, int]:
        return state.data_api.snapshot()

    @router.get("/truth/{platform_name}/{dealer_key}")
    async def truth(platform_name: str, dealer_key: str) -> Response:
        resolved = resolve_lot(platform_name, dealer_key)
        if isinstance(resolved, Response):
            return resolved
        platform, dealer, lot = resolved
        module = PLATFORMS.get(platform)
        if module is None:
            return _not_found(f"the sandbox does not serve {platform} yet")
        return json_response(
            {
                "dealer_id": dealer.id,
                "slug": dealer.slug,
                "platform": platform,
                "vehicles": [module.render(dealer, vehicle) for vehicle in lot.vehicles],
                "vins": sorted(lot.vins()),
                "invalid_vins": sorted(vin for vin in lot.vins() if not is_valid(vin)),
                "segments": module.segments(lot),
                "records": [vehicle.to_record() for vehicle in lot.vehicles],
            }
        )

    # --- lot mutations: add further ones here ---------------------------------------------------
    @router.post("/lots/{platform_name}/{dealer_key}/remove")
    async def remove(platform_name: str, dealer_key: str, body: RemoveVehicles) -> Response:
        resolved = resolve_lot(platform_name, dealer_key)
        if isinstance(resolved, Response):
            return resolved
        _, _, lot = resolved
        removed = lot.remove(body.vins)
        return json_response({"removed": removed, "remaining": len(lot)})

    @router.post("/lots/{platform_name}/{dealer_key}/restore")
    async def restore(platform_name: str, dealer_key: str, body: RemoveVehicles) -> Response:
        resolved = resolve_lot(platform_name, dealer_key)
        if isinstance(resolved, Response):
            return resolved
        _, _, lot = resolved
        return json_response({"restored": lot.restore(body.vins), "remaining": len(lot)})

    @router.post("/lots/{platform_name}/{dealer_key}/revin")
    async def revin(platform_name: str, dealer_key: str, body: dict[str, str]) -> Response:
        resolved = resolve_lot(platform_name, dealer_key)
        if isinstance(resolved, Response):
            return resolved
        _, _, lot = resolved
        if body.get("vin") not in lot or not body.get("new_vin"):
            return json_response({"error": "give the 'vin' of a vehicle on the lot and its 'new_vin'"}, 400)
        return json_response({"record": lot.revin(body["vin"], body["new_vin"]).to_record()})

    @router.post("/lots/{platform_name}/{dealer_key}/update")
    async def update(platform_name: str, dealer_key: str, body: UpdateVehicle) -> Response:
        resolved = resolve_lot(platform_name, dealer_key)
        if isinstance(resolved, Response):
            return resolved
        _, _, lot = resolved
        if body.vin not in lot:
            return _not_found(f"VIN {body.vin} is not on this lot")
        try:
            vehicle = lot.update(body.vin, body.fields)
        except (TypeError, ValueError) as err:
            return json_response({"error": str(err)}, 400)
        return json_response({"record": vehicle.to_record()})

    @router.post("/lots/{platform_name}/{dealer_key}/add")
    async def add(platform_name: str, dealer_key: str, body: AddVehicles) -> Response:
        resolved = resolve_lot(platform_name, dealer_key)
        if isinstance(resolved, Response):
            return resolved
        platform, dealer, lot = resolved
        if body.new and not dealer.makes:
            return json_response({"error": f"{dealer.slug} has no franchise make, so no new vehicles"}, 400)
        added = state.add_arrivals(platform, dealer, new=body.new, used=body.used, certified=body.certified)
        return json_response({"added": added, "remaining": len(lot)})

    return router
