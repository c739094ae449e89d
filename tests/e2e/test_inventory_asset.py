"""A platform run that changed the Data API triggers a DAG scheduled on its asset, with a real scheduler.

``example_inventory_updated`` is scheduled on every ``x-od://inventory/<platform>`` asset. A forced
``inventory_cobalt`` run (on an empty job history, so it sends every vehicle) emits the event from its
``announce_changes`` task; the scheduler then runs the example, whose ``report_changes`` returns what each
triggering event said. Unpausing the platform DAG also starts its latest scheduled run: whichever of the two
sent the vehicles emitted the event, so the test adds the events up rather than naming one run. Clearing
that run's `announce_changes` then re-runs it: the same change is not announced twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.fixtures import job_history_conn

pytestmark = pytest.mark.e2e

DAG_ID = "inventory_cobalt"
CONSUMER = "example_inventory_updated"
ASSET = "x-od://inventory/cobalt"


def when(text: str) -> datetime:
    """An ISO timestamp from the API or the example's report (``Z`` or ``+00:00``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def reported_changes(api: httpx.Client) -> list[dict]:
    """What every finished run of the example reported (its ``report_changes`` return value)."""
    changes: list[dict] = []
    runs = api.get(f"/api/v2/dags/{CONSUMER}/dagRuns", params={"limit": 100}).json()["dag_runs"]
    for run in runs:
        assert run["state"] != "failed", run
        if run["state"] != "success":
            continue
        url = f"/api/v2/dags/{CONSUMER}/dagRuns/{run['dag_run_id']}/taskInstances/report_changes/xcomEntries"
        changes += api.get(f"{url}/return_value").json()["value"]
    return changes


def test_a_run_that_changed_inventory_triggers_the_dag_scheduled_on_its_asset(airflow, clean) -> None:
    airflow.delete_runs(DAG_ID)
    airflow.delete_runs(CONSUMER)
    # Run ids repeat across tests (the latest scheduled run's id) and asset events outlive deleted runs: only
    # events from now on are this test's.
    started = datetime.now(UTC)
    airflow.cli("dags", "unpause", CONSUMER)
    try:
        airflow.cli("dags", "trigger", DAG_ID, "--conf", '{"force": true}')
        airflow.cli("dags", "unpause", DAG_ID)
        try:
            runs = airflow.wait_for_runs(DAG_ID, 1)
        finally:
            airflow.cli("dags", "pause", DAG_ID)
        assert all(r["state"] == "success" for r in runs), runs
        run_ids = {r["dag_run_id"] for r in runs}
        with job_history_conn() as db:
            (sent,) = db.execute(
                "SELECT COALESCE(sum(vehicles_processed), 0) FROM job_executions WHERE dag_id = %s", (DAG_ID,)
            ).fetchone()
        assert sent > 0
        with airflow.client() as api:
            newest = {"source_dag_id": DAG_ID, "order_by": "-timestamp", "limit": 100}
            events = api.get("/api/v2/assets/events", params=newest).json()["asset_events"]
            new = [e for e in events if e["uri"] == ASSET and when(e["timestamp"]) >= started]
            assert new, events
            assert {e["source_run_id"] for e in new} <= run_ids, (new, run_ids)
            emitted = {when(e["timestamp"]) for e in new}
            deadline = time.monotonic() + 300
            changes = reported_changes(api)
            while not emitted <= {when(c["event_time"]) for c in changes} and time.monotonic() < deadline:
                time.sleep(3)
                changes = reported_changes(api)
    finally:
        airflow.cli("dags", "pause", CONSUMER)
    ours = [c for c in changes if when(c["event_time"]) >= started]
    assert {when(c["event_time"]) for c in ours} == emitted, "the example ran on every event emitted"
    assert all(c["platform"] == "cobalt" and c["dag_id"] == DAG_ID and c["run_id"] in run_ids for c in ours)
    assert sum(c["vehicles_sent"] for c in ours) == sent, "the events add up to what the runs sent"

    # Clearing announce_changes of a run that announced re-runs it: the run's change is the same, so the task
    # skips and no second event reaches the consumer.
    emitter = sorted({e["source_run_id"] for e in new})[0]
    ti_url = f"/api/v2/dags/{DAG_ID}/dagRuns/{emitter}/taskInstances/announce_changes"
    with airflow.client() as api:
        tries = api.get(ti_url).json()["try_number"]
        cleared = api.post(
            f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
            json={
                "dry_run": False,
                "task_ids": ["announce_changes"],
                "dag_run_id": emitter,
                "only_failed": False,
            },
        )
        assert cleared.status_code == 200, cleared.text
        airflow.cli("dags", "unpause", DAG_ID)
        try:
            deadline = time.monotonic() + 300
            ti = api.get(ti_url).json()
            while not (ti["try_number"] > tries and ti["state"] in ("success", "skipped", "failed")):
                assert time.monotonic() < deadline, f"announce_changes was not re-run: {ti}"
                time.sleep(3)
                ti = api.get(ti_url).json()
        finally:
            airflow.cli("dags", "pause", DAG_ID)
        assert ti["state"] == "skipped", ti
        events = api.get("/api/v2/assets/events", params=newest).json()["asset_events"]
        again = [
            e
            for e in events
            if e["uri"] == ASSET and e["source_run_id"] == emitter and when(e["timestamp"]) >= started
        ]
        assert len(again) == len([e for e in new if e["source_run_id"] == emitter]), "no second event"
