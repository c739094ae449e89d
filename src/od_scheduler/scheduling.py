"""Which dealers a run pulls: due-ness and holds, decided from the CMS and the job history.

Pure functions (no Airflow, no I/O), so every rule is unit-tested: **due** (no success within the dealer's
interval, less a grace), **paused** (``schedule.paused`` in the CMS), **failing** (the last N finished
executions failed: held back from scheduled runs), **overdue** (no success for longer than
``missing_after_intervals`` x the interval: the freshness alert and the status API), and ``force``. The
rules: docs/design.md, "Scheduling semantics".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerHistory


@dataclass
class Selection:
    """The outcome of selecting dealers for a run, with every reason counted."""

    active: int = 0
    selected: list[str] = field(default_factory=list)
    not_due: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """JSON-safe summary for XCom and logs."""
        return {
            "active": self.active,
            "selected": len(self.selected),
            "not_due": len(self.not_due),
            "held": self.held,
        }


def interval_for(dealer: Dealer, default_minutes: int) -> timedelta:
    """The dealer's pull interval: its CMS schedule override, else the platform default."""
    minutes = (
        dealer.schedule.interval_minutes if dealer.schedule and dealer.schedule.interval_minutes else None
    )
    return timedelta(minutes=minutes or default_minutes)


def is_failing(past: DealerHistory, hold_after_failures: int) -> bool:
    """The hold rule: the last ``hold_after_failures`` finished executions all failed (0 disables it)."""
    return hold_after_failures > 0 and past.consecutive_failures >= hold_after_failures


def is_overdue(past: DealerHistory, *, interval: timedelta, factor: float, now: datetime) -> bool:
    """The overdue rule (the freshness check's "missing executions", the status API's ``overdue``): the last
    success is older than ``factor`` x ``interval``; without any success, the first finished execution is.
    A dealer with neither (no execution, or only skipped and running ones) has not run yet, so it is not
    overdue. Both readers pass the same ``DealerHistory``, so they cannot judge from different dates."""
    reference = past.last_success if past.last_success is not None else past.first_execution
    return reference is not None and now - reference > interval * factor


def select_dealers(
    dealers: list[Dealer],
    history: dict[str, DealerHistory],
    *,
    now: datetime,
    default_interval_minutes: int,
    force: bool,
    hold_after_failures: int,
    grace: timedelta,
    explicit: bool = False,
) -> Selection:
    """Decide, per dealer, whether this run pulls it, and why not when it does not.

    ``explicit`` means the run named the dealer (``dealer_id``): a pause in the CMS does not hold back a
    dealer someone asked for by id.
    """
    selection = Selection(active=len(dealers))
    for dealer in dealers:
        past = history.get(dealer.id, DealerHistory())
        if dealer.schedule is not None and dealer.schedule.paused and not explicit:
            selection.held[dealer.id] = "paused in the CMS (schedule.paused)"
            continue
        failing = is_failing(past, hold_after_failures)
        if failing and not force:
            selection.held[dealer.id] = (
                f"held: last {past.consecutive_failures} executions failed "
                f"(threshold {hold_after_failures}); a forced run retries it"
            )
            continue
        if not force and past.last_success is not None:
            interval = interval_for(dealer, default_interval_minutes)
            age = now - past.last_success
            if age < interval - grace:
                selection.not_due[dealer.id] = (
                    f"not due: last success {int(age.total_seconds() // 60)} min ago, interval "
                    f"{int(interval.total_seconds() // 60)} min"
                )
                continue
        selection.selected.append(dealer.id)
    return selection
