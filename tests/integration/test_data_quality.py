"""Validation with reasons and Data API partial results, end to end (dag.test, real PostgreSQL, sandbox).

The dirty dealer is a clean sandbox lot made dirty through the sandbox's control API, the way a real
feed goes bad: VIN typos (wrong check digit, a dropped character), "$0" and "$1" prices, 0 miles on used
cars, a model year from the future. Every reason is counted exactly.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from od_scheduler.models.vin import vin_problem
from tests.fixtures import run_dag
from tests.integration.test_delta_and_delisting import stored_all
from tests.integration.test_inventory_dealer_com import DAG_ID, history_rows

pytestmark = pytest.mark.integration

SLUG = "bluebonnet-ford"  # 120 vehicles, Ford: North-American VINs, so check digits apply


def flip_check_digit(vin: str) -> str:
    wrong = "0" if vin[8] != "0" else "1"
    return vin[:8] + wrong + vin[9:]


@pytest.fixture
def dirty_dealer(clean: httpx.Client) -> dict[str, Any]:
    dealer = next(d for d in clean.get("/_sandbox/dealers").json()["dealers"] if d["slug"] == SLUG)
    truth = clean.get(f"/_sandbox/truth/dealer.com/{dealer['id']}").json()
    records = {r["vin"]: r for r in truth["records"]}
    na = [v for v in truth["vins"] if v[0] in "12345"]
    used = [v for v in na if records[v]["condition"] == "used" and v not in na[:4]]
    lot = f"/_sandbox/lots/dealer.com/{dealer['id']}"
    for vin in na[:3]:
        clean.post(f"{lot}/revin", json={"vin": vin, "new_vin": flip_check_digit(vin)}).raise_for_status()
    clean.post(f"{lot}/revin", json={"vin": na[3], "new_vin": na[3][:16]}).raise_for_status()
    for vin in used[:2]:
        clean.post(f"{lot}/update", json={"vin": vin, "fields": {"mileage": 0}}).raise_for_status()
    for vin in used[2:4]:
        clean.post(
            f"{lot}/update", json={"vin": vin, "fields": {"price": 0, "sale_price": 0}}
        ).raise_for_status()
    clean.post(
        f"{lot}/update", json={"vin": used[4], "fields": {"price": 1, "sale_price": 1}}
    ).raise_for_status()
    clean.post(f"{lot}/update", json={"vin": used[5], "fields": {"year": 2099}}).raise_for_status()
    return {
        **dealer,
        "zero_miles": used[:2],
        "zero_price": used[2:4],
        "one_dollar": used[4],
        "future": used[5],
    }


def pull(dagbag, dealer: dict[str, Any], **conf: Any) -> dict[str, Any]:
    run = run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer["id"], "force": True, **conf})
    return history_rows(run.run_id)[dealer["id"]]


def test_dirty_records_are_counted_by_reason_and_nothing_is_invented(dagbag, dirty_dealer, clean) -> None:
    row = pull(dagbag, dirty_dealer)
    assert row["status"] == "success"
    metrics = row["performance_metrics"]
    assert metrics["rejects"] == {"invalid_vin_check_digit": 3, "invalid_vin_length": 1}
    assert metrics["warnings"] == {"zero_mileage_used": 2, "implausible_price": 1, "implausible_year": 1}
    assert row["vehicles_found"] == 120
    assert row["vehicles_rejected"] == 4
    assert row["vehicles_processed"] == 116

    sent = {v["vin"]: v for v in stored_all(clean, dirty_dealer)}
    assert len(sent) == 116
    assert all(sent[v]["mileage"] is None for v in dirty_dealer["zero_miles"])
    assert all(sent[v]["price"] is None for v in dirty_dealer["zero_price"])
    assert sent[dirty_dealer["one_dollar"]]["price"] is None
    assert sent[dirty_dealer["future"]]["year"] is None


def test_data_api_rejections_are_partial_success_remembered_and_not_resent(
    dagbag, dirty_dealer, clean
) -> None:
    truth = clean.get(f"/_sandbox/truth/dealer.com/{dirty_dealer['id']}").json()["vins"]
    refused = [v for v in truth if vin_problem(v) is None][-2:]
    clean.put(
        "/_sandbox/data-api/reject-vins", json={"vins": refused, "error": "vehicle is on a recall hold"}
    )
    row = pull(dagbag, dirty_dealer)
    assert row["status"] == "success"
    assert row["vehicles_rejected"] == 4 + 2
    assert row["performance_metrics"]["api_rejects"] == {"vehicle is on a recall hold": 2}

    # The rejections are remembered with their content: not re-sent while it stands, still counted.
    clean.put("/_sandbox/data-api/reject-vins", json={"vins": [], "error": "-"})
    row = pull(dagbag, dirty_dealer)
    assert row["status"] == "success"
    assert row["performance_metrics"]["vehicles_sent"] == 0
    assert row["vehicles_rejected"] == 4 + 2
    assert row["performance_metrics"]["api_rejects"] == {"vehicle is on a recall hold": 2}

    # A change to one of them sends it again; it is accepted now.
    lot = f"/_sandbox/lots/dealer.com/{dirty_dealer['id']}"
    clean.post(f"{lot}/update", json={"vin": refused[0], "fields": {"price": 30999}}).raise_for_status()
    row = pull(dagbag, dirty_dealer)
    assert row["performance_metrics"]["vehicles_sent"] == 1
    assert row["vehicles_rejected"] == 4 + 1
    assert refused[0] in {v["vin"] for v in stored_all(clean, dirty_dealer)}


def test_too_many_data_api_rejections_fail_the_dealer(dagbag, dirty_dealer, clean) -> None:
    truth = clean.get(f"/_sandbox/truth/dealer.com/{dirty_dealer['id']}").json()["vins"]
    valid = [v for v in truth if vin_problem(v) is None]
    clean.put("/_sandbox/data-api/reject-vins", json={"vins": valid[:40], "error": "dealer suspended"})
    row = pull(dagbag, dirty_dealer)
    assert row["status"] == "failed"
    # Measured against the whole lot, pull-side rejects included: 4 + 40 of 120.
    assert "44 of the lot's 120" in row["errors"][-1]
    assert "40 rejected by the Data API {'dealer suspended': 40}" in row["errors"][-1]
    assert "max_reject_fraction 0.2" in row["errors"][-1]
