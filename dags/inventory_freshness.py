"""
### Inventory freshness (hourly, at :30 UTC)

One task, `check_freshness`. First it closes the jobs runs left **running**: a `job_executions` row with no
update for longer than `lease_minutes` (default 180) belongs to a run that died without its `summarize_run`
(killed, marked failed in the UI, the scheduler died). It becomes `failed` with the error
"left running by run <run_id>: no update for N minutes; closed by inventory_freshness", and the expired
lease of that run on the dealer is released (at most `cleanup_batch_size` rows per check, oldest first).

Then it reads every active dealer from PayloadCMS and the job history, and sends ONE digest alert to the
`od_alerts` webhook naming what is newly wrong, and how many jobs it closed, by run:

- **missing executions**: the dealer's last success on a platform is older than twice its interval
  (`schedule.interval_minutes` in the CMS, else the platform default);
- **held**: its last 5 executions failed, so scheduled runs skip it (a forced run still tries);
- **inventory anomaly**: its latest pull shrank suspiciously and nothing was delisted.

Each condition alerts once and again only after it cleared (a later check no longer found it); closed jobs
are reported once, by the check that closed them (the digest goes out for them alone if nothing else is new).
If the CMS or the job-history database is unreachable the task fails and a system alert is sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag

from od_scheduler.dag_factory import default_args
from od_scheduler.notifications import WebhookAlertNotifier
from od_scheduler.operators.freshness import CheckFreshnessOperator
from od_scheduler.platforms import PAYLOAD_CMS_POOL
from od_scheduler.settings import get_settings


@dag(
    schedule=CronDataIntervalTimetable(get_settings().freshness_schedule, timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["monitoring"],
    default_args=default_args(execution_timeout=timedelta(minutes=15)),
    doc_md=__doc__,
)
def inventory_freshness() -> None:
    CheckFreshnessOperator(
        task_id="check_freshness",
        pool=PAYLOAD_CMS_POOL,
        on_failure_callback=WebhookAlertNotifier(kind="system"),
    )


inventory_freshness()
