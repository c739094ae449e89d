"""Dealer.com: a segment that comes back empty after it had vehicles makes the pull partial (no delisting).

Real Airflow (dag.test), real PostgreSQL, the sandbox site over HTTP. The site answers the emptied segment
consistently (``inventory: []``, ``totalCount: 0``), and the vehicles left are well over half the lot, so
neither the pagination guards nor the ingest's drop guard notice anything: only the per-segment counts of
the last complete pull, kept in the source state, do.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fixtures import history_rows, job_history_conn, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_dealer_com"
SLUG = "harbor-volkswagen"  # 30 new / 40 used / 10 certified, clean data, no faults


@pytest.fixture
def dealer(clean: httpx.Client) -> dict[str, Any]:
    dealers = clean.get("/_sandbox/dealers").json()["dealers"]
    return next(d for d in dealers if d["slug"] == SLUG)


def pull(dagbag, dealer: dict[str, Any], **conf: Any) -> dict[str, Any]:
    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer["id"], "force": True, **conf})
    return history_rows(DAG_ID, run.run_id)[dealer["id"]]


def part_counts(dealer: dict[str, Any]) -> dict[str, int] | None:
    with job_history_conn() as db:
        row = db.execute(
            "SELECT value FROM source_state WHERE dealer_id = %s AND platform = 'dealer.com' "
            "AND key = 'part_counts'",
            (dealer["id"],),
        ).fetchone()
    return json.loads(row[0]) if row else None


def live(control: httpx.Client, dealer: dict[str, Any]) -> set[str]:
    params = {"dealer_id": dealer["id"], "source": "dealer.com"}
    return {v["vin"] for v in control.get("/_sandbox/data-api/vehicles", params=params).json()["vehicles"]}


def test_an_emptied_segment_makes_the_pull_partial_and_delists_nothing(
    dagbag, dealer, clean: httpx.Client
) -> None:
    row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["performance_metrics"]["complete"] is True
    baseline = {"auto-new": 30, "auto-certified": 10, "auto-used": 50}
    assert part_counts(dealer) == baseline
    assert len(live(clean, dealer)) == 80

    new = clean.get(f"/_sandbox/truth/dealer.com/{SLUG}").json()["segments"]["auto-new"]
    clean.post(f"/_sandbox/lots/dealer.com/{SLUG}/remove", json={"vins": new}).raise_for_status()
    row = pull(dagbag, dealer)
    assert row["status"] == "success", row["errors"]
    assert row["performance_metrics"]["complete"] is False
    assert row["performance_metrics"]["parts"] == {"auto-new": 0, "auto-certified": 10, "auto-used": 50}
    assert row["vehicles_found"] == 50
    assert row["vehicles_delisted"] == 0
    assert len(live(clean, dealer)) == 80, "nothing delisted from a pull that lost a segment"
    assert part_counts(dealer) == baseline, "a partial pull is no baseline"

    # Someone who knows the new cars really are gone says so: the pull counts as complete and delists.
    row = pull(dagbag, dealer, force_delist=True)
    assert row["status"] == "success"
    assert row["performance_metrics"]["complete"] is True
    assert row["vehicles_delisted"] == 30
    assert live(clean, dealer).isdisjoint(new)
    assert part_counts(dealer) == {"auto-new": 0, "auto-certified": 10, "auto-used": 50}

    # From that baseline an empty auto-new is normal, and its cars coming back are simply listed again.
    clean.post(f"/_sandbox/lots/dealer.com/{SLUG}/restore", json={"vins": new[:5]}).raise_for_status()
    row = pull(dagbag, dealer)
    assert row["performance_metrics"]["complete"] is True
    assert row["vehicles_delisted"] == 0
    assert len(live(clean, dealer)) == 55
    assert part_counts(dealer) == {"auto-new": 5, "auto-certified": 10, "auto-used": 50}


def test_a_pull_that_comes_back_wholly_empty_is_still_the_ingests_anomaly(
    dagbag, dealer, clean: httpx.Client
) -> None:
    pull(dagbag, dealer)
    vins = clean.get(f"/_sandbox/truth/dealer.com/{SLUG}").json()["vins"]
    clean.post(f"/_sandbox/lots/dealer.com/{SLUG}/remove", json={"vins": vins}).raise_for_status()
    row = pull(dagbag, dealer)
    # Not a quiet partial pull: the dealer fails with the anomaly (and alerts), nothing delisted.
    assert row["status"] == "failed"
    assert "inventory anomaly: the pull returned 0 vehicles but 80 are live" in row["errors"][-1]
    assert row["vehicles_delisted"] == 0
    assert len(live(clean, dealer)) == 80
