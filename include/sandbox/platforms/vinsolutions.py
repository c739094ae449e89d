"""VinSolutions inventory API (CONTRACTS §5): an OAuth2 token endpoint and a paged JSON gateway.

``POST /vinsolutions/oauth/token`` (form ``grant_type=client_credentials``, ``client_id``, ``client_secret``,
``scope=PublicAPI``) issues ``{access_token, expires_in: 3600, token_type: "Bearer"}``. A wrong client id or
secret is 401 ``invalid_client``; another grant type 400 ``unsupported_grant_type``; a scope other than
``PublicAPI`` 400 ``invalid_scope``.

``GET /vinsolutions/gateway/v1/inventory/vehicles?dealerId=&pageNumber=&pageSize=`` wants
``Authorization: Bearer <token>``, ``api_key: sandbox-vs-api-key`` and
``Accept: application/vnd.coxauto.v3+json``. A missing, unknown or expired token is 401 ``invalid_token``
(with ``WWW-Authenticate``); a wrong ``api_key`` 403; another ``Accept`` 406; a missing dealerId 400; an
unknown one 404. ``pageSize`` is capped at 100; ``pageNumber`` is 1-based; past the end ``items`` is empty.

Tokens expire after ``expires_in`` seconds of wall time, or -- the dealer's fault profile
``token_expires_after: k`` -- once a token has served ``k`` of that dealer's inventory requests, although it
announced an hour: the server-side expiry a client only learns about from a 401, mid-pagination. Issued
tokens live in the router's memory and survive ``POST /_sandbox/reset``, as a real authorization server's
would; their values are derived from the seed and an issue counter.

Quirks served on purpose: ``year`` and ``mileage`` are numbers, prices are numbers with an unknown
``internetPrice`` sent as ``0`` or ``null`` (alternating by VIN), used vehicles have ``msrp: null``,
``newUsed`` is ``New``/``Used``/``Certified``, some vehicles repeat their first photo at the end, some have no
photos and about one in six has ``vdpUrl: null``.

The request log records, for token requests, ``client_id``, ``grant_type``, ``scope``, ``outcome`` and the
``token_serial`` issued; for inventory requests the VinSolutions ``dealer_id``, ``page_number``,
``page_size``, the ``token_serial`` used and its ``token_uses`` so far. Never a token or a secret.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response

from include.sandbox.dealers import DealerSpec
from include.sandbox.http import arrive, json_response, truncated_json_response
from include.sandbox.lots import SourceVehicle
from include.sandbox.platforms import Platform
from include.sandbox.state import Exchange, SandboxState

PLATFORM_ID = "vinsolutions"
PREFIX = "/vinsolutions"
TOKEN_PATH = "/oauth/token"
INVENTORY_PATH = "/gateway/v1/inventory/vehicles"
CLIENT_ID = "sandbox-vs-client"
CLIENT_SECRET = "sandbox-vs-secret"
API_KEY = "sandbox-vs-api-key"
SCOPE = "PublicAPI"
ACCEPT = "application/vnd.coxauto.v3+json"
EXPIRES_IN = 3600
MAX_PAGE_SIZE = 100
NEW_USED = {"new": "New", "used": "Used", "certified": "Certified"}


def _digest(vin: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{vin}".encode()).digest()[:8], "big")


@dataclass
class IssuedToken:
    """One access token the sandbox issued: its issue number, wall-clock expiry and use count."""

    serial: int
    expires_at: float
    uses: int = 0


class TokenIssuer:
    """The authorization server's memory: issued tokens by value."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self.tokens: dict[str, IssuedToken] = {}

    def issue(self) -> tuple[str, IssuedToken]:
        serial = len(self.tokens) + 1
        value = "vs_" + hashlib.sha256(f"{self._seed}:vinsolutions:{serial}".encode()).hexdigest()[:40]
        issued = IssuedToken(serial=serial, expires_at=time.time() + EXPIRES_IN)
        self.tokens[value] = issued
        return value, issued


class VinsolutionsPlatform(Platform):
    """Renders lots as VinSolutions inventory items and serves the token and inventory endpoints."""

    platform_id: ClassVar[str] = PLATFORM_ID

    @staticmethod
    def dealer_number(dealer: DealerSpec) -> str:
        """The dealer's VinSolutions ``dealer_id`` (its CMS config)."""
        return str(dealer.platforms[PLATFORM_ID]["dealer_id"])

    def render(self, dealer: DealerSpec, vehicle: SourceVehicle) -> dict[str, Any]:
        v = vehicle
        photos = [
            {"url": f"https://images.vinsolutions.test/{self.dealer_number(dealer)}/{v.vin}/{n}.jpg"}
            for n in range(1, v.image_count + 1)
        ]
        if photos and _digest(v.vin, "photos") % 5 == 0:
            photos.append(dict(photos[0]))  # the feed repeats the lead photo at the end
        vdp: str | None = None
        if _digest(v.vin, "vdp") % 6:
            name = f"{v.year}-{v.make}-{v.model}".replace(" ", "-")
            vdp = f"https://{dealer.domain}/vehicle-details/{name}-{v.vin}"
        unknown_price: int | None = 0 if _digest(v.vin, "unknown") % 2 else None
        return {
            "vin": v.vin,
            "stockNumber": v.stock_number,
            "newUsed": NEW_USED[v.condition],
            "year": v.year,
            "make": v.make,
            "model": v.model,
            "trim": v.trim,
            "mileage": v.mileage,
            "pricing": {"internetPrice": v.price or unknown_price, "msrp": v.msrp},
            "exteriorColor": v.exterior_color,
            "interiorColor": v.interior_color,
            "bodyStyle": v.body_style,
            "transmission": v.transmission,
            "drivetrain": v.drivetrain,
            "fuelType": v.fuel_type,
            "photos": photos,
            "vdpUrl": vdp,
        }

    def airflow_connection(self, base_url: str) -> dict[str, Any]:
        """The scheduler's connection here: the gateway, its OAuth2 client and token URL, the API key."""
        return {
            "conn_type": "http",
            "host": f"{base_url}{PREFIX}",
            "login": CLIENT_ID,
            "password": CLIENT_SECRET,
            "extra": {"token_url": f"{base_url}{PREFIX}{TOKEN_PATH}", "api_key": API_KEY},
        }

    def router(self, state: SandboxState) -> APIRouter:
        router = APIRouter(prefix=PREFIX, tags=["vinsolutions"])
        issuer = TokenIssuer(state.config.seed)

        @router.post(TOKEN_PATH)
        async def token(request: Request) -> Response:
            exchange = state.begin(request, "vinsolutions")
            response = await self._token(issuer, exchange, request)
            state.finish(exchange, response.status_code)
            return response

        @router.get(INVENTORY_PATH)
        async def vehicles(request: Request) -> Response:
            exchange = state.begin(request, "vinsolutions")
            response = await self._vehicles(state, issuer, exchange, request)
            state.finish(exchange, response.status_code)
            return response

        return router

    @staticmethod
    async def _token(issuer: TokenIssuer, exchange: Exchange, request: Request) -> Response:
        form = await request.form()
        grant_type, client_id = form.get("grant_type"), form.get("client_id")
        secret, scope = form.get("client_secret"), form.get("scope")
        exchange.detail.update(client_id=client_id, grant_type=grant_type, scope=scope)
        if grant_type != "client_credentials":
            exchange.detail["outcome"] = "unsupported_grant_type"
            return json_response({"error": "unsupported_grant_type"}, 400)
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            exchange.detail["outcome"] = "invalid_client"
            return json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed"}, 401
            )
        if scope != SCOPE:
            exchange.detail["outcome"] = "invalid_scope"
            return json_response({"error": "invalid_scope", "error_description": f"Use scope {SCOPE}"}, 400)
        value, issued = issuer.issue()
        exchange.detail.update(outcome="issued", token_serial=issued.serial)
        return json_response({"access_token": value, "expires_in": EXPIRES_IN, "token_type": "Bearer"})

    def _dealer_for_number(self, state: SandboxState, number: str) -> DealerSpec | None:
        for dealer in state.dealers:
            if PLATFORM_ID in dealer.platforms and self.dealer_number(dealer) == number:
                return dealer
        return None

    async def _vehicles(
        self, state: SandboxState, issuer: TokenIssuer, exchange: Exchange, request: Request
    ) -> Response:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        issued = issuer.tokens.get(value) if scheme.lower() == "bearer" else None
        if issued is None or time.time() >= issued.expires_at:
            return _invalid_token("The access token is missing, unknown or expired")
        exchange.detail.update(token_serial=issued.serial, token_uses=issued.uses)
        if request.headers.get("api_key") != API_KEY:
            return json_response({"message": "Forbidden: missing or invalid api_key header"}, 403)
        if request.headers.get("Accept") != ACCEPT:
            return json_response({"message": f"Not Acceptable: send Accept: {ACCEPT}"}, 406)
        params = request.query_params
        number = (params.get("dealerId") or "").strip()
        page_number = _as_int(params.get("pageNumber"), 1)
        page_size = min(_as_int(params.get("pageSize"), MAX_PAGE_SIZE), MAX_PAGE_SIZE)
        exchange.detail.update(dealer_id=number or None, page_number=page_number, page_size=page_size)
        if not number:
            return json_response({"message": "Query parameter dealerId is required"}, 400)
        dealer = self._dealer_for_number(state, number)
        if dealer is None:
            return json_response({"message": f"Dealer {number} not found or not entitled"}, 404)
        exchange.for_dealer(dealer)
        limit = state.profile(dealer.id).token_expires_after
        if limit is not None and issued.uses >= limit:
            return _invalid_token("The access token expired")
        decision = await arrive(state, dealer.id)
        if decision.fails:
            return json_response(
                {"message": decision.error_message(dealer.slug)},
                decision.status_code or 500,
                decision.headers(),
            )
        issued.uses += 1
        lot = state.lot(PLATFORM_ID, dealer)
        listed = lot.vehicles if lot is not None else []
        page = listed[(page_number - 1) * page_size : page_number * page_size]
        exchange.n_vehicles = len(page)
        payload = {
            "items": [self.render(dealer, v) for v in page],
            "totalItems": len(listed),
            "pageNumber": page_number,
            "pageSize": page_size,
        }
        return truncated_json_response(payload) if decision.malformed else json_response(payload)


def _invalid_token(description: str) -> Response:
    return json_response(
        {"error": "invalid_token", "error_description": description},
        401,
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def _as_int(value: str | None, default: int) -> int:
    """A positive query integer; anything unparseable or below 1 falls back to the default."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number >= 1 else default
