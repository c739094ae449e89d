"""
### Run inventory now (manual only)

Triggers the platform DAGs (`inventory_<platform>`) with one conf — the old `POST /api/jobs/run`.

**Params**: `platform` (one of the platform ids, or empty for all), `dealer_id` (one dealer: only its
platforms are triggered; an unknown dealer fails `plan_runs` before anything is triggered), `force`
(default true: pull even dealers that are not due), `full_refresh`. The triggered run ids are listed
in `report_runs`'s log and return value.

`airflow dags trigger inventory_run_all --conf '{"platform": "dealer.com"}'`
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag

from od_scheduler.dag_factory import default_args
from od_scheduler.operators.run_all import (
    PLAN_RUNS_TASK_ID,
    PlanRunAllOperator,
    ReportRunsOperator,
    run_all_params,
)


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    params=run_all_params(),
    tags=["inventory", "manual"],
    default_args=default_args(execution_timeout=timedelta(minutes=15)),
    doc_md=__doc__,
)
def inventory_run_all() -> None:
    plan = PlanRunAllOperator(
        task_id=PLAN_RUNS_TASK_ID,
        platform="{{ params.platform }}",
        dealer_id="{{ params.dealer_id }}",
        force="{{ params.force }}",
        full_refresh="{{ params.full_refresh }}",
    )
    triggered = TriggerDagRunOperator.partial(
        task_id="trigger_runs",
        logical_date=None,
        openlineage_inject_parent_info=False,  # the platform DAGs refuse conf keys they do not declare
        map_index_template="{{ task.trigger_dag_id }}",
    ).expand_kwargs(plan.output)
    triggered >> ReportRunsOperator(task_id="report_runs")


inventory_run_all()
