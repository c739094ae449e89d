"""Shards: how dealers are cut, labelled and parsed, and how a shard runs and judges its dealers."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from od_scheduler.models.job import DealerRef, RunParams, Shard, plan_shards
from od_scheduler.operators.shard import (
    DealerState,
    NothingToDo,
    ShardFailed,
    finish_shard,
    run_dealers,
)

pytestmark = pytest.mark.unit


def refs(n: int) -> list[DealerRef]:
    return [
        DealerRef(dealer_id=f"d{i:04d}", platform="dealer.com", name=f"Dealer {i}", slug=f"dealer-{i}")
        for i in range(n)
    ]


def test_shards_never_pass_max_map_length_and_differ_by_one_at_most() -> None:
    dealers = refs(5000)
    shards = plan_shards(dealers, dealers_per_task=1, max_shards=1024)
    assert len(shards) == 1024
    sizes = {len(s.dealers) for s in shards}
    assert sizes == {4, 5}
    assert [d for s in shards for d in s.dealers] == dealers, "every dealer once, in order"
    assert len(plan_shards(dealers, dealers_per_task=50, max_shards=1024)) == 100
    assert len(plan_shards(refs(101), dealers_per_task=50, max_shards=1024)) == 3
    assert plan_shards([], dealers_per_task=50, max_shards=1024) == []


def test_a_run_of_a_hundred_dealers_still_fills_the_pools_with_min_shards() -> None:
    sizes = [
        len(s.dealers) for s in plan_shards(refs(100), dealers_per_task=100, max_shards=1024, min_shards=4)
    ]
    assert sizes == [25, 25, 25, 25]
    few = plan_shards(refs(19), dealers_per_task=100, max_shards=1024, min_shards=4)
    assert len(few) == 1, "fewer than 10 dealers a shard is not worth a task"
    assert len(plan_shards(refs(5000), dealers_per_task=100, max_shards=1024, min_shards=4)) == 52


def test_shards_come_in_whole_waves_of_min_shards_while_each_gets_ten_dealers() -> None:
    sizes = [
        len(s.dealers) for s in plan_shards(refs(1000), dealers_per_task=100, max_shards=1024, min_shards=4)
    ]
    assert (len(sizes), min(sizes), max(sizes), sum(sizes)) == (12, 83, 84, 1000)
    # Never past max_map_length, never below ten dealers a shard, never more dealers than dealers_per_task.
    assert len(plan_shards(refs(1030), dealers_per_task=1, max_shards=1024, min_shards=4)) == 1024
    assert len(plan_shards(refs(45), dealers_per_task=10, max_shards=1024, min_shards=4)) == 5
    assert len(plan_shards(refs(21), dealers_per_task=1, max_shards=1024, min_shards=4)) == 21
    assert len(plan_shards(refs(50), dealers_per_task=10, max_shards=1024, min_shards=1)) == 5


def test_dealers_per_task_1_keeps_one_dealer_per_task_below_the_cap() -> None:
    shards = plan_shards(refs(3), dealers_per_task=1, max_shards=1024)
    assert [len(s.dealers) for s in shards] == [1, 1, 1]
    assert shards[0].label == "Dealer 0 (dealer-0)", "one dealer: its own label"


def test_a_shard_label_names_its_first_dealers_and_counts_them() -> None:
    assert Shard.of(refs(2)).label == "Dealer 0 (dealer-0), Dealer 1 (dealer-1): 2 dealers"
    assert Shard.of(refs(50)).label == "Dealer 0 (dealer-0), Dealer 1 (dealer-1) +48: 50 dealers"


def test_run_params_are_parsed_once_from_what_airflow_hands_over() -> None:
    typed = RunParams.of(
        {
            "dealer_id": "abc",
            "force": True,
            "full_refresh": False,
            "force_delist": True,
            "max_failure_rate": 0.5,
        }
    )
    assert typed == RunParams(dealer_id="abc", force=True, force_delist=True, max_failure_rate=0.5)
    rendered = RunParams.of(
        {"dealer_id": "None", "force": "True", "full_refresh": "False", "max_failure_rate": ""}
    )
    assert rendered == RunParams(force=True)
    assert RunParams.of(None) == RunParams()
    with pytest.raises(ValueError, match="less than or equal to 1"):
        RunParams.of({"max_failure_rate": 2})


def test_a_failing_dealer_never_stops_the_others_and_each_ends_as_it_did() -> None:
    def work(ref: DealerRef) -> None:
        match ref.dealer_id:
            case "d0001":
                raise AirflowFailException("bad config")
            case "d0002":
                raise ConnectionError("reset by peer")
            case "d0003":
                raise AirflowSkipException("another run holds it")
            case "d0004":
                raise NothingToDo("already ingested in this run")

    log = logging.getLogger("test.shard")
    outcomes = run_dealers(refs(6), work, in_flight=3, log=log, what="pull")
    assert [o.state for o in outcomes] == [
        DealerState.DONE,
        DealerState.FAILED,
        DealerState.FAILED,
        DealerState.SKIPPED,
        DealerState.NOTHING,
        DealerState.DONE,
    ]
    assert [o.retryable for o in outcomes[1:3]] == [False, True]
    with pytest.raises(ShardFailed, match="2 of 6 dealer\\(s\\) of this shard failed their pull"):
        finish_shard(outcomes, what="pull", log=log)
    only_permanent = [o for o in outcomes if not o.retryable]
    with pytest.raises(AirflowFailException, match="Dealer 1 \\(dealer-1\\): bad config"):
        finish_shard(only_permanent, what="pull", log=log)
    fine = [o for o in outcomes if o.state != DealerState.FAILED]
    assert finish_shard(fine, what="pull", log=log)["done"] == 2


def test_dealers_run_in_flight_at_once_never_more() -> None:
    lock = threading.Lock()
    running = peak = 0

    def work(_ref: DealerRef) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    started = time.monotonic()
    run_dealers(refs(12), work, in_flight=4, log=logging.getLogger("test"), what="pull")
    assert peak == 4
    assert time.monotonic() - started < 12 * 0.05, "concurrent, not one after another"


def test_each_dealers_lines_are_written_together_in_its_own_section(caplog: pytest.LogCaptureFixture) -> None:
    from od_scheduler.operators.shard import current_dealer_log

    package = logging.getLogger("od_scheduler.clients.test")

    def work(ref: DealerRef) -> None:
        section = current_dealer_log()
        assert section is not None
        for step in range(3):
            section.info("%s step %d", ref.dealer_id, step)
            package.info("%s client line %d", ref.dealer_id, step)
            time.sleep(0.01)

    log = logging.getLogger("test.task")
    with caplog.at_level(logging.INFO):
        run_dealers(refs(3), work, in_flight=3, log=log, what="pull")
    lines = [r.getMessage() for r in caplog.records]
    for ref in refs(3):
        start = next(i for i, line in enumerate(lines) if line.startswith(f"::group::{ref.label}: done"))
        end = lines.index("::endgroup::", start)
        body = lines[start + 1 : end]
        assert body == [
            f"{ref.dealer_id} {kind} {n}" for n in range(3) for kind in ("step", "client line")
        ], "the dealer's own and its clients' lines, in order, inside its section only"


def test_a_dealer_past_its_deadline_fails_as_retryable_and_its_neighbours_go_on() -> None:
    from od_scheduler.clients.http import BaseClient
    from od_scheduler.clients.retry import RetryPolicy
    from tests.loopback import LoopbackServer

    def stalls(conn, _head, stop) -> None:  # headers never come
        stop.wait(30)

    with LoopbackServer(stalls) as server:

        def work(ref: DealerRef) -> None:
            if ref.dealer_id == "d0001":
                with BaseClient(
                    base_url=server.url, service="site", timeout=30, retry=RetryPolicy(max_attempts=1)
                ) as client:
                    client.request("GET", "/inventory")

        started = time.monotonic()
        log = logging.getLogger("t")
        outcomes = run_dealers(refs(3), work, in_flight=3, log=log, what="pull", deadline_s=1)
        elapsed = time.monotonic() - started
    assert [o.state for o in outcomes] == [DealerState.DONE, DealerState.FAILED, DealerState.DONE]
    assert outcomes[1].retryable
    assert "1s deadline of dealer Dealer 1 (dealer-1)" in (outcomes[1].detail or "")
    assert elapsed < 3, f"the stalled dealer held its shard {elapsed:.1f}s, past its 1s deadline"
