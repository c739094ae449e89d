"""Dealer leases that hold from a run's pull to its last ingest try: real Airflow (dag.test and
``airflow dags test``), real PostgreSQL, the sandbox over HTTP.

A run whose ingest failed and will be retried keeps the dealer, so a concurrent run skips it; a retry that
lost its lease (it expired and another run took it) writes nothing and names that run; an old run's ingest
cleared after a later run ingested the dealer refuses its stale pull. Two runs at once are a run in an
``airflow dags test`` subprocess (parked between its ingest tries by a long retry delay) beside a run here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures import ROOT, history_rows, job_history_conn, run_dag
from tests.integration.test_inventory_dealer_com import DAG_ID, pulled_dealers, stored

pytestmark = pytest.mark.integration

PLATFORM = "dealer.com"
INGEST = "shard.ingest_inventory"


@pytest.fixture
def dealer(clean: httpx.Client) -> dict[str, Any]:
    return next(d for d in pulled_dealers(clean) if d["slug"] == "evergreen-kia")


@pytest.fixture
def when() -> Callable[[int], datetime]:
    """Logical dates a day apart, from the clock: every test has run ids of its own."""
    base = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    return lambda n: base + timedelta(days=n)


def lease(dealer_id: str) -> dict[str, Any] | None:
    with job_history_conn() as db:
        cur = db.execute(
            "SELECT dag_id, run_id, acquired_at, expires_at, now() AS db_now FROM dealer_leases "
            "WHERE dealer_id = %s AND platform = %s",
            (dealer_id, PLATFORM),
        )
        row = cur.fetchone()
        return dict(zip([d.name for d in cur.description], row, strict=True)) if row else None


def data_api_requests(control: httpx.Client) -> int:
    return len(control.get("/_sandbox/requests", params={"service": "data_api"}).json()["requests"])


def wait_for(what: str, check: Callable[[], Any], *, proc: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        if proc.poll() is not None and not check():
            pytest.fail(
                f"airflow dags test exited ({proc.returncode}) before {what}: {log.read_text()[-3000:]}"
            )
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}: {log.read_text()[-3000:]}")


def airflow_session():
    from airflow.utils.session import create_session

    return create_session()


@pytest.fixture
def parked_run(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """Start ``airflow dags test`` in a subprocess whose failed tries wait 10 minutes for their retry.

    Whatever the test did, the subprocess is stopped and its DAG run ends ``failed`` afterwards, so no
    ``running`` run of the DAG is left for the next suites (max_active_runs=1 under a real scheduler).
    """
    started: list[tuple[subprocess.Popen[bytes], datetime]] = []

    def start(logical_date: datetime, conf: dict[str, Any]) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"dags-test-{len(started)}.log"
        env = {
            **os.environ,
            "AIRFLOW__OD_SCHEDULER__TASK_RETRIES": "1",
            "AIRFLOW__OD_SCHEDULER__TASK_RETRY_DELAY_S": "600",
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "airflow",
                    "dags",
                    "test",
                    DAG_ID,
                    logical_date.isoformat(),
                    "-c",
                    json.dumps({"force": True, "full_refresh": False, "force_delist": False, **conf}),
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append((proc, logical_date))
        return proc, log

    yield start

    from airflow.models.dagrun import DagRun

    for proc, logical_date in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        with airflow_session() as session:
            for run in session.query(DagRun).filter_by(dag_id=DAG_ID, logical_date=logical_date).all():
                if run.state == "running":
                    run.state = "failed"


def test_a_retried_ingest_keeps_its_lease_and_a_retry_that_lost_it_refuses_naming_the_holder(
    dagbag, clean: httpx.Client, dealer: dict[str, Any], when, parked_run
) -> None:
    from airflow.models.taskinstance import TaskInstance

    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.models.job import ExecutionKey

    clean.put("/_sandbox/faults/data_api", json={"status_code": 500}).raise_for_status()
    proc, log = parked_run(when(0), {"dealer_id": dealer["id"]})

    def first_try_failed() -> dict[str, Any] | None:
        with job_history_conn() as db:
            row = db.execute(
                "SELECT run_id, status, errors FROM job_executions WHERE dag_id = %s AND dealer_id = %s",
                (DAG_ID, dealer["id"]),
            ).fetchone()
        if row and row[1] == "failed":
            return {"run_id": row[0], "errors": row[2]}
        return None

    failed = wait_for("the first ingest try to fail", first_try_failed, proc=proc, log=log)
    run_a = failed["run_id"]
    assert failed["errors"][-1].startswith("try 1: ")
    assert failed["errors"][-1].endswith("Airflow retries the task (try 2 of 2).")
    held = lease(dealer["id"])
    assert held is not None, "a failure Airflow retries keeps the lease"
    assert (held["dag_id"], held["run_id"]) == (DAG_ID, run_a)
    assert held["expires_at"] > held["db_now"]
    # Renewed by the ingest (after the pull acquired it): a full lease length from later than acquired_at.
    assert held["expires_at"] - held["acquired_at"] > timedelta(minutes=180)

    # A concurrent run of the same DAG for the dealer, while run A waits for its ingest retry: skipped.
    run_b = run_dag(
        dagbag.dags[DAG_ID], logical_date=when(1), conf={"dealer_id": dealer["id"], "force": True}
    )
    row_b = history_rows(DAG_ID, run_b.run_id)[dealer["id"]]
    assert row_b["status"] == "skipped"
    assert row_b["errors"] == [f"skipped: run {DAG_ID}/{run_a} is pulling this dealer right now"]
    assert lease(dealer["id"])["run_id"] == run_a, "run B's summary releases only its own leases"

    # Run A's lease expires and another run takes the dealer; the Data API works again.
    clean.delete("/_sandbox/faults/data_api").raise_for_status()
    hook = JobHistoryHook()
    with job_history_conn() as db:
        db.execute(
            "UPDATE dealer_leases SET expires_at = now() - interval '1 minute' WHERE dealer_id = %s",
            (dealer["id"],),
        )
    other = ExecutionKey(dag_id=DAG_ID, run_id="backfill__other", dealer_id=dealer["id"], platform=PLATFORM)
    assert hook.executions.acquire_lease(other, minutes=60) is None
    sent_before = data_api_requests(clean)

    # Run A's retry becomes due now instead of in ten minutes.
    with airflow_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=DAG_ID, run_id=run_a, task_id=INGEST, state="up_for_retry")
            .one()
        )
        ti.end_date = ti.end_date - timedelta(hours=2)
    proc.wait(timeout=240)

    row_a = history_rows(DAG_ID, run_a)[dealer["id"]]
    assert row_a["status"] == "failed"
    refused = row_a["errors"][-1]
    assert refused.startswith("try 2: ")
    assert "no longer holds the dealer's lease" in refused
    assert f"dag_id {DAG_ID}, run_id backfill__other" in refused
    assert data_api_requests(clean) == sent_before, "the refused retry wrote nothing to the Data API"
    assert stored(clean, dealer["id"]) == []
    assert lease(dealer["id"])["run_id"] == "backfill__other", "the refusal leaves the holder's lease alone"
    hook.executions.release_lease(other)


def test_a_cleared_ingest_of_an_old_run_refuses_after_a_later_run_ingested_the_dealer(
    dagbag, clean: httpx.Client, dealer: dict[str, Any], when
) -> None:
    dag = dagbag.dags[DAG_ID]
    conf = {"dealer_id": dealer["id"], "force": True}

    # Run A pulls, but its ingest fails for good (no retries in tests): its lease is released.
    clean.put("/_sandbox/faults/data_api", json={"status_code": 500}).raise_for_status()
    run_a = run_dag(dag, logical_date=when(0), conf=conf)
    clean.delete("/_sandbox/faults/data_api").raise_for_status()
    assert history_rows(DAG_ID, run_a.run_id)[dealer["id"]]["status"] == "failed"
    assert lease(dealer["id"]) is None

    # A later run pulls and ingests the dealer.
    run_b = run_dag(dag, logical_date=when(1), conf=conf)
    assert history_rows(DAG_ID, run_b.run_id)[dealer["id"]]["status"] == "success"
    sent_before = data_api_requests(clean)

    # Clearing only run A's ingest (its pull stays as it was) would re-send its old pull: refused.
    cleared = run_dag(
        dag,
        logical_date=when(0),
        conf=conf,
        mark_success_pattern=r"shard\.pull_inventory",
    )
    assert cleared.run_id == run_a.run_id
    row = history_rows(DAG_ID, run_a.run_id)[dealer["id"]]
    assert row["status"] == "failed"
    assert f"a later run ({DAG_ID}, run_id {run_b.run_id}) already ingested this dealer" in row["errors"][-1]
    assert "this pull is stale — re-run the whole dealer, not only its ingest" in row["errors"][-1]
    assert data_api_requests(clean) == sent_before, "the stale ingest wrote nothing"
    assert lease(dealer["id"]) is None

    # Re-running the whole dealer in run A pulls afresh, so its ingest goes ahead.
    rerun = run_dag(dag, logical_date=when(0), conf=conf)
    assert rerun.run_id == run_a.run_id
    assert history_rows(DAG_ID, run_a.run_id)[dealer["id"]]["status"] == "success"


def test_renewal_extends_the_lease_and_refuses_once_another_run_holds_it(airflow_db) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.models.job import ExecutionKey
    from od_scheduler.operators.job_tracking import DealerLease

    hook = JobHistoryHook()
    mine = ExecutionKey(dag_id="d", run_id="r1", dealer_id="lease-renew", platform=PLATFORM)
    theirs = mine.model_copy(update={"run_id": "r2"})
    with job_history_conn() as db:
        db.execute("DELETE FROM dealer_leases WHERE dealer_id = 'lease-renew'")
    assert hook.executions.acquire_lease(mine, minutes=1) is None
    before = lease("lease-renew")
    assert hook.executions.renew_lease(mine, minutes=60) is None
    after = lease("lease-renew")
    assert after["expires_at"] - before["expires_at"] > timedelta(minutes=58)
    assert after["acquired_at"] == before["acquired_at"], "renewal keeps the pull's acquisition time"

    holder = hook.executions.renew_lease(theirs, minutes=60)
    assert holder is not None
    assert (holder.dag_id, holder.run_id) == ("d", "r1")
    assert hook.executions.lease_holder(theirs) == holder
    assert hook.executions.lease_holder(mine) is None

    # Run r1's lease expires and r2 takes it: r1's next renewal refuses, naming r2.
    with job_history_conn() as db:
        db.execute(
            "UPDATE dealer_leases SET expires_at = now() - interval '1 s' WHERE dealer_id = 'lease-renew'"
        )
    assert hook.executions.renew_lease(theirs, minutes=60) is None
    kept = DealerLease(hook.executions, mine, label="Lease Renew (lease-renew)", what="Data API ingest")
    with pytest.raises(AirflowFailException, match=r"run d/r2 \(dag_id d, run_id r2\) holds it now"):
        kept.hold()
    assert lease("lease-renew")["run_id"] == "r2"

    # A lease nobody holds any more (released after a final failure) is taken back by a renewal.
    assert hook.executions.release_run_leases("d", "r2") == 1
    kept.hold()
    assert lease("lease-renew")["run_id"] == "r1"
    assert hook.executions.release_run_leases("d", "r1") == 1
