"""When the project alerts, and what each alert says: pure functions over runs, dealers and the job history.

- **failure rate** (``summarize_run``): more than ``alert_failure_rate`` of the run's dealers failed → one
  alert listing the failed dealers grouped by error. Key ``failure_rate:<dag_id>``; a run at or under the
  threshold clears it.
- **inventory anomaly** (``summarize_run`` and ``inventory_freshness``): a dealer's latest execution failed
  with an ``inventory anomaly`` (its pull shrank suspiciously; nothing was delisted). Key
  ``anomaly:<platform>:<dealer_id>``; the dealer's next success clears it.
- **missing executions** (``inventory_freshness``): an active, unpaused dealer whose last success is older
  than ``missing_after_intervals`` x its interval (or that never succeeded since its first execution that
  long ago). Key ``missing:<platform>:<dealer_id>``. Dealers with no execution at all are not judged: the
  platform has not run for them yet.
- **held** (``inventory_freshness``): the scheduling hold rule (last N executions failed). Key
  ``held:<platform>:<dealer_id>``. A held dealer is reported as held, not also as missing.
- **long run** (DeadlineAlert) and **system** (``list_dealers`` failed): see ``od_scheduler.notifications``.

No I/O here; the notifier deduplicates by key (``od_scheduler.hooks.alert_state``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from od_scheduler.models.alert import (
    Alert,
    AlertDealer,
    AlertKind,
    Condition,
    ConditionKind,
    Severity,
    clean_error,
    condition_key,
)
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerRef, JobExecution, JobStatus, RunSummary
from od_scheduler.platforms import PLATFORMS, get_platform
from od_scheduler.scheduling import DealerHistory, interval_for, is_failing
from od_scheduler.settings import get_settings

_ANOMALY = re.compile(r"^(?:try \d+: )?inventory anomaly\b")


def expected_run_minutes(platform_id: str) -> float:
    """How long a run of the platform's DAG may take: hourly Dealer.com has its own budget."""
    settings = get_settings()
    if get_platform(platform_id).schedule_setting == "dealer_com_schedule":
        return settings.dealer_com_expected_run_minutes
    return settings.default_expected_run_minutes


def is_anomaly(error: str | None) -> bool:
    """Whether a job's error is the ingest's inventory-anomaly guard (``[try N: ]inventory anomaly: ...``)."""
    return bool(error) and _ANOMALY.match(error or "") is not None


def _dealer(
    ref: DealerRef | None, dealer_id: str, platform: str, condition: str, detail: str | None
) -> AlertDealer:
    return AlertDealer(
        dealer_id=dealer_id,
        platform=platform,
        name=ref.name if ref else None,
        slug=ref.slug if ref else None,
        condition=condition,
        detail=clean_error(detail) if detail else None,
    )


def _run_counts(summary: RunSummary) -> dict[str, int | float]:
    return {
        "dealers": summary.dealers,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "running": summary.running,
        "failure_rate": round(summary.failure_rate, 4),
        "vehicles_found": summary.vehicles_found,
        "vehicles_processed": summary.vehicles_processed,
        "vehicles_rejected": summary.vehicles_rejected,
    }


# -- summarize_run ---------------------------------------------------------------------------------------
def failure_rate_condition(summary: RunSummary, threshold: float) -> tuple[Condition | None, str]:
    """(The run's failure-rate condition or None, its key). No dealers: no evidence either way (None)."""
    key = condition_key(ConditionKind.FAILURE_RATE, summary.dag_id)
    if summary.dealers == 0 or summary.failure_rate <= threshold:
        return None, key
    detail = f"{summary.failed} of {summary.dealers} dealer(s) failed"
    return Condition(key=key, kind=ConditionKind.FAILURE_RATE, detail=detail), key


def failure_rate_alert(summary: RunSummary, refs: Mapping[str, DealerRef], threshold: float) -> Alert:
    """One alert for the run: every failed dealer, grouped by error in the text."""
    dealers = [
        _dealer(refs.get(dealer_id), dealer_id, summary.platform, "failed", error)
        for dealer_id, error in sorted(summary.failed_dealers.items())
    ]
    return Alert(
        kind=AlertKind.FAILURE_RATE,
        severity=Severity.ERROR,
        title=(
            f"{summary.dag_id}: {summary.failed} of {summary.dealers} dealer(s) failed "
            f"({100 * summary.failure_rate:.1f}% > alert_failure_rate {100 * threshold:.1f}%)"
        ),
        dag_id=summary.dag_id,
        run_id=summary.run_id,
        platform=summary.platform,
        dealers=dealers,
        counts={**_run_counts(summary), "alert_failure_rate": threshold},
        conditions=[condition_key(ConditionKind.FAILURE_RATE, summary.dag_id)],
    )


def anomaly_conditions(
    rows: Iterable[JobExecution], refs: Mapping[str, DealerRef]
) -> tuple[list[Condition], list[str]]:
    """(Anomalies in these rows, keys of dealers whose row succeeded: their anomaly is over)."""
    present: list[Condition] = []
    absent: list[str] = []
    for row in rows:
        key = condition_key(ConditionKind.ANOMALY, row.platform, row.dealer_id)
        error = row.errors[-1] if row.errors else None
        if row.status == JobStatus.FAILED and is_anomaly(error):
            dealer = _dealer(refs.get(row.dealer_id), row.dealer_id, row.platform, "anomaly", error)
            present.append(
                Condition(key=key, kind=ConditionKind.ANOMALY, dealer=dealer, detail=dealer.detail)
            )
        elif row.status == JobStatus.SUCCESS:
            absent.append(key)
    return present, absent


def anomaly_alert(new: Sequence[Condition], *, dag_id: str, run_id: str, platform: str) -> Alert:
    """One alert for the run's new inventory anomalies."""
    return Alert(
        kind=AlertKind.ANOMALY,
        severity=Severity.WARNING,
        title=(
            f"{dag_id}: inventory anomaly for {len(new)} dealer(s): the pull shrank suspiciously, "
            "nothing was delisted (re-run with force_delist=true if the lot really shrank)"
        ),
        dag_id=dag_id,
        run_id=run_id,
        platform=platform,
        dealers=[c.dealer for c in new if c.dealer is not None],
        counts={"anomalies": len(new)},
        conditions=[c.key for c in new],
    )


# -- inventory_freshness ---------------------------------------------------------------------------------
#: The condition kinds the freshness digest reports.
FRESHNESS_KINDS = (ConditionKind.MISSING, ConditionKind.HELD, ConditionKind.ANOMALY)
#: The kinds only the freshness check opens: any open one it no longer finds is over (also for dealers that
#: left the CMS). Anomalies are cleared only by a success, since a later failure of another kind proves
#: nothing about the lot.
SWEPT_KINDS = (ConditionKind.MISSING, ConditionKind.HELD)


@dataclass(frozen=True)
class FreshnessHistory:
    """What the job history says about one dealer on one platform (finished executions only)."""

    last_success: datetime | None
    consecutive_failures: int
    first_execution: datetime
    last_status: str
    last_error: str | None


@dataclass
class FreshnessReport:
    """The freshness check's findings: conditions present, and anomaly keys found over."""

    conditions: list[Condition] = field(default_factory=list)
    cleared_anomalies: list[str] = field(default_factory=list)
    checked: int = 0
    paused: int = 0
    never_run: int = 0

    def of_kind(self, kind: ConditionKind) -> list[Condition]:
        """The conditions of one kind."""
        return [c for c in self.conditions if c.kind == kind]


def _ago(now: datetime, then: datetime) -> str:
    minutes = int((now - then).total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min ago" if minutes >= 60 else f"{minutes} min ago"


def check_freshness(
    dealers: Iterable[Dealer],
    histories: Mapping[tuple[str, str], FreshnessHistory],
    *,
    now: datetime,
    hold_after_failures: int,
    missing_after_intervals: float,
) -> FreshnessReport:
    """Judge every active dealer on every platform it uses (and the project knows)."""
    report = FreshnessReport()
    for dealer in dealers:
        ref = DealerRef(dealer_id=dealer.id, name=dealer.name, slug=dealer.slug)
        for platform_id in dealer.platforms:
            platform = PLATFORMS.get(platform_id)
            if platform is None:
                continue
            report.checked += 1
            past = histories.get((platform.id, dealer.id))
            if past is None:
                report.never_run += 1
                continue
            anomaly_key = condition_key(ConditionKind.ANOMALY, platform.id, dealer.id)
            if past.last_status == JobStatus.SUCCESS.value:
                report.cleared_anomalies.append(anomaly_key)
            elif is_anomaly(past.last_error):
                item = _dealer(ref, dealer.id, platform.id, "anomaly", past.last_error)
                report.conditions.append(
                    Condition(key=anomaly_key, kind=ConditionKind.ANOMALY, dealer=item, detail=item.detail)
                )
            if dealer.schedule is not None and dealer.schedule.paused:
                report.paused += 1
                continue
            scheduling = DealerHistory(
                last_success=past.last_success, consecutive_failures=past.consecutive_failures
            )
            if is_failing(scheduling, hold_after_failures):
                detail = (
                    f"held back from scheduled runs: the last {past.consecutive_failures} executions failed "
                    f"(hold_after_failures {hold_after_failures}); last error: {clean_error(past.last_error)}"
                )
                item = _dealer(ref, dealer.id, platform.id, "held", None).model_copy(
                    update={"detail": detail}
                )
                key = condition_key(ConditionKind.HELD, platform.id, dealer.id)
                report.conditions.append(
                    Condition(key=key, kind=ConditionKind.HELD, dealer=item, detail=detail)
                )
                continue
            interval = interval_for(dealer, platform.default_interval_minutes)
            allowed = interval * missing_after_intervals
            since = past.last_success or past.first_execution
            if now - since <= allowed:
                continue
            minutes = int(interval / timedelta(minutes=1))
            if past.last_success is not None:
                detail = f"last success {_ago(now, past.last_success)}"
            else:
                detail = f"no success since its first execution {_ago(now, past.first_execution)}"
            detail += f"; interval {minutes} min, alert after {int(allowed / timedelta(minutes=1))} min"
            item = _dealer(ref, dealer.id, platform.id, "missing", None).model_copy(update={"detail": detail})
            key = condition_key(ConditionKind.MISSING, platform.id, dealer.id)
            report.conditions.append(
                Condition(key=key, kind=ConditionKind.MISSING, dealer=item, detail=detail)
            )
    return report


def freshness_alert(new: Sequence[Condition], report: FreshnessReport, *, dag_id: str, run_id: str) -> Alert:
    """One digest of the new freshness problems."""
    counts = {kind.value: sum(1 for c in new if c.kind == kind) for kind in FRESHNESS_KINDS}
    parts = [
        f"{counts['missing']} dealer(s) missing executions" if counts["missing"] else "",
        f"{counts['held']} held back after repeated failures" if counts["held"] else "",
        f"{counts['anomaly']} inventory anomaly(ies)" if counts["anomaly"] else "",
    ]
    return Alert(
        kind=AlertKind.FRESHNESS,
        severity=Severity.WARNING,
        title="Inventory freshness: " + ", ".join(p for p in parts if p),
        dag_id=dag_id,
        run_id=run_id,
        dealers=[c.dealer for c in new if c.dealer is not None],
        counts={**counts, "checked": report.checked, "open": len(report.conditions)},
        conditions=[c.key for c in new],
    )
