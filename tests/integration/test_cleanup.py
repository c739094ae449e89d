"""maintenance_cleanup against a seeded history of thousands of rows, real staging files and Airflow's DB."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from od_scheduler.metadata_cleanup import TABLES
from tests.fixtures import ROOT, job_history_conn, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "maintenance_cleanup"
PLATFORMS = ("dealer.com", "homenet", "cobalt")


def seed_history(now: datetime) -> list[tuple]:
    """~3,000 rows: 30 dealers x 3 platforms, ages 0..90 days, every status; deterministic."""
    rng = random.Random(7)
    rows = []
    for d in range(30):
        for platform in PLATFORMS:
            for i in range(rng.randint(20, 45)):
                age = timedelta(days=rng.uniform(0, 90))
                status = rng.choices(["success", "failed", "skipped", "running"], [70, 22, 5, 3])[0]
                rows.append((f"dealer-{d:02d}", platform, status, now - age, f"seed-{d}-{platform}-{i}"))
    # A dealer x platform whose only success is very old, and an old running row: both survive.
    rows.append(("dealer-old", "cobalt", "success", now - timedelta(days=80), "seed-old-success"))
    rows += [
        ("dealer-old", "cobalt", "failed", now - timedelta(days=70 - i), f"seed-old-f{i}") for i in range(12)
    ]
    rows.append(("dealer-old", "cobalt", "running", now - timedelta(days=60), "seed-old-running"))
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions")
        with db.cursor() as cur:
            cur.executemany(
                """INSERT INTO job_executions
                       (job_id, dag_id, run_id, dealer_id, platform, status, start_time)
                   VALUES (%s || '_' || %s, 'seed', %s, %s, %s, %s, %s)""",
                [(d, p, run, d, p, s, t) for d, p, s, t, run in rows],
            )
        ids = db.execute("SELECT id, run_id FROM job_executions").fetchall()
    by_run = dict((run, i) for i, run in ids)
    return [(by_run[run], d, p, s, t) for d, p, s, t, run in rows]


def expected_survivors(rows: list[tuple], cutoff: datetime, keep_last: int = 10) -> set[int]:
    """An independent computation of what the retention keeps."""
    keep: set[int] = set()
    groups: dict[tuple[str, str], list[tuple]] = {}
    for row in rows:
        groups.setdefault((row[1], row[2]), []).append(row)
    for group in groups.values():
        group.sort(key=lambda r: (r[4], r[0]), reverse=True)
        keep.update(r[0] for r in group[:keep_last])
        successes = [r for r in group if r[3] == "success"]
        if successes:
            keep.add(successes[0][0])
    return {r[0] for r in rows if r[4] >= cutoff or r[3] == "running" or r[0] in keep}


def surviving_ids() -> set[int]:
    with job_history_conn() as db:
        return {r[0] for r in db.execute("SELECT id FROM job_executions").fetchall()}


def task_results(run_id: str) -> dict[str, dict]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=run_id, key="return_value").all()
        return {x.task_id: (json.loads(x.value) if isinstance(x.value, str) else x.value) for x in rows}


@pytest.fixture
def od_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set ``[od_scheduler]`` options for one test (settings are read once per process)."""
    from od_scheduler.settings import get_settings

    def set_options(**options: str) -> None:
        for key, value in options.items():
            monkeypatch.setenv(f"AIRFLOW__OD_SCHEDULER__{key.upper()}", value)
        get_settings.cache_clear()

    yield set_options
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def in_task_cleanup(od_settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch) -> None:
    """The opt-in path `make up` uses: metadata_cleanup_in_task on, od_airflow_db defined."""
    from include.tools.setup_project import metadata_connection

    od_settings(metadata_cleanup_in_task="True")
    monkeypatch.setenv("AIRFLOW_CONN_OD_AIRFLOW_DB", json.dumps(metadata_connection()))


@pytest.fixture
def cleanup_dag(dagbag, in_task_cleanup: None):
    return dagbag.dags[DAG_ID]


def run_cleanup(dag, **conf):
    return dag.test(run_conf={"retention_days": 30, "dry_run": False, **conf})


def test_history_retention_keeps_exactly_what_it_must_in_batches(cleanup_dag, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__CLEANUP_BATCH_SIZE", "500")
    from od_scheduler.settings import get_settings

    get_settings.cache_clear()
    now = datetime.now(UTC)
    rows = seed_history(now)
    assert len(rows) > 2500
    before = surviving_ids()

    dry = run_cleanup(cleanup_dag, dry_run=True)
    assert dry.state == "success"
    report = task_results(dry.run_id)["prune_job_history"]
    cutoff = datetime.fromisoformat(report["cutoff"])
    expected = expected_survivors(rows, cutoff)
    assert report["eligible"] == len(before) - len(expected)
    assert report["deleted"] == 0
    assert surviving_ids() == before, "a dry run deletes nothing"

    run = run_cleanup(cleanup_dag)
    report = task_results(run.run_id)["prune_job_history"]
    # This run's own cutoff (its run_after is a little later than the dry run's).
    expected = expected_survivors(rows, datetime.fromisoformat(report["cutoff"]))
    assert surviving_ids() == expected
    assert report["deleted"] == len(before) - len(expected)
    assert report["batches"] == -(-report["deleted"] // 500)
    # The old dealer keeps its only success and its running row, whatever their age.
    with job_history_conn() as db:
        kept = db.execute(
            "SELECT status, count(*) FROM job_executions WHERE dealer_id = 'dealer-old' GROUP BY status"
        ).fetchall()
    # Its last 10 executions (the running one among them), its only success (80 days old) and the running row.
    assert dict(kept) == {"success": 1, "failed": 9, "running": 1}

    again = run_cleanup(cleanup_dag)
    assert task_results(again.run_id)["prune_job_history"]["deleted"] == 0
    assert surviving_ids() == expected
    get_settings.cache_clear()


def test_staged_files_older_than_the_retention_are_deleted(cleanup_dag) -> None:
    root = Path(os.environ["OD_STAGING_URL"].removeprefix("file://"))
    old_file = root / "cleanup-test" / "old" / "run.jsonl.gz"
    new_file = root / "cleanup-test" / "new" / "run.jsonl.gz"
    for path in (old_file, new_file):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x1f\x8b")
    old = time.time() - 40 * 86400
    os.utime(old_file, (old, old))

    dry = task_results(run_cleanup(cleanup_dag, dry_run=True).run_id)["prune_staging"]
    assert dry["eligible"] >= 1
    assert old_file.exists()
    result = task_results(run_cleanup(cleanup_dag).run_id)["prune_staging"]
    assert result["deleted"] == dry["eligible"]
    assert not old_file.exists()
    assert new_file.exists()
    assert task_results(run_cleanup(cleanup_dag).run_id)["prune_staging"]["deleted"] == 0


def test_airflow_xcom_older_than_the_retention_is_pruned(cleanup_dag) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    first = run_cleanup(cleanup_dag, dry_run=True)
    with create_session() as session:
        aged = session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=first.run_id).all()
        for xcom in aged:
            xcom.timestamp = datetime.now(UTC) - timedelta(days=45)
        n_aged = len(aged)
    assert n_aged >= 3
    result = task_results(run_cleanup(cleanup_dag).run_id)["prune_airflow_metadata"]
    assert result["rows"]["xcom"] >= n_aged
    with create_session() as session:
        assert session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=first.run_id).count() == 0


def test_cleanup_without_the_metadata_connection_fails_clearly(dagbag, in_task_cleanup, monkeypatch) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    monkeypatch.delenv("AIRFLOW_CONN_OD_AIRFLOW_DB", raising=False)
    with create_session() as session:  # `make setup` created it in the metadata DB
        session.query(Connection).filter(Connection.conn_id == "od_airflow_db").delete()
    run = dagbag.dags[DAG_ID].test(run_conf={"retention_days": 30, "dry_run": True})
    assert run.state == "failed"
    results = task_results(run.run_id)
    assert "prune_job_history" in results, "the other cleanups still ran"
    assert "prune_airflow_metadata" not in results


def test_running_rows_within_the_lease_are_never_pruned_and_rows_left_running_age_out(
    cleanup_dag, dagbag
) -> None:
    """A running row is kept by the retention whatever its age while it is within the lease (it may be
    working); one its run left running is closed by inventory_freshness, and then ages out like any other."""
    now = datetime.now(UTC)
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions, dealer_leases")
        with db.cursor() as cur:
            for dealer, updated in (("lease-live", now - timedelta(minutes=5)), ("lease-dead", None)):
                started = now - timedelta(days=60)
                cur.execute(
                    """INSERT INTO job_executions
                           (job_id, dag_id, run_id, dealer_id, platform, status, start_time, updated_at)
                       VALUES (%s, 'seed', %s, %s, 'cobalt', 'running', %s, %s)""",
                    (f"{dealer}_cobalt", f"{dealer}-running", dealer, started, updated or started),
                )
                # Ten newer executions, all older than the retention: the running row is not in the last 10.
                cur.executemany(
                    """INSERT INTO job_executions
                           (job_id, dag_id, run_id, dealer_id, platform, status, start_time)
                       VALUES (%s, 'seed', %s, %s, 'cobalt', 'failed', %s)""",
                    [
                        (f"{dealer}_cobalt", f"{dealer}-f{i}", dealer, now - timedelta(days=50 - i))
                        for i in range(10)
                    ],
                )

    def running_rows() -> dict[str, str]:
        with job_history_conn() as db:
            return dict(db.execute("SELECT run_id, status FROM job_executions WHERE run_id LIKE '%-running'"))

    assert run_cleanup(cleanup_dag).state == "success"
    assert running_rows() == {"lease-live-running": "running", "lease-dead-running": "running"}

    assert run_dag(dagbag.dags["inventory_freshness"]).state == "success"
    assert running_rows() == {"lease-live-running": "running", "lease-dead-running": "failed"}

    assert run_cleanup(cleanup_dag).state == "success"
    assert running_rows() == {"lease-live-running": "running"}, "closed, the dead run's row aged out"


def age_run(run_id: str, days: float) -> int:
    """Make one maintenance_cleanup run look ``days`` old to `airflow db clean` (the dates it filters on);
    returns how many XComs the run has."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    then = datetime.now(UTC) - timedelta(days=days)
    with create_session() as session:
        session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=run_id).update({"start_date": then})
        session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id).update({"start_date": then})
        return session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=run_id).update({"timestamp": then})


def run_metadata(run_id: str) -> tuple[int, int, int]:
    """(dag runs, task instances, XComs) Airflow's metadata database still holds for one run."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return (
            session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=run_id).count(),
            session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id).count(),
            session.query(XComModel).filter_by(dag_id=DAG_ID, run_id=run_id).count(),
        )


def test_by_default_the_metadata_task_skips_saying_why_and_the_metadata_stays(
    dagbag, od_settings, monkeypatch, capfd
) -> None:
    from od_scheduler.operators.cleanup import SKIP_MESSAGE

    od_settings(metadata_cleanup_in_task="False")
    monkeypatch.delenv("AIRFLOW_CONN_OD_AIRFLOW_DB", raising=False)
    dag = dagbag.dags[DAG_ID]
    old = run_cleanup(dag, dry_run=True)
    n_xcoms = age_run(old.run_id, days=45)
    assert n_xcoms >= 2
    capfd.readouterr()

    run = run_cleanup(dag)
    assert run.state == "success", "a skipped metadata task does not fail the cleanup"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {
        "prune_job_history": "success",
        "prune_staging": "success",
        "prune_airflow_metadata": "skipped",
    }
    assert SKIP_MESSAGE in capfd.readouterr().out
    assert run_metadata(old.run_id) == (1, 3, n_xcoms), "Airflow's metadata is left alone"


def test_the_metadata_cleanup_command_prunes_what_is_older_than_the_retention(dagbag, od_settings) -> None:
    """`python -m od_scheduler.metadata_cleanup` as the compose service, cron or a CronJob runs it: with
    Airflow's own configuration (here the test metadata database), outside any task."""
    from airflow.models.log import Log
    from airflow.utils.session import create_session

    od_settings(metadata_cleanup_in_task="False")
    dag = dagbag.dags[DAG_ID]
    old, recent = run_cleanup(dag, dry_run=True), run_cleanup(dag, dry_run=True)
    n_old, n_recent = age_run(old.run_id, days=45), age_run(recent.run_id, days=35)
    marker = f"od-test-{time.time_ns()}"
    with create_session() as session:
        for age in (45, 35):
            entry = Log(event=f"{marker}-{age}", extra="metadata retention test")
            entry.dttm = datetime.now(UTC) - timedelta(days=age)
            session.add(entry)

    def audit_events() -> set[str]:
        with create_session() as session:
            rows = session.query(Log.event).filter(Log.event.like(f"{marker}-%")).all()
            return {event for (event,) in rows}

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),  # include/ and tests/; od_scheduler is the installed package
        "AIRFLOW__OD_SCHEDULER__RETENTION_DAYS": "40",  # between the two runs' ages
    }

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "od_scheduler.metadata_cleanup", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    dry = command("--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "would delete rows older than" in dry.stdout
    assert run_metadata(old.run_id) == (1, 3, n_old), "a dry run deletes nothing"

    pruned = command()
    assert pruned.returncode == 0, pruned.stderr[-2000:]
    assert run_metadata(old.run_id) == (0, 0, 0)
    assert run_metadata(recent.run_id) == (1, 3, n_recent), "younger than the retention: kept"
    assert audit_events() == {f"{marker}-35"}
    report = re.search(r"deleted rows older than \S+: (.*)", pruned.stdout)
    assert report, pruned.stdout
    counts = dict(re.findall(r"(\w+) (\d+)", report.group(1)))
    assert int(counts["dag_run"]) >= 1
    assert int(counts["xcom"]) >= n_old
    assert int(counts["log"]) >= 1

    again = command()
    assert again.returncode == 0, again.stderr[-2000:]
    assert "deleted rows older than" in again.stdout
    assert again.stdout.rstrip().endswith(": nothing"), "a second run finds nothing more"


def test_every_table_the_command_cleans_is_one_airflow_db_clean_knows(airflow_db) -> None:
    # After an Airflow upgrade a renamed table would only be warned about, and silently never pruned.
    from airflow import settings
    from airflow.utils.db_cleanup import config_dict
    from sqlalchemy import inspect

    assert set(TABLES) <= set(config_dict)
    existing = set(inspect(settings.engine).get_table_names())
    # The Celery result tables exist only where Celery keeps its results in the metadata database.
    assert set(TABLES) - {"celery_taskmeta", "celery_tasksetmeta"} <= existing
