"""HomeNet through the Open Dealer SOAP transformer (CONTRACTS §2): ``GET /homenet/v1/transform/homenet``.

``?rooftop=<rooftop_id>[&updatedSince=<ISO-8601>]`` with ``Authorization: Bearer sandbox-homenet-token``
and ``X-HomeNet-Integration-Token``: the rooftop's own token when the dealer's ``homenet_config`` has one,
else the shared ``sandbox-homenet-integration`` (the ``od_soap_transformer`` connection's extra). A wrong
bearer is 401; a token that is not the rooftop's is 403 (another dealer's token included).

Quirks served on purpose, as the transformer does:

- every field is a string: ``year "2021"``, ``miles "34512"``, ``certified "True"``; ``"0"`` and ``""``
  mean unknown (unknown prices alternate between the two; new cars often show ``miles "0"``);
- ``type`` is only ``New``/``Used``: certified pre-owned is ``Used`` + ``certified "True"``;
- ``dealerurl`` is usually the bare dealer domain (``www.x.com``) or its home page (``http://www.x.com/``);
  about one vehicle in four has a real detail page there;
- ``datelastmodified`` (ISO-8601, ``Z``) is a seeded time before 2025-11-14, or the wall-clock time the
  vehicle was changed or added through the control API; ``updatedSince`` keeps vehicles modified at or
  after it. (The truth endpoint renders the seeded stamp.)

The request log records the rooftop, ``updated_since`` and whose token was used (``token_owner``: the
dealer's slug, ``shared`` or ``unknown``), never a token.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response

from include.sandbox.dealers import DealerSpec
from include.sandbox.http import arrive, json_response, truncated_json_response
from include.sandbox.lots import REFERENCE_DATE, SourceVehicle
from include.sandbox.platforms import Platform
from include.sandbox.state import Exchange, SandboxState

PLATFORM_ID = "homenet"
PREFIX = "/homenet"
TRANSFORM_PATH = "/v1/transform/homenet"
BEARER_TOKEN = "sandbox-homenet-token"
SHARED_INTEGRATION_TOKEN = "sandbox-homenet-integration"
INTEGRATION_HEADER = "X-HomeNet-Integration-Token"
#: Seeded ``datelastmodified`` values fall in the 45 days before the reference day.
SEEDED_WINDOW = timedelta(days=45)


def _digest(vin: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{vin}".encode()).digest()[:8], "big")


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class HomenetPlatform(Platform):
    """Renders lots as HomeNet transformer vehicles and serves the transform endpoint."""

    platform_id: ClassVar[str] = PLATFORM_ID

    @staticmethod
    def rooftop_id(dealer: DealerSpec) -> str:
        return str(dealer.platforms[PLATFORM_ID]["rooftop_id"])

    @staticmethod
    def integration_token(dealer: DealerSpec) -> str:
        """The token the rooftop accepts: its own, else the shared one."""
        own = dealer.platforms[PLATFORM_ID].get("integration_token")
        return str(own) if own else SHARED_INTEGRATION_TOKEN

    @staticmethod
    def seeded_modified(vin: str) -> datetime:
        start = datetime.combine(REFERENCE_DATE, time(), UTC)
        return start - timedelta(seconds=_digest(vin, "modified") % int(SEEDED_WINDOW.total_seconds()))

    def render(
        self, dealer: DealerSpec, vehicle: SourceVehicle, modified: datetime | None = None
    ) -> dict[str, Any]:
        v = vehicle
        unknown = "0" if _digest(v.vin, "unknown") % 2 else ""
        description = ""
        if _digest(v.vin, "description") % 3:
            description = (
                f"{v.year} {v.make} {v.model} {v.trim} in {v.exterior_color}, {v.drivetrain}, "
                f"{v.transmission}. Call {dealer.name} today!"
            )
        return {
            "vin": v.vin,
            "stock_number": v.stock_number,
            "type": "New" if v.condition == "new" else "Used",
            "year": str(v.year),
            "make": v.make,
            "model": v.model,
            "trim": v.trim,
            "msrp": str(v.msrp) if v.msrp else unknown,
            "price": str(v.price) if v.price else unknown,
            "extcolor": v.exterior_color,
            "intcolor": v.interior_color,
            "miles": str(v.mileage),
            "description": description,
            "fueltype": v.fuel_type,
            "transmission": v.transmission,
            "drivetype": v.drivetrain,
            "bodystyle": v.body_style,
            "certified": "True" if v.condition == "certified" else "False",
            "dealerurl": self._dealer_url(dealer, v),
            "imagelist": [
                f"https://imagesdl.homenetinc.com/inventoryphotos/{self.rooftop_id(dealer)}/{v.vin}/ip/{n}.jpg"
                for n in range(1, v.image_count + 1)
            ],
            "datelastmodified": _iso(modified or self.seeded_modified(v.vin)),
        }

    @staticmethod
    def _dealer_url(dealer: DealerSpec, v: SourceVehicle) -> str:
        kind = _digest(v.vin, "dealerurl") % 4
        if kind < 2:
            return dealer.domain
        if kind == 2:
            return f"http://{dealer.domain}/"
        condition = "new" if v.condition == "new" else "used"
        model = v.model.replace(" ", "-")
        return f"https://{dealer.domain}/{condition}/{v.year}-{v.make}-{model}-{v.vin}.htm"

    def airflow_connection(self, base_url: str) -> dict[str, Any]:
        """The scheduler's connection here: the transformer, its bearer token, the shared integration
        token."""
        return {
            "conn_type": "http",
            "host": f"{base_url}{PREFIX}",
            "password": BEARER_TOKEN,
            "extra": {"integration_token": SHARED_INTEGRATION_TOKEN},
        }

    def router(self, state: SandboxState) -> APIRouter:
        router = APIRouter(prefix=PREFIX, tags=["homenet"])

        @router.get(TRANSFORM_PATH)
        async def transform(request: Request) -> Response:
            exchange = state.begin(request, "homenet")
            response = await self._transform(state, exchange, request)
            state.finish(exchange, response.status_code)
            return response

        return router

    def _dealer_for_rooftop(self, state: SandboxState, rooftop: str) -> DealerSpec | None:
        for dealer in state.dealers:
            if PLATFORM_ID in dealer.platforms and self.rooftop_id(dealer) == rooftop:
                return dealer
        return None

    def _token_owner(self, state: SandboxState, token: str) -> str:
        if token == SHARED_INTEGRATION_TOKEN:
            return "shared"
        for dealer in state.dealers:
            if (
                PLATFORM_ID in dealer.platforms
                and dealer.platforms[PLATFORM_ID].get("integration_token") == token
            ):
                return dealer.slug
        return "unknown" if token else "none"

    async def _transform(self, state: SandboxState, exchange: Exchange, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {BEARER_TOKEN}":
            return json_response({"error": "Unauthorized: invalid or missing bearer token"}, 401)
        rooftop = (request.query_params.get("rooftop") or "").strip()
        since_text = request.query_params.get("updatedSince")
        exchange.detail.update(rooftop=rooftop or None, updated_since=since_text)
        if not rooftop:
            return json_response({"error": "Query parameter 'rooftop' is required"}, 400)
        dealer = self._dealer_for_rooftop(state, rooftop)
        if dealer is None:
            return json_response({"error": f"Unknown rooftop {rooftop!r}"}, 404)
        exchange.for_dealer(dealer)
        token = request.headers.get(INTEGRATION_HEADER, "")
        exchange.detail["token_owner"] = self._token_owner(state, token)
        if token != self.integration_token(dealer):
            return json_response(
                {"error": f"Forbidden: the integration token is not valid for rooftop {rooftop}"}, 403
            )
        decision = await arrive(state, dealer.id)
        if decision.fails:
            return json_response(
                {"error": decision.error_message(dealer.slug)},
                decision.status_code or 500,
                decision.headers(),
            )
        since: datetime | None = None
        if since_text:
            try:
                since = datetime.fromisoformat(since_text.strip())
            except ValueError:
                return json_response({"error": f"updatedSince {since_text!r} is not ISO-8601"}, 400)
            if since.tzinfo is None:
                since = since.replace(tzinfo=UTC)

        lot = state.lot(PLATFORM_ID, dealer)
        vehicles = []
        for vehicle in lot.vehicles if lot is not None else []:
            modified = lot.changed_at.get(vehicle.vin) if lot is not None else None
            if since is not None and (modified or self.seeded_modified(vehicle.vin)) < since:
                continue
            vehicles.append(self.render(dealer, vehicle, modified))
        exchange.n_vehicles = len(vehicles)
        payload = {"rooftop": rooftop, "vehicles": vehicles}
        return truncated_json_response(payload) if decision.malformed else json_response(payload)
