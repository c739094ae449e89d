"""`make setup` and the job-history hook against real PostgreSQL and a real Airflow metadata DB."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from od_scheduler.models.job import ExecutionKey, JobStatus
from od_scheduler.platforms import PLATFORMS
from tests.fixtures import job_history_conn

pytestmark = pytest.mark.integration


def db_connection(conn_id: str):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
        return None if conn is None else (conn.host, conn.password)


def test_setup_creates_only_connections_that_are_not_defined(
    airflow_db: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from include.tools import setup_project

    new_id = f"od_setup_test_{int(time.time() * 1000)}"
    env_id = "od_setup_env_test"
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{env_id.upper()}", json.dumps({"conn_type": "http", "host": "http://env"})
    )
    conns = tmp_path / "connections.json"
    conns.write_text(
        json.dumps(
            {
                new_id: {"conn_type": "http", "host": "http://from-file", "password": "file-secret"},
                env_id: {"conn_type": "http", "host": "http://from-file"},
            }
        )
    )
    assert setup_project.main(["--skip-migrate", "--connections", str(conns)]) == 0
    out = capsys.readouterr().out
    assert f"{new_id:<16} created" in out
    assert f"{env_id:<16} kept (environment)" in out
    assert db_connection(new_id) == ("http://from-file", "file-secret")
    assert db_connection(env_id) is None, "an env-var connection must not be shadowed by a DB copy"

    # A second run keeps what the first created, even when the file now says something else.
    conns.write_text(json.dumps({new_id: {"conn_type": "http", "host": "http://changed"}}))
    assert setup_project.main(["--skip-migrate", "--connections", str(conns)]) == 0
    assert f"{new_id:<16} kept (metadata database)" in capsys.readouterr().out
    assert db_connection(new_id) == ("http://from-file", "file-secret")
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == new_id).delete()


def test_setup_reports_required_connections_defined_nowhere(
    airflow_db: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    from include.tools import setup_project

    monkeypatch.delenv("AIRFLOW_CONN_OD_DATA_API", raising=False)
    monkeypatch.delenv("OD_CONNECTIONS_FILE", raising=False)
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "od_data_api").delete()
    assert setup_project.main(["--skip-migrate"]) == 0
    assert "od_data_api      MISSING: define AIRFLOW_CONN_OD_DATA_API" in capsys.readouterr().out


def test_setup_gives_tasks_the_metadata_connection_only_for_the_in_task_cleanup(
    airflow_db: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from include.tools import setup_project
    from od_scheduler.settings import get_settings

    def setup(in_task: bool) -> str:
        monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__METADATA_CLEANUP_IN_TASK", str(in_task))
        get_settings.cache_clear()
        assert setup_project.main(["--skip-migrate"]) == 0
        return capsys.readouterr().out

    monkeypatch.delenv("AIRFLOW_CONN_OD_AIRFLOW_DB", raising=False)
    try:
        # make up: the in-task cleanup needs od_airflow_db, made from Airflow's own database URL.
        assert "od_airflow_db    created" in setup(True)
        assert db_connection("od_airflow_db") is not None
        # The default: the connection an earlier setup made goes, and none is made.
        assert "od_airflow_db    removed" in setup(False)
        assert db_connection("od_airflow_db") is None
        assert "od_airflow_db    not defined" in setup(False)
        assert db_connection("od_airflow_db") is None
        # One the deployment defines itself is not setup's to delete: it is reported.
        monkeypatch.setenv("AIRFLOW_CONN_OD_AIRFLOW_DB", json.dumps({"conn_type": "postgres", "host": "x"}))
        assert "od_airflow_db    WARNING: still defined (environment)" in setup(False)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_setup_imports_pools(airflow_db: None) -> None:
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    from include.tools.setup_project import pools as setup_pools

    expected = {name: (spec["slots"], spec["description"]) for name, spec in setup_pools().items()}
    assert {"payload_cms_api", "data_api", *(p.pool for p in PLATFORMS.values())} == set(expected)
    with create_session() as session:
        pools = {p.pool: (p.slots, p.description) for p in session.query(Pool).all()}
    assert expected.items() <= pools.items()


@pytest.fixture
def history(airflow_db: None):
    from od_scheduler.hooks.job_history import JobHistoryHook

    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions")
    return JobHistoryHook()


KEY = ExecutionKey(dag_id="d", run_id="r1", dealer_id="dealer-1", platform="dealer.com")


def test_retries_update_the_same_row(history) -> None:
    history.executions.start(KEY, try_number=1)
    history.executions.progress(KEY, found=10, rejected=1, metrics={"api_calls": 3})
    history.executions.finish(KEY, JobStatus.FAILED, error="try 1: TransientUpstreamError: HTTP 503")
    history.executions.start(KEY, try_number=2)
    row = history.executions.get(KEY)
    assert row.status == JobStatus.RUNNING
    assert row.end_time is None
    assert row.try_number == 2
    history.executions.progress(KEY, processed=9, metrics={"batches": 1})
    history.executions.finish(KEY, JobStatus.SUCCESS)
    rows = history.executions.run_executions("d", "r1")
    assert len(rows) == 1
    row = rows[0]
    assert (row.status, row.vehicles_found, row.vehicles_processed, row.vehicles_rejected) == (
        JobStatus.SUCCESS,
        10,
        9,
        1,
    )
    assert row.errors == ["try 1: TransientUpstreamError: HTTP 503"]
    assert row.performance_metrics["api_calls"] == 3
    assert row.performance_metrics["batches"] == 1
    assert row.performance_metrics["duration_ms"] >= 0
    assert row.job_id == "dealer-1_dealer.com"


def test_a_killed_task_is_closed_as_failed_by_the_summary(history) -> None:
    other = KEY.model_copy(update={"dealer_id": "dealer-2"})
    history.executions.start(KEY, try_number=1)
    history.executions.start(other, try_number=1)
    history.executions.finish(other, JobStatus.SUCCESS)
    assert history.executions.close_stale("d", "r1", "task ended without reporting") == 1
    assert history.executions.get(KEY).status == JobStatus.FAILED
    assert history.executions.get(KEY).errors == ["task ended without reporting"]
    assert history.executions.get(other).status == JobStatus.SUCCESS
    assert history.executions.close_stale("d", "r1", "again") == 0


def test_finish_without_start_still_records_the_failure(history) -> None:
    history.executions.finish(KEY, JobStatus.FAILED, error="could not start")
    row = history.executions.get(KEY)
    assert row.status == JobStatus.FAILED
    assert row.errors == ["could not start"]


def test_schema_is_idempotent_and_rejects_bad_rows(history) -> None:
    import psycopg

    sql_dir = Path(__file__).resolve().parents[2] / "src" / "od_scheduler" / "sql"
    files = sorted(p.name for p in sql_dir.glob("*.sql"))
    assert history.apply_schema() == files
    assert history.apply_schema() == files
    with job_history_conn() as db, pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO job_executions (job_id, dealer_id, platform, status, dag_id, run_id)"
            " VALUES ('x', 'x', 'dealer.com', 'done', 'd', 'r')"
        )


def test_a_shard_tasks_threads_share_a_few_connections(history) -> None:
    """Sixteen dealer threads of one shard task write through at most max_connections connections, each
    of them getting its own rows right (one connection per thread would exhaust the server's
    max_connections once a few shard tasks run at once)."""
    from concurrent.futures import ThreadPoolExecutor

    from od_scheduler.hooks.job_history import JobHistoryHook

    shared = JobHistoryHook(reuse_connections=True, max_connections=3)

    def dealer(n: int) -> None:
        key = ExecutionKey(dag_id="d", run_id="r-pool", dealer_id=f"pool-{n:02d}", platform="cobalt")
        shared.executions.start(key, try_number=1)
        shared.executions.progress(key, found=n)
        shared.executions.finish(key, JobStatus.SUCCESS)

    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(dealer, range(32)))
        assert len(shared._od_open) <= 3
    finally:
        shared.close()
    rows = {r.dealer_id: r for r in history.executions.run_executions("d", "r-pool")}
    assert len(rows) == 32
    assert all(r.status == JobStatus.SUCCESS and r.vehicles_found == int(d[-2:]) for d, r in rows.items())
