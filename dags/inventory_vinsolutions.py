"""VinSolutions inventory DAG; its documentation (``doc_md``) comes from the platform registry."""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule
from od_scheduler.operators.vinsolutions import VinsolutionsInventoryOperator


@dag(
    schedule=platform_schedule(VinsolutionsInventoryOperator),
    **inventory_dag_kwargs(VinsolutionsInventoryOperator),
)
def inventory_vinsolutions() -> None:
    inventory_tasks(VinsolutionsInventoryOperator)


inventory_vinsolutions()
