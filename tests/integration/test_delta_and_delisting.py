"""Issue 6 end to end: delta ingest, delisting, the anomaly guard, and retries that post nothing twice."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures import job_history_conn, run_dag
from tests.integration.test_inventory_dealer_com import DAG_ID, history_rows, stored

pytestmark = pytest.mark.integration

SLUG = "harbor-volkswagen"  # 80 vehicles, clean data, no faults


@pytest.fixture
def dealer(clean: httpx.Client) -> dict[str, Any]:
    dealers = clean.get("/_sandbox/dealers").json()["dealers"]
    return next(d for d in dealers if d["slug"] == SLUG)


def pull(dagbag, dealer: dict[str, Any], **conf: Any):
    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer["id"], "force": True, **conf})
    return run, history_rows(run.run_id)[dealer["id"]]


def batch_requests(sandbox: httpx.Client) -> list[dict]:
    log = sandbox.get("/_sandbox/requests", params={"service": "data_api"}).json()["requests"]
    return [r for r in log if r["path"].endswith("/batch")]


def truth_vins(sandbox: httpx.Client, dealer: dict[str, Any]) -> list[str]:
    return sandbox.get(f"/_sandbox/truth/dealer.com/{dealer['id']}").json()["vins"]


def stored_all(sandbox: httpx.Client, dealer: dict[str, Any]) -> list[dict[str, Any]]:
    params = {"dealer_id": dealer["id"], "source": "dealer.com", "include_delisted": True}
    return sandbox.get("/_sandbox/data-api/vehicles", params=params).json()["vehicles"]


def live(sandbox: httpx.Client, dealer: dict[str, Any]) -> set[str]:
    return {v["vin"] for v in stored_all(sandbox, dealer) if not v["delisted"]}


def test_unchanged_lots_cost_nothing_and_changes_are_sent_alone(dagbag, dealer, clean: httpx.Client) -> None:
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["performance_metrics"]["vehicles_sent"] == len(truth_vins(clean, dealer)) == 80
    assert live(clean, dealer) == set(truth_vins(clean, dealer))

    calls_before = len(batch_requests(clean))
    _, row = pull(dagbag, dealer)
    assert row["performance_metrics"]["vehicles_sent"] == 0
    assert row["performance_metrics"]["vehicles_unchanged"] == 80
    assert len(batch_requests(clean)) == calls_before, "an unchanged lot makes no batch call"

    changed = truth_vins(clean, dealer)[:3]
    for i, vin in enumerate(changed):
        body = {"vin": vin, "fields": {"price": 20001 + i}}
        clean.post(f"/_sandbox/lots/dealer.com/{dealer['id']}/update", json=body).raise_for_status()
    _, row = pull(dagbag, dealer)
    sent = [r for r in batch_requests(clean)[calls_before:]]
    assert row["performance_metrics"]["vehicles_sent"] == 3
    assert sum(r["n_vehicles"] for r in sent) == 3
    prices = {v["vin"]: v["price"] for v in stored(clean, dealer["id"])}
    assert [prices[v] for v in changed] == [20001, 20002, 20003]

    _, row = pull(dagbag, dealer, full_refresh=True)
    assert row["performance_metrics"]["vehicles_sent"] == 80


def test_sold_vehicles_are_delisted_and_come_back(dagbag, dealer, clean: httpx.Client) -> None:
    pull(dagbag, dealer)
    sold = truth_vins(clean, dealer)[:5]
    clean.post(f"/_sandbox/lots/dealer.com/{dealer['id']}/remove", json={"vins": sold}).raise_for_status()
    # The first complete pull without them only counts a miss (delist_after_missing_pulls 2).
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["vehicles_delisted"] == 0
    assert row["performance_metrics"]["vehicles_missing_not_delisted"] == 5
    assert set(sold) <= live(clean, dealer)
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["vehicles_delisted"] == 5
    assert live(clean, dealer) == set(truth_vins(clean, dealer))
    assert {v["vin"] for v in stored_all(clean, dealer) if v["delisted"]} == set(sold)
    with job_history_conn() as db:
        marked = db.execute(
            "SELECT vin FROM vehicle_fingerprints WHERE dealer_id = %s AND delisted_at IS NOT NULL",
            (dealer["id"],),
        ).fetchall()
    assert {r[0] for r in marked} == set(sold)

    # One sale falls through: the VIN is back on the lot and is re-listed (posted again).
    clean.post(
        f"/_sandbox/lots/dealer.com/{dealer['id']}/restore", json={"vins": sold[:1]}
    ).raise_for_status()
    _, row = pull(dagbag, dealer)
    assert row["performance_metrics"]["vehicles_sent"] == 1
    assert row["vehicles_delisted"] == 0
    assert sold[0] in live(clean, dealer)


@pytest.mark.parametrize("remaining", [0, 24], ids=["empty pull", "70% drop"])
def test_an_anomalous_drop_delists_nothing_and_fails_the_dealer(
    dagbag, dealer, clean: httpx.Client, remaining: int
) -> None:
    pull(dagbag, dealer)
    vins = truth_vins(clean, dealer)
    gone = vins[remaining:]
    clean.post(f"/_sandbox/lots/dealer.com/{dealer['id']}/remove", json={"vins": gone}).raise_for_status()
    _, row = pull(dagbag, dealer)
    assert row["status"] == "failed"
    assert row["vehicles_delisted"] == 0
    assert f"inventory anomaly: the pull returned {remaining} vehicles but 80 are live" in row["errors"][-1]
    assert len(live(clean, dealer)) == 80

    _, row = pull(dagbag, dealer, force_delist=True)
    assert row["status"] == "success"
    assert row["vehicles_delisted"] == 80 - remaining
    assert live(clean, dealer) == set(vins[:remaining])


def test_a_crash_between_post_and_fingerprints_reposts_nothing_twice(
    dagbag, dealer, clean: httpx.Client
) -> None:
    # Crash injection: the job-history database refuses the fingerprint write that follows the posts, so
    # the ingest dies after the Data API applied every vehicle and before any fingerprint was recorded.
    with job_history_conn() as db:
        db.execute(
            "CREATE OR REPLACE FUNCTION od_test_crash() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'injected crash after posting'; END $$ LANGUAGE plpgsql"
        )
        db.execute(
            "CREATE TRIGGER od_test_crash BEFORE INSERT OR UPDATE ON vehicle_fingerprints "
            "FOR EACH ROW EXECUTE FUNCTION od_test_crash()"
        )
    try:
        first, row = pull(dagbag, dealer)
    finally:
        with job_history_conn() as db:
            db.execute("DROP TRIGGER od_test_crash ON vehicle_fingerprints")
    assert row["status"] == "failed"
    assert "injected crash after posting" in row["errors"][-1]
    assert len(live(clean, dealer)) == 80, "the vehicles were applied before the crash"
    with job_history_conn() as db:
        count = db.execute(
            "SELECT count(*) FROM vehicle_fingerprints WHERE dealer_id = %s", (dealer["id"],)
        ).fetchone()[0]
    assert count == 0

    # Airflow re-runs the same run (a retry): same batches, same Idempotency-Keys -> replayed, applied once.
    calls = batch_requests(clean)
    run = run_dag(
        dagbag.dags[DAG_ID],
        logical_date=first.logical_date,
        run_after=first.run_after,
        conf={"dealer_id": dealer["id"], "force": True},
    )
    assert run.run_id == first.run_id
    row = history_rows(run.run_id)[dealer["id"]]
    assert row["status"] == "success"
    retried = batch_requests(clean)[len(calls) :]
    assert {r["idempotency_key"] for r in retried} <= {r["idempotency_key"] for r in calls}
    stats = clean.get("/_sandbox/data-api/stats").json()
    assert stats["batches_replayed"] >= 1
    vehicles = stored_all(clean, dealer)
    assert len(vehicles) == len({v["vin"] for v in vehicles}) == 80
    assert all(v["writes"] == 1 for v in vehicles), "each VIN applied exactly once"
