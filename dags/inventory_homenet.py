"""HomeNet inventory DAG; its documentation (``doc_md``) comes from the platform registry."""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule
from od_scheduler.operators.homenet import HomenetInventoryOperator


@dag(schedule=platform_schedule(HomenetInventoryOperator), **inventory_dag_kwargs(HomenetInventoryOperator))
def inventory_homenet() -> None:
    inventory_tasks(HomenetInventoryOperator)


inventory_homenet()
