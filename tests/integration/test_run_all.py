"""inventory_run_all: fan-out to the platform DAGs with each param combination, and its rejections."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fixtures import run_dag
from tests.integration.test_inventory_dealer_com import cms_dealers

pytestmark = pytest.mark.integration

DAG_ID = "inventory_run_all"
RUN_ALL_DEFAULTS = {"platform": None, "dealer_id": None, "force": True, "full_refresh": False}


def triggered_runs(parent_run_id: str) -> dict[str, dict]:
    """Platform DAG runs created by one run-all run, by dag id, with their conf."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from od_scheduler.staging import safe_component

    prefix = f"run_all__{safe_component(parent_run_id)}__"
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.run_id.like(f"{prefix}%")).all()
        return {r.dag_id: {"run_id": r.run_id, "conf": r.conf, "state": r.state} for r in runs}


@pytest.fixture(autouse=True)
def _remove_triggered_runs():
    """The runs a test triggers stay queued (no scheduler here); remove them so they never run later."""
    yield
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.run_id.like("run_all__%")).delete(synchronize_session=False)


def run_all(dagbag, **conf):
    return run_dag(dagbag.dags[DAG_ID], conf={**RUN_ALL_DEFAULTS, **conf})


def test_no_params_triggers_every_platform_dag_with_force(dagbag, clean: httpx.Client) -> None:
    from od_scheduler.platforms import PLATFORMS

    run = run_all(dagbag)
    assert run.state == "success"
    runs = triggered_runs(run.run_id)
    assert set(runs) == {p.dag_id for p in PLATFORMS.values()}
    for triggered in runs.values():
        assert triggered["conf"] == {"dealer_id": None, "force": True, "full_refresh": False}
        assert triggered["state"] == "queued"


def test_one_platform_with_full_refresh_and_no_force(dagbag, clean: httpx.Client) -> None:
    run = run_all(dagbag, platform="dealer.com", force=False, full_refresh=True)
    runs = triggered_runs(run.run_id)
    assert list(runs) == ["inventory_dealer_com"]
    assert runs["inventory_dealer_com"]["conf"] == {"dealer_id": None, "force": False, "full_refresh": True}


def test_a_dealer_alone_triggers_only_its_platforms(dagbag, clean: httpx.Client) -> None:
    dealer = next(d for d in cms_dealers(clean) if d["slug"] == "riverside-toyota")
    run = run_all(dagbag, dealer_id=dealer["id"])
    runs = triggered_runs(run.run_id)
    from od_scheduler.platforms import PLATFORMS

    expected = {PLATFORMS[p].dag_id for p in dealer["platforms"] if p in PLATFORMS}
    assert set(runs) == expected
    assert all(r["conf"]["dealer_id"] == dealer["id"] for r in runs.values())


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"dealer_id": "00000000-0000-0000-0000-000000000000"}, "is not an active dealer in PayloadCMS"),
        ({"platform": "dealer.com", "dealer_id": "__by_slug__:bayview-auto-group"}, "is not on platform"),
    ],
)
def test_a_bad_dealer_fails_before_anything_is_triggered(dagbag, clean: httpx.Client, conf, message) -> None:
    if str(conf.get("dealer_id", "")).startswith("__by_slug__:"):
        # A HomeNet-only dealer named for Dealer.com.
        slug = conf["dealer_id"].split(":", 1)[1]
        ids = {d["slug"]: d["id"] for d in clean.get("/_sandbox/dealers").json()["dealers"]}
        conf = {**conf, "dealer_id": ids[slug]}
    run = run_all(dagbag, **conf)
    assert run.state == "failed"
    assert triggered_runs(run.run_id) == {}
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        states = {
            ti.task_id: ti.state
            for ti in session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run.run_id).all()
        }
    assert states["plan_runs"] == "failed"
    assert states.get("report_runs") in ("upstream_failed", None)


def test_cli_rejects_an_unknown_platform_before_anything_runs(airflow_db) -> None:
    """`airflow dags trigger inventory_run_all --conf '{"platform": "nope"}'` exits 1 with the reason."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "reserialize"], check=True, capture_output=True, cwd=root
    )
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "trigger", DAG_ID, "--conf", '{"platform": "nope"}'],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    assert proc.returncode == 1
    assert "Invalid input for param platform: 'nope' is not one of" in proc.stderr
