"""inventory_web_scraping end to end: dag.test(), real PostgreSQL, the sandbox's Apify over HTTP.

One forced run over every scraped dealer of the sandbox: two clean ones, one whose runs end FAILED, one
whose runs end TIMED-OUT on Apify's side, one whose runs never finish (its CMS ``max_wait_s`` is 3 s, so
the pull aborts it) and one behind a 429 rate limit. The expectations are computed from the sandbox's own
view of what it scraped (its truth endpoint and its own VIN check), never from the client's code.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from include.sandbox.dealers import DEALERS
from include.sandbox.vin import check_digit, is_valid
from tests.fixtures import history_rows as fixture_history_rows
from tests.fixtures import job_history_conn, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_web_scraping"
TRIGGER = "od_scheduler.triggers.apify.ApifyShardTrigger"
SCRAPED = {d.slug: d for d in DEALERS if "web_scraping" in d.platforms and d.status == "active"}
#: slug -> what must be in the dealer's job_executions error
FAILING = {
    "canyon-creek-autos": "FAILED",
    "prairie-wind-motors": "TIMED-OUT",
    "endless-acres-auto": "did not finish within our limit of 3s",
}
PAGE_SIZE = 25


def expected_reason(raw_vin: Any) -> str | None:
    """The reject reason of a scraped VIN, by the sandbox's own VIN rules (None: a valid VIN)."""
    vin = raw_vin.strip().upper() if isinstance(raw_vin, str) else None
    if not vin:
        return "missing_vin"
    if is_valid(vin):
        return None
    if len(vin) != 17:
        return "invalid_vin_length"
    if any(c in "IOQ" for c in vin):
        return "invalid_vin_charset"
    assert vin[8] != check_digit(vin)
    return "invalid_vin_check_digit"


def history_rows(run_id: str) -> dict[str, dict[str, Any]]:
    return fixture_history_rows(DAG_ID, run_id)


@pytest.fixture(scope="module")
def paged_apify(sandbox: str):
    """The od_apify connection with a small dataset page, so every dataset is read in several pages."""
    name = "AIRFLOW_CONN_OD_APIFY"
    before = os.environ[name]
    spec = json.loads(before)
    os.environ[name] = json.dumps({**spec, "extra": {**spec.get("extra", {}), "items_page_size": PAGE_SIZE}})
    yield
    os.environ[name] = before


@pytest.fixture(scope="module")
def scraped(dagbag, sandbox: str, paged_apify: None):
    """One forced run of inventory_web_scraping over every scraped dealer, and what everyone saw."""
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions")
    control = httpx.Client(base_url=sandbox, timeout=30)
    control.post("/_sandbox/reset").raise_for_status()
    started = datetime.now(UTC)
    logical_date = datetime(2026, 11, 2, 9, tzinfo=UTC)
    run = run_dag(
        dagbag.dags[DAG_ID], logical_date=logical_date, run_after=logical_date, conf={"force": True}
    )
    runs = control.get("/_sandbox/apify/runs").json()["runs"]
    yield {
        "run": run,
        "rows": history_rows(run.run_id),
        "control": control,
        "started": started,
        "runs": {r["dealer_slug"]: r for r in runs},
        "all_runs": runs,
        "log": control.get("/_sandbox/requests", params={"service": "apify"}).json()["requests"],
    }
    control.close()


def truth(control: httpx.Client, slug: str) -> dict[str, Any]:
    return control.get(f"/_sandbox/truth/web_scraping/{slug}").json()


def test_every_scraped_dealer_is_pulled_once_and_only_the_broken_runs_fail(scraped) -> None:
    rows = scraped["rows"]
    assert set(rows) == {d.id for d in SCRAPED.values()}
    assert len(scraped["all_runs"]) == len(SCRAPED), "one actor run per dealer, no retries"
    for slug, dealer in SCRAPED.items():
        row = rows[dealer.id]
        assert row["job_id"] == f"{dealer.id}_web_scraping"
        assert row["status"] == ("failed" if slug in FAILING else "success"), (slug, row["errors"])
        assert row["end_time"] is not None
        assert row["performance_metrics"]["apify_run_id"] == scraped["runs"][slug]["id"]
        # the deferral itself is not an error: a successful dealer's row has none
        assert (row["errors"] == []) == (slug not in FAILING), (slug, row["errors"])
    assert scraped["run"].state == "failed"  # 3 of 6 dealers failed; the default tolerance is 0


def test_the_data_api_received_exactly_the_valid_scraped_vehicles(scraped) -> None:
    control = scraped["control"]
    checked = 0
    for slug, dealer in SCRAPED.items():
        if slug in FAILING:
            continue
        items = truth(control, slug)["vehicles"]
        expected = {item["vin"].strip().upper() for item in items if expected_reason(item.get("vin")) is None}
        stored = control.get(
            "/_sandbox/data-api/vehicles", params={"dealer_id": dealer.id, "source": "web_scraping"}
        ).json()["vehicles"]
        assert {v["vin"] for v in stored} == expected, slug
        assert len(stored) == len(expected), slug
        row = scraped["rows"][dealer.id]
        assert row["vehicles_found"] == len(items), slug  # pages crawled twice are not counted twice
        assert row["vehicles_processed"] == len(expected), slug
        assert all(v["source"] == "web_scraping" and v["dealer_id"] == dealer.id for v in stored)
        assert all(v["price"] is None or v["price"] > 0 for v in stored)
        assert all(v["detail_url"] is None or v["detail_url"].startswith("https://") for v in stored)
        checked += 1
    assert checked == len(SCRAPED) - len(FAILING)


def test_rejects_are_counted_by_reason_in_job_history(scraped) -> None:
    control = scraped["control"]
    seen: Counter[str] = Counter()
    for slug, dealer in SCRAPED.items():
        if slug in FAILING:
            continue
        reasons = Counter(
            reason
            for item in truth(control, slug)["vehicles"]
            if (reason := expected_reason(item.get("vin"))) is not None
        )
        row = scraped["rows"][dealer.id]
        assert row["performance_metrics"]["rejects"] == dict(reasons), slug
        assert row["vehicles_rejected"] == sum(reasons.values()), slug
        seen.update(reasons)
    assert set(seen) == {
        "missing_vin",
        "invalid_vin_check_digit",
        "invalid_vin_length",
        "invalid_vin_charset",
    }


@pytest.mark.parametrize("slug", sorted(FAILING))
def test_a_failed_timed_out_or_aborted_run_fails_its_dealer_naming_run_and_status(scraped, slug: str) -> None:
    row = scraped["rows"][SCRAPED[slug].id]
    run_id = scraped["runs"][slug]["id"]
    error = row["errors"][-1]

    assert row["status"] == "failed"
    assert run_id in error
    assert FAILING[slug] in error
    assert row["vehicles_processed"] == 0
    metrics = row["performance_metrics"]
    assert metrics["polls"] == scraped["runs"][slug]["polls"]
    assert metrics["api_calls"] >= 1 + metrics["polls"]  # the start, the polls (and the abort)
    assert metrics["apify_run_status"] in ("FAILED", "TIMED-OUT", "RUNNING")
    stored = scraped["control"].get("/_sandbox/data-api/vehicles", params={"dealer_id": SCRAPED[slug].id})
    assert stored.json()["vehicles"] == []


def test_the_run_past_our_limit_was_aborted_in_apify(scraped) -> None:
    endless = scraped["runs"]["endless-acres-auto"]
    error = scraped["rows"][SCRAPED["endless-acres-auto"].id]["errors"][-1]

    assert endless["aborted"] is True
    assert endless["status"] in ("ABORTING", "ABORTED")
    assert "last status RUNNING" in error
    assert "aborted it" in error
    aborts = [e for e in scraped["log"] if e["path"].endswith("/abort")]
    assert [(e["method"], e["status"], e["detail"]["run_id"]) for e in aborts] == [
        ("POST", 200, endless["id"])
    ]
    assert not any(r["aborted"] for slug, r in scraped["runs"].items() if slug != "endless-acres-auto")


def test_the_pull_deferred_to_the_trigger_and_resumed_from_it(scraped) -> None:
    """Each pull raised TaskDeferred: the execution API stored its trigger, which then resumed the task."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        triggers = session.query(Trigger).filter(Trigger.created_date >= scraped["started"]).all()
        deferred = [run for t in triggers if t.classpath == TRIGGER for run in t.kwargs["runs"]]
        pulls = (
            session.query(TaskInstance)
            .filter_by(dag_id=DAG_ID, run_id=scraped["run"].run_id, task_id="shard.pull_inventory")
            .all()
        )
        states = sorted((ti.state, ti.try_number) for ti in pulls)

    # one shard trigger watching every dealer's run, each the run that dealer's pull started
    assert sorted(k["run_id"] for k in deferred) == sorted(r["id"] for r in scraped["runs"].values())
    by_run = {k["run_id"]: k for k in deferred}
    assert by_run[scraped["runs"]["endless-acres-auto"]["id"]]["carry"]["max_wait_s"] == 3
    # the shard's pull finished in its first try, resumed by its trigger's event; it fails because some of
    # its dealers failed for good (no retry: their failures are permanent), the others are staged
    assert states == [("failed", 1)]
    # the polls came from the trigger, after the start: never from the worker before the deferral
    for slug, run in scraped["runs"].items():
        requests = [e for e in scraped["log"] if e["detail"].get("run_id") == run["id"]]
        assert requests[0]["method"] == "POST"
        assert requests[0]["path"].endswith("/runs")
        assert run["polls"] >= 2, slug


def test_rate_limited_requests_were_retried_and_counted(scraped) -> None:
    row = scraped["rows"][SCRAPED["bargain-barn-autos"].id]
    limited = [e for e in scraped["log"] if e["status"] == 429]

    assert row["status"] == "success"
    assert limited, "the sandbox rate-limited bargain-barn-autos"
    assert row["performance_metrics"]["rate_limits_hit"] == len(limited)
    assert row["performance_metrics"]["retries"] >= len(limited)


def test_datasets_were_read_page_by_page(scraped) -> None:
    control = scraped["control"]
    for slug, dealer in SCRAPED.items():
        if slug in FAILING:
            continue
        run = scraped["runs"][slug]
        pages = [
            e
            for e in scraped["log"]
            if e["detail"].get("dataset_id") == run["defaultDatasetId"] and e["status"] == 200
        ]
        assert [e["detail"]["offset"] for e in pages] == list(range(0, run["items"], PAGE_SIZE)), slug
        assert {e["detail"]["limit"] for e in pages} == {PAGE_SIZE}
        metrics = scraped["rows"][dealer.id]["performance_metrics"]
        assert metrics["pages"] == len(pages), slug
        assert metrics["polls"] == run["polls"], slug
        assert metrics["complete"] is True, slug
        assert truth(control, slug)["vins"]  # the dealer has a lot at all


# --------------------------------------------------------------------------------------------------
# One actor run per dealer per DAG run: retries resume, lost starts are adopted, kills abort
# --------------------------------------------------------------------------------------------------
def apify_runs(control: httpx.Client, slug: str) -> list[dict[str, Any]]:
    return control.get("/_sandbox/apify/runs", params={"dealer": slug}).json()["runs"]


def start_posts(control: httpx.Client, slug: str) -> list[dict[str, Any]]:
    log = control.get("/_sandbox/requests", params={"service": "apify", "dealer": slug}).json()["requests"]
    return [e for e in log if e["method"] == "POST" and e["path"].endswith("/runs")]


def pull_one(dagbag, slug: str, first=None):
    """One dealer's DAG run; with ``first``, the same DAG run again (what a task retry or clear re-runs)."""
    dealer = SCRAPED[slug]
    when = first.logical_date if first is not None else datetime.now(UTC)
    run = run_dag(
        dagbag.dags[DAG_ID],
        logical_date=when,
        run_after=first.run_after if first is not None else when,
        conf={"dealer_id": dealer.id, "force": True},
    )
    if first is not None:
        assert run.run_id == first.run_id
    return run, history_rows(run.run_id)[dealer.id]


def test_a_retry_after_the_run_started_resumes_it_and_starts_no_second_run(
    dagbag, clean: httpx.Client
) -> None:
    slug = "hilltop-used-cars"
    clean.put(f"/_sandbox/apify/outages/{slug}", json={"fail_dataset_reads": 100}).raise_for_status()

    first, row = pull_one(dagbag, slug)

    (run,) = apify_runs(clean, slug)
    assert row["status"] == "failed"
    assert "still failing" in row["errors"][-1]  # the dataset read, after the run SUCCEEDED
    assert run["status"] == "SUCCEEDED"
    assert row["performance_metrics"]["apify_run_id"] == run["id"], "recorded as soon as it started"

    clean.delete(f"/_sandbox/apify/outages/{slug}").raise_for_status()
    _, row = pull_one(dagbag, slug, first)

    assert row["status"] == "success", row["errors"]
    assert [r["id"] for r in apify_runs(clean, slug)] == [run["id"]], "the retry reused the run"
    assert len(start_posts(clean, slug)) == 1
    assert row["performance_metrics"]["apify_run_id"] == run["id"]
    assert row["vehicles_processed"] > 0
    stored = clean.get("/_sandbox/data-api/vehicles", params={"dealer_id": SCRAPED[slug].id}).json()
    assert len(stored["vehicles"]) == row["vehicles_processed"]


def test_a_start_whose_answer_was_lost_is_not_resent_and_the_retry_adopts_its_run(
    dagbag, clean: httpx.Client
) -> None:
    slug = "twin-rivers-auto"
    clean.put(f"/_sandbox/apify/outages/{slug}", json={"lose_start_answers": 1, "status": 504})

    first, row = pull_one(dagbag, slug)

    (run,) = apify_runs(clean, slug)
    assert row["status"] == "failed"
    assert "not re-sent" in row["errors"][-1]
    assert len(start_posts(clean, slug)) == 1, "the client did not retry the start"
    assert row["performance_metrics"]["apify_run_id"] is None
    assert row["performance_metrics"]["apify_start_sent_at"]

    _, row = pull_one(dagbag, slug, first)

    assert row["status"] == "success", row["errors"]
    assert [r["id"] for r in apify_runs(clean, slug)] == [run["id"]], "adopted, not started again"
    assert len(start_posts(clean, slug)) == 1
    assert row["performance_metrics"]["apify_run_id"] == run["id"]
    assert row["performance_metrics"]["apify_start_sent_at"] is None
    log = clean.get("/_sandbox/requests", params={"service": "apify"}).json()["requests"]
    assert any(e["method"] == "GET" and e["path"].endswith(f"/acts/{run['actId']}/runs") for e in log)


def test_a_re_run_after_a_failed_run_starts_one_new_run_and_records_both(dagbag, clean: httpx.Client) -> None:
    slug = "canyon-creek-autos"  # its runs end FAILED

    first, row = pull_one(dagbag, slug)
    (failed,) = apify_runs(clean, slug)
    assert row["performance_metrics"]["apify_run_id"] == failed["id"]

    _, row = pull_one(dagbag, slug, first)

    runs = apify_runs(clean, slug)
    assert len(runs) == 2, "one new run for the re-run, not one per request"
    assert runs[0]["id"] == failed["id"]
    assert row["performance_metrics"]["apify_run_id"] == runs[1]["id"]
    assert row["performance_metrics"]["apify_replaced_run_ids"] == [failed["id"]]
    assert runs[1]["id"] in row["errors"][-1]


def a_pull(slug: str, run_id: str):
    """The operator as a worker runs it, with the context keys it reads."""
    from types import SimpleNamespace

    from od_scheduler.models.job import DealerRef, Shard
    from od_scheduler.operators.web_scraping import WebScrapingInventoryOperator

    dealer = SCRAPED[slug]
    shard = Shard.of(
        [DealerRef(dealer_id=dealer.id, platform="web_scraping", name=dealer.name, slug=dealer.slug)]
    )
    operator = WebScrapingInventoryOperator(task_id="pull_inventory", shard=shard.model_dump(mode="json"))
    context = {
        "dag": SimpleNamespace(dag_id=DAG_ID),
        "run_id": run_id,
        "ti": SimpleNamespace(try_number=1),
        "params": {},
    }
    return operator, context


def test_a_killed_task_aborts_its_run(clean: httpx.Client) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    slug = "endless-acres-auto"
    operator, context = a_pull(slug, "manual__kill")
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    (run,) = apify_runs(clean, slug)
    assert [r["run_id"] for r in deferred.value.trigger.runs] == [run["id"]]

    operator.on_kill()  # SIGTERM or execution_timeout on the worker

    (run,) = apify_runs(clean, slug)
    assert run["aborted"] is True
    aborts = [e for e in clean.get("/_sandbox/requests").json()["requests"] if e["path"].endswith("/abort")]
    assert [e["detail"]["run_id"] for e in aborts] == [run["id"]]


def test_a_deferral_timeout_aborts_the_run_and_fails_the_dealer(clean: httpx.Client) -> None:
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
    from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

    slug = "endless-acres-auto"
    operator, context = a_pull(slug, "manual__deferral_timeout")
    with pytest.raises(TaskDeferred):
        operator.execute(context)
    resumed, _ = a_pull(slug, "manual__deferral_timeout")  # a new worker process resumes the task

    with pytest.raises(AirflowFailException, match="deferral timeout"):
        resumed.resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context)

    (run,) = apify_runs(clean, slug)
    assert run["aborted"] is True
    row = history_rows("manual__deferral_timeout")[SCRAPED[slug].id]
    assert row["status"] == "failed"
    assert run["id"] in row["errors"][-1]
    assert "aborted it" in row["errors"][-1]
