"""DealerSocket inventory DAG; its documentation (``doc_md``) comes from the platform registry."""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule
from od_scheduler.operators.dealersocket import DealersocketInventoryOperator


@dag(
    schedule=platform_schedule(DealersocketInventoryOperator),
    **inventory_dag_kwargs(DealersocketInventoryOperator),
)
def inventory_dealersocket() -> None:
    inventory_tasks(DealersocketInventoryOperator)


inventory_dealersocket()
