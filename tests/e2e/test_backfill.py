"""`airflow backfill create` with a real scheduler: one run per interval, correct windows, no duplicates."""

from __future__ import annotations

import pytest

from tests.fixtures import job_history_conn

pytestmark = pytest.mark.e2e

DAG_ID = "inventory_dealer_com"


def test_backfill_three_intervals_creates_three_idempotent_runs(airflow, clean) -> None:
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions")
    with airflow.client() as api:  # a previous session's backfill and runs must not shadow this one
        for backfill in api.get("/api/v2/backfills", params={"dag_id": DAG_ID}).json()["backfills"]:
            if not backfill["completed_at"]:
                api.put(f"/api/v2/backfills/{backfill['id']}/cancel").raise_for_status()
    airflow.delete_runs(DAG_ID)
    # Backfill runs of a paused DAG stay queued. Unpausing also starts the latest scheduled run, which then
    # competes with the backfill for the same dealers: the leases must keep each pull single.
    airflow.cli("dags", "unpause", DAG_ID)
    args = [
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        "2026-11-01T00:00:00+00:00",
        "--to-date",
        "2026-11-01T02:00:00+00:00",
        "--max-active-runs",
        "1",
        "--dag-run-conf",
        '{"max_failure_rate": 0.2}',
    ]
    airflow.cli(*args)
    try:
        runs = airflow.wait_for_runs(DAG_ID, 3)
    finally:
        airflow.cli("dags", "pause", DAG_ID)
    backfills = sorted((r for r in runs if r["run_type"] == "backfill"), key=lambda r: r["logical_date"])
    assert len(backfills) == 3
    starts = [r["data_interval_start"][:19] for r in backfills]
    assert starts == ["2026-11-01T00:00:00", "2026-11-01T01:00:00", "2026-11-01T02:00:00"]
    assert all(r["data_interval_end"] > r["data_interval_start"] for r in backfills)
    assert [r["state"] for r in backfills] == ["success"] * 3
    # Every backfill run has one history row per unpaused dealer (a backfill is explicit: due-ness does not
    # apply) — pulled, or skipped while the concurrent scheduled run held its lease — never two.
    with job_history_conn() as db:
        rows = db.execute(
            "SELECT run_id, dealer_id, count(*), min(status) FROM job_executions"
            " WHERE dag_id = %s GROUP BY 1, 2",
            (DAG_ID,),
        ).fetchall()
    per_run: dict[str, set[str]] = {}
    for run_id, dealer_id, n, _status in rows:
        assert n == 1
        per_run.setdefault(run_id, set()).add(dealer_id)
    backfill_ids = [r["dag_run_id"] for r in backfills]
    assert {len(per_run[b]) for b in backfill_ids} == {len(per_run[backfill_ids[0]])} != {0}
    stats = clean.get("/_sandbox/data-api/stats").json()
    stored = clean.get("/_sandbox/data-api/vehicles", params={"include_delisted": True}).json()["vehicles"]
    keys = [(v["dealer_id"], v["vin"]) for v in stored]
    assert len(keys) == len(set(keys)) == stats["vehicles_stored"]
