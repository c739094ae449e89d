"""Web scraping (Apify) inventory DAG; its documentation (``doc_md``) comes from the platform registry."""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule
from od_scheduler.operators.web_scraping import WebScrapingInventoryOperator


@dag(
    schedule=platform_schedule(WebScrapingInventoryOperator),
    **inventory_dag_kwargs(WebScrapingInventoryOperator),
)
def inventory_web_scraping() -> None:
    inventory_tasks(WebScrapingInventoryOperator)


inventory_web_scraping()
