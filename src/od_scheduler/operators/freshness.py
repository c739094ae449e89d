"""CheckFreshnessOperator: one digest alert of dealers going stale, from the CMS and the job history.

First it closes the jobs that runs left ``running``: a row with no update for longer than ``lease_minutes``
(whose run holds no live lease) belongs to a run that died without its ``summarize_run`` (killed, marked
failed in the UI, the scheduler died), so it is failed with ``left running by run <run_id>: no update for
N minutes; closed by inventory_freshness``, and the expired leases of those rows are released. One bounded
statement (at most ``cleanup_batch_size`` rows, oldest first; the next check closes the rest); counted in
the log, the return value and the digest (which goes out for closed jobs even when nothing else is new).

Every active dealer on every platform it uses is judged by ``od_scheduler.alert_rules.check_freshness``:
missing executions (last success older than ``missing_after_intervals`` x its interval), held back after
repeated failures, or an inventory anomaly in its latest execution. New conditions go out as ONE digest;
conditions already alerted stay quiet until they clear; conditions no longer found are cleared, and those
that had alerted go out as ONE ``resolved`` message. Both link to this run and this task's log in the
Airflow UI. Returns the counts. The listing also refreshes the dealer directory (names beside ids on the
status page).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator, Context

from od_scheduler.alert_rules import SWEPT_KINDS, StuckRun, check_freshness, freshness_alert, stuck_runs
from od_scheduler.hooks.alert_state import AlertStateHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.hooks.stores.executions import ExecutionStore
from od_scheduler.models.alert import ConditionKind, condition_key
from od_scheduler.models.dealer import Dealer
from od_scheduler.notifications import WebhookAlertNotifier, task_ref
from od_scheduler.settings import get_settings


class CheckFreshnessOperator(BaseOperator):
    """Check every active dealer's freshness and send one digest of what is newly wrong."""

    ui_color = "#fdf2e9"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict[str, Any]:
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        settings = get_settings()
        history = JobHistoryHook()
        state = AlertStateHook(history)
        # Before the CMS is asked: the job history is put right even when the CMS is down.
        stuck = self._close_abandoned(history.executions, closed_by=dag_id)
        dealers = self._active_dealers()
        # Every active dealer, whichever platform DAGs ran: the status page and API can name them all.
        history.directory.remember_dealers(dealers)
        histories = history.executions.histories_on_every_platform([d.id for d in dealers])
        report = check_freshness(
            dealers,
            histories,
            now=datetime.now(UTC),
            hold_after_failures=settings.hold_after_failures,
            missing_after_intervals=settings.missing_after_intervals,
        )
        notifier = WebhookAlertNotifier(state=state, task=task_ref(context))
        # The check ran: whatever made an earlier one fail (CMS or database down) is over.
        notifier.clear([condition_key(ConditionKind.SYSTEM, dag_id)])
        alert = notifier.send_new(
            report.conditions,
            lambda new: freshness_alert(
                new,
                report,
                dag_id=dag_id,
                run_id=run_id,
                stuck=stuck,
                lease_minutes=settings.lease_minutes,
            ),
            send_anyway=bool(stuck),
        )
        present = {c.key for c in report.conditions}
        notifier.clear_open([k.value for k in SWEPT_KINDS], keep=present)
        notifier.clear(report.cleared_anomalies)
        resolved = notifier.send_resolved(dag_id=dag_id, run_id=run_id)
        counts = {kind.value: len(report.of_kind(kind)) for kind in ConditionKind if report.of_kind(kind)}
        closed = sum(r.jobs for r in stuck)
        self.log.info(
            "%d dealer x platform pair(s) checked (%d never run, %d paused): open problems %s; "
            "%d job(s) left running closed; %s; %d condition(s) resolved",
            report.checked,
            report.never_run,
            report.paused,
            counts or "none",
            closed,
            (
                f"digest sent for {len(alert.conditions)} new condition(s) and {closed} closed job(s)"
                if alert
                else "nothing new to alert"
            ),
            len(resolved.conditions) if resolved else 0,
        )
        for condition in report.conditions:
            self.log.warning("%s: %s", condition.key, condition.detail)
        return {
            "checked": report.checked,
            "open": counts,
            "alerted": alert.conditions if alert else [],
            "stuck_closed": closed,
            "leases_released": sum(r.leases_released for r in stuck),
            "resolved": resolved.conditions if resolved else [],
        }

    def _close_abandoned(self, executions: ExecutionStore, *, closed_by: str) -> list[StuckRun]:
        """Fail the rows runs left ``running`` past the lease; log them by run."""
        settings = get_settings()
        limit = settings.cleanup_batch_size
        closed = executions.close_abandoned(
            lease_minutes=settings.lease_minutes, closed_by=closed_by, limit=limit
        )
        runs = stuck_runs(closed)
        if not closed:
            self.log.info(
                "No job left running past the lease (%d min without an update, lease_minutes)",
                settings.lease_minutes,
            )
            return runs
        self.log.warning(
            "Closed %d job(s) left running by %d run(s) that ended without a summary (no update for more "
            "than %d min, lease_minutes) as failed; released %d expired lease(s)%s",
            len(closed),
            len(runs),
            settings.lease_minutes,
            sum(r.leases_released for r in runs),
            f"; at most {limit} per check (cleanup_batch_size), the next check closes any more"
            if len(closed) >= limit
            else "",
        )
        for run in runs:
            self.log.warning("%s", run.note)
        for job in closed[:20]:
            self.log.info("  %s on %s: %s", job.dealer_id, job.platform, job.error)
        if len(closed) > 20:
            self.log.info("  ... and %d more (see job_executions)", len(closed) - 20)
        return runs

    def _active_dealers(self) -> list[Dealer]:
        """Every active dealer in the CMS (documents that fail validation are reported by list_dealers)."""
        listing = PayloadCmsHook().read_dealers(platform=None)
        invalid = len(listing.invalid)
        self.log.info(
            "PayloadCMS: %d active dealer(s)%s",
            len(listing.dealers),
            f", {invalid} with an invalid document (skipped here)" if invalid else "",
        )
        return listing.dealers
