"""The long-run DeadlineAlert with a real scheduler and triggerer: a slow run alerts once, mid-run.

The e2e services run with ``default_expected_run_minutes = 0.1`` (tests/e2e/conftest.py), so a Cobalt run
is late after 6 s; the sandbox delays the Heritage Chevrolet feed by 20 s, so the run is certainly still
going when the scheduler finds the deadline missed and the triggerer runs the callback.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.fixtures import job_history_conn

pytestmark = pytest.mark.e2e

DAG_ID = "inventory_cobalt"
SLOW = "heritage-chevrolet"
LOGS = Path(__file__).resolve().parents[2] / "test-output" / "e2e"


def long_run_alerts(control: httpx.Client) -> list[dict]:
    alerts = control.get("/_sandbox/webhook/alerts").json()["alerts"]
    return [a for a in alerts if a["kind"] == "long_run"]


def test_a_run_past_its_expected_duration_alerts_once_while_it_runs(airflow, clean: httpx.Client) -> None:
    with job_history_conn() as db:
        db.execute("TRUNCATE alert_state")
    with airflow.client() as api:  # a previous session's runs must not be mistaken for this one
        for run in api.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]:
            if run["state"] not in ("success", "failed"):
                api.patch(f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})
            api.delete(f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}").raise_for_status()
    clean.put(f"/_sandbox/faults/{SLOW}", json={"latency_s": 20}).raise_for_status()

    # Unpausing starts the latest scheduled run (catchup is off): every Cobalt dealer, one of them slow.
    airflow.cli("dags", "unpause", DAG_ID)
    try:
        deadline = time.monotonic() + 240
        while not long_run_alerts(clean) and time.monotonic() < deadline:
            time.sleep(2)
        [run] = airflow.wait_for_runs(DAG_ID, 1)
    finally:
        airflow.cli("dags", "pause", DAG_ID)

    alerts = long_run_alerts(clean)
    assert len(alerts) == 1, alerts
    [alert] = alerts
    print("long_run alert:", alert)
    assert (alert["dag_id"], alert["run_id"], alert["platform"]) == (DAG_ID, run["dag_run_id"], "cobalt")
    assert alert["severity"] == "warning"
    assert alert["conditions"] == [f"long_run:{DAG_ID}"]
    assert alert["counts"]["expected_minutes"] == 0.1
    assert alert["counts"]["elapsed_minutes"] >= 0.1
    assert alert["details"]["state"] == "running", "the alert came while the run was still going"
    assert alert["title"].startswith(f"{DAG_ID}: run still going ")
    # A deadline does not change the run's outcome; the slow dealer was pulled in full.
    assert run["state"] == "success"
    with job_history_conn() as db:
        rows = db.execute(
            "SELECT status FROM job_executions WHERE dag_id = %s AND run_id = %s", (DAG_ID, run["dag_run_id"])
        ).fetchall()
        state = db.execute(
            "SELECT cleared_at IS NULL, last_sent IS NOT NULL FROM alert_state WHERE key = %s",
            (f"long_run:{DAG_ID}",),
        ).fetchone()
    assert rows
    assert {r[0] for r in rows} == {"success"}
    assert state == (True, True), "the run finished late: the condition stays open until a run is on time"
    # The triggerer ran the callback (an AsyncCallback), and nothing else sent it.
    assert "Sent the long_run alert" in (LOGS / "triggerer.log").read_text(errors="replace")
