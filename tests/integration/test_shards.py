"""Shards of dealers (inventory_dealer_com, dag.test(), real PostgreSQL, the sandbox over HTTP).

A run maps over shards, never over single dealers: more dealers than ``max_map_length`` still run; a shard
with a failing dealer records the others as they ended and fails only itself; a retried or cleared shard
re-pulls only the dealers that did not succeed in the run (the sandbox's request log proves it); and
``dealer_id`` still pulls exactly one dealer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.fixtures import history_rows, platform_dealers, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_dealer_com"
PULL = "shard.pull_inventory"
INGEST = "shard.ingest_inventory"


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set ``[od_scheduler]`` / ``[core]`` options for one test (settings are read once per process)."""
    from od_scheduler.settings import get_settings

    def set_options(**options: str) -> None:
        for key, value in options.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield set_options
    monkeypatch.undo()
    get_settings.cache_clear()


def pulled_dealers(control: httpx.Client) -> dict[str, dict[str, Any]]:
    """Active, unpaused Dealer.com dealers by id: what a forced run pulls."""
    return {
        d["id"]: d
        for d in platform_dealers(control, "dealer.com").values()
        if not (d.get("schedule") or {}).get("paused")
    }


def task_instances(run_id: str) -> list[Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id).all()
        session.expunge_all()
        return tis


def listed_shards(run_id: str) -> list[dict[str, Any]]:
    """What list_dealers returned: the run's shards."""
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=DAG_ID, run_id=run_id, task_id="list_dealers", key="return_value")
            .one()
        )
        return json.loads(row.value) if isinstance(row.value, str) else row.value


def site_requests(control: httpx.Client, since: str) -> Counter[str]:
    """Dealer.com widget requests per dealer id since ``since`` (ISO time), from the sandbox's log."""
    log = control.get("/_sandbox/requests", params={"service": "dealer_com"}).json()["requests"]
    return Counter(e["dealer"] for e in log if e["ts"] >= since and e["dealer"])


def batch_posts(control: httpx.Client, since: str) -> Counter[str]:
    log = control.get("/_sandbox/requests", params={"service": "data_api"}).json()["requests"]
    return Counter(e["dealer"] for e in log if e["ts"] >= since and e["path"].endswith("/batch"))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def test_more_dealers_than_max_map_length_still_run_in_as_many_shards(
    dagbag, clean: httpx.Client, settings_env
) -> None:
    dealers = pulled_dealers(clean)
    settings_env(AIRFLOW__CORE__MAX_MAP_LENGTH="4", AIRFLOW__OD_SCHEDULER__DEALERS_PER_TASK="1")
    assert len(dealers) > 4

    run = run_dag(dagbag.dags[DAG_ID], conf={"force": True, "max_failure_rate": 1.0})

    assert run.state == "success"
    shards = listed_shards(run.run_id)
    assert len(shards) == 4, "shards grow instead of passing max_map_length"
    listed = [d["dealer_id"] for shard in shards for d in shard["dealers"]]
    assert sorted(listed) == sorted(dealers), "every dealer in exactly one shard"
    assert max(len(s["dealers"]) for s in shards) - min(len(s["dealers"]) for s in shards) <= 1
    pulls = [ti for ti in task_instances(run.run_id) if ti.task_id == PULL]
    assert sorted(ti.map_index for ti in pulls) == [0, 1, 2, 3]
    # The map index names the shard's first dealers and its size.
    first = shards[0]
    assert first["label"].endswith(f": {len(first['dealers'])} dealers")
    assert first["dealers"][0]["name"] in first["label"]
    assert {ti.rendered_map_index for ti in pulls} == {s["label"] for s in shards}
    rows = history_rows(DAG_ID, run.run_id)
    assert set(rows) == set(dealers), "one job row per dealer, not per shard"
    statuses = Counter(r["status"] for r in rows.values())
    assert statuses["success"] == len(dealers) - 1  # the sandbox's broken site fails, alone


@pytest.fixture
def failed_shard(dagbag, clean: httpx.Client, settings_env) -> dict[str, Any]:
    """A forced run in shards of 5 in which the broken site's shard fails."""
    dealers = pulled_dealers(clean)
    broken = next(d for d in dealers.values() if "broken" in d["slug"])
    settings_env(AIRFLOW__OD_SCHEDULER__DEALERS_PER_TASK="5")
    logical_date = datetime(2026, 11, 3, 10, tzinfo=UTC)
    run = run_dag(dagbag.dags[DAG_ID], logical_date=logical_date, conf={"force": True})
    return {"run": run, "dealers": dealers, "broken": broken, "logical_date": logical_date}


def test_a_failing_dealer_fails_only_its_own_shard_and_the_others_are_recorded(
    failed_shard: dict[str, Any], clean: httpx.Client
) -> None:
    run, broken, dealers = failed_shard["run"], failed_shard["broken"], failed_shard["dealers"]
    shards = listed_shards(run.run_id)
    assert len(shards) == 4
    home = next(i for i, s in enumerate(shards) if broken["id"] in {d["dealer_id"] for d in s["dealers"]})
    states = {(ti.task_id, ti.map_index): ti.state for ti in task_instances(run.run_id)}
    assert states[(PULL, home)] == "failed"
    assert all(states[(PULL, i)] == "success" for i in range(4) if i != home)
    # The failed pull's ingest still runs (all_done) and ingests the shard's other dealers.
    assert all(states[(INGEST, i)] == "success" for i in range(4))
    rows = history_rows(DAG_ID, run.run_id)
    assert rows[broken["id"]]["status"] == "failed"
    assert "500" in rows[broken["id"]]["errors"][-1]
    neighbours = [d["dealer_id"] for d in shards[home]["dealers"] if d["dealer_id"] != broken["id"]]
    assert neighbours
    for dealer_id in dealers:
        if dealer_id != broken["id"]:
            assert rows[dealer_id]["status"] == "success", (dealer_id, rows[dealer_id]["errors"])
    for dealer_id in neighbours:
        stored = clean.get(
            "/_sandbox/data-api/vehicles", params={"dealer_id": dealer_id, "source": "dealer.com"}
        ).json()["vehicles"]
        assert stored, "the broken dealer's neighbours reached the Data API"
    assert run.state == "failed"  # max_failure_rate 0: one failed dealer fails the run


def test_a_cleared_shard_re_pulls_only_the_dealers_that_did_not_succeed(
    dagbag, failed_shard: dict[str, Any], clean: httpx.Client
) -> None:
    run, broken = failed_shard["run"], failed_shard["broken"]
    clean.put(f"/_sandbox/faults/{broken['slug']}", json={}).raise_for_status()  # the site is fixed
    since = now_iso()

    rerun = run_dag(dagbag.dags[DAG_ID], logical_date=failed_shard["logical_date"], conf={"force": True})

    assert rerun.run_id == run.run_id
    assert rerun.state == "success"
    assert set(site_requests(clean, since)) == {broken["id"]}, "only the unfinished dealer is pulled again"
    assert set(batch_posts(clean, since)) == {broken["id"]}, "and only it is ingested again"
    rows = history_rows(DAG_ID, run.run_id)
    assert rows[broken["id"]]["status"] == "success"
    assert all(r["status"] == "success" for r in rows.values())


def test_an_airflow_retry_of_a_shard_re_pulls_only_its_unfinished_dealers(
    clean: httpx.Client, settings_env
) -> None:
    """A real task retry (try 2 of the same task instance), not a re-run: the DAG parsed with retries."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.integration.test_staging_attempts import register

    dealers = pulled_dealers(clean)
    broken = next(d for d in dealers.values() if "broken" in d["slug"])
    # The broken site answers 500 to its first 5 requests (its first try: http_max_attempts 5), then works:
    # Airflow's retry of the shard must succeed and must not pull the shard's other dealers again.
    clean.put(
        f"/_sandbox/faults/{broken['slug']}", json={"first_n_of_every": [5, 100000], "status_code": 500}
    ).raise_for_status()
    settings_env(
        AIRFLOW__OD_SCHEDULER__DEALERS_PER_TASK="5",
        AIRFLOW__OD_SCHEDULER__TASK_RETRIES="1",
        AIRFLOW__OD_SCHEDULER__TASK_RETRY_DELAY_S="0",
    )
    from tests.fixtures import ROOT

    retrying = DagBag(dag_folder=str(ROOT / "dags" / "inventory_dealer_com.py")).dags[DAG_ID]
    original = DagBag(dag_folder=str(ROOT / "dags" / "inventory_dealer_com.py")).dags[DAG_ID]
    assert retrying.get_task(PULL).retries == 1
    register(retrying)
    try:
        since = now_iso()
        run = run_dag(retrying, conf={"force": True})
    finally:
        register(original)

    pulls = {ti.map_index: ti for ti in task_instances(run.run_id) if ti.task_id == PULL}
    shards = listed_shards(run.run_id)
    home = next(i for i, s in enumerate(shards) if broken["id"] in {d["dealer_id"] for d in s["dealers"]})
    assert pulls[home].try_number == 2, "the broken dealer's shard was retried"
    assert pulls[home].state == "success"
    assert all(ti.try_number == 1 for i, ti in pulls.items() if i != home)
    requests = site_requests(clean, since)
    assert requests[broken["id"]] == 5 + 3, "the retry pulled the broken dealer again (3 segments)"
    neighbours = [d["dealer_id"] for d in shards[home]["dealers"] if d["dealer_id"] != broken["id"]]
    rows = history_rows(DAG_ID, run.run_id)
    # Every other dealer of the retried shard was pulled once: the site saw exactly the requests its one
    # pull counted (a second pull would double them).
    seen = {d: (requests[d], rows[d]["performance_metrics"]["api_calls"]) for d in neighbours}
    assert all(site == counted > 0 for site, counted in seen.values()), seen
    assert run.state == "success"
    assert all(r["status"] == "success" for r in rows.values())


def test_dealer_id_pulls_exactly_one_dealer(dagbag, clean: httpx.Client) -> None:
    dealers = pulled_dealers(clean)
    chosen = next(d for d in dealers.values() if "broken" not in d["slug"])
    since = now_iso()

    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": chosen["id"]})

    assert run.state == "success"
    shards = listed_shards(run.run_id)
    assert [[d["dealer_id"] for d in s["dealers"]] for s in shards] == [[chosen["id"]]]
    assert shards[0]["label"] == f"{chosen['name']} ({chosen['slug']})"
    assert list(history_rows(DAG_ID, run.run_id)) == [chosen["id"]]
    assert set(site_requests(clean, since)) == {chosen["id"]}
