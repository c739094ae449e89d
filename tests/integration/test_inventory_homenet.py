"""inventory_homenet end to end: real Airflow (dag.test), real PostgreSQL, the sandbox transformer over HTTP.

Three runs share one module fixture: a first (full) run, a second run after lot changes that is incremental
(partial: only the vehicles changed since the start of each dealer's last successful pull, minus the
overlap; nothing delisted; one dealer whose history was wiped is pulled in full), and a ``full_refresh``
run. ``full_pull_hours`` is raised for the module so the second run is not a scheduled full pull; the
windows and the cadence across days of runs are tested in ``test_incremental_windows.py``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures import history_rows as fixture_history_rows
from tests.fixtures import job_history_conn, platform_dealers, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_homenet"
PLATFORM = "homenet"
CMS_KEY = {"Authorization": "users API-Key sandbox-cms-key"}
TOKENS_NOT_TO_LOG = ("hn-int-lakeside-7c1e9b", "hn-int-bayview-3f8a2d", "hn-int-northgate-92d4e1")


def homenet_dealers(control: httpx.Client) -> dict[str, dict[str, Any]]:
    """Active homenet dealers from the CMS, by slug."""
    return platform_dealers(control, PLATFORM)


def history_rows(run_id: str) -> dict[str, dict[str, Any]]:
    return fixture_history_rows(DAG_ID, run_id)


def stored(control: httpx.Client, dealer_id: str) -> dict[str, dict[str, Any]]:
    params = {"dealer_id": dealer_id, "source": PLATFORM}
    return {v["vin"]: v for v in control.get("/_sandbox/data-api/vehicles", params=params).json()["vehicles"]}


def request_log(control: httpx.Client, service: str) -> list[dict[str, Any]]:
    return control.get("/_sandbox/requests", params={"service": service}).json()["requests"]


def truth(control: httpx.Client, slug: str) -> dict[str, Any]:
    return control.get(f"/_sandbox/truth/{PLATFORM}/{slug}").json()


class Collect(logging.Handler):
    """Every log record emitted while attached, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def source_state(dealer_id: str) -> dict[str, str]:
    with job_history_conn() as db:
        rows = db.execute(
            "SELECT key, value FROM source_state WHERE dealer_id = %s AND platform = %s",
            (dealer_id, PLATFORM),
        ).fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def runs(dagbag, sandbox: str):
    from od_scheduler.settings import get_settings

    settings = pytest.MonkeyPatch()
    settings.setenv("AIRFLOW__OD_SCHEDULER__FULL_PULL_HOURS", str(24 * 30))
    get_settings.cache_clear()
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions, source_state, dealer_leases, vehicle_fingerprints")
    control = httpx.Client(base_url=sandbox, timeout=30)
    control.post("/_sandbox/reset").raise_for_status()
    dealers = homenet_dealers(control)
    dag = dagbag.dags[DAG_ID]
    now = datetime.now(UTC).replace(microsecond=0)
    logs = Collect()
    root = logging.getLogger()
    root.addHandler(logs)
    try:
        first_date = now - timedelta(days=3)
        first = run_dag(dag, logical_date=first_date, run_after=first_date, conf={"force": True})
        after_first = {
            "rows": history_rows(first.run_id),
            "stored": {slug: stored(control, d["id"]) for slug, d in dealers.items()},
            "requests": request_log(control, PLATFORM),
            "truth": {slug: truth(control, slug) for slug in dealers},
            "state": {slug: source_state(d["id"]) for slug, d in dealers.items()},
        }

        # Between runs: two price changes and a new arrival; one dealer loses its history (no success yet).
        lakeside = after_first["truth"]["lakeside-honda"]["vins"]
        repriced = {lakeside[0]: 19_995, lakeside[1]: 27_450}
        for vin, price in repriced.items():
            control.post(
                "/_sandbox/lots/homenet/lakeside-honda/update", json={"vin": vin, "fields": {"price": price}}
            ).raise_for_status()
        arrivals = control.post("/_sandbox/lots/homenet/bayview-auto-group/add", json={"used": 1}).json()[
            "added"
        ]
        with job_history_conn() as db:
            db.execute(
                "DELETE FROM job_executions WHERE dealer_id = %s", (dealers["twin-rivers-auto"]["id"],)
            )
        mark = len(request_log(control, PLATFORM))

        second_date = now
        second = run_dag(dag, logical_date=second_date, run_after=second_date, conf={"force": True})
        after_second = {
            "rows": history_rows(second.run_id),
            "stored": {slug: stored(control, d["id"]) for slug, d in dealers.items()},
            "requests": request_log(control, PLATFORM)[mark:],
        }
        mark = len(request_log(control, PLATFORM))

        third_date = now - timedelta(days=1)
        third = run_dag(
            dag, logical_date=third_date, run_after=third_date, conf={"force": True, "full_refresh": True}
        )
        after_third = {"rows": history_rows(third.run_id), "requests": request_log(control, PLATFORM)[mark:]}
    finally:
        root.removeHandler(logs)
        settings.undo()
        get_settings.cache_clear()
    yield {
        "control": control,
        "dealers": dealers,
        "first": first,
        "second": second,
        "third": third,
        "after_first": after_first,
        "after_second": after_second,
        "after_third": after_third,
        "repriced": repriced,
        "arrivals": arrivals,
        "logs": logs.lines,
    }
    control.close()


def test_first_run_pulls_every_dealer_in_full_with_one_history_row_each(runs) -> None:
    dealers, rows = runs["dealers"], runs["after_first"]["rows"]
    assert set(dealers) == {"lakeside-honda", "bayview-auto-group", "twin-rivers-auto", "northgate-subaru"}
    assert runs["first"].state == "success"
    assert set(rows) == {d["id"] for d in dealers.values()}
    for slug, dealer in dealers.items():
        row = rows[dealer["id"]]
        lot = runs["after_first"]["truth"][slug]
        assert row["job_id"] == f"{dealer['id']}_homenet", slug
        assert row["status"] == "success", (slug, row["errors"])
        assert row["vehicles_found"] == len(lot["vins"]), slug
        assert row["vehicles_processed"] == len(lot["vins"]) - len(lot["invalid_vins"]), slug
        assert row["vehicles_rejected"] == 0, slug
        assert row["performance_metrics"]["complete"] is True, slug
        assert "since" not in row["performance_metrics"], slug
    assert all(r["detail"]["updated_since"] is None for r in runs["after_first"]["requests"])
    # the faulty rooftop answered 503 first: retried by the client, one row, success
    northgate = [r for r in runs["after_first"]["requests"] if r["dealer_slug"] == "northgate-subaru"]
    assert [r["status"] for r in northgate] == [503, 200]
    assert rows[dealers["northgate-subaru"]["id"]]["performance_metrics"]["retries"] == 1


def test_data_api_holds_exactly_each_rooftops_valid_vehicles(runs) -> None:
    for slug in runs["dealers"]:
        lot = runs["after_first"]["truth"][slug]
        assert set(runs["after_first"]["stored"][slug]) == set(lot["vins"]) - set(lot["invalid_vins"]), slug
    sizes = {slug: len(vehicles) for slug, vehicles in runs["after_first"]["stored"].items()}
    assert sizes == {
        "lakeside-honda": 135,
        "bayview-auto-group": 90,
        "twin-rivers-auto": 45,
        "northgate-subaru": 60,
    }


def test_all_string_fields_arrive_normalized(runs) -> None:
    checked = {"unknown_price": 0, "page": 0, "domain": 0, "certified": 0, "zero_miles": 0}
    for slug in runs["dealers"]:
        for wire in runs["after_first"]["truth"][slug]["vehicles"]:
            sent = runs["after_first"]["stored"][slug][wire["vin"]]
            assert sent["source"] == "homenet"
            assert sent["year"] == int(wire["year"])
            if wire["price"] in ("0", ""):
                assert sent["price"] is None
                checked["unknown_price"] += 1
            else:
                assert sent["price"] == float(wire["price"])
            if wire["miles"] == "0":
                assert sent["mileage"] is None
                checked["zero_miles"] += 1
            else:
                assert sent["mileage"] == int(wire["miles"])
            if wire["dealerurl"].endswith(".htm"):
                assert sent["detail_url"] == wire["dealerurl"]
                checked["page"] += 1
            else:
                assert sent["detail_url"] is None  # the dealer's domain is not a detail page
                checked["domain"] += 1
            expected = (
                "new" if wire["type"] == "New" else "certified" if wire["certified"] == "True" else "used"
            )
            assert sent["condition"] == expected
            checked["certified"] += expected == "certified"
            assert sent["images"] == wire["imagelist"]
            assert sent["description"] == (wire["description"] or None)
            assert sent["source_updated_at"].replace("+00:00", "Z") == wire["datelastmodified"]
    assert all(checked.values()), checked
    assert checked["domain"] > checked["page"]


def test_each_dealer_used_its_own_rooftop_and_its_own_token(runs) -> None:
    for request in runs["after_first"]["requests"]:
        dealer = runs["dealers"][request["dealer_slug"]]
        config = dealer["homenet_config"]
        assert request["detail"]["rooftop"] == config["rooftop_id"]
        expected_owner = dealer["slug"] if config.get("integration_token") else "shared"
        assert request["detail"]["token_owner"] == expected_owner
        assert request["status"] in (200, 503)
    owners = {r["dealer_slug"]: r["detail"]["token_owner"] for r in runs["after_first"]["requests"]}
    assert owners == {
        "lakeside-honda": "lakeside-honda",
        "bayview-auto-group": "bayview-auto-group",
        "northgate-subaru": "northgate-subaru",
        "twin-rivers-auto": "shared",  # no token of its own: the connection's
    }


def test_no_token_value_reaches_a_log_line(runs) -> None:
    lines = runs["logs"]
    assert any("integration token from the dealer's homenet_config" in line for line in lines), lines[-20:]
    assert any("integration token from connection 'od_soap_transformer'" in line for line in lines)
    for token in (*TOKENS_NOT_TO_LOG, "sandbox-homenet-integration", "sandbox-homenet-token"):
        assert not [line for line in lines if token in line], token


def test_second_run_after_updates_is_partial_and_sends_only_the_changes(runs) -> None:
    dealers, rows = runs["dealers"], runs["after_second"]["rows"]
    second = runs["second"]
    assert second.state == "success"
    requests = {r["dealer_slug"]: r for r in runs["after_second"]["requests"] if r["status"] == 200}
    for slug in ("lakeside-honda", "bayview-auto-group", "northgate-subaru"):
        # The window opens at the start of the dealer's last successful pull (run 1), minus the overlap,
        # whatever the second run's own data interval says.
        window_start = datetime.fromisoformat(runs["after_first"]["state"][slug]["window_start"])
        since = window_start - timedelta(minutes=60)
        row = rows[dealers[slug]["id"]]
        assert row["status"] == "success", slug
        assert row["performance_metrics"]["complete"] is False, slug
        assert row["performance_metrics"]["since"] == since.isoformat(), slug
        assert requests[slug]["detail"]["updated_since"] == since.isoformat().replace("+00:00", "Z"), slug
    assert rows[dealers["lakeside-honda"]["id"]]["vehicles_found"] == 2
    assert rows[dealers["bayview-auto-group"]["id"]]["vehicles_found"] == 1
    assert rows[dealers["northgate-subaru"]["id"]]["vehicles_found"] == 0
    # the changes arrived, and nothing was delisted by the partial pulls
    lakeside = runs["after_second"]["stored"]["lakeside-honda"]
    for vin, price in runs["repriced"].items():
        assert lakeside[vin]["price"] == price
    assert set(lakeside) == set(runs["after_first"]["stored"]["lakeside-honda"])
    bayview = runs["after_second"]["stored"]["bayview-auto-group"]
    assert set(bayview) == set(runs["after_first"]["stored"]["bayview-auto-group"]) | set(runs["arrivals"])


def test_a_dealer_without_a_successful_pull_is_pulled_in_full(runs) -> None:
    twin = runs["dealers"]["twin-rivers-auto"]
    row = runs["after_second"]["rows"][twin["id"]]
    assert row["performance_metrics"]["complete"] is True
    assert row["vehicles_found"] == 45
    (request,) = [r for r in runs["after_second"]["requests"] if r["dealer_slug"] == "twin-rivers-auto"]
    assert request["detail"]["updated_since"] is None


def test_full_refresh_reads_whole_rooftops(runs) -> None:
    assert runs["third"].state == "success"
    rows = runs["after_third"]["rows"]
    sizes = {slug: rows[d["id"]]["vehicles_found"] for slug, d in runs["dealers"].items()}
    assert sizes == {
        "lakeside-honda": 135,
        "bayview-auto-group": 91,
        "twin-rivers-auto": 45,
        "northgate-subaru": 60,
    }
    assert all(r["performance_metrics"]["complete"] is True for r in rows.values())
    assert all(r["detail"]["updated_since"] is None for r in runs["after_third"]["requests"])
