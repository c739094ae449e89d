"""SummarizeRunOperator: the run's verdict, computed from the job history (``trigger_rule=all_done``).

It closes rows a killed task left ``running``, counts dealers with no row at all as failed, logs a table
of the run, and fails the DAG run when the share of failed dealers passes ``max_failure_rate`` (so a
partly failed run is not green unless that tolerance was asked for). It also fails when ``list_dealers``
did not produce a dealer list, because then nothing was pulled at all.

Before that verdict it alerts (``od_scheduler.alert_rules``): a failure rate above ``alert_failure_rate``
→ one alert listing the failed dealers grouped by error; inventory anomalies of this run → one alert. It
also clears the conditions this run shows are over (failure rate, the anomalies of dealers that succeeded,
a long run, a system error) and sends one ``resolved`` message for those that had alerted. Every message
links to this run and to this task's log in the Airflow UI. Alerting never changes the verdict: its own
problems are only logged.

When the job-history database cannot be reached (after ``list_dealers`` listed the dealers, so the pulls
could not record anything either), the run cannot be judged: it sends a system alert naming the platform,
the run and the error (never the database's host, port or user), without dedup because the alert state
lives in that very database, and fails the run.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from od_scheduler import conn_ids
from od_scheduler.alert_rules import (
    anomaly_alert,
    anomaly_conditions,
    database_down_alert,
    failure_rate_alert,
    failure_rate_condition,
)
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.alert import ConditionKind, condition_key
from od_scheduler.models.job import DealerRef, JobExecution, JobStatus, RunSummary, Shard, optional_text
from od_scheduler.notifications import (
    DATABASE_UNREACHABLE,
    Delivery,
    WebhookAlertNotifier,
    describe_database_error,
    task_ref,
)
from od_scheduler.operators.list_dealers import LIST_DEALERS_TASK_ID
from od_scheduler.platforms import get_platform
from od_scheduler.settings import get_settings, platform_timing

STALE_MESSAGE = (
    "task ended without reporting (killed, timed out or lost its worker); see the task's Airflow log"
)


def parse_rate(value: Any) -> float:
    """``max_failure_rate`` from the run's params, or the setting when unset."""
    if optional_text(value) is None:
        return get_settings().max_failure_rate
    try:
        rate = float(value)
    except (TypeError, ValueError) as err:
        raise AirflowFailException(f"max_failure_rate must be a number in [0, 1], got {value!r}") from err
    if not 0.0 <= rate <= 1.0:
        raise AirflowFailException(f"max_failure_rate must be in [0, 1], got {rate}")
    return rate


#: The longest error text a line of the run's table shows (the whole text is in job_executions).
ERROR_WIDTH = 160


def render_table(rows: list[JobExecution], refs: Mapping[str, DealerRef]) -> str:
    """A fixed-width table of the run, one line per dealer: its CMS name and slug (``-`` when not known) and
    the id a re-run's ``dealer_id`` takes."""
    header = ("dealer", "slug", "id", "status", "found", "sent", "rejected", "duration", "error")
    lines = [header]
    for row in rows:
        duration = f"{row.duration_ms / 1000:.1f}s" if row.duration_ms is not None else "-"
        error = row.errors[-1] if row.errors and row.status == JobStatus.FAILED else ""
        error = textwrap.shorten(error, width=ERROR_WIDTH, placeholder=" …")  # at a space: no half URLs
        ref = refs.get(row.dealer_id)
        lines.append(
            (
                (ref.name if ref else None) or "-",
                (ref.slug if ref else None) or "-",
                row.dealer_id,
                row.status.value,
                str(row.vehicles_found),
                str(row.vehicles_processed),
                str(row.vehicles_rejected),
                duration,
                error,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


class SummarizeRunOperator(BaseOperator):
    """Summarize one platform DAG run and decide whether it failed."""

    template_fields = ("max_failure_rate",)
    ui_color = "#f4ecf7"

    def __init__(
        self,
        *,
        platform: str,
        max_failure_rate: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.platform = platform
        self.max_failure_rate = max_failure_rate

    def execute(self, context: Context) -> dict[str, Any]:
        platform = get_platform(self.platform)
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        max_rate = parse_rate(self.max_failure_rate)
        listed = context["ti"].xcom_pull(task_ids=LIST_DEALERS_TASK_ID)
        if listed is None:
            raise AirflowFailException(
                f"{LIST_DEALERS_TASK_ID} produced no dealer list (it failed or was skipped): "
                "nothing was pulled"
            )
        dealers = [ref for shard in listed for ref in Shard.load(shard, self.platform).dealers]
        history = JobHistoryHook()
        try:
            rows, refs = self._read_history(history, dag_id, run_id, platform.id, dealers)
        except DATABASE_UNREACHABLE as err:
            error = describe_database_error(err)
            self._alert_database_down(context, platform.id, len(dealers), error)
            raise AirflowFailException(
                f"the job-history database ({conn_ids.JOB_HISTORY!r}) is unreachable, so run {run_id} cannot "
                f"be summarized: its {len(dealers)} listed dealer(s) are not judged and their pulls most "
                f"likely could not record their executions either ({error}). A system alert was sent. "
                "Restore the database, then clear this run's failed tasks to re-run them."
            ) from err
        by_dealer = {r.dealer_id: r for r in rows}
        missing = [d for d in dealers if d.dealer_id not in by_dealer]

        failed = {
            r.dealer_id: (r.errors[-1] if r.errors else "failed")
            for r in rows
            if r.status == JobStatus.FAILED
        }
        failed.update({d.dealer_id: "no execution recorded (task never started)" for d in missing})
        count = {s: sum(1 for r in rows if r.status == s) for s in JobStatus}
        summary = RunSummary(
            dag_id=dag_id,
            run_id=run_id,
            platform=platform.id,
            dealers=len(dealers),
            succeeded=count[JobStatus.SUCCESS],
            failed=len(failed),
            running=count[JobStatus.RUNNING],
            skipped=count[JobStatus.SKIPPED],
            failure_rate=(len(failed) / len(dealers)) if dealers else 0.0,
            max_failure_rate=max_rate,
            vehicles_found=sum(r.vehicles_found for r in rows),
            vehicles_processed=sum(r.vehicles_processed for r in rows),
            vehicles_rejected=sum(r.vehicles_rejected for r in rows),
            failed_dealers=failed,
        )
        labels = {i: ref.full_label for i, ref in refs.items()}
        self.log.info("Run %s of %s:\n%s", run_id, dag_id, render_table(rows, refs))
        self.log.info(
            "%d dealer(s): %d succeeded, %d failed (%.1f%%, max %.1f%%); "
            "vehicles found %d, sent %d, rejected %d",
            summary.dealers,
            summary.succeeded,
            summary.failed,
            100 * summary.failure_rate,
            100 * max_rate,
            summary.vehicles_found,
            summary.vehicles_processed,
            summary.vehicles_rejected,
        )
        self._alert(context, summary, rows, refs)
        if summary.over_threshold:
            worst = "; ".join(f"{labels.get(d, d)}: {e}" for d, e in list(failed.items())[:10])
            raise AirflowFailException(
                f"{summary.failed} of {summary.dealers} dealer(s) failed "
                f"({100 * summary.failure_rate:.1f}% > max_failure_rate {100 * max_rate:.1f}%): {worst}"
            )
        return summary.model_dump(mode="json")

    def _read_history(
        self, history: JobHistoryHook, dag_id: str, run_id: str, platform: str, dealers: list[DealerRef]
    ) -> tuple[list[JobExecution], dict[str, DealerRef]]:
        """Close this run's rows its dead tasks left ``running``, release its leases, and read its rows
        (with the dealers named): everything the verdict needs from the job history."""
        closed = history.executions.close_stale(dag_id, run_id, STALE_MESSAGE)
        history.executions.release_run_leases(dag_id, run_id)
        if closed:
            self.log.warning("Closed %d job(s) left 'running' by a task that died", closed)
        rows = [r for r in history.executions.run_executions(dag_id, run_id) if r.platform == platform]
        return rows, self._named(history, platform, dealers, rows)

    def _alert_database_down(self, context: Context, platform: str, dealers: int, error: str) -> None:
        """The system alert for an unreachable job history; sent without dedup (its state is in that DB)."""
        dag_id, run_id = context["dag"].dag_id, context["run_id"]
        self.log.error("The job-history database is unreachable: %s", error)
        self.log.warning(
            "The alert state lives in the job-history database too: this system alert is sent without "
            "deduplication (every run that finds the database down alerts)"
        )
        alert = database_down_alert(
            dag_id=dag_id,
            run_id=run_id,
            platform=platform,
            task_id=self.task_id,
            error=error,
            dealers=dealers,
        )
        try:
            delivery = WebhookAlertNotifier(platform=platform, task=task_ref(context)).send(alert)
        except Exception:  # the run fails below whatever happened to its alert
            self.log.exception("The system alert for run %s could not be sent", run_id)
            return
        if delivery != Delivery.SENT:
            self.log.error(
                "The system alert was %s, not sent, and nothing will retry it (no alert state without the "
                "database)",
                delivery.value,
            )

    def _named(
        self, history: JobHistoryHook, platform: str, dealers: list[DealerRef], rows: list[JobExecution]
    ) -> dict[str, DealerRef]:
        """The run's dealers by id as ``list_dealers`` named them; a row's dealer it did not list (a run
        re-run after the CMS changed) is named from the dealer directory, or by its id alone."""
        refs = {d.dealer_id: d for d in dealers}
        unlisted = sorted({r.dealer_id for r in rows} - set(refs))
        if unlisted:
            for dealer_id, (name, slug) in history.directory.dealer_names(unlisted).items():
                refs[dealer_id] = DealerRef(dealer_id=dealer_id, platform=platform, name=name, slug=slug)
        return refs

    def _alert(
        self, context: Context, summary: RunSummary, rows: list[JobExecution], refs: Mapping[str, DealerRef]
    ) -> None:
        """Send this run's alerts and clear what it shows is over; never raises."""
        try:
            self._send_alerts(context, summary, rows, refs)
        except (
            Exception
        ):  # the run's verdict must not depend on alerting (the notifier logs its own failures)
            self.log.exception(
                "Alerting for run %s failed; the run's outcome is not affected", summary.run_id
            )

    def _send_alerts(
        self, context: Context, summary: RunSummary, rows: list[JobExecution], refs: Mapping[str, DealerRef]
    ) -> None:
        threshold = get_settings().alert_failure_rate
        notifier = WebhookAlertNotifier(task=task_ref(context))
        # list_dealers produced a list, so a system error of an earlier run is over.
        cleared = [condition_key(ConditionKind.SYSTEM, summary.dag_id)]
        condition, key = failure_rate_condition(summary, threshold)
        if condition is not None:
            notifier.send_new([condition], lambda _new: failure_rate_alert(summary, refs, threshold))
        elif summary.dealers:
            cleared.append(key)
        anomalies, over = anomaly_conditions(rows, refs)
        notifier.send_new(
            anomalies,
            lambda new: anomaly_alert(
                new, dag_id=summary.dag_id, run_id=summary.run_id, platform=summary.platform
            ),
        )
        cleared += over
        started = getattr(context["dag_run"], "start_date", None)
        if started is not None:
            elapsed = (datetime.now(UTC) - started).total_seconds() / 60
            if elapsed <= platform_timing(summary.platform).expected_run_minutes:
                cleared.append(condition_key(ConditionKind.LONG_RUN, summary.dag_id))
        notifier.clear(cleared)
        notifier.send_resolved(dag_id=summary.dag_id, run_id=summary.run_id, platform=summary.platform)
