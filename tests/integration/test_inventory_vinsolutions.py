"""inventory_vinsolutions end to end: real Airflow (dag.test), real PostgreSQL, the OAuth2 sandbox over HTTP.

One module fixture runs the DAG over every VinSolutions dealer (one single-page dealer on two platforms, a
clean three-page dealer and ``hourglass-honda``, whose tokens expire after two pages). Separate tests pull
the expiring dealer alone, to count its token requests exactly, and run with a wrong client secret.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fixtures import history_rows as fixture_history_rows
from tests.fixtures import job_history_conn, platform_dealers, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_vinsolutions"
PLATFORM = "vinsolutions"
CMS_KEY = {"Authorization": "users API-Key sandbox-cms-key"}
SIZES = {"metro-nissan": 80, "capitol-hyundai": 68, "beltway-toyota": 205, "hourglass-honda": 215}
EXPIRING = "hourglass-honda"
TOKEN = re.compile(r"vs_[0-9a-f]{40}")
SECRETS = ("sandbox-vs-secret", "sandbox-vs-api-key")


def vinsolutions_dealers(control: httpx.Client) -> dict[str, dict[str, Any]]:
    """Active vinsolutions dealers from the CMS, by slug."""
    return platform_dealers(control, PLATFORM)


def history_rows(run_id: str) -> dict[str, dict[str, Any]]:
    return fixture_history_rows(DAG_ID, run_id)


def stored(control: httpx.Client, dealer_id: str) -> dict[str, dict[str, Any]]:
    params = {"dealer_id": dealer_id, "source": PLATFORM}
    return {v["vin"]: v for v in control.get("/_sandbox/data-api/vehicles", params=params).json()["vehicles"]}


def request_log(control: httpx.Client) -> list[dict[str, Any]]:
    return control.get("/_sandbox/requests", params={"service": PLATFORM}).json()["requests"]


def token_requests(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in log if r["path"].endswith("/oauth/token")]


def page_requests(log: list[dict[str, Any]], slug: str) -> list[dict[str, Any]]:
    return [r for r in log if r["path"].endswith("/vehicles") and r["dealer_slug"] == slug]


class Collect(logging.Handler):
    """Every log record emitted while attached, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def first_run(dagbag, sandbox: str):
    # The sandbox's Data API is reset below: the history of what was sent to it must go too.
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions, source_state, dealer_leases, vehicle_fingerprints")
    control = httpx.Client(base_url=sandbox, timeout=30)
    control.post("/_sandbox/reset").raise_for_status()
    dealers = vinsolutions_dealers(control)
    logs = Collect()
    root = logging.getLogger()
    root.addHandler(logs)
    try:
        when = datetime(2026, 11, 2, 9, tzinfo=UTC)
        run = run_dag(dagbag.dags[DAG_ID], logical_date=when, run_after=when, conf={"force": True})
    finally:
        root.removeHandler(logs)
    yield {
        "control": control,
        "dealers": dealers,
        "run": run,
        "rows": history_rows(run.run_id),
        "stored": {slug: stored(control, d["id"]) for slug, d in dealers.items()},
        "truth": {slug: control.get(f"/_sandbox/truth/{PLATFORM}/{slug}").json() for slug in dealers},
        "log": request_log(control),
        "lines": logs.lines,
    }
    control.close()


def test_the_dag_runs_daily_at_nine_in_its_pool(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    assert dag.timetable.expression == "0 9 * * *"
    assert dag.get_task("shard.pull_inventory").pool == "vinsolutions_api"


def test_every_dealer_succeeds_and_its_row_tells_the_truth(first_run) -> None:
    dealers, rows = first_run["dealers"], first_run["rows"]
    assert set(dealers) == set(SIZES)
    assert first_run["run"].state == "success"
    assert set(rows) == {d["id"] for d in dealers.values()}
    for slug, dealer in dealers.items():
        row, truth = rows[dealer["id"]], first_run["truth"][slug]
        assert row["job_id"] == f"{dealer['id']}_vinsolutions"
        assert row["status"] == "success", (slug, row["errors"])
        assert row["vehicles_found"] == len(truth["vins"]) == SIZES[slug], slug
        assert row["vehicles_processed"] == SIZES[slug], slug
        assert row["vehicles_rejected"] == 0, slug
        metrics = row["performance_metrics"]
        pages = math.ceil(SIZES[slug] / 100)
        refreshes = 1 if slug == EXPIRING else 0
        assert metrics["complete"] is True, slug
        assert metrics["pages"] == pages, slug
        assert metrics["token_requests"] == 1 + refreshes, slug
        # every page, every token request, and the one page the expired token could not fetch
        assert metrics["api_calls"] == pages + 1 + 2 * refreshes, slug


def test_data_api_holds_exactly_each_dealers_vehicles(first_run) -> None:
    for slug in SIZES:
        truth = first_run["truth"][slug]
        vins = set(first_run["stored"][slug])
        assert vins == set(truth["vins"]) - set(truth["invalid_vins"]), slug
        assert len(vins) == SIZES[slug], slug


def test_vehicles_arrive_normalized(first_run) -> None:
    seen = {"zero_price": 0, "null_price": 0, "repeated_photo": 0, "no_vdp": 0, "certified": 0, "msrp": 0}
    for slug in SIZES:
        for item in first_run["truth"][slug]["vehicles"]:
            sent = first_run["stored"][slug][item["vin"]]
            assert sent["source"] == PLATFORM
            assert sent["condition"] == item["newUsed"].lower()
            seen["certified"] += sent["condition"] == "certified"
            assert (sent["year"], sent["make"], sent["model"], sent["trim"]) == (
                item["year"],
                item["make"],
                item["model"],
                item["trim"],
            )
            assert sent["mileage"] == item["mileage"]
            price = item["pricing"]["internetPrice"]
            seen["zero_price"] += price == 0
            seen["null_price"] += price is None
            assert sent["price"] == (float(Decimal(price)) if price else None)
            msrp = item["pricing"]["msrp"]
            seen["msrp"] += msrp is not None
            assert sent["msrp"] == (float(msrp) if msrp else None)
            urls = [p["url"] for p in item["photos"]]
            seen["repeated_photo"] += len(urls) > len(set(urls))
            assert sent["images"] == list(dict.fromkeys(urls))
            assert sent["detail_url"] == item["vdpUrl"]
            seen["no_vdp"] += item["vdpUrl"] is None
            assert (sent["exterior_color"], sent["drivetrain"], sent["body_style"], sent["fuel_type"]) == (
                item["exteriorColor"],
                item["drivetrain"],
                item["bodyStyle"],
                item["fuelType"],
            )
    assert all(seen.values()), seen


def test_one_token_per_dealer_pull_shared_by_its_pages(first_run) -> None:
    log = first_run["log"]
    issued = token_requests(log)
    assert [r["status"] for r in issued] == [200] * 5  # one per dealer, plus hourglass's one refresh
    for slug in SIZES:
        pages = page_requests(log, slug)
        serials = {r["detail"]["token_serial"] for r in pages}
        assert len(serials) == (2 if slug == EXPIRING else 1), slug
        assert [r["status"] for r in pages].count(401) == (1 if slug == EXPIRING else 0), slug


def test_no_secret_or_token_reaches_the_logs(first_run) -> None:
    text = "\n".join(first_run["lines"])
    assert "vinsolutions dealer 27735 done: 3 pages, 205 vehicles" in text  # the client's log is captured
    for secret in SECRETS:
        assert secret not in text
    assert not TOKEN.search(text)


def test_a_token_expiring_mid_pagination_is_refreshed_once(dagbag, clean: httpx.Client) -> None:
    dealer = vinsolutions_dealers(clean)[EXPIRING]
    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer["id"]})

    assert run.state == "success"
    row = history_rows(run.run_id)[dealer["id"]]
    assert (row["status"], row["vehicles_found"], row["vehicles_processed"]) == ("success", 215, 215)
    assert row["performance_metrics"]["token_requests"] == 2
    truth = clean.get(f"/_sandbox/truth/{PLATFORM}/{EXPIRING}").json()
    assert set(stored(clean, dealer["id"])) == set(truth["vins"])

    log = request_log(clean)
    issued = token_requests(log)
    assert [r["detail"]["outcome"] for r in issued] == ["issued", "issued"]  # the first token + one refresh
    pages = page_requests(log, EXPIRING)
    statuses = [(r["detail"]["page_number"], r["status"]) for r in pages]
    assert statuses == [(1, 200), (2, 200), (3, 401), (3, 200)]
    first, second = (r["detail"]["token_serial"] for r in issued)
    assert [r["detail"]["token_serial"] for r in pages] == [first, first, first, second]


def test_a_wrong_client_secret_fails_the_dealer_with_a_clear_message(
    dagbag, clean: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_OD_VINSOLUTIONS"])
    monkeypatch.setenv("AIRFLOW_CONN_OD_VINSOLUTIONS", json.dumps({**conn, "password": "not-the-secret"}))
    dealer = vinsolutions_dealers(clean)["metro-nissan"]
    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer["id"]})

    assert run.state == "failed"
    row = history_rows(run.run_id)[dealer["id"]]
    assert row["status"] == "failed"
    error = row["errors"][-1]
    assert "PermanentUpstreamError: OAuth2 token request" in error
    assert "HTTP 401" in error
    assert "invalid_client" in error
    assert "connection 'od_vinsolutions'" in error
    assert "not-the-secret" not in error
    assert [r["status"] for r in request_log(clean)] == [401]  # refused once, never retried, no page asked
    assert stored(clean, dealer["id"]) == {}
