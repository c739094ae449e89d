"""Change windows, full-pull cadence and lost parts: the pure rules of the pull base."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from od_scheduler.operators.pull import (
    FULL_PULL_AT,
    FULL_PULL_RUN,
    WINDOW_START,
    data_interval_time,
    lost_parts,
    parse_part_counts,
    plan_window,
)

pytestmark = pytest.mark.unit

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
RUN1 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # data-interval time of the first run
PULLED = datetime(2026, 3, 2, 9, 3, 27, 512_000, tzinfo=UTC)  # wall clock when its pull began


def plan(stored: dict[str, str], run_time: datetime, run_id: str = "scheduled__next", **kw):
    kw.setdefault("overlap", HOUR)
    kw.setdefault("full_every", DAY)
    return plan_window(stored, run_time=run_time, run_id=run_id, **kw)


def after_first_full() -> dict[str, str]:
    """The state a successful first (full) pull saves."""
    first = plan({}, RUN1, "scheduled__1", has_success=False)
    assert first.full
    return first.state_after(PULLED)


def test_the_first_pull_is_full_and_records_its_start_and_its_data_interval_time() -> None:
    state = after_first_full()
    assert state == {
        WINDOW_START: "2026-03-02T09:03:27+00:00",  # rounded down: the next window only widens
        FULL_PULL_AT: RUN1.isoformat(),
        FULL_PULL_RUN: "scheduled__1",
    }


def test_the_window_starts_at_the_last_successful_pull_minus_the_overlap_not_at_the_run() -> None:
    state = after_first_full()
    # Two days later in data-interval time (the runs in between failed or skipped the dealer), within
    # the full-pull cadence: the window is still anchored on the last successful pull.
    window = plan(state, RUN1 + 2 * DAY, full_every=7 * DAY, overlap=timedelta(minutes=60))
    assert not window.full
    assert window.since == datetime(2026, 3, 2, 8, 3, 27, tzinfo=UTC)
    assert "minus 60 min overlap" in window.reason


def test_a_failed_run_saves_nothing_so_the_next_asks_from_the_same_start() -> None:
    state = after_first_full()
    # The ingest saves state only on success: run 2 failed, so run 3 sees run 1's state unchanged.
    run3 = plan(state, RUN1 + 2 * DAY, full_every=7 * DAY)
    run2 = plan(state, RUN1 + DAY, full_every=7 * DAY)
    assert run2.since == run3.since


def test_a_full_pull_is_due_after_full_pull_hours_of_data_interval_time() -> None:
    state = after_first_full()
    assert not plan(state, RUN1 + DAY - timedelta(seconds=1)).full
    due = plan(state, RUN1 + DAY)
    assert due.full
    assert "24 h of data-interval time" in due.reason


def test_an_incremental_success_moves_the_window_but_not_the_full_pull_time() -> None:
    state = after_first_full()
    window = plan(state, RUN1 + 6 * HOUR)
    later = PULLED + 6 * HOUR
    assert window.state_after(later) == {WINDOW_START: later.replace(microsecond=0).isoformat()}


def test_the_window_never_moves_backwards() -> None:
    state = after_first_full()
    window = plan(state, RUN1 + 6 * HOUR)
    # A pull whose clock reads earlier than the stored start (skew, or a slow ingest of an earlier pull)
    # keeps the stored start.
    assert window.state_after(PULLED - HOUR)[WINDOW_START] == state[WINDOW_START]


def test_a_re_run_of_the_run_that_made_the_last_full_pull_is_full_again() -> None:
    state = after_first_full()
    rerun = plan(state, RUN1, run_id="scheduled__1")
    assert rerun.full
    assert "re-run" in rerun.reason
    # The same data-interval time under another run id is an incremental run.
    assert not plan(state, RUN1, run_id="manual__x").full


def test_an_old_backfill_date_pulls_incrementally_and_never_moves_the_full_pull_time_back() -> None:
    state = after_first_full()
    backfill = plan(state, RUN1 - 30 * DAY, run_id="backfill__old")
    assert not backfill.full
    assert backfill.since == datetime(2026, 3, 2, 8, 3, 27, tzinfo=UTC)
    forced = plan(state, RUN1 - 30 * DAY, run_id="backfill__old", full_refresh=True)
    assert forced.full
    saved = forced.state_after(PULLED + DAY)
    assert FULL_PULL_AT not in saved  # an older full pull leaves the cadence where it was
    assert saved[WINDOW_START] == (PULLED + DAY).replace(microsecond=0).isoformat()


@pytest.mark.parametrize(
    ("stored", "kw", "why"),
    [
        ({}, {}, "no change window"),
        ({WINDOW_START: "garbage", FULL_PULL_AT: RUN1.isoformat()}, {}, "no change window"),
        ({WINDOW_START: PULLED.isoformat()}, {}, "no full pull"),
        (None, {"full_refresh": True}, "full_refresh"),
        (None, {"has_success": False}, "no successful pull"),
        (None, {"full_every": timedelta(0)}, "every pull is full"),
    ],
)
def test_full_pulls_when_nothing_safe_to_build_on(stored, kw, why) -> None:
    window = plan(after_first_full() if stored is None else stored, RUN1 + HOUR, **kw)
    assert window.full
    assert why in window.reason


def test_data_interval_time_prefers_the_interval_end_then_logical_date_then_run_after() -> None:
    end = datetime(2026, 3, 3, 9, tzinfo=UTC)
    logical = datetime(2026, 3, 2, 9, tzinfo=UTC)
    after = datetime(2026, 3, 4, 9, tzinfo=timezone(timedelta(hours=2)))
    dag_run = SimpleNamespace(run_after=after)
    assert data_interval_time({"data_interval_end": end, "logical_date": logical}) == end
    assert data_interval_time({"data_interval_end": None, "logical_date": logical}) == logical
    assert data_interval_time({"logical_date": None, "dag_run": dag_run}) == after
    assert data_interval_time({"dag_run": dag_run}).tzinfo == UTC


def test_a_part_that_had_vehicles_and_now_has_none_is_lost() -> None:
    previous = {"auto-new": 30, "auto-certified": 0, "auto-used": 50}
    assert lost_parts(previous, {"auto-new": 0, "auto-certified": 0, "auto-used": 48}) == ["auto-new"]
    assert lost_parts(previous, {"auto-new": 1, "auto-used": 1}) == []
    assert lost_parts(previous, {"auto-used": 50}) == ["auto-new"]  # not listed at all: lost too
    assert lost_parts({}, {"auto-new": 0}) == []  # no complete pull yet: nothing to compare with


def test_part_counts_are_read_defensively() -> None:
    assert parse_part_counts(json.dumps({"auto-new": 3, "x": "7", "y": True})) == {"auto-new": 3}
    assert parse_part_counts("not json") == {}
    assert parse_part_counts("[1, 2]") == {}
    assert parse_part_counts(None) == {}
