"""How often one dealer's ingest goes to the job history: statements and transactions per case, pinned.

Counted on the real store (``tests/round_trips.py`` wraps the hook's PostgreSQL connections) while dag.test
runs the Dealer.com DAG for one 80-vehicle dealer of the sandbox. A change that adds a round trip to every
dealer's ingest fails here, with the statements of the case listed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures import job_history_conn
from tests.integration.test_delta_and_delisting import SLUG, pull, truth_vins
from tests.round_trips import RoundTrips
from tests.scripted_data_api import accept

pytestmark = pytest.mark.integration

#: (statements, transactions) of one dealer's ingest, from its lease check to its closed job row: one
#: transaction to open (lease, later success, fingerprints), one per batch (its answers, the lease renewed,
#: after the last the plan's marks of the VINs not sent), one per delist chunk, one to close the row.
#: Before they were folded: 89/9, 9/8, 14/11, 11/10, 14/11, 14/11, 9/8 (a statement per accepted VIN).
EXPECTED = {
    "first ingest, all new": (9, 3),
    "no change": (9, 3),
    "3 changed, 5 gone (misses counted)": (11, 3),
    "no change, 5 delisted": (11, 4),
    "4 changed, a 413 splits the batch": (10, 3),
    "4 changed, 2 rejected": (11, 3),
    "no change, 2 still rejected": (9, 3),
}


@pytest.fixture
def dealer(clean: httpx.Client) -> dict[str, Any]:
    dealers = clean.get("/_sandbox/dealers").json()["dealers"]
    return next(d for d in dealers if d["slug"] == SLUG)


def set_prices(sandbox: httpx.Client, dealer: dict[str, Any], vins: list[str], base: int) -> None:
    for i, vin in enumerate(vins):
        body = {"vin": vin, "fields": {"price": base + i}}
        sandbox.post(f"/_sandbox/lots/dealer.com/{dealer['id']}/update", json=body).raise_for_status()


def test_round_trips_of_one_dealers_ingest(
    dagbag, dealer, clean: httpx.Client, count_ingest_round_trips: dict[str, list[RoundTrips]]
) -> None:
    vins = truth_vins(clean, dealer)
    measured: dict[str, RoundTrips] = {}

    def ingest(case: str, *, sent: int, **conf: Any) -> dict[str, Any]:
        _, row = pull(dagbag, dealer, **conf)
        assert row["status"] == "success", row["errors"]
        assert row["performance_metrics"]["vehicles_sent"] == sent, case
        measured[case] = count_ingest_round_trips[dealer["id"]][-1]
        return row

    ingest("first ingest, all new", sent=80)
    ingest("no change", sent=0)

    set_prices(clean, dealer, vins[:3], 20001)
    clean.post(
        f"/_sandbox/lots/dealer.com/{dealer['id']}/remove", json={"vins": vins[-5:]}
    ).raise_for_status()
    row = ingest("3 changed, 5 gone (misses counted)", sent=3)
    assert row["performance_metrics"]["vehicles_missing_not_delisted"] == 5
    row = ingest("no change, 5 delisted", sent=0)
    assert row["vehicles_delisted"] == 5

    set_prices(clean, dealer, vins[3:7], 30001)
    clean.put(
        "/_sandbox/faults/data_api", json={"first_n_of_every": [1, 1000], "status_code": 413}
    ).raise_for_status()
    row = ingest("4 changed, a 413 splits the batch", sent=4)
    clean.delete("/_sandbox/faults/data_api").raise_for_status()
    assert row["performance_metrics"]["batches"] == 2, "the 413 split the batch in two halves"

    refused = vins[7:9]
    clean.put(
        "/_sandbox/data-api/reject-vins", json={"vins": refused, "error": "recall hold"}
    ).raise_for_status()
    set_prices(clean, dealer, vins[7:11], 40001)
    row = ingest("4 changed, 2 rejected", sent=4)
    assert row["vehicles_rejected"] == 2
    row = ingest("no change, 2 still rejected", sent=0)
    assert row["performance_metrics"]["vehicles_still_rejected"] == 2

    figures = {case: counter.as_pair() for case, counter in measured.items()}
    print("\n".join(f"{case}: {s} statements, {t} transactions" for case, (s, t) in figures.items()))
    for case, counter in measured.items():
        print(f"--- {case}\n" + "\n".join(counter.log))
    assert figures == EXPECTED


def test_an_answer_is_recorded_even_when_the_lease_is_lost_while_it_was_sent(
    dagbag, dealer, clean: httpx.Client, scripted
) -> None:
    # The lease renewal travels with the record of the batch's answer; losing the lease must not lose the
    # answer (the Data API applied it): it is committed, then the ingest refuses to go on.
    def steal_lease_then_accept(body: dict[str, Any]) -> dict[str, Any]:
        with job_history_conn() as db:
            db.execute(
                "UPDATE dealer_leases SET dag_id = 'other_dag', run_id = 'backfill__other', "
                "expires_at = now() + interval '1 hour' WHERE dealer_id = %s",
                (dealer["id"],),
            )
        return accept(body)

    api = scripted(batch=steal_lease_then_accept)
    _, row = pull(dagbag, dealer)
    assert len(api.bodies) == 1
    assert row["status"] == "failed"
    assert "no longer holds the dealer's lease" in row["errors"][-1]
    assert "run_id backfill__other" in row["errors"][-1]
    with job_history_conn() as db:
        recorded = db.execute(
            "SELECT count(*) FROM vehicle_fingerprints WHERE dealer_id = %s AND content_hash IS NOT NULL",
            (dealer["id"],),
        ).fetchone()[0]
        db.execute("DELETE FROM dealer_leases WHERE dealer_id = %s", (dealer["id"],))
    assert recorded == 80, "the answer that arrived before the lease was found lost is recorded"


def test_operations_in_one_transaction_are_committed_together_or_not_at_all(clean) -> None:
    from od_scheduler.hooks.job_history import JobHistoryHook

    history, d, p = JobHistoryHook(reuse_connections=True), "tx-dealer", "dealer.com"

    def write_then_crash() -> None:
        with history.transaction():
            history.fingerprints.record_answer(d, p, {"V1": "a"}, {"V2": ("b", "recall")}, hash_version=1)
            history.fingerprints.touch_seen(d, p, ["V1"])
            raise RuntimeError("crash before the end of the transaction")

    try:
        with pytest.raises(RuntimeError, match="crash before the end"):
            write_then_crash()
        assert history.fingerprints.for_dealer(d, p) == {}

        with history.transaction():
            history.fingerprints.record_answer(d, p, {"V1": "a"}, {"V2": ("b", "recall")}, hash_version=1)
            with history.transaction():  # nested: the outer transaction holds
                history.fingerprints.record_pull(d, p, seen=["V1"], missing=["V1"], run="dag/r1")
            with job_history_conn() as other:
                seen_outside = other.execute(
                    "SELECT count(*) FROM vehicle_fingerprints WHERE dealer_id = %s", (d,)
                ).fetchone()[0]
        assert seen_outside == 0, "nothing is visible before the transaction ends"
        known = history.fingerprints.for_dealer(d, p)
        assert (known["V1"].content_hash, known["V1"].missing_pulls) == ("a", 1)
        assert (known["V2"].rejected_hash, known["V2"].rejected_reason) == ("b", "recall")
    finally:
        history.close()
