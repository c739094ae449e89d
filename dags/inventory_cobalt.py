"""Cobalt inventory DAG; its documentation (``doc_md``) comes from the platform registry."""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule
from od_scheduler.operators.cobalt import CobaltInventoryOperator


@dag(schedule=platform_schedule(CobaltInventoryOperator), **inventory_dag_kwargs(CobaltInventoryOperator))
def inventory_cobalt() -> None:
    inventory_tasks(CobaltInventoryOperator)


inventory_cobalt()
