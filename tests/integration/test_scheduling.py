"""Due-ness, holds and force against real PostgreSQL, real Airflow (dag.test) and the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fixtures import job_history_conn, run_dag
from tests.integration.test_inventory_dealer_com import DAG_ID, history_rows, pulled_dealers

pytestmark = pytest.mark.integration


def seed(dealer_id: str, status: str, started: datetime, run: str) -> None:
    with job_history_conn() as db:
        db.execute(
            """INSERT INTO job_executions
                   (job_id, dag_id, run_id, dealer_id, platform, status, start_time, end_time)
               VALUES (%s, %s, %s, %s, 'dealer.com', %s, %s, %s)""",
            (
                f"{dealer_id}_dealer.com",
                DAG_ID,
                run,
                dealer_id,
                status,
                started,
                started + timedelta(minutes=1),
            ),
        )


@pytest.fixture
def dealers(clean: httpx.Client) -> dict[str, dict]:
    """Every pullable dealer made recently successful except three: 'due', 'failing' and 'broken'."""
    by_slug = {d["slug"]: d for d in pulled_dealers(clean)}
    now = datetime.now(UTC)
    chosen = {"due": by_slug["evergreen-kia"], "failing": by_slug["vacant-lot-motors"]}
    for slug, dealer in by_slug.items():
        if dealer in chosen.values() or slug == "broken-arrow-chevrolet":
            continue
        seed(dealer["id"], "success", now - timedelta(minutes=10), "seed-recent")
    seed(chosen["failing"]["id"], "success", now - timedelta(days=3), "seed-old")
    for i in range(5):
        seed(chosen["failing"]["id"], "failed", now - timedelta(hours=10 - i), f"seed-fail-{i}")
    # The broken site also has a recent success, so the scheduled run below does not pull it.
    seed(by_slug["broken-arrow-chevrolet"]["id"], "success", now - timedelta(minutes=10), "seed-recent")
    return chosen


def test_a_scheduled_run_pulls_only_due_dealers_and_holds_failing_ones(dagbag, dealers) -> None:
    run = run_dag(dagbag.dags[DAG_ID])
    assert run.state == "success"
    assert set(history_rows(run.run_id)) == {dealers["due"]["id"]}


def test_force_pulls_everyone_not_paused_including_held_dealers(dagbag, dealers, clean: httpx.Client) -> None:
    run = run_dag(dagbag.dags[DAG_ID], conf={"force": True, "max_failure_rate": 0.2})
    rows = history_rows(run.run_id)
    assert set(rows) == {d["id"] for d in pulled_dealers(clean)}
    assert rows[dealers["failing"]["id"]]["status"] == "success"


def test_one_success_releases_a_held_dealer(dagbag, dealers) -> None:
    failing = dealers["failing"]["id"]
    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": failing})
    assert history_rows(run.run_id) == {}, "held: a run naming it without force does not pull it"
    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": failing, "force": True})
    assert history_rows(run.run_id)[failing]["status"] == "success"

    from od_scheduler.hooks.job_history import JobHistoryHook

    history = JobHistoryHook().executions.dealer_histories("dealer.com", [failing])[failing]
    assert history.consecutive_failures == 0
    # Released, and now simply not due: the next scheduled run skips it for that reason only.
    run = run_dag(dagbag.dags[DAG_ID])
    assert failing not in history_rows(run.run_id)


def test_consecutive_failures_count_only_since_the_last_success(airflow_db) -> None:
    from od_scheduler.hooks.job_history import JobHistoryHook

    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions")
    now = datetime.now(UTC)
    seed("x", "failed", now - timedelta(hours=5), "r1")
    seed("x", "success", now - timedelta(hours=4), "r2")
    seed("x", "failed", now - timedelta(hours=3), "r3")
    seed("x", "failed", now - timedelta(hours=2), "r4")
    seed("x", "running", now - timedelta(hours=1), "r5")
    seed("y", "failed", now - timedelta(hours=1), "r1")
    got = JobHistoryHook().executions.dealer_histories("dealer.com", ["x", "y", "z"])
    assert got["x"].consecutive_failures == 2
    assert got["x"].last_success == now - timedelta(hours=4)
    assert got["y"].consecutive_failures == 1
    assert got["y"].last_success is None
    assert "z" not in got


def test_a_dealer_leased_by_another_run_is_skipped_not_pulled_twice(dagbag, clean: httpx.Client) -> None:
    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.models.job import ExecutionKey

    dealer = next(d for d in pulled_dealers(clean) if d["slug"] == "evergreen-kia")
    other = ExecutionKey(
        dag_id=DAG_ID, run_id="backfill__other", dealer_id=dealer["id"], platform="dealer.com"
    )
    hook = JobHistoryHook()
    assert hook.executions.acquire_lease(other, minutes=60) is None
    assert hook.executions.acquire_lease(other, minutes=60) is None, "the holder may re-acquire (task retry)"

    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer["id"], "force": True})
    assert run.state == "success"
    row = history_rows(run.run_id)[dealer["id"]]
    assert row["status"] == "skipped"
    assert row["errors"] == [f"skipped: run {DAG_ID}/backfill__other is pulling this dealer right now"]
    assert clean.get("/_sandbox/requests", params={"service": "dealer_com"}).json()["requests"] == []

    # The holder's lease ends (or expires): the next run pulls the dealer and releases its own lease.
    hook.executions.release_lease(other)
    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer["id"], "force": True})
    assert history_rows(run.run_id)[dealer["id"]]["status"] == "success"
    with job_history_conn() as db:
        assert db.execute("SELECT count(*) FROM dealer_leases").fetchone()[0] == 0


def test_an_expired_lease_does_not_block(airflow_db) -> None:
    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.models.job import ExecutionKey

    hook = JobHistoryHook()
    first = ExecutionKey(dag_id="d", run_id="r1", dealer_id="lease-x", platform="dealer.com")
    second = first.model_copy(update={"run_id": "r2"})
    hook.executions.release_run_leases("d", "r1")
    hook.executions.release_run_leases("d", "r2")
    assert hook.executions.acquire_lease(first, minutes=60) is None
    assert hook.executions.acquire_lease(second, minutes=60) == "d/r1"
    with job_history_conn() as db:
        db.execute(
            "UPDATE dealer_leases SET expires_at = now() - interval '1 minute' WHERE dealer_id = 'lease-x'"
        )
    assert hook.executions.acquire_lease(second, minutes=60) is None
    assert hook.executions.release_run_leases("d", "r2") == 1


def test_one_recent_history_query_serves_selection_and_freshness(airflow_db) -> None:
    """The freshness check reads a dealer's history on every platform with the query selection reads one
    platform's with: the same last success and failures, plus the first execution and the latest outcome."""
    from od_scheduler.hooks.job_history import JobHistoryHook

    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions")
    now = datetime.now(UTC)
    seed("x", "failed", now - timedelta(hours=5), "r1")
    seed("x", "success", now - timedelta(hours=4), "r2")
    seed("x", "failed", now - timedelta(hours=3), "r3")
    seed("x", "skipped", now - timedelta(hours=2), "r4")
    with job_history_conn() as db:
        db.execute(
            """INSERT INTO job_executions
                   (job_id, dag_id, run_id, dealer_id, platform, status, start_time, errors)
               VALUES ('x_cobalt', 'inventory_cobalt', 'c1', 'x', 'cobalt', 'failed', %s,
                       ARRAY['try 1: first', 'try 2: last'])""",
            (now - timedelta(hours=1),),
        )
    executions = JobHistoryHook().executions
    every = executions.histories_on_every_platform(["x", "z"])
    assert set(every) == {("dealer.com", "x"), ("cobalt", "x")}
    dealer_com = every[("dealer.com", "x")]
    assert executions.dealer_histories("dealer.com", ["x"]) == {"x": dealer_com}
    assert (dealer_com.last_success, dealer_com.consecutive_failures) == (now - timedelta(hours=4), 1)
    assert (dealer_com.first_execution, dealer_com.last_status) == (now - timedelta(hours=5), "failed")
    cobalt = every[("cobalt", "x")]
    assert (cobalt.last_success, cobalt.consecutive_failures) == (None, 1)
    assert (cobalt.last_status, cobalt.last_error) == ("failed", "try 2: last")
