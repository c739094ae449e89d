"""
### Maintenance cleanup (daily 02:00 UTC)

Keeps a long-lived deployment small. Three independent tasks, each logging and returning true counts:

- `prune_job_history`: `job_executions` older than the retention, in bounded batches — always keeping each
  dealer x platform's latest success and last 10 executions, never a `running` row;
- `prune_staging`: staged vehicle files older than the retention;
- `prune_airflow_metadata`: **skipped by default.** Airflow's own metadata (DAG runs, task instances, XCom,
  logs, jobs, triggers, ...) is pruned outside tasks, where the scheduler runs, by
  `python -m od_scheduler.metadata_cleanup` (docker-compose's `airflow-db-clean` service runs it daily), so
  no task holds the metadata database's credentials. With `[od_scheduler] metadata_cleanup_in_task = True`
  (one-machine setups; `make up` sets it) this task runs that same `airflow db clean` with the
  `od_airflow_db` connection. The skip's log line says the same.

**Params**: `retention_days` (default 30), `dry_run` (report what would be deleted, delete nothing).
Running it twice deletes nothing more the second time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag

from od_scheduler.dag_factory import default_args
from od_scheduler.operators.cleanup import (
    PruneAirflowMetadataOperator,
    PruneJobHistoryOperator,
    PruneStagingOperator,
)
from od_scheduler.settings import get_settings

SETTINGS = get_settings()
RETENTION = {"retention_days": "{{ params.retention_days }}", "dry_run_only": "{{ params.dry_run }}"}


@dag(
    schedule=CronDataIntervalTimetable(SETTINGS.cleanup_schedule, timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    params={
        "retention_days": Param(
            SETTINGS.retention_days,
            type="integer",
            minimum=1,
            maximum=3650,
            title="Retention (days)",
            description=(
                "Delete job history, staged files and Airflow metadata older than this many days (each "
                "dealer keeps its latest success and last executions: setting keep_last_executions). "
                "Default: the setting retention_days."
            ),
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Count what would be deleted and log it; delete nothing.",
        ),
    },
    tags=["maintenance"],
    default_args=default_args(execution_timeout=timedelta(minutes=60)),
    doc_md=__doc__,
)
def maintenance_cleanup() -> None:
    PruneJobHistoryOperator(task_id="prune_job_history", **RETENTION)
    PruneStagingOperator(task_id="prune_staging", **RETENTION)
    PruneAirflowMetadataOperator(task_id="prune_airflow_metadata", **RETENTION)


maintenance_cleanup()
