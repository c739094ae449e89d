"""The Data API stays true across runs: a car is delisted only after consecutive complete misses, counted
once per DAG run; a rejected record is still on the lot; delist answers are checked (dag.test end to end,
sandbox, real PostgreSQL; a scripted Data API for the delist answers)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures import job_history_conn, run_dag
from tests.integration.test_delta_and_delisting import SLUG, live, truth_vins
from tests.integration.test_inventory_dealer_com import DAG_ID, history_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def dealer(clean: httpx.Client) -> dict[str, Any]:
    dealers = clean.get("/_sandbox/dealers").json()["dealers"]
    return next(d for d in dealers if d["slug"] == SLUG)


def pull(dagbag, dealer: dict[str, Any], **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    conf = {"dealer_id": dealer["id"], "force": True, **kwargs.pop("conf", {})}
    run = run_dag(dagbag.dags[DAG_ID], conf=conf, **kwargs)
    return run, history_rows(run.run_id)[dealer["id"]]


def lot(dealer: dict[str, Any]) -> str:
    return f"/_sandbox/lots/dealer.com/{dealer['id']}"


def misses(dealer: dict[str, Any], vins: list[str]) -> dict[str, tuple[int, bool]]:
    """VIN -> (missing_pulls, delisted in the job history)."""
    with job_history_conn() as db:
        rows = db.execute(
            "SELECT vin, missing_pulls, delisted_at IS NOT NULL FROM vehicle_fingerprints "
            "WHERE dealer_id = %s AND vin = ANY(%s)",
            (dealer["id"], vins),
        ).fetchall()
    return {vin: (n, gone) for vin, n, gone in rows}


def test_a_sold_car_survives_one_miss_a_re_run_does_not_count_twice_and_the_next_run_delists(
    dagbag, dealer, clean: httpx.Client
) -> None:
    pull(dagbag, dealer)
    sold = truth_vins(clean, dealer)[:2]
    clean.post(f"{lot(dealer)}/remove", json={"vins": sold}).raise_for_status()

    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    first, row = pull(dagbag, dealer, logical_date=when)
    assert (row["status"], row["vehicles_delisted"]) == ("success", 0)
    assert misses(dealer, sold) == {vin: (1, False) for vin in sold}
    assert set(sold) <= live(clean, dealer)

    # The same DAG run again (a re-run / retry of it): its miss is already counted.
    again, row = pull(dagbag, dealer, logical_date=when)
    assert again.run_id == first.run_id
    assert (row["status"], row["vehicles_delisted"]) == ("success", 0)
    assert misses(dealer, sold) == {vin: (1, False) for vin in sold}
    assert set(sold) <= live(clean, dealer)

    # Another run misses them too: the second consecutive complete miss delists.
    _, row = pull(dagbag, dealer)
    assert (row["status"], row["vehicles_delisted"]) == ("success", 2)
    assert misses(dealer, sold) == {vin: (2, True) for vin in sold}
    assert live(clean, dealer).isdisjoint(sold)


def test_a_car_missing_once_and_back_is_never_delisted_and_its_count_starts_again(
    dagbag, dealer, clean: httpx.Client
) -> None:
    pull(dagbag, dealer)
    flaky = truth_vins(clean, dealer)[3]
    for _ in range(2):
        clean.post(f"{lot(dealer)}/remove", json={"vins": [flaky]}).raise_for_status()
        _, row = pull(dagbag, dealer)
        assert (row["status"], row["vehicles_delisted"]) == ("success", 0)
        assert misses(dealer, [flaky]) == {flaky: (1, False)}

        clean.post(f"{lot(dealer)}/restore", json={"vins": [flaky]}).raise_for_status()
        _, row = pull(dagbag, dealer)
        assert (row["status"], row["vehicles_delisted"]) == ("success", 0)
        assert row["performance_metrics"]["vehicles_sent"] == 0, "it never left the Data API"
        assert misses(dealer, [flaky]) == {flaky: (0, False)}
    assert flaky in live(clean, dealer)


def test_a_known_vin_whose_record_is_rejected_at_pull_is_present_not_missing(
    dagbag, dealer, clean: httpx.Client
) -> None:
    # A 1979 car with a non-standard VIN is valid (no check digit before 1981) and listed...
    original = truth_vins(clean, dealer)[5]
    old_vin = original[:8] + ("0" if original[8] != "0" else "1") + original[9:]
    clean.post(f"{lot(dealer)}/revin", json={"vin": original, "new_vin": old_vin}).raise_for_status()
    body = {"vin": old_vin, "fields": {"year": 1979}}
    clean.post(f"{lot(dealer)}/update", json=body).raise_for_status()
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert old_vin in live(clean, dealer)

    # ... until a source edit makes it a 2015 car: now its record is rejected at pull, the car still on
    # the lot. Two complete pulls later it is neither counted missing nor delisted.
    body = {"vin": old_vin, "fields": {"year": 2015}}
    clean.post(f"{lot(dealer)}/update", json=body).raise_for_status()
    for _ in range(2):
        _, row = pull(dagbag, dealer)
        assert row["status"] == "success"
        assert row["performance_metrics"]["rejects"] == {"invalid_vin_check_digit": 1}
        assert row["vehicles_delisted"] == 0
        assert misses(dealer, [old_vin]) == {old_vin: (0, False)}
    assert old_vin in live(clean, dealer)


# -- delist answers are checked ------------------------------------------------------------------------


@pytest.fixture
def delist_at_first_miss(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``delist_after_missing_pulls = 1`` for this test (these tests are about the answers, not the wait)."""
    from od_scheduler.settings import get_settings

    monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__DELIST_AFTER_MISSING_PULLS", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_delist_success_false_marks_nothing_delisted_and_fails_the_dealer(
    dagbag, dealer, clean: httpx.Client, scripted, delist_at_first_miss
) -> None:
    pull(dagbag, dealer)  # the real sandbox: 80 live
    sold = truth_vins(clean, dealer)[:3]
    clean.post(f"{lot(dealer)}/remove", json={"vins": sold}).raise_for_status()
    api = scripted(delist=lambda body: {"success": False, "delisted": 0})
    _, row = pull(dagbag, dealer)
    assert [sorted(b["vins"]) for b in api.delists] == [sorted(sold)]
    assert row["status"] == "failed"
    assert row["vehicles_delisted"] == 0
    assert "success=false" in row["errors"][-1]
    assert "nothing was delisted" in row["errors"][-1]
    assert misses(dealer, sold) == {vin: (1, False) for vin in sold}

    # A later run that gets a confirming answer delists them.
    api.delist = lambda body: {"success": True, "delisted": len(body["vins"])}
    _, row = pull(dagbag, dealer)
    assert (row["status"], row["vehicles_delisted"]) == ("success", 3)
    assert {vin for vin, (_, gone) in misses(dealer, sold).items() if gone} == set(sold)


def test_a_short_delisted_count_marks_none_of_the_chunk_and_it_is_sent_again(
    dagbag, dealer, clean: httpx.Client, scripted, delist_at_first_miss
) -> None:
    pull(dagbag, dealer)
    sold = truth_vins(clean, dealer)[:3]
    clean.post(f"{lot(dealer)}/remove", json={"vins": sold}).raise_for_status()
    api = scripted(delist=lambda body: {"success": True, "delisted": len(body["vins"]) - 1})
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["vehicles_delisted"] == 0
    assert row["performance_metrics"]["vehicles_delist_unconfirmed"] == 3
    assert misses(dealer, sold) == {vin: (1, False) for vin in sold}

    api.delist = lambda body: {"success": True, "delisted": len(body["vins"])}
    _, row = pull(dagbag, dealer)
    assert [sorted(b["vins"]) for b in api.delists] == [sorted(sold)] * 2, "sent again next run"
    assert (row["status"], row["vehicles_delisted"]) == ("success", 3)
    assert all(gone for _, gone in misses(dealer, sold).values())
