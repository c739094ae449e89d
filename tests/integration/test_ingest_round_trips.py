"""How often one dealer's ingest goes to the job history: statements and transactions per case, pinned.

Counted on the real store (``tests/round_trips.py`` wraps the hook's PostgreSQL connections) while dag.test
runs the Dealer.com DAG for one 80-vehicle dealer of the sandbox. A change that adds a round trip to every
dealer's ingest fails here, with the statements of the case listed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.test_delta_and_delisting import SLUG, pull, truth_vins
from tests.round_trips import RoundTrips

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
