"""inventory_web_scraping: daily at 09:00 UTC, pulls in the apify_api pool, and its trigger is importable."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.dags

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "inventory_web_scraping.py"))
    assert not bag.import_errors
    return bag.dags["inventory_web_scraping"]


def test_runs_daily_at_0900_utc_with_real_data_intervals(dag) -> None:
    assert dag.timetable.expression == "0 9 * * *"
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert str(dag.timetable.timezone) == "UTC"


def test_the_pull_is_the_deferrable_apify_operator_in_the_apify_pool(dag) -> None:
    from od_scheduler.operators.web_scraping import WebScrapingInventoryOperator

    pull = dag.get_task("shard.pull_inventory")
    assert pull.pool == "apify_api"
    assert isinstance(pull, WebScrapingInventoryOperator)
    assert callable(pull.execute_complete)


def test_the_trigger_lives_in_an_importable_module_not_in_the_dag_file() -> None:
    from airflow.sdk._shared.module_loading import import_string

    from od_scheduler.triggers.apify import ApifyRunTrigger

    classpath, _ = ApifyRunTrigger(run_id="r", deadline=0.0).serialize()
    assert import_string(classpath) is ApifyRunTrigger
    assert classpath.startswith("od_scheduler.triggers.")
