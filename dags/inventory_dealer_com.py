"""Dealer.com inventory DAG; its documentation (``doc_md``) comes from the platform registry."""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule
from od_scheduler.operators.dealer_com import DealerComInventoryOperator


@dag(
    schedule=platform_schedule(DealerComInventoryOperator), **inventory_dag_kwargs(DealerComInventoryOperator)
)
def inventory_dealer_com() -> None:
    inventory_tasks(DealerComInventoryOperator)


inventory_dealer_com()
