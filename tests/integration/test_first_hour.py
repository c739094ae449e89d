"""What a data engineer meets first, from the shell: `airflow dags test`, a typo in the conf, paused DAGs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.fixtures import history_rows, run_dag

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def airflow_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=600,
    )


def test_dags_test_of_a_platform_dag_exits_0_with_long_run_alerts_on(
    clean: httpx.Client, tmp_path: Path
) -> None:
    """The platform DAGs carry a DeadlineAlert; `airflow dags test` used to exit 1 on it after a green run."""
    from od_scheduler.settings import get_settings

    assert get_settings().long_run_alerts  # the default: the alert is not switched off for this test
    proc = airflow_cli("dags", "test", "inventory_cobalt", "2026-11-02T09:00:00+00:00")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "can't adapt type" not in output
    assert "state=success" in output
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = (
            session.query(DagRun)
            .filter(
                DagRun.dag_id == "inventory_cobalt",
                DagRun.logical_date == datetime(2026, 11, 2, 9, tzinfo=UTC),
            )
            .order_by(DagRun.id.desc())
            .first()
        )
        assert run.state == "success"  # not left `running`
        run_id = run.run_id
    rows = history_rows("inventory_cobalt", run_id)
    assert rows
    assert all(r["status"] == "success" for r in rows.values())

    # make demo turns this output into the task log files the UI reads (dags test writes none).
    from include.tools.demo import publish_task_logs

    output_file = tmp_path / "dags-test.log"
    output_file.write_text(output)
    written = publish_task_logs(output_file, "inventory_cobalt", run_id, tmp_path / "logs")
    run_dir = tmp_path / "logs" / "dag_id=inventory_cobalt" / f"run_id={run_id}"
    # list_dealers, summarize_run, announce_changes, and a pull and an ingest of the one shard
    assert written == 3 + 2
    assert "PayloadCMS" in (run_dir / "task_id=list_dealers" / "attempt=1.log").read_text()
    pull_log = (run_dir / "task_id=shard.pull_inventory" / "map_index=0" / "attempt=1.log").read_text()
    assert "Pulling Cobalt inventory for" in pull_log
    # one folded section per dealer of the shard, titled with its label and how it ended
    sections = [line for line in pull_log.splitlines() if "::group::" in line and ": done (" in line]
    assert len(sections) == len(rows), sections
    assert pull_log.count("::endgroup::") >= len(rows)
    assert "task_id=shard.ingest_inventory" not in pull_log


def test_the_dag_processor_still_parses_the_deadline() -> None:
    """The guard is specific to `airflow dags test`: any other process gets the DeadlineAlert."""
    from od_scheduler.dag_factory import inventory_dag_kwargs, parsed_for_dags_test
    from od_scheduler.operators.cobalt import CobaltInventoryOperator

    assert parsed_for_dags_test(["dags", "test", "inventory_cobalt"])
    assert parsed_for_dags_test(["-v", "dags", "test", "inventory_cobalt", "--use-executor"])
    assert not parsed_for_dags_test(["dag-processor"])
    assert not parsed_for_dags_test(["dags", "reserialize"])
    assert not parsed_for_dags_test(["tasks", "test", "inventory_cobalt", "list_dealers"])
    assert inventory_dag_kwargs(CobaltInventoryOperator)["deadline"] is not None  # pytest is not `dags test`


def test_an_unknown_conf_key_fails_the_run_before_anything_is_pulled(dagbag, clean: httpx.Client) -> None:
    """`--conf '{"forse": true}'` used to run as a normal, unforced run."""
    run = run_dag(dagbag.dags["inventory_cobalt"], conf={"forse": True})
    assert run.state == "failed"
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        states = {
            ti.task_id: ti.state
            for ti in session.query(TaskInstance).filter_by(dag_id="inventory_cobalt", run_id=run.run_id)
        }
    assert states["list_dealers"] == "failed"
    assert history_rows("inventory_cobalt", run.run_id) == {}
    assert clean.get("/_sandbox/requests", params={"service": "cobalt"}).json()["requests"] == []


def test_the_cli_names_the_unknown_key_and_the_accepted_ones(clean: httpx.Client) -> None:
    proc = airflow_cli(
        "dags", "test", "inventory_cobalt", "2026-11-03T09:00:00+00:00", "--conf", '{"dealer-id": "x"}'
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "unknown key(s) in the run's conf: dealer-id" in output
    assert "This DAG accepts: dealer_id, force, force_delist, full_refresh, max_failure_rate" in output
    assert clean.get("/_sandbox/requests", params={"service": "cobalt"}).json()["requests"] == []


def test_run_all_rejects_an_unknown_key_and_triggers_nothing(dagbag, clean: httpx.Client) -> None:
    from tests.integration.test_run_all import RUN_ALL_DEFAULTS, triggered_runs

    run = run_dag(dagbag.dags["inventory_run_all"], conf={**RUN_ALL_DEFAULTS, "platfrom": "cobalt"})
    assert run.state == "failed"
    assert triggered_runs(run.run_id) == {}


@pytest.fixture
def cobalt_unpaused():
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    def set_paused(dag_id: str, paused: bool) -> None:
        with create_session() as session:
            session.query(DagModel).filter(DagModel.dag_id == dag_id).update({"is_paused": paused})

    set_paused("inventory_cobalt", False)
    set_paused("inventory_homenet", True)
    yield
    set_paused("inventory_cobalt", True)


def test_run_all_warns_which_targets_are_paused(dagbag, clean: httpx.Client, cobalt_unpaused) -> None:
    """A run triggered for a paused DAG stays queued; the plan says so instead of waiting silently."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from tests.integration.test_run_all import RUN_ALL_DEFAULTS, triggered_runs

    run = run_dag(dagbag.dags["inventory_run_all"], conf=RUN_ALL_DEFAULTS)
    assert run.state == "success"
    assert set(triggered_runs(run.run_id)) >= {"inventory_cobalt", "inventory_homenet"}
    with create_session() as session:
        paused = (
            session.query(XComModel.value)
            .filter_by(dag_id="inventory_run_all", run_id=run.run_id, task_id="plan_runs", key="paused")
            .scalar()
        )
    paused = json.loads(paused) if isinstance(paused, str) else paused
    assert "inventory_homenet" in paused
    assert "inventory_cobalt" not in paused
    from airflow.models.dagrun import DagRun

    with create_session() as session:
        session.query(DagRun).filter(DagRun.run_id.like("run_all__%")).delete(synchronize_session=False)
