"""Apify for web-scraping dealers (CONTRACTS §4), under ``/apify``: actor runs, their status, their datasets.

- ``POST /apify/v2/acts/<actor>/runs``, input ``{startUrls: [{url}], dealerId, maxItems?}``: 201
  ``{"data": run}`` with status ``READY``;
- ``GET /apify/v2/acts/<actor>/runs?desc=&limit=&offset=&status=``: the actor's runs, oldest first
  (``desc=1``: newest first), as Apify lists them: ``{"data": {total, offset, limit, desc, count, items}}``;
- ``GET /apify/v2/actor-runs/<run>?waitForFinish=<0..60>``: ``{"data": run}``;
- ``GET /apify/v2/actor-runs/<run>/key-value-store/records/INPUT`` (or
  ``/apify/v2/key-value-stores/<defaultKeyValueStoreId>/records/INPUT``): the input the run was started with;
- ``POST /apify/v2/actor-runs/<run>/abort``: ``{"data": run}`` (``ABORTING``; the next poll says ``ABORTED``);
- ``GET /apify/v2/datasets/<dataset>/items?offset=&limit=&clean=&format=json``: a JSON array, with
  ``X-Apify-Pagination-Total`` / ``-Offset`` / ``-Limit`` / ``-Count``;
- control ``GET /_sandbox/apify/runs[?dealer=<slug or id>]``: every run, its status, polls, ``aborted``;
- control ``PUT /_sandbox/apify/outages/<dealer>`` ``{lose_start_answers, fail_dataset_reads, status}``:
  Apify-side failures the fault profiles cannot express, counted down per request. The next
  ``lose_start_answers`` starts of the dealer's runs *do* start the run, then answer ``status`` (a gateway
  that lost Apify's answer: the client cannot know the run exists); the next ``fail_dataset_reads`` dataset
  reads answer ``status``. ``DELETE`` clears them; ``GET /_sandbox/apify/outages`` lists them.

Auth is ``Authorization: Bearer sandbox-apify-token`` (else 401 ``token-not-valid``). Stricter than Apify:
a ``?token=`` query parameter is refused with 400, so a client that puts the token in URLs fails here.

Runs are scripted per dealer and counted in polls, never in wall time (:data:`RUN_SCRIPTS`; any other
dealer: ``RUNNING`` for 2 polls, ``SUCCEEDED`` on the 3rd). A poll that will not see the run finish is held
for ``min(waitForFinish, 0.25 s)``: ``waitForFinish`` is honoured, compressed in time; a finishing poll
answers at once. ``waitForFinish`` outside 0..60 is a 400. A dealer's fault profile applies to every Apify
request about that dealer (429s carry ``{"error": {"type": "rate-limit-exceeded"}}`` and ``Retry-After``).

A run's dataset is the dealer's lot as scraped when the run started, capped at ``maxItems``. Until the run
SUCCEEDED, the dataset holds only the part scraped so far. Scraped data is noisy, decided per VIN:
~4 % of items have no VIN (``null``, ``""`` or no key), ~4 % a VIN with a wrong check digit (North-American
VINs; others are cut to 16 characters), ~2 % a letter ``O`` for a zero; ~3 % of pages were crawled twice
(the same item again at the end of the dataset). Prices are numbers, ``"$25,995"``, ``"$25,995.00"``, or
unknown (``null``, ``""``, ``"Call for Price"``); mileage is a number or ``"34,512 mi"``; ``year`` a number
or text; some detail and image links are relative. Each item has a hidden ``#debug`` field, dropped by
``clean=true``. Runs are forgotten on ``POST /_sandbox/reset``.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from include.sandbox.dealers import DealerSpec
from include.sandbox.faults import FaultDecision
from include.sandbox.http import arrive, dumps, json_response, truncated_json_response
from include.sandbox.lots import Lot, SourceVehicle
from include.sandbox.platforms import Platform
from include.sandbox.state import Exchange, SandboxState

PLATFORM_ID = "web_scraping"
PREFIX = "/apify"
TOKEN = "sandbox-apify-token"
#: The longest the sandbox holds a ``waitForFinish`` poll (Apify: the asked value, up to 60 s).
WAIT_CAP_S = 0.25
MAX_WAIT_FOR_FINISH_S = 60

READY, RUNNING, SUCCEEDED, FAILED = "READY", "RUNNING", "SUCCEEDED", "FAILED"
TIMED_OUT, ABORTING, ABORTED = "TIMED-OUT", "ABORTING", "ABORTED"
TERMINAL = frozenset({SUCCEEDED, FAILED, TIMED_OUT, ABORTED})

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CONDITION_TEXT = {"new": "New", "used": "Used", "certified": "Certified Pre-Owned"}
#: Marks an item whose ``vin`` key is absent altogether (not null, not empty).
_NO_KEY = object()


@dataclass(frozen=True)
class RunScript:
    """How a dealer's actor runs go: ``RUNNING`` for ``running_polls`` polls, then ``outcome``.

    ``running_polls=None`` is a run that never finishes (only an abort ends it).
    """

    running_polls: int | None = 2
    outcome: str = SUCCEEDED
    status_message: str = "Finished! The dealer's inventory pages were scraped."


RUN_SCRIPTS: dict[str, RunScript] = {
    "canyon-creek-autos": RunScript(
        running_polls=1,
        outcome=FAILED,
        status_message="The Actor process exited with code 1: the dealer site answered 403 to the crawler",
    ),
    "prairie-wind-motors": RunScript(
        running_polls=2,
        outcome=TIMED_OUT,
        status_message="Actor run exceeded its own timeout of 3600 seconds",
    ),
    "endless-acres-auto": RunScript(running_polls=None, status_message="Crawling the inventory pages"),
}
"""Dealers whose runs do not simply succeed (by slug); every other dealer gets ``RunScript()``."""


def _digest(vin: str, salt: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{salt}:{vin}".encode()).digest()[:8], "big")


def _apify_id(*parts: object) -> str:
    """A 17-character id like Apify's, derived from ``parts``."""
    number = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:16], "big")
    chars = []
    for _ in range(17):
        number, index = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(kind: str, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """Apify's error shape: ``{"error": {"type", "message"}}``."""
    return json_response({"error": {"type": kind, "message": message}}, status, headers)


@dataclass
class Run:
    """One actor run and its dataset (a snapshot of the scraped lot)."""

    id: str
    actor_id: str
    dealer: DealerSpec
    dataset_id: str
    script: RunScript
    items: list[dict[str, Any]]
    max_items: int | None
    started_at: str = field(default_factory=_now)
    status: str = READY
    status_message: str | None = "Starting the Actor run"
    finished_at: str | None = None
    polls: int = 0
    aborted: bool = False
    #: The input the run was started with (Apify keeps it as the ``INPUT`` record of the run's store).
    input: dict[str, Any] = field(default_factory=dict)

    @property
    def key_value_store_id(self) -> str:
        return _apify_id("kvs", self.id)

    def finish(self, status: str, message: str | None) -> None:
        self.status, self.status_message, self.finished_at = status, message, _now()

    def poll(self) -> bool:
        """Count a poll and advance the script; True when this poll saw the run reach a terminal status."""
        if self.status in TERMINAL:
            return False
        self.polls += 1
        if self.status == ABORTING:
            self.finish(ABORTED, "The Actor run was aborted")
            return True
        done = self.script.running_polls is not None and self.polls > self.script.running_polls
        if done:
            self.finish(self.script.outcome, self.script.status_message)
            return True
        self.status, self.status_message = RUNNING, f"Crawling: poll {self.polls}"
        return False

    def scraped(self) -> list[dict[str, Any]]:
        """The items scraped so far: all once SUCCEEDED, a share of them before (and for failed runs)."""
        if self.status == SUCCEEDED:
            return self.items
        planned = (self.script.running_polls or 10) + 1
        return self.items[: len(self.items) * min(self.polls, planned) // planned]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "actId": self.actor_id,
            "userId": "sandboxUser0000001",
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "status": self.status,
            "statusMessage": self.status_message,
            "defaultDatasetId": self.dataset_id,
            "defaultKeyValueStoreId": self.key_value_store_id,
            "buildNumber": "0.3.12",
            "options": {"build": "latest", "timeoutSecs": 3600, "memoryMbytes": 2048},
        }

    def to_list_item(self) -> dict[str, Any]:
        """The run as ``GET /v2/acts/<actor>/runs`` lists it (Apify's short form: no input, no options)."""
        return {
            "id": self.id,
            "actId": self.actor_id,
            "actorTaskId": None,
            "status": self.status,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "buildId": _apify_id("build", self.actor_id),
            "buildNumber": "0.3.12",
            "meta": {"origin": "API"},
            "usageTotalUsd": 0.0,
            "defaultKeyValueStoreId": self.key_value_store_id,
            "defaultDatasetId": self.dataset_id,
            "defaultRequestQueueId": _apify_id("queue", self.id),
        }


class ApifyOutage(BaseModel):
    """Body of ``PUT /_sandbox/apify/outages/<dealer>``: Apify-side failures, counted down per request."""

    model_config = ConfigDict(extra="forbid")

    lose_start_answers: int = Field(default=0, ge=0, le=100)
    fail_dataset_reads: int = Field(default=0, ge=0, le=100)
    status: int = Field(default=503, ge=500, le=599)


@dataclass
class ApifyWorld:
    """The runs and datasets of one sandbox state (forgotten when the state is reset)."""

    lots_seen: dict[tuple[str, str], Lot]
    runs: dict[str, Run] = field(default_factory=dict)
    datasets: dict[str, Run] = field(default_factory=dict)
    starts: int = 0
    #: Outages by dealer id (see :class:`ApifyOutage`), mutated as they are used up.
    outages: dict[str, dict[str, int]] = field(default_factory=dict)

    def use_outage(self, dealer: DealerSpec, kind: str) -> int | None:
        """The status to fail this request with when the dealer's ``kind`` outage is not used up yet."""
        outage = self.outages.get(dealer.id)
        if not outage or outage.get(kind, 0) <= 0:
            return None
        outage[kind] -= 1
        return outage["status"]


class WebScrapingPlatform(Platform):
    """Renders lots as scraped dataset items and serves Apify's run and dataset endpoints."""

    platform_id: ClassVar[str] = PLATFORM_ID

    def __init__(self) -> None:
        self._worlds: weakref.WeakKeyDictionary[SandboxState, ApifyWorld] = weakref.WeakKeyDictionary()

    def world(self, state: SandboxState) -> ApifyWorld:
        """This state's runs; a reset (which replaces the lots table) starts a new world."""
        world = self._worlds.get(state)
        if world is None or world.lots_seen is not state.lots:
            world = ApifyWorld(lots_seen=state.lots)
            self._worlds[state] = world
        return world

    # --- data -------------------------------------------------------------------------------------
    def render(self, dealer: DealerSpec, vehicle: SourceVehicle) -> dict[str, Any]:
        v = vehicle
        noise = _digest(v.vin, "noise") % 100
        detail = f"/vehicle-details/{v.year}-{v.make}-{v.model}-{v.stock_number}".replace(" ", "-")
        absolute = f"https://{dealer.domain}{detail}"
        relative_links = _digest(v.vin, "links") % 4 == 0
        images = [
            f"/photos/{v.stock_number}/{n}.jpg"
            if relative_links
            else f"https://cdn.{dealer.domain}/{v.vin}/{n}.jpg"
            for n in range(1, v.image_count + 1)
        ]
        item: dict[str, Any] = {
            "vin": self._scraped_vin(v.vin, noise),
            "stockNumber": v.stock_number,
            "condition": _CONDITION_TEXT[v.condition],
            "year": v.year if noise % 2 else str(v.year),
            "make": v.make,
            "model": v.model,
            "trim": v.trim,
            "price": self._price(v),
            "mileage": v.mileage if _digest(v.vin, "miles") % 3 else f"{v.mileage:,} mi",
            "exteriorColor": v.exterior_color,
            "interiorColor": v.interior_color,
            "bodyStyle": v.body_style,
            "drivetrain": v.drivetrain,
            "transmission": v.transmission,
            "fuelType": v.fuel_type,
            "images": images,
            "url": detail if relative_links else absolute,
            "#debug": {"loadedUrl": absolute, "requestId": _apify_id("request", v.vin)},
        }
        if item["vin"] is _NO_KEY:
            del item["vin"]
        return item

    @staticmethod
    def _scraped_vin(vin: str, noise: int) -> Any:
        if noise < 4:  # the page showed no VIN
            return (None, "", _NO_KEY)[noise % 3]
        if noise < 8:  # a typo: wrong check digit where it is checked, else a character cut off
            if vin[0] not in "12345":
                return vin[:16]
            right = vin[8]
            wrong = "0" if right == "X" else str((int(right) + 1 + _digest(vin, "typo") % 9) % 10)
            return vin[:8] + wrong + vin[9:]
        if noise < 10:  # the letter O read for a zero
            return vin[:3] + vin[3:].replace("0", "O", 1) if "0" in vin[3:] else vin[:16]
        return vin

    @staticmethod
    def _price(v: SourceVehicle) -> Any:
        kind = _digest(v.vin, "price") % 3
        if v.price is None:
            return (None, "", "Call for Price")[kind]
        return (v.price, f"${v.price:,}", f"${v.price:,}.00")[kind]

    def dataset(self, dealer: DealerSpec, lot: Lot, max_items: int | None) -> list[dict[str, Any]]:
        """What one run scrapes: every vehicle once, pages crawled twice again at the end, up to maxItems."""
        items = [self.render(dealer, v) for v in lot.vehicles]
        again = [
            item
            for v, item in zip(lot.vehicles, items, strict=True)
            if 10 <= _digest(v.vin, "noise") % 100 < 13
        ]
        everything = items + [dict(item) for item in again]
        return everything[:max_items] if max_items is not None else everything

    # --- HTTP -------------------------------------------------------------------------------------
    def airflow_connection(self, base_url: str) -> dict[str, Any]:
        """The scheduler's connection here: the Apify API and its token."""
        return {"conn_type": "http", "host": f"{base_url}{PREFIX}", "password": TOKEN}

    def router(self, state: SandboxState) -> APIRouter:
        router = APIRouter(tags=["apify"])

        async def handle(request: Request, handler: Any, **kwargs: Any) -> Response:
            exchange = state.begin(request, "apify")
            response = self._authenticate(request) or await handler(state, exchange, request, **kwargs)
            state.finish(exchange, response.status_code)
            return response

        @router.post(PREFIX + "/v2/acts/{actor_id}/runs")
        async def start_run(actor_id: str, request: Request) -> Response:
            return await handle(request, self._start, actor_id=actor_id)

        @router.get(PREFIX + "/v2/acts/{actor_id}/runs")
        async def list_runs(actor_id: str, request: Request) -> Response:
            return await handle(request, self._list_runs, actor_id=actor_id)

        @router.get(PREFIX + "/v2/actor-runs/{run_id}")
        async def get_run(run_id: str, request: Request) -> Response:
            return await handle(request, self._get_run, run_id=run_id)

        @router.get(PREFIX + "/v2/actor-runs/{run_id}/key-value-store/records/{key}")
        async def run_record(run_id: str, key: str, request: Request) -> Response:
            return await handle(request, self._record, run_id=run_id, key=key)

        @router.get(PREFIX + "/v2/key-value-stores/{store_id}/records/{key}")
        async def store_record(store_id: str, key: str, request: Request) -> Response:
            return await handle(request, self._record, store_id=store_id, key=key)

        @router.post(PREFIX + "/v2/actor-runs/{run_id}/abort")
        async def abort_run(run_id: str, request: Request) -> Response:
            return await handle(request, self._abort, run_id=run_id)

        @router.get(PREFIX + "/v2/datasets/{dataset_id}/items")
        async def items(dataset_id: str, request: Request) -> Response:
            return await handle(request, self._items, dataset_id=dataset_id)

        @router.get("/_sandbox/apify/runs", tags=["control"])
        async def runs(dealer: str | None = None) -> dict[str, Any]:
            wanted = state.dealer(dealer) if dealer else None
            return {
                "runs": [
                    {
                        **run.to_json(),
                        "dealer_id": run.dealer.id,
                        "dealer_slug": run.dealer.slug,
                        "polls": run.polls,
                        "aborted": run.aborted,
                        "items": len(run.items),
                        "max_items": run.max_items,
                    }
                    for run in self.world(state).runs.values()
                    if dealer is None or (wanted is not None and run.dealer.id == wanted.id)
                ]
            }

        @router.get("/_sandbox/apify/outages", tags=["control"])
        async def outages() -> dict[str, Any]:
            return {
                "outages": {
                    dealer.slug: dict(self.world(state).outages[dealer.id])
                    for dealer in state.dealers
                    if dealer.id in self.world(state).outages
                }
            }

        @router.put("/_sandbox/apify/outages/{dealer_key}", tags=["control"])
        async def put_outage(dealer_key: str, body: ApifyOutage) -> Response:
            dealer = state.dealer(dealer_key)
            if dealer is None or PLATFORM_ID not in dealer.platforms:
                return json_response(
                    {"error": f"{dealer_key!r} is not a scraped dealer (use a slug or id)"}, 404
                )
            self.world(state).outages[dealer.id] = body.model_dump()
            return json_response({"dealer": dealer.slug, "outage": body.model_dump()})

        @router.delete("/_sandbox/apify/outages/{dealer_key}", tags=["control"])
        async def delete_outage(dealer_key: str) -> Response:
            dealer = state.dealer(dealer_key)
            if dealer is None:
                return json_response({"error": f"unknown dealer {dealer_key!r}"}, 404)
            self.world(state).outages.pop(dealer.id, None)
            return json_response({"dealer": dealer.slug, "outage": None})

        return router

    @staticmethod
    def _authenticate(request: Request) -> Response | None:
        if "token" in request.query_params:
            return _error(
                "token-in-url-refused",
                "The sandbox refuses ?token=: send the token as Authorization: Bearer <token>",
                400,
            )
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return _error("token-not-valid", "Authentication token is not valid.", 401)
        return None

    @staticmethod
    def _fault(decision: FaultDecision, dealer: DealerSpec) -> Response:
        kind = "rate-limit-exceeded" if decision.status_code == 429 else "internal-server-error"
        return _error(
            kind, decision.error_message(dealer.slug), decision.status_code or 500, decision.headers()
        )

    def _answer(self, body: Any, decision: FaultDecision, status: int = 200) -> Response:
        return truncated_json_response(body) if decision.malformed else json_response(body, status)

    async def _start(
        self, state: SandboxState, exchange: Exchange, request: Request, actor_id: str
    ) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error("invalid-input", "Input is not valid JSON", 400)
        if not isinstance(body, dict):
            return _error("invalid-input", "Input must be a JSON object", 400)
        dealer = state.dealer(str(body.get("dealerId") or ""))
        if dealer is None or PLATFORM_ID not in dealer.platforms:
            return _error(
                "invalid-input", f"Input.dealerId {body.get('dealerId')!r} is not a scraped dealer", 400
            )
        exchange.for_dealer(dealer)
        config = dealer.platforms[PLATFORM_ID]
        if actor_id != str(config["actor_id"]).replace("/", "~"):
            return _error("record-not-found", f"Actor {actor_id} was not found", 404)
        decision = await arrive(state, dealer.id)
        if decision.fails:
            return self._fault(decision, dealer)
        urls = body.get("startUrls")
        if not isinstance(urls, list) or [u.get("url") if isinstance(u, dict) else u for u in urls] != list(
            config["start_urls"]
        ):
            return _error("invalid-input", "Input.startUrls must be [{url}] for the dealer's start URLs", 400)
        max_items = body.get("maxItems")
        if max_items is not None and (
            not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1
        ):
            return _error("invalid-input", "Input.maxItems must be a positive integer", 400)
        lot = state.lot(PLATFORM_ID, dealer)
        world = self.world(state)
        world.starts += 1
        run_id = _apify_id(state.config.seed, "run", dealer.slug, world.starts)
        run = Run(
            id=run_id,
            actor_id=actor_id,
            dealer=dealer,
            dataset_id=_apify_id(state.config.seed, "dataset", dealer.slug, world.starts),
            script=RUN_SCRIPTS.get(dealer.slug, RunScript()),
            items=self.dataset(dealer, lot, max_items) if lot is not None else [],
            max_items=max_items,
            input=body,
        )
        world.runs[run.id] = run
        world.datasets[run.dataset_id] = run
        exchange.detail.update(run_id=run.id, status=run.status, max_items=max_items)
        exchange.n_vehicles = len(run.items)
        lost = world.use_outage(dealer, "lose_start_answers")
        if lost is not None:  # the run started; its answer never reaches the client
            exchange.detail.update(answer_lost=True)
            return Response(b"upstream connect error or disconnect/reset before headers", lost)
        return self._answer({"data": run.to_json()}, decision, 201)

    async def _list_runs(
        self, state: SandboxState, exchange: Exchange, request: Request, actor_id: str
    ) -> Response:
        params = request.query_params
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", "1000"))
        except ValueError:
            return _error("invalid-parameter", "offset and limit must be integers", 400)
        if offset < 0 or not 1 <= limit <= 1000:
            return _error("invalid-parameter", "offset must be >= 0 and limit from 1 to 1000", 400)
        desc = params.get("desc", "").lower() in ("1", "true")
        wanted = params.get("status")
        runs = [
            run
            for run in self.world(state).runs.values()
            if run.actor_id == actor_id and (wanted is None or run.status == wanted)
        ]
        if desc:  # runs are kept in the order they started
            runs.reverse()
        page = runs[offset : offset + limit]
        exchange.detail.update(actor_id=actor_id, listed=len(page), desc=desc, limit=limit)
        data = {
            "total": len(runs),
            "offset": offset,
            "limit": limit,
            "desc": desc,
            "count": len(page),
            "items": [run.to_list_item() for run in page],
        }
        return json_response({"data": data})

    async def _record(
        self,
        state: SandboxState,
        exchange: Exchange,
        request: Request,
        key: str,
        run_id: str | None = None,
        store_id: str | None = None,
    ) -> Response:
        runs = self.world(state).runs.values()
        run = next((r for r in runs if r.id == run_id or r.key_value_store_id == store_id), None)
        if run is None:
            return _error("record-not-found", "Key-value store was not found", 404)
        exchange.for_dealer(run.dealer)
        decision = await arrive(state, run.dealer.id)
        if decision.fails:
            return self._fault(decision, run.dealer)
        exchange.detail.update(run_id=run.id, record=key)
        if key != "INPUT":
            return _error("record-not-found", f"Record {key} was not found", 404)
        return self._answer(run.input, decision)

    async def _get_run(
        self, state: SandboxState, exchange: Exchange, request: Request, run_id: str
    ) -> Response:
        run = self.world(state).runs.get(run_id)
        if run is None:
            return _error("record-not-found", f"Actor run {run_id} was not found", 404)
        exchange.for_dealer(run.dealer)
        raw_wait = request.query_params.get("waitForFinish", "0")
        try:
            wait = int(raw_wait)
        except ValueError:
            wait = -1
        if not 0 <= wait <= MAX_WAIT_FOR_FINISH_S:
            return _error("invalid-parameter", "waitForFinish must be an integer from 0 to 60", 400)
        decision = await arrive(state, run.dealer.id)
        if decision.fails:
            return self._fault(decision, run.dealer)
        finished_now = run.poll()
        if not finished_now and run.status not in TERMINAL and wait > 0:
            await asyncio.sleep(min(wait, WAIT_CAP_S))  # the run goes on: hold the answer, as Apify does
        exchange.detail.update(run_id=run.id, status=run.status, wait_for_finish=wait, poll=run.polls)
        return self._answer({"data": run.to_json()}, decision)

    async def _abort(
        self, state: SandboxState, exchange: Exchange, request: Request, run_id: str
    ) -> Response:
        run = self.world(state).runs.get(run_id)
        if run is None:
            return _error("record-not-found", f"Actor run {run_id} was not found", 404)
        exchange.for_dealer(run.dealer)
        decision = await arrive(state, run.dealer.id)
        if decision.fails:
            return self._fault(decision, run.dealer)
        if run.status not in TERMINAL:
            run.aborted = True
            run.status, run.status_message = ABORTING, "Aborting the Actor run"
        exchange.detail.update(run_id=run.id, status=run.status, aborted=run.aborted)
        return self._answer({"data": run.to_json()}, decision)

    async def _items(
        self, state: SandboxState, exchange: Exchange, request: Request, dataset_id: str
    ) -> Response:
        run = self.world(state).datasets.get(dataset_id)
        if run is None:
            return _error("record-not-found", f"Dataset {dataset_id} was not found", 404)
        exchange.for_dealer(run.dealer)
        params = request.query_params
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params["limit"]) if "limit" in params else None
        except ValueError:
            return _error("invalid-parameter", "offset and limit must be integers", 400)
        if offset < 0 or (limit is not None and limit < 1):
            return _error("invalid-parameter", "offset must be >= 0 and limit >= 1", 400)
        if params.get("format", "json") != "json":
            return _error("invalid-parameter", "the sandbox serves format=json only", 400)
        decision = await arrive(state, run.dealer.id)
        if decision.fails:
            return self._fault(decision, run.dealer)
        outage = self.world(state).use_outage(run.dealer, "fail_dataset_reads")
        if outage is not None:
            exchange.detail.update(run_id=run.id, dataset_id=dataset_id, offset=offset, outage=True)
            return _error("internal-server-error", "Dataset storage is temporarily unavailable", outage)
        scraped = run.scraped()
        page = scraped[offset : offset + limit if limit is not None else None]
        if params.get("clean", "").lower() in ("true", "1"):
            page = [{k: v for k, v in item.items() if not k.startswith("#")} for item in page]
            page = [item for item in page if item]
        exchange.detail.update(run_id=run.id, dataset_id=dataset_id, offset=offset, limit=limit)
        exchange.n_vehicles = len(page)
        headers = {
            "X-Apify-Pagination-Total": str(len(scraped)),
            "X-Apify-Pagination-Offset": str(offset),
            "X-Apify-Pagination-Limit": str(limit if limit is not None else len(scraped)),
            "X-Apify-Pagination-Count": str(len(page)),
        }
        if decision.malformed:
            raw = dumps(page)
            return Response(raw[: max(len(raw) // 2, 1)], 200, headers, media_type="application/json")
        return Response(dumps(page), 200, headers, media_type="application/json")
