"""`airflow dags trigger` with a typo in the conf, run by a real scheduler: the run fails before any pull."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.fixtures import job_history_conn

pytestmark = pytest.mark.e2e

DAG_ID = "inventory_cobalt"


def test_a_typo_in_the_conf_fails_list_dealers_and_pulls_nothing(airflow, clean: httpx.Client) -> None:
    with airflow.client() as api:
        for run in api.get(f"/api/v2/dags/{DAG_ID}/dagRuns", params={"limit": 100}).json()["dag_runs"]:
            if run["state"] not in ("success", "failed"):
                api.patch(f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})
            api.delete(f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}").raise_for_status()
    airflow.cli("dags", "trigger", DAG_ID, "--run-id", "typo_in_conf", "--conf", '{"forse": true}')
    airflow.cli("dags", "unpause", DAG_ID)  # (this also starts the latest scheduled run)
    try:
        runs = airflow.wait_for_runs(DAG_ID, 1, timeout_s=300)
        with airflow.client() as api:
            run = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/typo_in_conf").json()
            tis = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/typo_in_conf/taskInstances").json()[
                "task_instances"
            ]
    finally:
        airflow.cli("dags", "pause", DAG_ID)
    assert run["state"] == "failed", runs
    states = {ti["task_id"]: ti["state"] for ti in tis}
    assert states["list_dealers"] == "failed"
    assert all(states[t] in ("upstream_failed", None) for t in states if t.startswith("shard."))
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs" / f"dag_id={DAG_ID}" / "run_id=typo_in_conf"
    text = (logs / "task_id=list_dealers" / "attempt=1.log").read_text()
    assert "unknown key(s) in the run's conf: forse" in text
    assert "This DAG accepts: dealer_id, force, force_delist, full_refresh, max_failure_rate" in text
    with job_history_conn() as db:
        assert db.execute(
            "SELECT count(*) FROM job_executions WHERE dag_id = %s AND run_id = 'typo_in_conf'", (DAG_ID,)
        ).fetchone() == (0,)
