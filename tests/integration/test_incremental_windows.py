"""HomeNet change windows and full-pull cadence across days of runs: real Airflow (dag.test), real
PostgreSQL, the sandbox transformer over HTTP.

Runs follow each other one logical day apart while the sandbox lot changes between them. The logical dates
lie a few days *ahead* of the wall clock, where the sandbox stamps its changes (``datelastmodified``):
a pull that asked for the changes since its own data interval would ask for a time after every change and
get none of them, which is exactly how gaps were lost for good.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from od_scheduler.clients.homenet import since_param
from tests.fixtures import history_rows, job_history_conn, platform_dealers, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_homenet"
PLATFORM = "homenet"
DAY = timedelta(days=1)
OVERLAP = timedelta(minutes=60)  # the default incremental_overlap_minutes


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set ``[od_scheduler]`` keys for this test (tasks run in this process and read them at pull time)."""
    from od_scheduler.settings import get_settings

    def apply(**values: Any) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"AIRFLOW__OD_SCHEDULER__{key.upper()}", str(value))
        get_settings.cache_clear()

    yield apply
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def days() -> Any:
    """Logical dates one day apart, starting three days after now (see the module docstring).

    Taken from the clock, so every test has run ids of its own (dag.test() re-runs an existing run id).
    """
    base = datetime.now(UTC).replace(microsecond=0) + 3 * DAY
    return lambda n: base + n * DAY


def dealer(control: httpx.Client, slug: str) -> dict[str, Any]:
    return platform_dealers(control, PLATFORM)[slug]


def run(dagbag, when: datetime, dealer_id: str, **conf: Any):
    """One inventory_homenet run for one dealer at logical date ``when``."""
    return run_dag(
        dagbag.dags[DAG_ID], logical_date=when, run_after=when, conf={"dealer_id": dealer_id, **conf}
    )


def state(dealer_id: str) -> dict[str, str]:
    with job_history_conn() as db:
        rows = db.execute(
            "SELECT key, value FROM source_state WHERE dealer_id = %s AND platform = %s",
            (dealer_id, PLATFORM),
        ).fetchall()
    return dict(rows)


def requests(control: httpx.Client, slug: str) -> list[dict[str, Any]]:
    log = control.get("/_sandbox/requests", params={"service": PLATFORM, "dealer": slug}).json()
    return log["requests"]


def asked_since(control: httpx.Client, slug: str, mark: int) -> list[str | None]:
    """``updatedSince`` of every answered transform request since ``mark``."""
    return [r["detail"]["updated_since"] for r in requests(control, slug)[mark:] if r["status"] == 200]


def stored(control: httpx.Client, dealer_id: str, *, include_delisted: bool = False) -> dict[str, Any]:
    params = {"dealer_id": dealer_id, "source": PLATFORM, "include_delisted": include_delisted}
    vehicles = control.get("/_sandbox/data-api/vehicles", params=params).json()["vehicles"]
    return {v["vin"]: v for v in vehicles}


def reprice(control: httpx.Client, slug: str, vin: str, price: int) -> None:
    control.post(
        f"/_sandbox/lots/{PLATFORM}/{slug}/update", json={"vin": vin, "fields": {"price": price}}
    ).raise_for_status()


def lot_vins(control: httpx.Client, slug: str) -> list[str]:
    truth = control.get(f"/_sandbox/truth/{PLATFORM}/{slug}").json()
    return [v for v in truth["vins"] if v not in set(truth["invalid_vins"])]


def window_since(window_start: str) -> str:
    """``updatedSince`` a pull sends for a stored ``window_start``."""
    return since_param(datetime.fromisoformat(window_start) - OVERLAP)


def test_no_gap_is_lost_failed_skipped_and_unsaved_runs_are_fetched_later(
    dagbag, clean: httpx.Client, settings, days
) -> None:
    settings(full_pull_hours=24 * 30)  # keep every run after the first incremental
    slug = "lakeside-honda"
    lakeside = dealer(clean, slug)
    vins = lot_vins(clean, slug)

    before_first = datetime.now(UTC).replace(microsecond=0)
    first = run(dagbag, days(0), lakeside["id"], force=True)
    assert first.state == "success"
    assert asked_since(clean, slug, 0) == [None]  # the first pull is full
    pulled = state(lakeside["id"])

    # Gap 1: the run fails for the dealer (the rooftop answers 500) while a vehicle changes.
    reprice(clean, slug, vins[0], 11_111)
    clean.put(f"/_sandbox/faults/{slug}", json={"status_code": 500}).raise_for_status()
    failed = run(dagbag, days(1), lakeside["id"], force=True)
    clean.delete(f"/_sandbox/faults/{slug}").raise_for_status()
    assert history_rows(DAG_ID, failed.run_id)[lakeside["id"]]["status"] == "failed"

    # Gap 2: another run holds the dealer's lease, so this run skips it.
    reprice(clean, slug, vins[1], 22_222)
    with job_history_conn() as db:
        db.execute(
            "INSERT INTO dealer_leases (dealer_id, platform, dag_id, run_id, expires_at) "
            "VALUES (%s, %s, %s, 'manual__another-run', now() + interval '1 hour')",
            (lakeside["id"], PLATFORM, DAG_ID),
        )
    skipped = run(dagbag, days(2), lakeside["id"], force=True)
    with job_history_conn() as db:
        db.execute("DELETE FROM dealer_leases WHERE run_id = 'manual__another-run'")
    assert history_rows(DAG_ID, skipped.run_id)[lakeside["id"]]["status"] == "skipped"

    # Gap 3: the pull works but the Data API is down, so the ingest fails and nothing may advance.
    reprice(clean, slug, vins[2], 33_333)
    unsaved_mark = len(requests(clean, slug))
    clean.put("/_sandbox/faults/data_api", json={"status_code": 500}).raise_for_status()
    unsaved = run(dagbag, days(3), lakeside["id"], force=True)
    clean.delete("/_sandbox/faults/data_api").raise_for_status()
    assert history_rows(DAG_ID, unsaved.run_id)[lakeside["id"]]["status"] == "failed"
    assert state(lakeside["id"]) == pulled, "no failed, skipped or unsaved run moved the window"

    # The next good run gets every change of the three gaps...
    before_last = datetime.now(UTC).replace(microsecond=0)
    last = run(dagbag, days(4), lakeside["id"], force=True)
    assert last.state == "success"
    prices = {vin: v["price"] for vin, v in stored(clean, lakeside["id"]).items()}
    assert [prices[v] for v in vins[:3]] == [11_111, 22_222, 33_333]
    assert len(prices) == len(vins), "a partial pull delists nothing"
    row = history_rows(DAG_ID, last.run_id)[lakeside["id"]]
    assert row["status"] == "success"
    assert row["performance_metrics"]["complete"] is False
    assert row["vehicles_found"] == 3

    # ...because it (and the unsaved run before it) asked from the start of run 1's pull minus the overlap.
    window = datetime.fromisoformat(pulled["window_start"])
    assert before_first <= window <= datetime.now(UTC)
    assert asked_since(clean, slug, unsaved_mark) == [window_since(pulled["window_start"])] * 2
    assert row["performance_metrics"]["since"] == (window - OVERLAP).isoformat()
    # Only now does the window move: to the start of this run's pull. The cadence stays where it was.
    after = state(lakeside["id"])
    assert before_last <= datetime.fromisoformat(after["window_start"]) <= datetime.now(UTC)
    assert (after["full_pull_at"], after["full_pull_run"]) == (pulled["full_pull_at"], first.run_id)


def test_a_dealer_that_was_not_due_gets_the_changes_of_the_days_it_was_skipped(
    dagbag, clean: httpx.Client, settings, days
) -> None:
    settings(full_pull_hours=24 * 30)
    slug = "bayview-auto-group"  # CMS interval 1440 min
    bayview = dealer(clean, slug)
    first = run(dagbag, days(0), bayview["id"], force=True)
    assert first.state == "success"
    pulled = state(bayview["id"])

    vin = lot_vins(clean, slug)[0]
    reprice(clean, slug, vin, 44_444)
    arrivals = clean.post(f"/_sandbox/lots/{PLATFORM}/{slug}/add", json={"used": 1}).json()["added"]
    not_due = run(dagbag, days(1), bayview["id"])
    assert not_due.state == "success"
    assert bayview["id"] not in history_rows(DAG_ID, not_due.run_id), "its interval had not passed"
    assert state(bayview["id"]) == pulled

    # A day later on the wall clock (the history says so), the dealer is due again.
    with job_history_conn() as db:
        db.execute(
            "UPDATE job_executions SET start_time = start_time - interval '1 day', "
            "end_time = end_time - interval '1 day' WHERE dealer_id = %s",
            (bayview["id"],),
        )
    mark = len(requests(clean, slug))
    due = run(dagbag, days(2), bayview["id"])
    assert history_rows(DAG_ID, due.run_id)[bayview["id"]]["status"] == "success"
    now_stored = stored(clean, bayview["id"])
    assert now_stored[vin]["price"] == 44_444
    assert set(arrivals) <= set(now_stored)
    assert asked_since(clean, slug, mark) == [window_since(pulled["window_start"])]


def test_a_full_pull_comes_at_the_cadence_and_delists_the_sold_car(
    dagbag, clean: httpx.Client, settings, days
) -> None:
    settings(full_pull_hours=48)
    slug = "twin-rivers-auto"
    twin = dealer(clean, slug)
    vins = lot_vins(clean, slug)
    sold, repriced = vins[0], vins[1]

    first = run(dagbag, days(0), twin["id"], force=True)
    first_row = history_rows(DAG_ID, first.run_id)[twin["id"]]
    assert first_row["performance_metrics"]["complete"] is True

    clean.post(f"/_sandbox/lots/{PLATFORM}/{slug}/remove", json={"vins": [sold]}).raise_for_status()
    reprice(clean, slug, repriced, 55_555)

    # One day of data-interval time later: incremental. The change arrives; the sale cannot be seen.
    mark = len(requests(clean, slug))
    second = run(dagbag, days(1), twin["id"], force=True)
    row = history_rows(DAG_ID, second.run_id)[twin["id"]]
    assert (row["status"], row["performance_metrics"]["complete"], row["vehicles_delisted"]) == (
        "success",
        False,
        0,
    )
    assert asked_since(clean, slug, mark) != [None]
    assert stored(clean, twin["id"])[repriced]["price"] == 55_555
    assert sold in stored(clean, twin["id"]), "a partial pull never delists"
    assert state(twin["id"])["full_pull_at"] == first.data_interval_end.isoformat()

    # Two days after the last full pull: full again and complete. Its first complete miss only counts
    # (delist_after_missing_pulls 2): the sold car is still listed.
    mark = len(requests(clean, slug))
    third = run(dagbag, days(2), twin["id"], force=True)
    row = history_rows(DAG_ID, third.run_id)[twin["id"]]
    assert asked_since(clean, slug, mark) == [None]
    assert row["status"] == "success"
    assert row["performance_metrics"]["complete"] is True
    assert row["vehicles_delisted"] == 0
    assert row["performance_metrics"]["vehicles_missing_not_delisted"] == 1
    assert stored(clean, twin["id"])[sold]["delisted"] is False
    after_full = state(twin["id"])
    assert (after_full["full_pull_at"], after_full["full_pull_run"]) == (
        third.data_interval_end.isoformat(),
        third.run_id,
    )

    # A re-run (a clear) of that run leaves the dealer alone: it succeeded in that run, and a clear re-does
    # only the dealers that did not. (Were it pulled again, plan_window would pull in full, as that run did:
    # tests/unit/operators/test_pull_windows.py.)
    mark = len(requests(clean, slug))
    rerun = run(dagbag, days(2), twin["id"], force=True)
    assert rerun.run_id == third.run_id
    assert asked_since(clean, slug, mark) == []
    assert state(twin["id"]) == after_full, "nothing moved"

    # The next day is incremental again, and an old backfill date neither pulls in full nor moves the
    # cadence back: it asks from the last successful pull like any run.
    mark = len(requests(clean, slug))
    before_fourth = state(twin["id"])
    fourth = run(dagbag, days(3), twin["id"], force=True)
    assert history_rows(DAG_ID, fourth.run_id)[twin["id"]]["performance_metrics"]["complete"] is False
    latest = state(twin["id"])
    old = run(dagbag, days(-20), twin["id"], force=True)
    assert history_rows(DAG_ID, old.run_id)[twin["id"]]["status"] == "success"
    assert asked_since(clean, slug, mark) == [
        window_since(before_fourth["window_start"]),
        window_since(latest["window_start"]),
    ]
    final = state(twin["id"])
    assert (final["full_pull_at"], final["full_pull_run"]) == (
        after_full["full_pull_at"],
        after_full["full_pull_run"],
    )
    assert final["window_start"] >= latest["window_start"]

    # The next full pull (48 h of data-interval time after the last) misses the sold car again: its
    # second consecutive complete miss delists it. (The re-run and the incremental runs counted nothing.)
    assert stored(clean, twin["id"])[sold]["delisted"] is False
    later = run(dagbag, days(4), twin["id"], force=True)
    row = history_rows(DAG_ID, later.run_id)[twin["id"]]
    assert (row["status"], row["performance_metrics"]["complete"], row["vehicles_delisted"]) == (
        "success",
        True,
        1,
    )
    assert stored(clean, twin["id"], include_delisted=True)[sold]["delisted"] is True
