"""The job history stays true when runs die: rows left ``running`` are closed by the hourly freshness check,
and a job-history database lost after ``list_dealers`` still alerts (dag.test, real PostgreSQL, the sandbox
webhook)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.fixtures import job_history_conn, run_dag
from tests.integration.test_alerts import assert_no_secrets

pytestmark = pytest.mark.integration

FRESHNESS = "inventory_freshness"
DEALER_COM = "inventory_dealer_com"
#: ``lease_minutes``' default: a row with no update for longer was left running by a run that died.
LEASE = 180


@pytest.fixture
def control(clean: httpx.Client) -> Iterator[httpx.Client]:
    """A reset sandbox (webhook store empty), empty job history, no alert state; no secret was sent."""
    with job_history_conn() as db:
        db.execute("TRUNCATE alert_state, dealer_directory")
    yield clean
    assert_no_secrets(received(clean))


def received(control: httpx.Client) -> list[dict[str, Any]]:
    return control.get("/_sandbox/webhook/alerts").json()["alerts"]


def insert_running(
    dag_id: str, run_id: str, dealer_id: str, platform: str, *, started: timedelta, updated: timedelta
) -> None:
    now = datetime.now(UTC)
    with job_history_conn() as db:
        db.execute(
            "INSERT INTO job_executions (job_id, dag_id, run_id, dealer_id, platform, status, start_time,"
            " updated_at) VALUES (%s, %s, %s, %s, %s, 'running', %s, %s)",
            (f"{dealer_id}_{platform}", dag_id, run_id, dealer_id, platform, now - started, now - updated),
        )


def insert_lease(dag_id: str, run_id: str, dealer_id: str, platform: str, *, expires_in: timedelta) -> None:
    with job_history_conn() as db:
        db.execute(
            "INSERT INTO dealer_leases (dealer_id, platform, dag_id, run_id, expires_at)"
            " VALUES (%s, %s, %s, %s, now() + %s)",
            (dealer_id, platform, dag_id, run_id, expires_in),
        )


def row(dealer_id: str, platform: str) -> dict[str, Any]:
    with job_history_conn() as db:
        cur = db.execute(
            "SELECT status, errors, start_time, end_time, updated_at FROM job_executions"
            " WHERE dealer_id = %s AND platform = %s",
            (dealer_id, platform),
        )
        names = [d.name for d in cur.description]
        [values] = cur.fetchall()
    return dict(zip(names, values, strict=True))


def leases() -> set[tuple[str, str, str]]:
    with job_history_conn() as db:
        return {(d, p, r) for d, p, r in db.execute("SELECT dealer_id, platform, run_id FROM dealer_leases")}


def check_result(run_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcom = (
            session.query(XComModel)
            .filter_by(dag_id=FRESHNESS, run_id=run_id, task_id="check_freshness", key="return_value")
            .one()
        )
        return json.loads(xcom.value) if isinstance(xcom.value, str) else xcom.value


# -- rows left running ---------------------------------------------------------------------------------
def test_rows_left_running_past_the_lease_are_closed_failed_by_the_freshness_check(
    dagbag, control: httpx.Client
) -> None:
    dead_run = f"scheduled__{uuid4()}"  # killed: its summarize_run never ran
    other_run = f"manual__{uuid4()}"
    live_run = f"manual__{uuid4()}"
    minutes = lambda n: timedelta(minutes=n)  # noqa: E731
    # Two rows of the dead run, quiet for longer than the lease; the first one's lease expired long ago,
    # the second dealer was leased by another run since.
    insert_running(DEALER_COM, dead_run, "stuck-a", "dealer.com", started=minutes(240), updated=minutes(190))
    insert_running(DEALER_COM, dead_run, "stuck-b", "dealer.com", started=minutes(240), updated=minutes(200))
    insert_lease(DEALER_COM, dead_run, "stuck-a", "dealer.com", expires_in=-minutes(60))
    insert_lease(DEALER_COM, other_run, "stuck-b", "dealer.com", expires_in=minutes(60))
    # Started long ago but updated a few minutes ago: alive, whatever its age.
    insert_running(
        "inventory_homenet", live_run, "fresh-c", "homenet", started=minutes(600), updated=minutes(5)
    )
    # Quiet past the lease, but its run renewed its lease on the dealer: a live task, left alone.
    insert_running(
        "inventory_homenet", live_run, "leased-d", "homenet", started=minutes(300), updated=minutes(200)
    )
    insert_lease("inventory_homenet", live_run, "leased-d", "homenet", expires_in=minutes(30))
    fresh_before, leased_before = row("fresh-c", "homenet"), row("leased-d", "homenet")

    run = run_dag(dagbag.dags[FRESHNESS])

    assert run.state == "success"
    for dealer_id, idle in (("stuck-a", 190), ("stuck-b", 200)):
        closed = row(dealer_id, "dealer.com")
        assert closed["status"] == "failed", dealer_id
        error = closed["errors"][-1]
        match = re.fullmatch(
            rf"left running by run {re.escape(dead_run)}: no update for (\d+) minutes; "
            r"closed by inventory_freshness",
            error,
        )
        assert match, error
        assert idle <= int(match.group(1)) <= idle + 1
        # It ended when it last showed life, not hours later when it was found.
        assert closed["end_time"] < closed["updated_at"] - minutes(180)
    assert row("fresh-c", "homenet") == fresh_before, "a running row updated within the lease is untouched"
    assert row("leased-d", "homenet") == leased_before, "a row whose run holds a live lease is untouched"
    assert leases() == {
        ("stuck-b", "dealer.com", other_run),
        ("leased-d", "homenet", live_run),
    }, "the dead run's expired lease is released; other runs' leases are not"

    result = check_result(run.run_id)
    assert (result["stuck_closed"], result["leases_released"]) == (2, 1)
    [digest] = received(control)
    print("freshness digest:", json.dumps(digest, indent=2))
    assert digest["kind"] == "freshness"
    assert digest["counts"]["stuck_closed"] == 2
    assert "2 job(s) left running by 1 run(s) closed as failed" in digest["title"]
    [stuck] = digest["details"]["stuck_runs"]
    assert (stuck["dag_id"], stuck["run_id"], stuck["jobs"], stuck["leases_released"]) == (
        DEALER_COM,
        dead_run,
        2,
        1,
    )
    assert f"2 job(s) of {DEALER_COM} run {dead_run} (dealer.com) left running" in digest["text"]

    again = run_dag(dagbag.dags[FRESHNESS])
    assert again.state == "success"
    assert check_result(again.run_id)["stuck_closed"] == 0
    assert len(received(control)) == 1, "closed jobs are reported once"
    assert row("fresh-c", "homenet")["status"] == "running"


# -- the job-history database lost after list_dealers ---------------------------------------------------
def dead_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ti_states(dag_id: str, run_id: str) -> dict[str, str | None]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        return {ti.task_id: ti.state for ti in tis}


def test_a_job_history_lost_after_list_dealers_fails_the_run_with_a_system_alert(
    dagbag, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from od_scheduler.operators.list_dealers import ListDealersOperator

    harbor = next(
        d["id"]
        for d in control.get("/_sandbox/dealers").json()["dealers"]
        if d["slug"] == "harbor-volkswagen"
    )
    port = dead_port()
    dead = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": port,
        "login": "od_history_user",
        "password": "od-history-db-password",
        "schema": "od_job_history",
    }

    def lose_the_database(self: ListDealersOperator, context: Any, result: Any = None) -> None:
        # The dealers are listed (and their XCom pushed): from here on the job-history DB is down.
        monkeypatch.setenv("AIRFLOW_CONN_OD_JOB_HISTORY", json.dumps(dead))

    monkeypatch.setattr(ListDealersOperator, "post_execute", lose_the_database, raising=False)

    run = run_dag(dagbag.dags[DEALER_COM], conf={"dealer_id": harbor, "force": True})

    assert run.state == "failed"
    states = ti_states(DEALER_COM, run.run_id)
    assert states["list_dealers"] == "success"
    assert states["summarize_run"] == "failed"
    [message] = received(control)
    print("database-down alert:", json.dumps(message, indent=2))
    assert message["kind"] == "system"
    assert message["severity"] == "critical"
    assert (message["dag_id"], message["run_id"], message["platform"], message["task_id"]) == (
        DEALER_COM,
        run.run_id,
        "dealer.com",
        "summarize_run",
    )
    assert message["title"].startswith(f"{DEALER_COM}: the job-history database is unreachable")
    assert message["counts"]["dealers"] == 1
    assert message["details"]["deduplicated"] is False
    assert message["details"]["error"].startswith("OperationalError: ")
    assert "Connection refused" in message["details"]["error"]
    raw = json.dumps(message)
    for secret in ("127.0.0.1", str(port), "od_history_user", "od-history-db-password", "od_job_history"):
        assert secret not in raw, f"{secret!r} reached the webhook"

    monkeypatch.undo()  # the database is back
    with job_history_conn() as db:
        keys = [k for (k,) in db.execute("SELECT key FROM alert_state")]
    assert keys == [], "sent without dedup: nothing was recorded in the unreachable alert state"
