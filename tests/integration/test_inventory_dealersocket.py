"""inventory_dealersocket end to end: real Airflow (dag.test), real PostgreSQL, the sandbox XML API over HTTP.

One module fixture runs the DAG over every DealerSocket dealer: two clean multi-page dealers and
``trojan-horse-motors``, whose every page is a billion-laughs document. A separate test gives a clean
dealer an XXE document.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.fixtures import history_rows as fixture_history_rows
from tests.fixtures import job_history_conn, platform_dealers, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_dealersocket"
PLATFORM = "dealersocket"
CMS_KEY = {"Authorization": "users API-Key sandbox-cms-key"}
SIZES = {"coastal-mazda": 55, "magnolia-ford": 130}
HOSTILE = "trojan-horse-motors"


def dealersocket_dealers(control: httpx.Client) -> dict[str, dict[str, Any]]:
    """Active dealersocket dealers from the CMS, by slug."""
    return platform_dealers(control, PLATFORM)


def history_rows(run_id: str) -> dict[str, dict[str, Any]]:
    return fixture_history_rows(DAG_ID, run_id)


def ti_states(run_id: str) -> dict[tuple[str, int], str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id).all()
        return {(ti.task_id, ti.map_index): ti.state for ti in tis}


def stored(control: httpx.Client, dealer_id: str) -> dict[str, dict[str, Any]]:
    params = {"dealer_id": dealer_id, "source": PLATFORM}
    return {v["vin"]: v for v in control.get("/_sandbox/data-api/vehicles", params=params).json()["vehicles"]}


def request_log(control: httpx.Client, slug: str) -> list[dict[str, Any]]:
    params = {"service": PLATFORM, "dealer": slug}
    return control.get("/_sandbox/requests", params=params).json()["requests"]


@pytest.fixture(scope="module")
def first_run(dagbag, sandbox: str):
    # The sandbox's Data API is reset below: the history of what was sent to it must go too.
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions, source_state, dealer_leases, vehicle_fingerprints")
    control = httpx.Client(base_url=sandbox, timeout=30)
    control.post("/_sandbox/reset").raise_for_status()
    dealers = dealersocket_dealers(control)
    when = datetime(2026, 11, 2, 9, tzinfo=UTC)
    run = run_dag(dagbag.dags[DAG_ID], logical_date=when, run_after=when, conf={"force": True})
    yield {
        "control": control,
        "dealers": dealers,
        "run": run,
        "rows": history_rows(run.run_id),
        "stored": {slug: stored(control, d["id"]) for slug, d in dealers.items()},
        "truth": {slug: control.get(f"/_sandbox/truth/{PLATFORM}/{slug}").json() for slug in dealers},
        "log": {slug: request_log(control, slug) for slug in dealers},
    }
    control.close()


def test_the_dag_runs_daily_at_nine_in_its_pool(dagbag) -> None:
    dag = dagbag.dags[DAG_ID]
    assert dag.timetable.expression == "0 9 * * *"
    assert dag.get_task("shard.pull_inventory").pool == "dealersocket_api"


def test_the_hostile_document_fails_its_dealer_alone_with_a_clear_message(first_run) -> None:
    dealers, rows = first_run["dealers"], first_run["rows"]
    assert set(dealers) == {*SIZES, HOSTILE}
    assert set(rows) == {d["id"] for d in dealers.values()}
    hostile = rows[dealers[HOSTILE]["id"]]
    assert hostile["status"] == "failed"
    error = hostile["errors"][-1]
    assert "PayloadError: dealersocket dealer 'TRJHRS07' page 1: refused a hostile XML document" in error
    assert "DTDForbidden" in error
    assert hostile["end_time"] is not None
    assert [r["status"] for r in first_run["log"][HOSTILE]] == [200]  # fetched once, never retried
    assert first_run["stored"][HOSTILE] == {}
    for slug in SIZES:
        assert rows[dealers[slug]["id"]]["status"] == "success", slug
    # One failed dealer of three is past the default max_failure_rate (0): the run says so.
    assert first_run["run"].state == "failed"
    assert ti_states(first_run["run"].run_id)[("summarize_run", -1)] == "failed"


def test_data_api_holds_exactly_each_dealers_vehicles_and_rows_tell_the_truth(first_run) -> None:
    for slug, size in SIZES.items():
        truth = first_run["truth"][slug]
        row = first_run["rows"][first_run["dealers"][slug]["id"]]
        vins = set(first_run["stored"][slug])
        assert vins == set(truth["vins"]) - set(truth["invalid_vins"]), slug
        assert len(vins) == size, slug
        assert (row["vehicles_found"], row["vehicles_processed"], row["vehicles_rejected"]) == (size, size, 0)
        assert row["job_id"] == f"{first_run['dealers'][slug]['id']}_dealersocket"
        assert row["performance_metrics"]["complete"] is True, slug


def test_every_page_is_followed(first_run) -> None:
    for slug, size in SIZES.items():
        pages = math.ceil(size / 50)
        requests = first_run["log"][slug]
        expected = [(n, 200) for n in range(1, pages + 1)]
        assert [(r["detail"]["page"], r["status"]) for r in requests] == expected, slug
        assert first_run["rows"][first_run["dealers"][slug]["id"]]["performance_metrics"]["pages"] == pages


def test_vehicles_arrive_normalized(first_run) -> None:
    seen = {"certified": 0, "msrp_first": 0, "unknown_price": 0, "no_detail": 0, "no_photos": 0}
    for slug in SIZES:
        for record in first_run["truth"][slug]["vehicles"]:
            sent = first_run["stored"][slug][record["VIN"]]
            expected = {"N": "new", "U": "certified" if record["Certified"] == "true" else "used"}
            assert sent["condition"] == expected[record["NewUsed"]]
            seen["certified"] += sent["condition"] == "certified"
            prices = {p["type"]: p["value"] for p in record["Price"]}
            seen["msrp_first"] += bool(record["Price"]) and record["Price"][0]["type"] == "MSRP"
            internet = float(prices.get("Internet") or 0)
            seen["unknown_price"] += not internet
            assert sent["price"] == (internet or None)
            assert sent["msrp"] == (float(prices["MSRP"]) if "MSRP" in prices else None)
            assert sent["images"] == record["Photos"]
            assert all("&amp;" not in url and "?w=1024&h=768" in url for url in sent["images"])
            seen["no_photos"] += not record["Photos"]
            assert sent["detail_url"] == (record["DetailUrl"] or None)
            seen["no_detail"] += not record["DetailUrl"]
            assert (sent["year"], sent["mileage"]) == (int(record["Year"]), int(record["Odometer"]))
            assert (sent["make"], sent["model"], sent["trim"], sent["body_style"], sent["fuel_type"]) == (
                record["Make"],
                record["Model"],
                record["Trim"],
                record["Body"],
                record["Fuel"],
            )
    assert all(seen.values()), seen


def test_an_xxe_document_fails_the_dealer_and_reads_nothing(dagbag, clean: httpx.Client) -> None:
    clean.put("/_sandbox/faults/coastal-mazda", json={"hostile_xml": "xxe"}).raise_for_status()
    dealer = dealersocket_dealers(clean)["coastal-mazda"]
    try:
        run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer["id"], "max_failure_rate": 1.0})
    finally:
        clean.delete("/_sandbox/faults/coastal-mazda").raise_for_status()

    assert run.state == "success"  # tolerated by max_failure_rate; the dealer's own row says failed
    row = history_rows(run.run_id)[dealer["id"]]
    assert row["status"] == "failed"
    assert "refused a hostile XML document (DTDForbidden" in row["errors"][-1]
    assert "root:" not in row["errors"][-1]
    assert [r["status"] for r in request_log(clean, "coastal-mazda")] == [200]
    assert stored(clean, dealer["id"]) == {}
