"""Due-ness and holds: the rules that decide which dealers a run pulls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerHistory
from od_scheduler.scheduling import interval_for, is_overdue, select_dealers

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 29, 11, 0, 2, tzinfo=UTC)


def dealer(dealer_id: str, **schedule: object) -> Dealer:
    return Dealer.model_validate(
        {
            "id": dealer_id,
            "name": dealer_id.title(),
            "slug": dealer_id,
            "status": "active",
            "platforms": ["dealer.com"],
            "schedule": schedule or None,
        }
    )


def select(dealers, history, *, force=False, explicit=False, hold=5):
    return select_dealers(
        dealers,
        history,
        now=NOW,
        default_interval_minutes=60,
        force=force,
        hold_after_failures=hold,
        grace=timedelta(minutes=5),
        explicit=explicit,
    )


def test_never_pulled_dealers_are_due() -> None:
    assert select([dealer("a")], {}).selected == ["a"]


def test_a_recent_success_makes_a_dealer_not_due_and_says_why() -> None:
    history = {"a": DealerHistory(last_success=NOW - timedelta(minutes=20))}
    selection = select([dealer("a")], history)
    assert selection.selected == []
    assert selection.not_due["a"] == "not due: last success 20 min ago, interval 60 min"


def test_due_again_after_the_interval_within_the_grace() -> None:
    # Pulled at 10:00:05, the 11:00:02 run must not skip it.
    history = {"a": DealerHistory(last_success=datetime(2026, 11, 29, 10, 0, 5, tzinfo=UTC))}
    assert select([dealer("a")], history).selected == ["a"]


def test_the_cms_interval_overrides_the_platform_default() -> None:
    history = {"a": DealerHistory(last_success=NOW - timedelta(minutes=90))}
    assert select([dealer("a", interval_minutes=240)], history).selected == []
    assert select([dealer("a", interval_minutes=30)], history).selected == ["a"]
    assert interval_for(dealer("a"), 1440) == timedelta(days=1)


def test_force_pulls_dealers_that_are_not_due() -> None:
    history = {"a": DealerHistory(last_success=NOW - timedelta(minutes=1))}
    assert select([dealer("a")], history, force=True).selected == ["a"]


def test_paused_dealers_are_held_even_when_forced_but_not_when_named() -> None:
    paused = dealer("p", paused=True)
    assert select([paused], {}, force=True).held == {"p": "paused in the CMS (schedule.paused)"}
    assert select([paused], {}, explicit=True).selected == ["p"]


def test_failing_dealers_are_held_from_scheduled_runs_only() -> None:
    history = {"f": DealerHistory(last_success=NOW - timedelta(days=2), consecutive_failures=5)}
    held = select([dealer("f")], history)
    assert held.selected == []
    assert "last 5 executions failed" in held.held["f"]
    assert select([dealer("f")], history, force=True).selected == ["f"]
    # Below the threshold, or with holding disabled, it is just due.
    assert select([dealer("f")], {"f": DealerHistory(consecutive_failures=4)}).selected == ["f"]
    assert select([dealer("f")], history, hold=0).selected == ["f"]


def test_selection_summary_counts_every_reason() -> None:
    dealers = [dealer("a"), dealer("b"), dealer("p", paused=True)]
    history = {"b": DealerHistory(last_success=NOW - timedelta(minutes=5))}
    summary = select(dealers, history).as_dict()
    assert summary == {
        "active": 3,
        "selected": 1,
        "not_due": 1,
        "held": {"p": "paused in the CMS (schedule.paused)"},
    }


def past(last_success: datetime | None, first_execution: datetime | None) -> DealerHistory:
    return DealerHistory(last_success=last_success, first_execution=first_execution)


def test_overdue_past_the_factor_of_intervals_since_the_last_success() -> None:
    hour = timedelta(hours=1)
    assert not is_overdue(past(NOW - 2 * hour, NOW - 30 * hour), interval=hour, factor=2, now=NOW), (
        "exactly 2x"
    )
    assert is_overdue(past(NOW - 2 * hour - timedelta(seconds=1), None), interval=hour, factor=2, now=NOW)
    assert not is_overdue(past(NOW - 5 * hour, None), interval=3 * hour, factor=2, now=NOW)


def test_never_successful_dealers_are_overdue_from_their_first_execution() -> None:
    hour = timedelta(hours=1)
    assert is_overdue(past(None, NOW - 3 * hour), interval=hour, factor=2, now=NOW)
    assert not is_overdue(past(None, NOW - hour), interval=hour, factor=2, now=NOW)
    assert not is_overdue(DealerHistory(), interval=hour, factor=2, now=NOW), "nothing ran yet: not overdue"
