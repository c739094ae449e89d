"""Two copies of one pull task (a zombie beside its retry) stage apart, and each ingest reads its own file.

A small DAG built here wires the real operators the way a zombie interleaves with its retry: two copies of
the same pull (same run, same dealer, same try number) write their staging files one after the other, the
lot changing in between, and the ingest then consumes the *first* copy's summary. With one staging name
per run, the second copy overwrote the first copy's file and the ingest failed on the checksum.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures import history_rows, platform_dealers

pytestmark = pytest.mark.integration

DAG_ID = "test_staging_two_pull_copies"
SLUG = "bayview-auto-group"


def two_copies_dag(sandbox: str, dealer: dict[str, Any], sold_vin: str):
    from airflow.sdk import DAG, task

    from od_scheduler.operators.homenet import HomenetInventoryOperator
    from od_scheduler.operators.ingest import DataApiIngestOperator

    ref = {"dealer_id": dealer["id"], "name": dealer["name"], "slug": dealer["slug"]}
    with DAG(DAG_ID, schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False) as dag:
        first = HomenetInventoryOperator(task_id="pull_inventory", dealer=ref)

        @task(task_id="sell_a_car")
        def sell_a_car() -> None:
            httpx.post(
                f"{sandbox}/_sandbox/lots/homenet/{SLUG}/remove", json={"vins": [sold_vin]}, timeout=30
            ).raise_for_status()

        copy = HomenetInventoryOperator(task_id="pull_inventory_copy", dealer=ref)
        ingest = DataApiIngestOperator(
            task_id="ingest_inventory", dealer=ref, pull=first.output, platform="homenet"
        )
        first >> sell_a_car() >> copy >> ingest
    register(dag)
    return dag


def register(dag) -> None:
    """Write a DAG defined in a test into the metadata DB, as the dag-processor does for the dags folder.

    ``dag.test()`` needs a serialized version to create its run; it runs the tasks of this very object.
    """
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
        )


@pytest.fixture
def registered() -> Iterator[None]:
    """Remove the test DAG (its runs, task instances and XComs) from the metadata DB afterwards."""
    yield
    from airflow.api.common.delete_dag import delete_dag

    delete_dag(DAG_ID)


def xcom(run_id: str, task_id: str) -> Any:
    import json

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=DAG_ID, run_id=run_id, task_id=task_id, key="return_value")
            .one()
        )
        return json.loads(row.value) if isinstance(row.value, str) else row.value


def test_the_ingest_reads_its_own_copy_of_a_pull_staged_twice(
    clean: httpx.Client, sandbox: str, registered: None
) -> None:
    dealer = platform_dealers(clean, "homenet")[SLUG]
    truth = clean.get(f"/_sandbox/truth/homenet/{SLUG}").json()
    sold = truth["vins"][0]

    run = two_copies_dag(sandbox, dealer, sold).test()

    assert run.state == "success"
    first, copy = xcom(run.run_id, "pull_inventory"), xcom(run.run_id, "pull_inventory_copy")
    assert first["staging_path"] != copy["staging_path"]
    assert first["checksum"] != copy["checksum"]
    assert (first["vehicles_staged"], copy["vehicles_staged"]) == (90, 89)
    paths = [Path(summary["staging_path"].removeprefix("file://")) for summary in (first, copy)]
    assert set(paths) <= set(paths[0].parent.glob("*.jsonl.gz")), "both files are there, side by side"
    # Both are try 1 of the same run: the random part of the name keeps them apart.
    assert all(".try1." in path.name for path in paths)
    assert history_rows(DAG_ID, run.run_id)[dealer["id"]]["status"] == "success"
    stored = clean.get(
        "/_sandbox/data-api/vehicles", params={"dealer_id": dealer["id"], "source": "homenet"}
    ).json()["vehicles"]
    assert len(stored) == 90
    assert sold in {v["vin"] for v in stored}, "the ingest read the first copy's file, sold car included"
