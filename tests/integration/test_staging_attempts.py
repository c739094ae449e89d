"""Two pulls of one dealer in one run (a zombie beside its retry) stage apart; the ingest reads the one
its row names.

A small DAG built here wires the real operators the way a zombie interleaves with its retry: the first
copy of the pull stages its file, the retry's start resets the dealer's row (emulated: the row's
``pull_result`` is cleared, as ``ExecutionStore.start`` does), the lot changes, and the second copy stages
again (same run, same dealer, same try number). With one staging name per run, the second copy overwrote
the first copy's file and an ingest of the first copy failed on the checksum; now both files stay side by
side and the ingest reads the file (and checksum) recorded on the row.
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

    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.models.job import DealerRef, Shard
    from od_scheduler.operators.homenet import HomenetInventoryOperator
    from od_scheduler.operators.ingest import DataApiIngestOperator

    shard = Shard.of(
        [DealerRef(dealer_id=dealer["id"], platform="homenet", name=dealer["name"], slug=dealer["slug"])]
    )
    shard_arg = shard.model_dump(mode="json")
    with DAG(DAG_ID, schedule=None, start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False) as dag:
        first = HomenetInventoryOperator(task_id="pull_inventory", shard=shard_arg)

        @task(task_id="retry_starts_and_a_car_sells")
        def retry_starts_and_a_car_sells(run_id: str | None = None) -> None:
            with JobHistoryHook().cursor() as cur:
                cur.execute(
                    "UPDATE job_executions SET pull_result = NULL WHERE dag_id = %s AND run_id = %s",
                    (DAG_ID, run_id),
                )
            httpx.post(
                f"{sandbox}/_sandbox/lots/homenet/{SLUG}/remove", json={"vins": [sold_vin]}, timeout=30
            ).raise_for_status()

        copy = HomenetInventoryOperator(task_id="pull_inventory_copy", shard=shard_arg)
        ingest = DataApiIngestOperator(task_id="ingest_inventory", shard=shard_arg, platform="homenet")
        first >> retry_starts_and_a_car_sells() >> copy >> ingest
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


def test_the_ingest_reads_its_own_copy_of_a_pull_staged_twice(
    clean: httpx.Client, sandbox: str, registered: None
) -> None:
    dealer = platform_dealers(clean, "homenet")[SLUG]
    truth = clean.get(f"/_sandbox/truth/homenet/{SLUG}").json()
    sold = truth["vins"][0]

    run = two_copies_dag(sandbox, dealer, sold).test()

    assert run.state == "success"
    row = history_rows(DAG_ID, run.run_id)[dealer["id"]]
    assert row["status"] == "success"
    recorded = Path(row["pull_result"]["staging_path"].removeprefix("file://"))
    files = sorted(recorded.parent.glob(f"{run_id_component(run.run_id)}*.jsonl.gz"))
    assert len(files) == 2, f"both copies' files are there, side by side: {files}"
    # Both are try 1 of the same run: the random part of the name keeps them apart.
    assert all(".try1." in path.name for path in files)
    assert row["pull_result"]["vehicles_staged"] == 89, "the row names the second copy (the car was sold)"
    stored = clean.get(
        "/_sandbox/data-api/vehicles", params={"dealer_id": dealer["id"], "source": "homenet"}
    ).json()["vehicles"]
    assert len(stored) == 89
    assert sold not in {v["vin"] for v in stored}, "the ingest read the file its row names"


def run_id_component(run_id: str) -> str:
    from od_scheduler.staging import safe_component

    return safe_component(run_id)
