"""ApifyRunTrigger's async generator against the in-process sandbox: one event per run outcome.

The connection is real (``AIRFLOW_CONN_OD_APIFY``, read with ``aget_connection`` as in the triggerer); only
the HTTP transport is swapped for the sandbox app (``httpx.ASGITransport``, no socket).

Cancellation runs the trigger inside Airflow's own ``TriggerRunner.run_trigger`` (the coroutine the
triggerer runs per trigger) and cancels it the ways the triggerer does: by user action, on shutdown, after
the deferral timeout. Only the task's state, which the triggerer would ask the API server for, is scripted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
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

    async def make_watcher(self: ApifyRunTrigger, **bounds: Any):
        return await ApifyHook(self.conn_id).aget_watcher(transport=httpx.ASGITransport(app=app), **bounds)

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


# --------------------------------------------------------------------------------------------------
# cancellation: inside Airflow's TriggerRunner.run_trigger
# --------------------------------------------------------------------------------------------------
DAG_ID = "inventory_web_scraping"
TASK_ID = "shard.pull_inventory"
RUN_ID = "scheduled__2026-11-02T09:00:00+00:00"
MAP_INDEX = 3


class TaskStates:
    """Stands in for the API server's task-state lookup (``RuntimeTaskInstance.get_task_states``)."""

    def __init__(self, state: str | None = None, *, listed: bool = True, fails: bool = False) -> None:
        self.state, self.listed, self.fails = state, listed, fails
        self.asked: list[dict[str, Any]] = []

    def __call__(self, **query: Any) -> dict[str, Any]:
        self.asked.append(query)
        if self.fails:
            raise ConnectionError("the API server did not answer")
        if not self.listed:
            return {}
        return {RUN_ID: {f"{TASK_ID}_{MAP_INDEX}": self.state, "other_task_0": "running"}}


@pytest.fixture
def task_states(monkeypatch: pytest.MonkeyPatch):
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    def install(states: TaskStates) -> TaskStates:
        monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(states))
        return states

    return install


def in_triggerer(
    trigger: ApifyRunTrigger, *, cancel: str | None, timeout_after: datetime | None = None
) -> None:
    """Run the trigger as the triggerer does, let it poll, then cancel it with ``cancel`` as the message."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    trigger.task_instance = SimpleNamespace(  # type: ignore[assignment]
        id="0199a0b0-0000-7000-8000-000000000001",
        dag_id=DAG_ID,
        task_id=TASK_ID,
        run_id=RUN_ID,
        try_number=1,
        map_index=MAP_INDEX,
        context_carrier=None,
    )

    async def go() -> None:
        runner = TriggerRunner()
        runner.triggers[1] = {"task": None, "name": "apify-test", "events": 0, "is_watcher": False}
        task = asyncio.create_task(runner.run_trigger(1, trigger, timeout_after, None))
        runner.triggers[1]["task"] = task
        await asyncio.sleep(0.8)  # a few polls of a run that never finishes
        assert not task.done()
        if cancel is None:
            task.cancel()
        else:
            task.cancel(cancel)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert runner.events == type(runner.events)(), "a cancelled trigger fires no event"

    asyncio.run(go())


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """What was logged, through stdlib logging or (once Airflow configured it) structlog on stdout."""
    return caplog.text + capsys.readouterr().out


def sandbox_run(app: FastAPI, run_id: str) -> dict[str, Any]:
    runs = call(app, "GET", "/_sandbox/apify/runs").json()["runs"]
    return next(r for r in runs if r["id"] == run_id)


def aborts(app: FastAPI) -> list[dict[str, Any]]:
    return [e for e in apify_log(app) if e["path"].endswith("/abort")]


USER_ACTION = "__airflow_user_action__"  # airflow.jobs.triggerer_job_runner._USER_ACTION_CANCEL_MSG


def test_the_sentinel_is_airflows() -> None:
    from airflow.jobs import triggerer_job_runner

    assert triggerer_job_runner._USER_ACTION_CANCEL_MSG == USER_ACTION


@pytest.mark.parametrize("state", ["failed", "success", None, "scheduled"], ids=str)
def test_a_task_cleared_or_marked_while_deferred_aborts_its_run(
    sandbox_apify: FastAPI, task_states, state: str | None
) -> None:
    states = task_states(TaskStates(state))
    run = start_run(sandbox_apify, "endless-acres-auto")

    in_triggerer(trigger_for(run["id"], poll_interval_s=0.1), cancel=USER_ACTION)

    after = sandbox_run(sandbox_apify, run["id"])
    assert after["aborted"] is True
    assert after["status"] == "ABORTING"
    assert [(e["method"], e["status"], e["detail"]["run_id"]) for e in aborts(sandbox_apify)] == [
        ("POST", 200, run["id"])
    ]
    assert states.asked == [
        {"dag_id": DAG_ID, "task_ids": [TASK_ID], "run_ids": [RUN_ID], "map_index": MAP_INDEX}
    ]


@pytest.mark.parametrize(
    "states",
    [
        TaskStates("deferred"),  # moved to another triggerer, or a new try re-deferred on this run
        TaskStates(listed=False),  # Airflow does not know the task instance
        TaskStates(fails=True),  # the API server did not answer
    ],
    ids=["still-deferred", "unknown-task", "lookup-failed"],
)
def test_a_cancelled_trigger_whose_task_may_still_wait_leaves_the_run_alone(
    sandbox_apify: FastAPI, task_states, states: TaskStates, caplog, capsys
) -> None:
    task_states(states)
    run = start_run(sandbox_apify, "endless-acres-auto")

    with caplog.at_level(logging.INFO):
        in_triggerer(trigger_for(run["id"], poll_interval_s=0.1), cancel=USER_ACTION)

    assert sandbox_run(sandbox_apify, run["id"])["aborted"] is False
    assert aborts(sandbox_apify) == []
    assert run["id"] in logged(caplog, capsys)


def test_a_triggerer_shutdown_leaves_the_run_alone(sandbox_apify: FastAPI, task_states) -> None:
    states = task_states(TaskStates("failed"))
    run = start_run(sandbox_apify, "endless-acres-auto")

    in_triggerer(trigger_for(run["id"], poll_interval_s=0.1), cancel=None)

    assert sandbox_run(sandbox_apify, run["id"])["aborted"] is False
    assert states.asked == [], "on_kill is not called on shutdown: the run goes on for the next triggerer"


def test_a_deferral_timeout_is_left_to_the_worker(sandbox_apify: FastAPI, task_states) -> None:
    """Airflow does not call on_kill after the deferral timeout; the operator aborts on the worker."""
    states = task_states(TaskStates("scheduled"))
    run = start_run(sandbox_apify, "endless-acres-auto")

    in_triggerer(
        trigger_for(run["id"], poll_interval_s=0.1),
        cancel=USER_ACTION,
        timeout_after=datetime.now(UTC) - timedelta(seconds=1),
    )

    assert sandbox_run(sandbox_apify, run["id"])["aborted"] is False
    assert states.asked == []


def test_a_failed_abort_is_logged_with_the_run_id_never_raised(
    sandbox_apify: FastAPI, task_states, monkeypatch: pytest.MonkeyPatch, caplog, capsys
) -> None:
    task_states(TaskStates("failed"))
    run = start_run(sandbox_apify, "endless-acres-auto")
    trigger = trigger_for(run["id"], poll_interval_s=0.1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_APIFY",
        json.dumps({"conn_type": "http", "host": f"{SANDBOX}/apify", "password": "revoked-token"}),
    )

    async def kill() -> None:
        trigger.task_instance = SimpleNamespace(  # type: ignore[assignment]
            dag_id=DAG_ID, task_id=TASK_ID, run_id=RUN_ID, map_index=MAP_INDEX
        )
        await trigger.on_kill()

    with caplog.at_level(logging.ERROR):
        asyncio.run(kill())

    text = logged(caplog, capsys)
    assert sandbox_run(sandbox_apify, run["id"])["aborted"] is False
    assert f"Apify run {run['id']}: the abort failed" in text
    assert "abort it in the Apify console" in text
    assert "revoked-token" not in text
