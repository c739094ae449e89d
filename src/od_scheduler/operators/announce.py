"""AnnounceChangesOperator: the platform's asset event when a run changed the Data API.

It runs when every shard is done (``trigger_rule=all_done``, beside ``summarize_run``, which keeps the
run's verdict), sums the run's job rows and, when any dealer's vehicles were sent or delisted — by a
dealer that failed later in the run too, since what was sent is at the Data API — emits the event on
``x-od://inventory/<platform>`` with an ``InventoryChange`` as its extra. A run that changed nothing skips
the task: no event, so nothing downstream runs for nothing. A cleared or retried task whose run already
announced this same change skips too (the asset is also its inlet, to read the run's earlier events), so
a downstream DAG does not run twice on one change; a run that changed more since (its shards cleared and
re-run) announces again, with the run's new totals.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowSkipException

from od_scheduler.assets import InventoryChange, inventory_asset
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.job import JobExecution


def inventory_change(platform: str, dag_id: str, run_id: str, rows: list[JobExecution]) -> InventoryChange:
    """What the run's rows say it changed at the Data API."""
    rows = [r for r in rows if r.platform == platform]
    return InventoryChange(
        platform=platform,
        dag_id=dag_id,
        run_id=run_id,
        dealers_changed=sum(1 for r in rows if r.vehicles_processed or r.vehicles_delisted),
        vehicles_sent=sum(r.vehicles_processed for r in rows),
        vehicles_delisted=sum(r.vehicles_delisted for r in rows),
    )


class AnnounceChangesOperator(BaseOperator):
    """Emit the platform's inventory asset event when the run changed something."""

    ui_color = "#e8f6f3"

    def __init__(self, *, platform: str, **kwargs: Any) -> None:
        self.asset = inventory_asset(platform)
        super().__init__(outlets=[self.asset], inlets=[self.asset], **kwargs)
        self.platform = platform

    def execute(self, context: Context) -> dict[str, Any]:
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        history = JobHistoryHook()
        change = inventory_change(
            self.platform, dag_id, run_id, history.executions.run_executions(dag_id, run_id)
        )
        if change.dealers_changed == 0:
            raise AirflowSkipException(
                f"run {run_id} sent and delisted nothing at the Data API: no event on {self.asset.uri}"
            )
        extra = change.model_dump(mode="json")
        earlier = self.announced(context, dag_id, run_id)
        if extra in earlier:
            raise AirflowSkipException(
                f"run {run_id} already announced this change on {self.asset.uri} "
                f"({change.dealers_changed} dealer(s), {change.vehicles_sent} vehicle(s) sent, "
                f"{change.vehicles_delisted} delisted): no second event"
            )
        if earlier:
            self.log.info(
                "%s changed more since its last event on %s: announcing the new totals",
                run_id,
                self.asset.uri,
            )
        context["outlet_events"][self.asset].extra = extra
        self.log.info(
            "%s: %d dealer(s) changed, %d vehicle(s) sent, %d delisted; event on %s",
            run_id,
            change.dealers_changed,
            change.vehicles_sent,
            change.vehicles_delisted,
            self.asset.uri,
        )
        return extra

    def announced(self, context: Context, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The extras of the events this run already emitted on the asset.

        Read oldest first from the run's ``run_after``: this run's events come before those of the runs after
        it, so a run cleared weeks later (hundreds of later events) still finds its own.
        """
        since = context["dag_run"].run_after.isoformat()
        events = context["inlet_events"][self.asset].after(since).ascending(True).limit(100)
        return [
            dict(e.extra or {}) for e in events if e.source_dag_id == dag_id and e.source_run_id == run_id
        ]
