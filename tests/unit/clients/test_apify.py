"""ApifyClient and ApifyRunWatcher on scripted HTTP (docs/contracts.md §4): start, poll, abort, items, 429.

Starting a run is not idempotent: the scripted fault sequences prove a start that may have reached Apify is
sent exactly once, and that the run it may have started is found again by its input.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from od_scheduler.clients.apify import (
    AmbiguousStartError,
    ApifyClient,
    ApifyRunWatcher,
    actor_path_id,
    run_input,
)
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import (
    ConfigError,
    PayloadError,
    PermanentUpstreamError,
    TransientUpstreamError,
)
from od_scheduler.models.vin import check_digit

from .conftest import FakeClock, Script

pytestmark = pytest.mark.unit

TOKEN = "apify_api_s3cr3tT0ken"
BASE = "https://api.apify.test"
RATE_LIMITED = {"error": {"type": "rate-limit-exceeded", "message": "You have exceeded the rate limit"}}


def vin(n: int) -> str:
    draft = f"1FTFW1E50PF{n:06d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def run_body(status: str = "RUNNING", run_id: str = "HG7ML7M8z78YcAPEB", **over: Any) -> dict[str, Any]:
    data = {
        "id": run_id,
        "actId": "opendealer~dealer-inventory-scraper",
        "status": status,
        "statusMessage": None,
        "defaultDatasetId": "wmKPijuyDnPZAPRMk",
        "startedAt": "2026-11-01T09:00:01.123Z",
        "finishedAt": None,
        **over,
    }
    return {"data": data}


def make_client(script: Script, clock: FakeClock, **kw: Any) -> ApifyClient:
    return ApifyClient(
        base_url=BASE,
        token=TOKEN,
        transport=script.transport,
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(max_attempts=4, jitter=False),
        conn_id="od_apify",
        **kw,
    )


class Dataset:
    """The items endpoint: ``X-Apify-Pagination-Total``, an optional server-side cap on ``limit``."""

    def __init__(self, items: list[dict[str, Any]], *, cap: int | None = None) -> None:
        self.items = items
        self.cap = cap
        self.calls: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.calls.append(params)
        offset, limit = int(params["offset"]), int(params["limit"])
        if self.cap:
            limit = min(limit, self.cap)
        page = self.items[offset : offset + limit]
        return httpx.Response(200, json=page, headers={"X-Apify-Pagination-Total": str(len(self.items))})


# --------------------------------------------------------------------------------------------------
# sync client
# --------------------------------------------------------------------------------------------------
def test_start_run_posts_the_contract_input_with_a_bearer_token(clock: FakeClock) -> None:
    script = Script(httpx.Response(201, json=run_body("READY")))
    client = make_client(script, clock)
    body = run_input(
        start_urls=["https://a.test/inv/", "https://a.test/inv/?page=2"], dealer_id="d1", max_items=50
    )

    run = client.start_run("opendealer/dealer-inventory-scraper", body)

    request = script.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/v2/acts/opendealer~dealer-inventory-scraper/runs"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {
        "startUrls": [{"url": "https://a.test/inv/"}, {"url": "https://a.test/inv/?page=2"}],
        "dealerId": "d1",
        "maxItems": 50,
    }
    assert (run.id, run.status, run.default_dataset_id) == ("HG7ML7M8z78YcAPEB", "READY", "wmKPijuyDnPZAPRMk")


def test_run_input_leaves_max_items_out_when_the_dealer_has_none() -> None:
    assert "maxItems" not in run_input(start_urls=["https://a.test/"], dealer_id="d1", max_items=None)


def test_actor_ids_are_path_segments() -> None:
    assert actor_path_id("user/actor-name") == "user~actor-name"
    assert actor_path_id("E2jjCZBezvAZnX8Rb") == "E2jjCZBezvAZnX8Rb"
    assert actor_path_id("a b?c") == "a%20b%3Fc"
    with pytest.raises(ConfigError):
        actor_path_id("  ")


def test_get_run_bounds_wait_for_finish_to_60s_and_abort_posts(clock: FakeClock) -> None:
    script = Script(
        httpx.Response(200, json=run_body("RUNNING")), httpx.Response(200, json=run_body("ABORTING"))
    )
    client = make_client(script, clock)

    assert client.get_run("HG7ML7M8z78YcAPEB", wait_for_finish=300).status == "RUNNING"
    assert client.abort_run("HG7ML7M8z78YcAPEB").status == "ABORTING"

    poll, abort = script.requests
    assert (poll.method, poll.url.path, poll.url.params["waitForFinish"]) == (
        "GET",
        "/v2/actor-runs/HG7ML7M8z78YcAPEB",
        "60",
    )
    assert (abort.method, abort.url.path) == ("POST", "/v2/actor-runs/HG7ML7M8z78YcAPEB/abort")


def test_a_body_without_data_is_a_payload_error(clock: FakeClock) -> None:
    client = make_client(Script(httpx.Response(200, json={"id": "x", "status": "RUNNING"})), clock)
    with pytest.raises(PayloadError, match="'data' object"):
        client.get_run("x")


def test_items_are_paged_by_offset_until_the_announced_total(clock: FakeClock) -> None:
    items = [{"vin": vin(n), "price": n} for n in range(23)]
    dataset = Dataset(items, cap=7)  # the server returns fewer than asked: advance by what came back
    client = make_client(Script(*[dataset] * 10), clock, page_size=10)

    got = list(client.iter_items("ds1"))

    assert [i.vin for i in got] == [i["vin"] for i in items]
    assert [c["offset"] for c in dataset.calls] == ["0", "7", "14", "21"]
    assert all(c["limit"] == "10" and c["clean"] == "true" and c["format"] == "json" for c in dataset.calls)
    assert client.report.complete
    assert client.report.segments["dataset"].total_count == 23
    assert client.stats.pages == 4


def test_duplicates_and_vinless_items_are_all_passed_on(clock: FakeClock) -> None:
    items = [{"vin": vin(1)}, {"vin": None}, {"vin": vin(1)}, {}]
    client = make_client(Script(Dataset(items)), clock)

    assert [i.vin for i in client.iter_items("ds1")] == [vin(1), None, vin(1), None]  # the pull screens them


def test_an_empty_dataset_is_a_complete_empty_pull(clock: FakeClock) -> None:
    client = make_client(Script(Dataset([])), clock)

    assert list(client.iter_items("ds1")) == []
    assert client.report.complete


def test_a_dataset_as_large_as_max_items_is_a_partial_pull(clock: FakeClock) -> None:
    client = make_client(Script(Dataset([{"vin": vin(n)} for n in range(5)])), clock)

    assert len(list(client.iter_items("ds1", max_items=5))) == 5
    assert not client.report.complete
    assert "maxItems (5)" in client.report.notes[0]


@pytest.mark.parametrize(
    ("body", "message"), [({"items": []}, "JSON array"), (["a string item"], "not an object")]
)
def test_an_items_body_of_the_wrong_shape_is_a_payload_error(
    clock: FakeClock, body: Any, message: str
) -> None:
    client = make_client(Script(httpx.Response(200, json=body)), clock)
    with pytest.raises(PayloadError, match=message):
        list(client.iter_items("ds1"))


def test_429_rate_limit_is_retried_after_retry_after(clock: FakeClock) -> None:
    script = Script(
        httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "3"}),
        httpx.Response(201, json=run_body("READY")),
    )
    client = make_client(script, clock)

    run = client.start_run("opendealer~dealer-inventory-scraper", {"dealerId": "d1"})

    assert run.status == "READY"
    assert clock.sleeps == [3.0]
    assert client.stats.rate_limits_hit == 1
    assert client.stats.retries == 1
    assert client.stats.api_calls == 2


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout,  # sent; Apify may be starting the run right now
        httpx.WriteTimeout,
        httpx.ReadError,
        httpx.RemoteProtocolError,
        httpx.Response(500, json={"error": {"type": "internal-server-error"}}),
        httpx.Response(502, text="upstream connect error"),
        httpx.Response(503, json={"error": {"type": "server-overloaded"}}),
        httpx.Response(201, text='{"data": {"id": "HG7ML7M8z78Y'),  # started, answer cut off
    ],
    ids=["read-timeout", "write-timeout", "read-error", "dropped", "500", "502", "503", "cut-201"],
)
def test_a_start_that_may_have_reached_apify_is_never_resent(clock: FakeClock, failure: Any) -> None:
    script = Script(failure, httpx.Response(201, json=run_body("READY", run_id="SecondPaidRun0000")))
    client = make_client(script, clock)

    with pytest.raises(AmbiguousStartError, match="not re-sent") as excinfo:
        client.start_run("opendealer~dealer-inventory-scraper", {"dealerId": "d1"})

    assert len(script.requests) == 1, "exactly one start POST: a second one would start a second paid run"
    assert clock.sleeps == []
    assert isinstance(excinfo.value, TransientUpstreamError)  # the task retry looks the run up
    assert client.stats.retries == 0


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_a_start_that_never_left_is_retried(clock: FakeClock, failure: type[Exception]) -> None:
    script = Script(failure, httpx.Response(201, json=run_body("READY")))
    client = make_client(script, clock)

    run = client.start_run("opendealer~dealer-inventory-scraper", {"dealerId": "d1"})

    assert run.id == "HG7ML7M8z78YcAPEB"
    assert len(script.requests) == 2
    assert client.stats.retries == 1


def test_a_start_rate_limited_every_time_says_nothing_was_started(clock: FakeClock) -> None:
    script = Script(*[httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "1"})] * 4)
    client = make_client(script, clock)

    with pytest.raises(TransientUpstreamError, match="no run was started") as excinfo:
        client.start_run("opendealer~dealer-inventory-scraper", {"dealerId": "d1"})

    assert not isinstance(excinfo.value, AmbiguousStartError)
    assert len(script.requests) == 4
    assert clock.sleeps == [1.0, 1.0, 1.0]


def test_a_start_apify_rejects_fails_at_once(clock: FakeClock) -> None:
    invalid = {"error": {"type": "invalid-input", "message": "Input.startUrls is required"}}
    client = make_client(Script(httpx.Response(400, json=invalid)), clock)

    with pytest.raises(PermanentUpstreamError, match="400") as excinfo:
        client.start_run("opendealer~dealer-inventory-scraper", {"dealerId": "d1"})
    assert not isinstance(excinfo.value, TransientUpstreamError)


def listed(run_id: str, started: str, status: str = "RUNNING") -> dict[str, Any]:
    return {
        "id": run_id,
        "actId": "opendealer~dealer-inventory-scraper",
        "status": status,
        "startedAt": started,
        "finishedAt": None,
        "defaultDatasetId": f"ds-{run_id}",
        "defaultKeyValueStoreId": f"kvs-{run_id}",
    }


class RecentRuns:
    """The actor's runs list (newest first) and each run's INPUT record."""

    def __init__(self, runs: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self.runs = runs

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/runs"):
            items = [run for run, _ in self.runs]
            data = {"total": len(items), "offset": 0, "limit": 10, "desc": True, "count": len(items)}
            return httpx.Response(200, json={"data": {**data, "items": items}})
        run_id = request.url.path.split("/")[3]
        given = next(given for run, given in self.runs if run["id"] == run_id)
        return httpx.Response(200, json=given)


def test_the_run_a_lost_start_created_is_found_by_its_input(clock: FakeClock) -> None:
    ours = run_input(start_urls=["https://a.test/inv/"], dealer_id="d1", max_items=50)
    other_dealer = {**ours, "dealerId": "d2"}
    recent = RecentRuns(
        [
            (listed("OtherDealersRun00", "2026-11-01T09:00:05.000Z"), other_dealer),
            (listed("OurLostRun0000000", "2026-11-01T09:00:01.000Z"), dict(reversed(ours.items()))),
            (listed("YesterdaysRun0000", "2026-10-31T09:00:01.000Z"), ours),
        ]
    )
    script = Script(*[recent] * 4)
    client = make_client(script, clock)

    run = client.find_started_run(
        "opendealer/dealer-inventory-scraper", ours, since=datetime(2026, 11, 1, 9, 0, 0, tzinfo=UTC)
    )

    assert run is not None
    assert run.id == "OurLostRun0000000"
    listing = script.requests[0]
    assert listing.method == "GET"
    assert listing.url.path == "/v2/acts/opendealer~dealer-inventory-scraper/runs"
    assert (listing.url.params["desc"], listing.url.params["limit"]) == ("1", "10")
    # inputs are read from the run's default key-value store, newest first, never for older runs
    assert [r.url.path for r in script.requests[1:]] == [
        "/v2/actor-runs/OtherDealersRun00/key-value-store/records/INPUT",
        "/v2/actor-runs/OurLostRun0000000/key-value-store/records/INPUT",
    ]


def test_a_start_that_created_no_run_finds_none_not_an_earlier_pulls_run(clock: FakeClock) -> None:
    ours = run_input(start_urls=["https://a.test/inv/"], dealer_id="d1", max_items=None)
    recent = RecentRuns([(listed("YesterdaysRun0000", "2026-10-31T09:00:01.000Z", "SUCCEEDED"), ours)])
    script = Script(recent)
    client = make_client(script, clock)

    found = client.find_started_run(
        "opendealer~dealer-inventory-scraper", ours, since=datetime(2026, 11, 1, 9, 0, 0, tzinfo=UTC)
    )

    assert found is None
    assert len(script.requests) == 1  # the listing only: the old run's input was not even read


def test_a_bad_token_fails_at_once_naming_the_connection(clock: FakeClock) -> None:
    unauthorized = {"error": {"type": "token-not-valid", "message": "Authentication token is not valid."}}
    client = make_client(Script(httpx.Response(401, json=unauthorized)), clock)

    with pytest.raises(PermanentUpstreamError, match="od_apify") as excinfo:
        client.get_run("x")
    assert excinfo.value.status_code == 401
    assert clock.sleeps == []


def test_the_token_is_never_in_a_url_a_log_line_or_an_error(clock: FakeClock, caplog) -> None:
    echo = {"error": {"type": "server-error", "message": f"token {TOKEN} hit a bug"}}
    script = Script(
        httpx.Response(503, json=echo),
        httpx.Response(503, json=echo),
        httpx.Response(503, json=echo),
        httpx.Response(503, json=echo),
    )
    client = make_client(script, clock)

    with caplog.at_level(logging.DEBUG), pytest.raises(TransientUpstreamError) as excinfo:
        client.get_run("x")

    assert all(TOKEN not in str(r.url) and "token" not in r.url.params for r in script.requests)
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in script.requests)
    assert len(caplog.records) >= 3  # the retries were logged...
    assert TOKEN not in caplog.text  # ...without the token
    assert TOKEN not in str(excinfo.value)


def test_an_empty_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="od_apify"):
        ApifyClient(base_url=BASE, token="")


# --------------------------------------------------------------------------------------------------
# async watcher
# --------------------------------------------------------------------------------------------------
class AsyncClock(FakeClock):
    """The fake clock with an async sleep, for the watcher."""

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def aclock() -> AsyncClock:
    return AsyncClock(start=1_000_000.0)


def make_watcher(script: Script, clock: AsyncClock, **kw: Any) -> ApifyRunWatcher:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=5.0, jitter=False))
    return ApifyRunWatcher(
        base_url=BASE,
        token=TOKEN,
        transport=script.transport,
        sleep=clock.asleep,
        clock=clock,
        conn_id="od_apify",
        **kw,
    )


def watch(watcher: ApifyRunWatcher, *, deadline: float, **kw: Any):
    async def go():
        async with watcher:
            return await watcher.wait_until_finished("HG7ML7M8z78YcAPEB", deadline=deadline, **kw)

    return asyncio.run(go())


def test_watcher_long_polls_until_the_run_is_terminal(aclock: AsyncClock) -> None:
    script = Script(
        httpx.Response(200, json=run_body("RUNNING")),
        httpx.Response(200, json=run_body("RUNNING")),
        httpx.Response(200, json=run_body("SUCCEEDED", finishedAt="2026-11-01T09:07:00Z")),
    )
    watcher = make_watcher(script, aclock)

    result = watch(watcher, deadline=aclock.now + 3600, wait_for_finish_s=60, min_interval_s=1.0)

    assert result.finished
    assert result.run is not None
    assert result.run.succeeded
    assert result.polls == 3
    assert [r.url.params["waitForFinish"] for r in script.requests] == ["60", "60", "60"]
    assert all(r.url.path == "/v2/actor-runs/HG7ML7M8z78YcAPEB" for r in script.requests)
    # the fake server answers at once, so polls are spaced by the minimum interval
    assert aclock.sleeps == [1.0, 1.0]
    assert watcher.stats.api_calls == 3


@pytest.mark.parametrize("status", ["FAILED", "TIMED-OUT", "ABORTED"])
def test_watcher_stops_on_every_terminal_status(aclock: AsyncClock, status: str) -> None:
    script = Script(httpx.Response(200, json=run_body(status)))

    result = watch(make_watcher(script, aclock), deadline=aclock.now + 60)

    assert result.finished
    assert result.run is not None
    assert result.run.status == status
    assert not result.run.succeeded


def test_watcher_gives_up_at_the_deadline_and_never_waits_past_it(aclock: AsyncClock) -> None:
    script = Script(*[httpx.Response(200, json=run_body("RUNNING"))] * 50)

    result = watch(make_watcher(script, aclock), deadline=aclock.now + 4.5, min_interval_s=1.0)

    assert not result.finished
    assert result.run is not None
    assert result.run.status == "RUNNING"
    waits = [int(r.url.params["waitForFinish"]) for r in script.requests]
    assert waits == [4, 3, 2, 1, 0]  # never asks Apify to hold the answer past our deadline
    assert result.polls == 5


def test_watcher_honours_retry_after_on_429(aclock: AsyncClock) -> None:
    script = Script(
        httpx.Response(429, json=RATE_LIMITED, headers={"Retry-After": "2"}),
        httpx.Response(200, json=run_body("SUCCEEDED")),
    )
    watcher = make_watcher(script, aclock)

    result = watch(watcher, deadline=aclock.now + 60)

    assert result.finished
    assert aclock.sleeps == [2.0]
    assert watcher.stats.rate_limits_hit == 1
    assert watcher.stats.retries == 1


def test_watcher_keeps_watching_through_an_outage_until_the_run_finishes(aclock: AsyncClock) -> None:
    script = Script(
        httpx.ConnectError,
        httpx.Response(502),
        httpx.Response(503),  # the 3rd attempt: this poll gives up, the watch goes on
        httpx.Response(200, json=run_body("SUCCEEDED")),
    )

    result = watch(make_watcher(script, aclock), deadline=aclock.now + 600)

    assert result.finished
    assert result.poll_failures == 1
    assert aclock.sleeps == [1.0, 2.0, 5.0]  # backoff, backoff, then the pause before the next poll


@pytest.mark.parametrize("status", [401, 403, 404])
def test_watcher_fails_at_once_on_a_permanent_status(aclock: AsyncClock, status: int) -> None:
    script = Script(httpx.Response(status, json={"error": {"type": "x", "message": "no"}}))

    with pytest.raises(PermanentUpstreamError) as excinfo:
        watch(make_watcher(script, aclock), deadline=aclock.now + 60)
    assert excinfo.value.status_code == status
    assert aclock.sleeps == []


def test_watcher_never_puts_the_token_in_urls_or_logs(aclock: AsyncClock, caplog) -> None:
    script = Script(
        httpx.Response(503, text=f"upstream echoed {TOKEN}"),
        httpx.Response(200, json=run_body("SUCCEEDED")),
    )
    with caplog.at_level(logging.DEBUG):
        watch(make_watcher(script, aclock), deadline=aclock.now + 60)

    assert all(TOKEN not in str(r.url) for r in script.requests)
    assert script.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "503" in caplog.text
    assert TOKEN not in caplog.text


def test_watcher_aborts_a_run_retrying_a_transient_failure(aclock: AsyncClock) -> None:
    script = Script(httpx.Response(503), httpx.Response(200, json=run_body("ABORTING")))
    watcher = make_watcher(script, aclock)

    async def go():
        async with watcher:
            return await watcher.abort_run("HG7ML7M8z78YcAPEB")

    run = asyncio.run(go())

    assert run.status == "ABORTING"
    assert [(r.method, r.url.path) for r in script.requests] == [
        ("POST", "/v2/actor-runs/HG7ML7M8z78YcAPEB/abort")
    ] * 2
    assert script.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
