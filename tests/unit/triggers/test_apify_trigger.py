"""ApifyRunTrigger's async generator against the in-process sandbox: one event per run outcome.

The connection is real (``AIRFLOW_CONN_OD_APIFY``, read with ``aget_connection`` as in the triggerer); only
the HTTP transport is swapped for the sandbox app (``httpx.ASGITransport``, no socket).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from include.sandbox.app import create_app
from include.sandbox.dealers import find_dealer
from od_scheduler.hooks.apify import ApifyHook
from od_scheduler.triggers.apify import ApifyRunTrigger

pytestmark = pytest.mark.unit

SANDBOX = "http://sandbox.test"
TOKEN = "sandbox-apify-token"
ACTOR = "opendealer~dealer-inventory-scraper"


@pytest.fixture
def app() -> FastAPI:
    return create_app()


@pytest.fixture
def sandbox_apify(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The ``od_apify`` connection on the sandbox; the trigger's watcher talks to the app in-process."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_APIFY",
        json.dumps({"conn_type": "http", "host": f"{SANDBOX}/apify", "password": TOKEN}),
    )

    async def make_watcher(self: ApifyRunTrigger):
        return await ApifyHook(self.conn_id).aget_watcher(transport=httpx.ASGITransport(app=app))

    monkeypatch.setattr(ApifyRunTrigger, "make_watcher", make_watcher)
    return app


def call(app: FastAPI, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SANDBOX) as http:
            return await http.request(method, path, **kw)

    return asyncio.run(go())


def start_run(app: FastAPI, slug: str) -> dict[str, Any]:
    dealer = find_dealer(slug)
    assert dealer is not None
    config = dealer.platforms["web_scraping"]
    body = {"startUrls": [{"url": u} for u in config["start_urls"]], "dealerId": dealer.id}
    response = call(
        app, "POST", f"/apify/v2/acts/{ACTOR}/runs", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def events(trigger: ApifyRunTrigger) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(go())


def trigger_for(run_id: str, *, seconds: float = 30, **kw: Any) -> ApifyRunTrigger:
    kw.setdefault("wait_for_finish_s", 1)
    kw.setdefault("poll_interval_s", 0.1)
    return ApifyRunTrigger(run_id=run_id, deadline=time.time() + seconds, dealer="Test Dealer (test)", **kw)


def apify_log(app: FastAPI) -> list[dict[str, Any]]:
    return call(app, "GET", "/_sandbox/requests", params={"service": "apify"}).json()["requests"]


def test_serialize_round_trips_through_an_importable_classpath() -> None:
    from airflow.sdk._shared.module_loading import import_string

    trigger = ApifyRunTrigger(
        run_id="HG7ML7M8z78YcAPEB",
        deadline=1_900_000_000.5,
        dealer="Hilltop Used Cars (hilltop-used-cars)",
        wait_for_finish_s=45,
        poll_interval_s=2.0,
        carry={"actor_id": ACTOR, "max_wait_s": 3600, "start_metrics": {"api_calls": 1}},
    )

    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**json.loads(json.dumps(kwargs)))

    assert classpath == "od_scheduler.triggers.apify.ApifyRunTrigger"
    assert type(rebuilt) is ApifyRunTrigger
    assert rebuilt.serialize() == (classpath, kwargs)
    assert TOKEN not in json.dumps(kwargs)
    assert kwargs["conn_id"] == "od_apify"


def test_a_run_that_succeeds_fires_one_finished_event(sandbox_apify: FastAPI) -> None:
    run = start_run(sandbox_apify, "hilltop-used-cars")
    carry = {"actor_id": ACTOR, "max_wait_s": 30}

    fired = events(trigger_for(run["id"], carry=carry))

    assert len(fired) == 1
    event = fired[0]
    assert event["status"] == "finished"
    assert event["run_id"] == run["id"]
    assert event["run"]["status"] == "SUCCEEDED"
    assert event["run"]["defaultDatasetId"] == run["defaultDatasetId"]
    assert event["polls"] == 3
    assert event["carry"] == carry
    assert event["metrics"]["api_calls"] == 3
    polls = [e for e in apify_log(sandbox_apify) if e["method"] == "GET"]
    assert [e["detail"]["status"] for e in polls] == ["RUNNING", "RUNNING", "SUCCEEDED"]
    assert {e["detail"]["wait_for_finish"] for e in polls} == {1}
    json.dumps(event)  # the event must be JSON-serializable to reach the task


@pytest.mark.parametrize(
    ("slug", "status"), [("canyon-creek-autos", "FAILED"), ("prairie-wind-motors", "TIMED-OUT")]
)
def test_a_run_that_fails_upstream_fires_finished_with_its_status(
    sandbox_apify: FastAPI, slug: str, status: str
) -> None:
    run = start_run(sandbox_apify, slug)

    (event,) = events(trigger_for(run["id"]))

    assert event["status"] == "finished"
    assert event["run"]["status"] == status
    assert event["run"]["statusMessage"]


def test_our_deadline_fires_a_timeout_event_without_aborting(sandbox_apify: FastAPI) -> None:
    run = start_run(sandbox_apify, "endless-acres-auto")
    began = time.monotonic()

    (event,) = events(trigger_for(run["id"], seconds=1.5, poll_interval_s=0.3))

    assert 1.4 <= time.monotonic() - began < 5
    assert event["status"] == "timeout"
    assert event["run"]["status"] == "RUNNING"
    assert event["polls"] >= 2
    runs = call(sandbox_apify, "GET", "/_sandbox/apify/runs").json()["runs"]
    assert [(r["status"], r["aborted"]) for r in runs] == [("RUNNING", False)]  # the operator aborts


def test_a_bad_token_fires_a_permanent_error_event(
    sandbox_apify: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = start_run(sandbox_apify, "hilltop-used-cars")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_APIFY",
        json.dumps({"conn_type": "http", "host": f"{SANDBOX}/apify", "password": "wrong-token"}),
    )

    (event,) = events(trigger_for(run["id"]))

    assert event["status"] == "error"
    assert event["permanent"] is True
    assert "401" in event["error"]
    assert "od_apify" in event["error"]
    assert "wrong-token" not in event["error"]


def test_an_unknown_run_fires_a_permanent_error_event(sandbox_apify: FastAPI) -> None:
    (event,) = events(trigger_for("NoSuchRun00000000"))

    assert event["status"] == "error"
    assert event["permanent"] is True
    assert "404" in event["error"]


def test_a_missing_connection_fires_a_permanent_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OD_APIFY", raising=False)

    (event,) = events(trigger_for("HG7ML7M8z78YcAPEB"))

    assert event["status"] == "error"
    assert event["permanent"] is True
    assert "od_apify" in event["error"]
