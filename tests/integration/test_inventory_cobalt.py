"""inventory_cobalt end to end: real Airflow (dag.test), real PostgreSQL, the sandbox feeds over HTTP.

Four runs share one module fixture: a first run (200 everywhere, ETags saved), a second run with unchanged
feeds (304: nothing fetched or sent, every job a success), a third after one feed changed (200 and re-sent
for that dealer only), and a ``full_refresh`` run (unconditional: everything fetched and sent).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures import history_rows as fixture_history_rows
from tests.fixtures import job_history_conn, platform_dealers, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_cobalt"
PLATFORM = "cobalt"
CMS_KEY = {"Authorization": "users API-Key sandbox-cms-key"}
HERITAGE = "heritage-chevrolet"


def cobalt_dealers(control: httpx.Client) -> dict[str, dict[str, Any]]:
    """Active cobalt dealers from the CMS, by slug."""
    return platform_dealers(control, PLATFORM)


def history_rows(run_id: str) -> dict[str, dict[str, Any]]:
    return fixture_history_rows(DAG_ID, run_id)


def saved_etags() -> dict[str, str]:
    with job_history_conn() as db:
        cur = db.execute(
            "SELECT dealer_id, value FROM source_state WHERE platform = %s AND key = 'etag'", (PLATFORM,)
        )
        return dict(cur.fetchall())


def stored(control: httpx.Client, dealer_id: str) -> dict[str, dict[str, Any]]:
    params = {"dealer_id": dealer_id, "source": PLATFORM}
    return {v["vin"]: v for v in control.get("/_sandbox/data-api/vehicles", params=params).json()["vehicles"]}


class Log:
    """The sandbox request log, read in slices: what one run asked of each service."""

    def __init__(self, control: httpx.Client) -> None:
        self.control = control
        self.marks = {"cobalt": 0, "data_api": 0}

    def since_mark(self, service: str) -> list[dict[str, Any]]:
        entries = self.control.get("/_sandbox/requests", params={"service": service}).json()["requests"]
        new = entries[self.marks[service] :]
        self.marks[service] = len(entries)
        return new


def asset_events(run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The asset events a run of the DAG emitted: (asset URI, extra)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetModel.uri, AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_dag_id == DAG_ID, AssetEvent.source_run_id == run_id)
            .all()
        )
    return [(uri, dict(extra)) for uri, extra in rows]


def task_state(run_id: str, task_id: str) -> str | None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=run_id, task_id=task_id).one()
        return ti.state


def snapshot(control: httpx.Client, dealers: dict[str, dict[str, Any]], log: Log, run) -> dict[str, Any]:
    return {
        "run": run,
        "rows": history_rows(run.run_id),
        "stored": {slug: stored(control, d["id"]) for slug, d in dealers.items()},
        "feeds": log.since_mark("cobalt"),
        "batches": [r for r in log.since_mark("data_api") if r["path"].endswith("/batch")],
        "etags": saved_etags(),
        "events": asset_events(run.run_id),
        "announce": task_state(run.run_id, "announce_changes"),
    }


@pytest.fixture(scope="module")
def runs(dagbag, sandbox: str):
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions")
        db.execute("DELETE FROM source_state WHERE platform = %s", (PLATFORM,))
    control = httpx.Client(base_url=sandbox, timeout=30)
    control.post("/_sandbox/reset").raise_for_status()
    dealers = cobalt_dealers(control)
    truth = {slug: control.get(f"/_sandbox/truth/{PLATFORM}/{slug}").json() for slug in dealers}
    dag = dagbag.dags[DAG_ID]
    now = datetime.now(UTC).replace(microsecond=0)
    log = Log(control)

    def run(days_ago: int, **conf: Any) -> dict[str, Any]:
        when = now - timedelta(days=days_ago)
        dag_run = run_dag(dag, logical_date=when, run_after=when, conf={"force": True, **conf})
        return snapshot(control, dealers, log, dag_run)

    first = run(4)
    unchanged = run(3)
    changed_vin = truth[HERITAGE]["vins"][0]
    control.post(
        f"/_sandbox/lots/cobalt/{HERITAGE}/update", json={"vin": changed_vin, "fields": {"price": 17_250}}
    ).raise_for_status()
    changed = run(2)
    refreshed = run(1, full_refresh=True)
    yield {
        "control": control,
        "dealers": dealers,
        "truth": truth,
        "first": first,
        "unchanged": unchanged,
        "changed": changed,
        "refreshed": refreshed,
        "changed_vin": changed_vin,
    }
    control.close()


def final(feeds: list[dict[str, Any]], slug: str) -> dict[str, Any]:
    """The last feed request of a dealer in a run (after any retried 429)."""
    return [f for f in feeds if f["dealer_slug"] == slug][-1]


def test_first_run_fetches_every_feed_and_saves_its_etag(runs) -> None:
    dealers, first = runs["dealers"], runs["first"]
    assert set(dealers) == {HERITAGE, "capitol-hyundai", "bluegrass-gmc"}
    assert first["run"].state == "success"
    assert set(first["rows"]) == {d["id"] for d in dealers.values()}
    for slug, dealer in dealers.items():
        row = first["rows"][dealer["id"]]
        lot = runs["truth"][slug]
        assert row["job_id"] == f"{dealer['id']}_cobalt"
        assert row["status"] == "success", (slug, row["errors"])
        assert row["vehicles_found"] == len(lot["vins"]), slug
        assert row["vehicles_processed"] == len(lot["vins"]) - len(lot["invalid_vins"]), slug
        assert row["performance_metrics"]["complete"] is True, slug
        assert row["performance_metrics"]["unchanged"] is False, slug
        request = final(first["feeds"], slug)
        assert (request["status"], request["detail"]["if_none_match"]) == (200, None), slug
        assert first["etags"][dealer["id"]] == request["detail"]["etag"], slug
    # the rate-limited feed answered 429 first and was retried after its Retry-After
    bluegrass = [f["status"] for f in first["feeds"] if f["dealer_slug"] == "bluegrass-gmc"]
    assert bluegrass == [429, 200]
    assert first["rows"][dealers["bluegrass-gmc"]["id"]]["performance_metrics"]["rate_limits_hit"] == 1


def test_data_api_holds_exactly_each_feeds_valid_vehicles(runs) -> None:
    sizes = {}
    for slug in runs["dealers"]:
        lot = runs["truth"][slug]
        vins = set(runs["first"]["stored"][slug])
        assert vins == set(lot["vins"]) - set(lot["invalid_vins"]), slug
        sizes[slug] = len(vins)
    assert sizes == {HERITAGE: 120, "capitol-hyundai": 68, "bluegrass-gmc": 76}


def test_feed_rows_arrive_normalized(runs) -> None:
    seen = {"comma_trim": 0, "unknown_price": 0, "images": 0, "no_vdp": 0, "certified": 0}
    for slug in runs["dealers"]:
        for row in runs["truth"][slug]["vehicles"]:
            sent = runs["first"]["stored"][slug][row["VIN"]]
            assert sent["trim"] == row["Trim"]
            seen["comma_trim"] += "," in row["Trim"]
            if row["SellingPrice"] in ("", "$0.00"):
                assert sent["price"] is None
                seen["unknown_price"] += 1
            else:
                assert sent["price"] == float(row["SellingPrice"].strip("$").replace(",", ""))
            assert sent["mileage"] == int(row["Miles"].replace(",", ""))
            assert sent["images"] == (row["ImageURLs"].split("|") if row["ImageURLs"] else [])
            seen["images"] += len(sent["images"]) > 1
            assert sent["detail_url"] == (row["VDPURL"] or None)
            seen["no_vdp"] += not row["VDPURL"]
            assert sent["condition"] == row["Type"].lower()
            seen["certified"] += sent["condition"] == "certified"
            assert sent["year"] == int(row["Year"])
            assert sent["msrp"] is None if not row["MSRP"] or row["MSRP"] == "$0.00" else sent["msrp"] > 0
    assert all(seen.values()), seen


def test_unchanged_feeds_answer_304_and_nothing_is_sent(runs) -> None:
    first, unchanged = runs["first"], runs["unchanged"]
    assert unchanged["run"].state == "success"
    for slug, dealer in runs["dealers"].items():
        request = final(unchanged["feeds"], slug)
        assert request["detail"]["if_none_match"] == first["etags"][dealer["id"]], slug
        assert request["status"] == 304, slug
        row = unchanged["rows"][dealer["id"]]
        assert row["status"] == "success", slug
        assert (row["vehicles_found"], row["vehicles_processed"]) == (0, 0), slug
        assert row["performance_metrics"]["unchanged"] is True, slug
        assert row["performance_metrics"]["vehicles_sent"] == 0, slug
    assert unchanged["batches"] == []  # not one batch call to the Data API
    assert unchanged["etags"] == first["etags"]
    for slug in runs["dealers"]:
        assert unchanged["stored"][slug] == first["stored"][slug]


def test_a_changed_feed_is_fetched_and_re_sent_alone(runs) -> None:
    dealers, first, changed = runs["dealers"], runs["first"], runs["changed"]
    heritage = dealers[HERITAGE]["id"]
    assert changed["run"].state == "success"
    request = final(changed["feeds"], HERITAGE)
    assert (request["status"], request["detail"]["if_none_match"]) == (200, first["etags"][heritage])
    assert changed["etags"][heritage] == request["detail"]["etag"] != first["etags"][heritage]
    row = changed["rows"][heritage]
    # The whole feed is fetched (the ETag changed), but only the one changed vehicle is sent (delta ingest).
    assert (row["vehicles_found"], row["vehicles_processed"]) == (120, 1)
    assert row["performance_metrics"]["vehicles_unchanged"] == 119
    assert row["performance_metrics"]["unchanged"] is False
    assert {b["dealer_slug"] for b in changed["batches"]} == {HERITAGE}
    assert changed["stored"][HERITAGE][runs["changed_vin"]]["price"] == 17_250
    for slug in ("capitol-hyundai", "bluegrass-gmc"):
        assert final(changed["feeds"], slug)["status"] == 304, slug
        assert changed["rows"][dealers[slug]["id"]]["performance_metrics"]["unchanged"] is True, slug
        assert changed["etags"][dealers[slug]["id"]] == first["etags"][dealers[slug]["id"]], slug


def test_full_refresh_fetches_unconditionally_and_sends_everything(runs) -> None:
    refreshed = runs["refreshed"]
    assert refreshed["run"].state == "success"
    assert all(f["detail"]["if_none_match"] is None for f in refreshed["feeds"])
    found = {slug: refreshed["rows"][d["id"]]["vehicles_processed"] for slug, d in runs["dealers"].items()}
    assert found == {HERITAGE: 120, "capitol-hyundai": 68, "bluegrass-gmc": 76}
    assert {b["dealer_slug"] for b in refreshed["batches"]} == set(runs["dealers"])


def test_a_run_that_changed_the_data_api_emits_the_platforms_asset_event(runs) -> None:
    first, changed = runs["first"], runs["changed"]
    sent = sum(row["vehicles_processed"] for row in first["rows"].values())
    assert sent > 0
    assert first["events"] == [
        (
            "x-od://inventory/cobalt",
            {
                "platform": PLATFORM,
                "dag_id": DAG_ID,
                "run_id": first["run"].run_id,
                "dealers_changed": 3,
                "vehicles_sent": sent,
                "vehicles_delisted": 0,
            },
        )
    ]
    [(uri, extra)] = changed["events"]
    assert (uri, extra["dealers_changed"], extra["vehicles_sent"]) == ("x-od://inventory/cobalt", 1, 1)


def test_a_run_that_changed_nothing_emits_no_event(runs) -> None:
    unchanged = runs["unchanged"]
    assert unchanged["run"].state == "success", "skipping the announcement never fails the run"
    assert unchanged["announce"] == "skipped"
    assert unchanged["events"] == []
