"""When the project alerts, and what each alert says: pure functions over runs, dealers and the job history.

- **failure rate** (``summarize_run``): more than ``alert_failure_rate`` of the run's dealers failed → one
  alert listing the failed dealers grouped by error. Key ``failure_rate:<dag_id>``; a run at or under the
  threshold clears it.
- **inventory anomaly** (``summarize_run`` and ``inventory_freshness``): a dealer's latest execution failed
  for an inventory anomaly, recorded in its row's ``anomaly`` (its pull shrank suspiciously; nothing was
  delisted). Key ``anomaly:<platform>:<dealer_id>``; the dealer's next success clears it.
- **missing executions** (``inventory_freshness``): an active, unpaused dealer whose last success is older
  than ``missing_after_intervals`` x its interval (or that never succeeded since its first execution that
  long ago). Key ``missing:<platform>:<dealer_id>``. Dealers with no execution at all are not judged: the
  platform has not run for them yet.
- **held** (``inventory_freshness``): the scheduling hold rule (last N executions failed). Key
  ``held:<platform>:<dealer_id>``. A held dealer is reported as held, not also as missing.
- **jobs left running** (``inventory_freshness``): rows ``running`` with no update for longer than the lease
  (their run died without a summary) are closed as failed; the digest counts them per run. Not a condition:
  each row is closed once, so it is reported once.
- **long run** (DeadlineAlert) and **system** (``list_dealers`` failed): see ``od_scheduler.notifications``.
- **database down** (``summarize_run`` cannot reach the job history): a system alert, sent without dedup
  (the dedup state lives in that database).
- **resolved** (every check that clears conditions): ONE message per check listing the conditions it found
  over that had been alerted (kind, dealer and platform, since when), never for a condition whose alert
  was not delivered. A condition is cleared once, so it is reported resolved once.

No I/O here; the notifier deduplicates by key (``od_scheduler.hooks.alert_state``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from od_scheduler.models.alert import (
    MAX_DEALERS_IN_TEXT,
    Alert,
    AlertDealer,
    AlertKind,
    ClearedCondition,
    Condition,
    ConditionKind,
    Severity,
    clean_error,
    condition_key,
)
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerHistory, DealerRef, JobExecution, JobStatus, RunSummary
from od_scheduler.platforms import PLATFORMS
from od_scheduler.scheduling import interval_for, is_failing, is_overdue
from od_scheduler.settings import get_settings, platform_timing

#: The shortest time a task may run before Airflow stops it, whatever the expected duration says.
MIN_TASK_TIMEOUT_MINUTES = 10.0


def task_timeout_minutes(platform_id: str) -> float:
    """How long one try of a shard task may run: twice the platform's expected run duration (the long-run
    alert fires at once the duration; a try still going at twice is stuck), never less than 10 minutes."""
    return max(2 * platform_timing(platform_id).expected_run_minutes, MIN_TASK_TIMEOUT_MINUTES)


def dealer_deadline_s(platform_id: str) -> float:
    """How long one dealer's pull or ingest may take: the setting, never more than the try of the task it runs
    in may take (past that Airflow kills the whole shard; the dealer's own deadline must come first)."""
    settings = get_settings()
    return 60 * min(settings.dealer_deadline_minutes, task_timeout_minutes(platform_id))


def _ref(refs: Mapping[str, DealerRef], dealer_id: str, platform: str) -> DealerRef:
    """The run's identity of ``dealer_id``; a dealer the run did not list is known by its id alone."""
    ref = refs.get(dealer_id)
    return ref if ref is not None else DealerRef(dealer_id=dealer_id, platform=platform)


def _dealer(ref: DealerRef, condition: str, error: str | None) -> AlertDealer:
    """``ref``'s dealer in an alert, its last ``error`` (if any) cleaned for reading."""
    return AlertDealer.of(ref, condition=condition, detail=clean_error(error) if error else None)


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
        _dealer(_ref(refs, dealer_id, summary.platform), "failed", error)
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
        if row.status == JobStatus.FAILED and row.anomaly:
            dealer = _dealer(_ref(refs, row.dealer_id, row.platform), "anomaly", error)
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


def database_down_alert(
    *, dag_id: str, run_id: str, platform: str, task_id: str, error: str, dealers: int
) -> Alert:
    """``summarize_run`` cannot reach the job-history database: the run cannot be judged. ``error`` must
    already be cleaned of where the database is (``clean_db_error``)."""
    return Alert(
        kind=AlertKind.SYSTEM,
        severity=Severity.CRITICAL,
        title=(
            f"{dag_id}: the job-history database is unreachable, so this run of {platform} cannot be "
            f"summarized: its {dealers} listed dealer(s) are not judged and their history may be missing"
        ),
        dag_id=dag_id,
        run_id=run_id,
        platform=platform,
        task_id=task_id,
        counts={"dealers": dealers},
        details={"error": error, "deduplicated": False},
        conditions=[condition_key(ConditionKind.SYSTEM, dag_id)],
    )


# -- inventory_freshness ---------------------------------------------------------------------------------
#: The condition kinds the freshness digest reports.
FRESHNESS_KINDS = (ConditionKind.MISSING, ConditionKind.HELD, ConditionKind.ANOMALY)
#: The kinds only the freshness check opens: any open one it no longer finds is over (also for dealers that
#: left the CMS). Anomalies are cleared only by a success, since a later failure of another kind proves
#: nothing about the lot.
SWEPT_KINDS = (ConditionKind.MISSING, ConditionKind.HELD)


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


class ClosedJob(Protocol):
    """A job the freshness check closed because its run left it ``running`` (``close_abandoned``)."""

    @property
    def dag_id(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def idle_minutes(self) -> int: ...
    @property
    def lease_released(self) -> bool: ...


@dataclass(frozen=True)
class StuckRun:
    """The jobs of one DAG run that were closed because they were left ``running``."""

    dag_id: str
    run_id: str
    platforms: tuple[str, ...]
    jobs: int
    max_idle_minutes: int
    leases_released: int

    @property
    def note(self) -> str:
        """One line for the digest."""
        released = f", {self.leases_released} expired lease(s) released" if self.leases_released else ""
        return (
            f"{self.jobs} job(s) of {self.dag_id} run {self.run_id} ({', '.join(self.platforms)}) left "
            f"running, no update for up to {self.max_idle_minutes} min: closed as failed{released}"
        )


def stuck_runs(closed: Iterable[ClosedJob]) -> list[StuckRun]:
    """Closed jobs grouped by run, the run with the most jobs first."""
    grouped: dict[tuple[str, str], list[ClosedJob]] = {}
    for job in closed:
        grouped.setdefault((job.dag_id, job.run_id), []).append(job)
    runs = [
        StuckRun(
            dag_id=dag_id,
            run_id=run_id,
            platforms=tuple(sorted({j.platform for j in jobs})),
            jobs=len(jobs),
            max_idle_minutes=max(j.idle_minutes for j in jobs),
            leases_released=sum(1 for j in jobs if j.lease_released),
        )
        for (dag_id, run_id), jobs in grouped.items()
    ]
    return sorted(runs, key=lambda r: (-r.jobs, r.dag_id, r.run_id))


#: Runs named in the digest's text; ``details["stuck_runs"]`` lists them all.
MAX_STUCK_RUNS_IN_TEXT = 10


def _ago(now: datetime, then: datetime) -> str:
    minutes = int((now - then).total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min ago" if minutes >= 60 else f"{minutes} min ago"


def check_freshness(
    dealers: Iterable[Dealer],
    histories: Mapping[tuple[str, str], DealerHistory],
    *,
    now: datetime,
    hold_after_failures: int,
    missing_after_intervals: float,
) -> FreshnessReport:
    """Judge every active dealer on every platform it uses (and the project knows)."""
    report = FreshnessReport()
    for dealer in dealers:
        for platform_id in dealer.platforms:
            platform = PLATFORMS.get(platform_id)
            if platform is None:
                continue
            ref = DealerRef.of(dealer, platform.id)
            report.checked += 1
            past = histories.get((platform.id, dealer.id))
            if past is None:
                report.never_run += 1
                continue
            anomaly_key = condition_key(ConditionKind.ANOMALY, platform.id, dealer.id)
            if past.last_status == JobStatus.SUCCESS.value:
                report.cleared_anomalies.append(anomaly_key)
            elif past.last_anomaly:
                item = _dealer(ref, "anomaly", past.last_error)
                report.conditions.append(
                    Condition(key=anomaly_key, kind=ConditionKind.ANOMALY, dealer=item, detail=item.detail)
                )
            if dealer.schedule is not None and dealer.schedule.paused:
                report.paused += 1
                continue
            if is_failing(past, hold_after_failures):
                detail = (
                    f"held back from scheduled runs: the last {past.consecutive_failures} executions failed "
                    f"(hold_after_failures {hold_after_failures}); last error: {clean_error(past.last_error)}"
                )
                item = AlertDealer.of(ref, condition="held", detail=detail)
                key = condition_key(ConditionKind.HELD, platform.id, dealer.id)
                report.conditions.append(
                    Condition(key=key, kind=ConditionKind.HELD, dealer=item, detail=detail)
                )
                continue
            interval = interval_for(dealer, platform.default_interval_minutes)
            if not is_overdue(past, interval=interval, factor=missing_after_intervals, now=now):
                continue
            allowed = interval * missing_after_intervals
            minutes = int(interval / timedelta(minutes=1))
            if past.last_success is not None:
                detail = f"last success {_ago(now, past.last_success)}"
            else:
                first = past.first_execution
                detail = "no success since its first execution" + (f" {_ago(now, first)}" if first else "")
            detail += f"; interval {minutes} min, alert after {int(allowed / timedelta(minutes=1))} min"
            item = AlertDealer.of(ref, condition="missing", detail=detail)
            key = condition_key(ConditionKind.MISSING, platform.id, dealer.id)
            report.conditions.append(
                Condition(key=key, kind=ConditionKind.MISSING, dealer=item, detail=detail)
            )
    return report


def freshness_alert(
    new: Sequence[Condition],
    report: FreshnessReport,
    *,
    dag_id: str,
    run_id: str,
    stuck: Sequence[StuckRun] = (),
    lease_minutes: int | None = None,
) -> Alert:
    """One digest of the new freshness problems and of the jobs this check closed (``stuck``, by run)."""
    counts = {kind.value: sum(1 for c in new if c.kind == kind) for kind in FRESHNESS_KINDS}
    closed = sum(run.jobs for run in stuck)
    parts = [
        f"{counts['missing']} dealer(s) missing executions" if counts["missing"] else "",
        f"{counts['held']} held back after repeated failures" if counts["held"] else "",
        f"{counts['anomaly']} inventory anomaly(ies)" if counts["anomaly"] else "",
        (
            f"{closed} job(s) left running by {len(stuck)} run(s) closed as failed"
            + (f" (no update for more than {lease_minutes} min, the lease)" if lease_minutes else "")
        )
        if closed
        else "",
    ]
    notes = [run.note for run in stuck[:MAX_STUCK_RUNS_IN_TEXT]]
    if len(stuck) > MAX_STUCK_RUNS_IN_TEXT:
        notes.append(f"and {len(stuck) - MAX_STUCK_RUNS_IN_TEXT} more run(s) (see details.stuck_runs)")
    return Alert(
        kind=AlertKind.FRESHNESS,
        severity=Severity.WARNING,
        title="Inventory freshness: " + ", ".join(p for p in parts if p),
        dag_id=dag_id,
        run_id=run_id,
        dealers=[c.dealer for c in new if c.dealer is not None],
        counts={
            **counts,
            "checked": report.checked,
            "open": len(report.conditions),
            "stuck_closed": closed,
        },
        details={
            "stuck_runs": [
                {
                    "dag_id": r.dag_id,
                    "run_id": r.run_id,
                    "platforms": list(r.platforms),
                    "jobs": r.jobs,
                    "max_idle_minutes": r.max_idle_minutes,
                    "leases_released": r.leases_released,
                }
                for r in stuck
            ]
        }
        if stuck
        else {},
        notes=notes,
        conditions=[c.key for c in new],
    )


# -- resolved --------------------------------------------------------------------------------------------
#: How a resolved message names each kind of condition.
RESOLVED_LABELS: dict[ConditionKind, str] = {
    ConditionKind.FAILURE_RATE: "failure rate",
    ConditionKind.ANOMALY: "inventory anomaly",
    ConditionKind.MISSING: "missing executions",
    ConditionKind.HELD: "held back after repeated failures",
    ConditionKind.LONG_RUN: "long run",
    ConditionKind.SYSTEM: "system error",
}
#: Kinds whose key names a DAG (``<kind>:<dag_id>``), not a dealer on a platform.
RUN_KINDS = (ConditionKind.FAILURE_RATE, ConditionKind.LONG_RUN, ConditionKind.SYSTEM)


def _since(now: datetime, since: datetime | None) -> str | None:
    if since is None:
        return None
    return f"open since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({_ago(now, since).removesuffix(' ago')})"


def _key_parts(cleared: ClearedCondition) -> list[str]:
    """The parts of the key after its kind: ``[dag_id]`` or ``[platform, dealer_id]``."""
    return cleared.key.split(":")[1:]


def resolved_alert(
    cleared: Sequence[ClearedCondition],
    *,
    dag_id: str,
    run_id: str,
    platform: str | None = None,
    now: datetime,
) -> Alert:
    """One message for the conditions a check found over: what each was, for which DAG or dealer, since when.

    The text has one bullet per DAG-level condition and one per (kind, platform) group of dealers (at most
    ``MAX_DEALERS_IN_TEXT`` named); ``details["resolved"]`` lists every one, ``conditions`` their keys.
    """
    ordered = sorted(cleared, key=lambda c: (list(ConditionKind).index(c.kind), c.key))
    notes: list[str] = []
    parts: list[str] = []
    records: list[dict[str, object]] = []
    groups: dict[tuple[ConditionKind, str], list[ClearedCondition]] = {}
    for item in ordered:
        keyed = _key_parts(item)
        label = RESOLVED_LABELS.get(item.kind, item.kind.value)
        record: dict[str, object] = {
            "key": item.key,
            "kind": item.kind.value,
            "since": item.since.astimezone(UTC).isoformat(timespec="seconds") if item.since else None,
            "detail": item.detail,
        }
        if item.kind in RUN_KINDS:
            target = ":".join(keyed) or "?"
            record["dag_id"] = target
            parts.append(f"{label} of {target}")
            facts = [
                f for f in (_since(now, item.since), item.detail and f"was: {clean_error(item.detail)}") if f
            ]
            notes.append(f"{label} of {target}: {'; '.join(facts) or 'over'}")
        else:
            item_platform = item.dealer.platform if item.dealer and item.dealer.platform else keyed[0]
            dealer_id = item.dealer.dealer_id if item.dealer else ":".join(keyed[1:])
            record.update(
                platform=item_platform,
                dealer_id=dealer_id,
                name=item.dealer.name if item.dealer else None,
                slug=item.dealer.slug if item.dealer else None,
            )
            groups.setdefault((item.kind, item_platform), []).append(item)
        records.append(record)
    for (kind, group_platform), items in groups.items():
        label = RESOLVED_LABELS.get(kind, kind.value)
        parts.append(
            f"{len(items)} inventory anomaly(ies)"
            if kind == ConditionKind.ANOMALY
            else f"{len(items)} dealer(s) no longer {label}"
        )
        named = []
        for item in items[:MAX_DEALERS_IN_TEXT]:
            who = item.dealer.label if item.dealer else ":".join(_key_parts(item)[1:])
            since = f" ({_since(now, item.since)})" if item.since else ""
            named.append(who + since)
        more = len(items) - len(named)
        notes.append(
            f"{label} on {group_platform} ({len(items)}): {', '.join(named)}"
            + (f" and {more} more (see details.resolved)" if more > 0 else "")
        )
    return Alert(
        kind=AlertKind.RESOLVED,
        severity=Severity.INFO,
        title="Resolved: " + ", ".join(parts),
        dag_id=dag_id,
        run_id=run_id,
        platform=platform,
        counts={"resolved": len(ordered)},
        details={"resolved": records},
        conditions=[c.key for c in ordered],
        notes=notes,
    )
