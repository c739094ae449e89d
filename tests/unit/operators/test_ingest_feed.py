"""The ingest beside its pull: which dealers are handed on when, and when the ingest lets its slot go.

The feed is driven here by a scripted sequence of job rows and pull states, each read as the real ingest
reads them (one read per poll); the DAG-level proof (the ingest posts while its pull still runs, with a real
scheduler) is ``tests/e2e/test_shard_pools.py`` and the bench.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import pytest

from od_scheduler.models.job import DealerRef, JobExecution, JobStatus
from od_scheduler.operators.ingest_feed import (
    MAX_RESCHEDULE_S,
    StagedFeed,
    TaskPhase,
    ready_ids,
    reschedule_delay_s,
)
from od_scheduler.operators.shard import DealerState, NothingToDo, run_dealers

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


def refs(n: int) -> list[DealerRef]:
    return [DealerRef(dealer_id=f"d{i}", platform="dealer.com", name=f"Dealer {i}") for i in range(n)]


def row(dealer_id: str, status: JobStatus, *, staged: bool) -> JobExecution:
    return JobExecution(
        id=1,
        job_id=f"{dealer_id}_dealer.com",
        dag_id="inventory_dealer_com",
        run_id="r1",
        try_number=1,
        dealer_id=dealer_id,
        platform="dealer.com",
        status=status,
        start_time=NOW,
        end_time=None,
        vehicles_found=0,
        vehicles_processed=0,
        vehicles_rejected=0,
        vehicles_delisted=0,
        created_at=NOW,
        pull_result={"dealer_id": dealer_id} if staged else None,
    )


RUNNING, SUCCESS, FAILED = JobStatus.RUNNING, JobStatus.SUCCESS, JobStatus.FAILED


def test_task_phases_cover_airflow_states() -> None:
    assert TaskPhase.of(None) is TaskPhase.NOT_STARTED
    assert TaskPhase.of("scheduled") is TaskPhase.NOT_STARTED
    assert TaskPhase.of("queued") is TaskPhase.WORKING
    assert TaskPhase.of("running") is TaskPhase.WORKING
    for state in ("up_for_retry", "up_for_reschedule", "deferred"):
        assert TaskPhase.of(state) is TaskPhase.PAUSED
    for state in ("success", "failed", "upstream_failed", "skipped", "removed"):
        assert TaskPhase.of(state) is TaskPhase.ENDED


def test_a_dealer_is_ready_once_staged_and_a_failed_one_only_after_the_pull_ended() -> None:
    rows = {
        "staged": row("staged", RUNNING, staged=True),
        "pulling": row("pulling", RUNNING, staged=False),
        "done": row("done", SUCCESS, staged=True),
        "pull_failed": row("pull_failed", FAILED, staged=False),
        "ingest_failed": row("ingest_failed", FAILED, staged=True),
    }
    waiting = ["none_yet", *rows]
    assert ready_ids(rows, waiting, pull_ended=False) == ["staged", "done"]
    # A failed ingest of an earlier try is re-done only once no pull try can take the dealer again.
    assert ready_ids(rows, waiting, pull_ended=True) == waiting


def test_the_reschedule_wait_doubles_and_is_capped() -> None:
    assert [reschedule_delay_s(n) for n in range(5)] == [30, 60, 120, 120, 120]
    assert reschedule_delay_s(10_000) == MAX_RESCHEDULE_S


class Script:
    """Rows and pull states as successive polls see them (the last one repeats)."""

    def __init__(self, steps: Sequence[tuple[dict[str, JobExecution], str | None]]) -> None:
        self.steps = list(steps)
        self.reads = 0
        self.states = 0

    def _step(self, count: int) -> tuple[dict[str, JobExecution], str | None]:
        return self.steps[min(count, len(self.steps) - 1)]

    def read_rows(self, dealer_ids: Sequence[str]) -> dict[str, JobExecution]:
        rows = self._step(self.reads)[0]
        self.reads += 1
        return {d: r for d, r in rows.items() if d in dealer_ids}

    def pull_state(self) -> str | None:
        state = self._step(self.reads - 1)[1]
        self.states += 1
        return state


def drain(feed: StagedFeed) -> Iterator[str]:
    """Iterate as run_dealers does with one worker: each dealer ends before the next is drawn."""
    for ref in feed:
        feed.finished(failed=False)
        yield ref.dealer_id


def feed_of(script: Script, n: int, **kwargs: object) -> StagedFeed:
    kwargs = {"workers": 1, "poll_s": 0.001, "idle_release_s": 0.05, **kwargs}
    return StagedFeed(refs(n), read_rows=script.read_rows, pull_state=script.pull_state, **kwargs)  # type: ignore[arg-type]


def test_dealers_are_handed_on_as_the_pull_stages_them_and_the_rest_once_it_ended() -> None:
    d0s, d1s = row("d0", RUNNING, staged=True), row("d1", RUNNING, staged=True)
    script = Script(
        [
            ({}, "running"),
            ({"d1": d1s}, "running"),
            ({"d1": d1s, "d0": d0s}, "running"),
            ({"d1": d1s, "d0": d0s, "d2": row("d2", FAILED, staged=False)}, "success"),
        ]
    )
    feed = feed_of(script, 3)
    assert list(drain(feed)) == ["d1", "d0", "d2"]
    assert feed.reschedule_at is None
    assert feed.waiting == []
    assert feed.row("d1") == d1s
    assert feed.row("d2") is not None


def test_the_ingest_lets_its_slot_go_after_waiting_a_while_for_a_pull_not_started_or_retrying() -> None:
    for state, reason in (("scheduled", "has not started"), ("up_for_retry", "waiting")):
        script = Script([({}, state)])
        feed = feed_of(script, 2, reschedules=1, idle_release_s=0.2)
        before = datetime.now(UTC)
        assert list(drain(feed)) == []
        assert script.reads > 5, "it waited (holding its slot) before letting it go"
        assert feed.reschedule_at is not None
        assert reason in (feed.reason or "")
        assert 59 <= (feed.reschedule_at - before).total_seconds() <= 61, "30 s doubled once"
        assert feed.waiting == ["d0", "d1"]


def test_under_dag_test_an_ingest_before_its_pull_is_rescheduled_at_once() -> None:
    script = Script([({}, "scheduled")])
    feed = feed_of(script, 2, in_process=True, idle_release_s=60)
    before = datetime.now(UTC)
    assert list(drain(feed)) == []
    assert (script.reads, script.states) == (0, 1)
    assert feed.reschedule_at is not None
    assert (feed.reschedule_at - before).total_seconds() <= 2


def test_under_dag_test_the_pull_state_is_asked_once_before_any_dealer_works() -> None:
    """dag.test()'s in-process supervisor is not thread-safe: no request of the feed while dealers work."""
    staged = row("d0", RUNNING, staged=True)
    script = Script([({"d0": staged}, "failed")])
    feed = feed_of(script, 3, in_process=True)
    handed = []
    for ref in feed:
        assert script.states == 1
        handed.append(ref.dealer_id)
        feed.finished(failed=False)
    assert handed == ["d0", "d1", "d2"]
    assert (script.reads, script.states) == (1, 1)
    assert feed.reschedule_at is None


def test_when_the_feed_fails_the_dealers_at_work_end_before_the_error_goes_on() -> None:
    ended = threading.Event()

    def dealers() -> Iterator[DealerRef]:
        yield refs(1)[0]
        raise RuntimeError("the Airflow API did not answer")

    def work(ref: DealerRef) -> None:
        time.sleep(0.2)
        ended.set()

    log = __import__("logging").getLogger("test")
    with pytest.raises(RuntimeError, match="did not answer"):
        run_dealers(dealers(), work, in_flight=2, log=log, what="ingest")
    assert ended.is_set(), "the dealer at work ended (and closed its row) before the task's error"


def test_a_running_pull_that_stages_nothing_for_a_while_gets_its_slot_back() -> None:
    staged = row("d0", RUNNING, staged=True)
    feed = feed_of(Script([({"d0": staged}, "running")]), 2)
    assert list(drain(feed)) == ["d0"]
    assert "staged no dealer" in (feed.reason or "")
    assert feed.waiting == ["d1"]


def test_after_a_failure_the_ingest_stays_until_the_pull_has_ended() -> None:
    staged = row("d0", RUNNING, staged=True)
    script = Script([({"d0": staged}, "up_for_retry")] * 40 + [({"d0": staged}, "failed")])
    feed = feed_of(script, 2)
    handed = []
    for ref in feed:
        feed.finished(failed=True)
        handed.append(ref.dealer_id)
    assert handed == ["d0", "d1"], "the failed dealer's pass waited for the pull to end, then took the rest"
    assert feed.reschedule_at is None
    assert script.reads > 40


def test_a_pass_is_bounded_by_stop_after_s() -> None:
    staged = {f"d{i}": row(f"d{i}", RUNNING, staged=True) for i in range(3)}
    feed = feed_of(Script([(staged, "running")]), 3, stop_after_s=0.0)
    assert list(drain(feed)) == []
    assert feed.reschedule_at is not None
    assert "this pass has run" in (feed.reason or "")


def test_run_dealers_takes_dealers_as_they_come_and_reports_each_end() -> None:
    staged = {f"d{i}": row(f"d{i}", RUNNING, staged=True) for i in range(2)}
    script = Script([({}, "running"), (staged, "running"), (staged, "success")])
    feed = feed_of(script, 3, workers=2)
    ended: list[str] = []
    lock = threading.Lock()

    def work(ref: DealerRef) -> None:
        if feed.row(ref.dealer_id) is None:
            raise NothingToDo("nothing staged")

    def on_end(outcome: object) -> None:
        with lock:
            ended.append(outcome.ref.dealer_id)  # type: ignore[attr-defined]
        feed.finished(failed=outcome.state == DealerState.FAILED)  # type: ignore[attr-defined]

    log = __import__("logging").getLogger("test")
    outcomes = run_dealers(feed, work, in_flight=2, log=log, what="ingest", on_end=on_end)
    assert [(o.ref.dealer_id, o.state) for o in outcomes] == [
        ("d0", DealerState.DONE),
        ("d1", DealerState.DONE),
        ("d2", DealerState.NOTHING),
    ]
    assert sorted(ended) == ["d0", "d1", "d2"]
