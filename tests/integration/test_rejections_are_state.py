"""Rejections are state, answers are reconciled, keys never replay stale content: dag.test end to end
(sandbox, real PostgreSQL), and the ingest against scripted Data API answers on real job history."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from od_scheduler.models.vin import vin_problem
from tests.fixtures import job_history_conn, run_dag
from tests.integration.test_delta_and_delisting import SLUG, batch_requests, stored_all, truth_vins
from tests.integration.test_inventory_dealer_com import DAG_ID, history_rows

pytestmark = pytest.mark.integration

RECALL = "vehicle is on a recall hold"


@pytest.fixture
def dealer(clean: httpx.Client) -> dict[str, Any]:
    dealers = clean.get("/_sandbox/dealers").json()["dealers"]
    return next(d for d in dealers if d["slug"] == SLUG)


def pull(dagbag, dealer: dict[str, Any], **kwargs: Any):
    conf = {"dealer_id": dealer["id"], "force": True, **kwargs.pop("conf", {})}
    run = run_dag(dagbag.dags[DAG_ID], conf=conf, **kwargs)
    return run, history_rows(run.run_id)[dealer["id"]]


def fingerprint_rows(dealer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    with job_history_conn() as db:
        cur = db.execute("SELECT * FROM vehicle_fingerprints WHERE dealer_id = %s", (dealer["id"],))
        names = [d.name for d in cur.description]
        return {row[names.index("vin")]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def prices(sandbox: httpx.Client, dealer: dict[str, Any]) -> dict[str, Any]:
    return {v["vin"]: v["price"] for v in stored_all(sandbox, dealer)}


def set_price(sandbox: httpx.Client, dealer: dict[str, Any], vin: str, price: int) -> None:
    body = {"vin": vin, "fields": {"price": price}}
    sandbox.post(f"/_sandbox/lots/dealer.com/{dealer['id']}/update", json=body).raise_for_status()


def test_a_rejected_vehicle_is_remembered_counted_and_not_resent_until_it_changes(
    dagbag, dealer, clean: httpx.Client
) -> None:
    refused = truth_vins(clean, dealer)[7]
    clean.put("/_sandbox/data-api/reject-vins", json={"vins": [refused], "error": RECALL}).raise_for_status()
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["vehicles_rejected"] == 1
    assert row["performance_metrics"]["api_rejects"] == {RECALL: 1}
    remembered = fingerprint_rows(dealer)[refused]
    assert remembered["content_hash"] is None, "the Data API never accepted it"
    assert remembered["rejected_reason"] == RECALL
    assert remembered["rejected_hash"]

    # Run 2: nothing changed. Before, its delta was the one rejected vehicle: "1 of 1 rejected" failed the
    # dealer every run until it was held. Now nothing is sent and the rejection still counts.
    calls = len(batch_requests(clean))
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["vehicles_rejected"] == 1
    assert row["performance_metrics"]["vehicles_sent"] == 0
    assert row["performance_metrics"]["vehicles_still_rejected"] == 1
    assert row["performance_metrics"]["api_rejects"] == {RECALL: 1}
    assert len(batch_requests(clean)) == calls, "a standing rejection is not re-sent"

    # Lifting the hold at the Data API does not re-send unchanged content; a change does.
    clean.put("/_sandbox/data-api/reject-vins", json={"vins": [], "error": "-"}).raise_for_status()
    _, row = pull(dagbag, dealer)
    assert (row["performance_metrics"]["vehicles_sent"], row["vehicles_rejected"]) == (0, 1)
    set_price(clean, dealer, refused, 31337)
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["performance_metrics"]["vehicles_sent"] == 1
    assert row["vehicles_rejected"] == 0
    assert prices(clean, dealer)[refused] == 31337
    accepted = fingerprint_rows(dealer)[refused]
    assert accepted["content_hash"] is not None
    assert accepted["rejected_reason"] is None


def test_full_refresh_resends_a_rejected_vehicle_and_leaving_the_lot_ends_its_rejection(
    dagbag, dealer, clean: httpx.Client
) -> None:
    refused = truth_vins(clean, dealer)[3]
    clean.put("/_sandbox/data-api/reject-vins", json={"vins": [refused], "error": RECALL}).raise_for_status()
    pull(dagbag, dealer)
    calls = len(batch_requests(clean))
    _, row = pull(dagbag, dealer, conf={"full_refresh": True})
    assert row["performance_metrics"]["vehicles_sent"] == 80
    assert sum(r["n_vehicles"] for r in batch_requests(clean)[calls:]) == 80
    assert row["vehicles_rejected"] == 1

    clean.post(
        f"/_sandbox/lots/dealer.com/{dealer['id']}/remove", json={"vins": [refused]}
    ).raise_for_status()
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["vehicles_rejected"] == 0
    assert refused not in fingerprint_rows(dealer)


def test_rejections_at_pull_count_against_the_whole_lot(dagbag, dealer, clean: httpx.Client) -> None:
    # One VIN typo (a wrong check digit) in an 80-car lot: counted, never a failure, on every run.
    vins = truth_vins(clean, dealer)
    typo = vins[5][:8] + ("0" if vins[5][8] != "0" else "1") + vins[5][9:]
    lot = f"/_sandbox/lots/dealer.com/{dealer['id']}"
    clean.post(f"{lot}/revin", json={"vin": vins[5], "new_vin": typo}).raise_for_status()
    for _ in range(2):
        _, row = pull(dagbag, dealer)
        assert row["status"] == "success"
        assert row["vehicles_rejected"] == 1
        assert row["performance_metrics"]["rejects"] == {"invalid_vin_check_digit": 1}

    # A lot that is mostly garbage is different: 20 more typos make 21 of 80 (> 20%) rejected at pull.
    for vin in vins[10:30]:
        bad = vin[:8] + ("0" if vin[8] != "0" else "1") + vin[9:]
        clean.post(f"{lot}/revin", json={"vin": vin, "new_vin": bad}).raise_for_status()
    _, row = pull(dagbag, dealer)
    assert row["status"] == "failed"
    assert "21 of the lot's 80" in row["errors"][-1]
    assert "max_reject_fraction 0.2" in row["errors"][-1]


def test_a_non_north_american_vin_with_a_wrong_check_digit_is_rejected_at_pull(
    dagbag, dealer, clean: httpx.Client
) -> None:
    # 49 CFR 565: the check digit is mandatory for every vehicle made for sale in the US, German-built too.
    german = next(v for v in truth_vins(clean, dealer) if v.startswith("W"))
    typo = german[:8] + ("0" if german[8] != "0" else "1") + german[9:]
    assert vin_problem(typo) == "invalid_vin_check_digit"
    lot = f"/_sandbox/lots/dealer.com/{dealer['id']}"
    clean.post(f"{lot}/revin", json={"vin": german, "new_vin": typo}).raise_for_status()
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["performance_metrics"]["rejects"] == {"invalid_vin_check_digit": 1}
    assert row["vehicles_rejected"] == 1
    assert row["performance_metrics"]["vehicles_sent"] == 79
    assert typo not in {v["vin"] for v in stored_all(clean, dealer)}


def test_a_cleared_old_run_sends_its_content_again_instead_of_replaying_a_stale_answer(
    dagbag, dealer, clean: httpx.Client
) -> None:
    vin = truth_vins(clean, dealer)[0]
    pull(dagbag, dealer)
    original = prices(clean, dealer)[vin]
    set_price(clean, dealer, vin, 20001)
    first, row = pull(dagbag, dealer)  # run 1 sends [vin @ 20001] against the original price
    assert row["performance_metrics"]["vehicles_sent"] == 1
    key_1 = batch_requests(clean)[-1]["idempotency_key"]
    set_price(clean, dealer, vin, int(original))
    pull(dagbag, dealer)  # run 2 sends it back: the Data API and the job history hold the original again
    assert prices(clean, dealer)[vin] == original

    # The source goes to 20001 again and someone clears run 1, whose dealer had not finished (its task was
    # killed after the batch was applied: the row says failed, so the clear re-does it): the same batch as
    # run 1 sent, computed against the same content hash. Scoped to the run and content alone, its key
    # would replay run 1's answer without applying it, while the job history recorded 20001 as accepted.
    with job_history_conn() as db:
        db.execute(
            "UPDATE job_executions SET status = 'failed' WHERE run_id = %s AND dealer_id = %s",
            (first.run_id, dealer["id"]),
        )
    set_price(clean, dealer, vin, 20001)
    replayed = clean.get("/_sandbox/data-api/stats").json()["batches_replayed"]
    run, row = pull(dagbag, dealer, logical_date=first.logical_date, run_after=first.run_after)
    assert run.run_id == first.run_id
    assert row["status"] == "success"
    assert row["performance_metrics"]["vehicles_sent"] == 1
    assert batch_requests(clean)[-1]["idempotency_key"] != key_1
    assert clean.get("/_sandbox/data-api/stats").json()["batches_replayed"] == replayed
    assert prices(clean, dealer)[vin] == 20001


# -- scripted Data API answers ---------------------------------------------------------------------


def answer(body: dict[str, Any], *, success: bool = True, processed: int | None = None, errors=()) -> dict:
    n = len(body["vehicles"]) - len(errors) if processed is None else processed
    return {
        "success": success,
        "processed": n,
        "dealer_id": body["dealer_id"],
        "source": body["source"],
        "errors": list(errors),
    }


def test_success_false_fails_the_dealer_and_records_nothing(dagbag, dealer, clean, scripted) -> None:
    api = scripted(
        batch=lambda body: answer(
            body, success=False, processed=0, errors=[{"vin": None, "error": "dealer is suspended"}]
        )
    )
    _, row = pull(dagbag, dealer)
    assert len(api.bodies) == 1
    assert row["status"] == "failed"
    assert "success=false" in row["errors"][-1]
    assert "nothing in it was applied" in row["errors"][-1]
    assert "dealer is suspended" in row["errors"][-1]
    assert row["performance_metrics"]["batches_failed"] == 1
    assert fingerprint_rows(dealer) == {}


def test_a_rerun_after_success_false_sends_under_a_new_key(dagbag, dealer, clean, scripted) -> None:
    """The Data API answers a key it has seen with its first answer: a re-run must not get that failure."""
    from datetime import UTC, datetime

    answers = iter([False, True])
    api = scripted(
        batch=lambda body: answer(body, processed=0, success=False) if not next(answers) else answer(body)
    )
    when = datetime.now(UTC)
    _, row = pull(dagbag, dealer, logical_date=when, run_after=when)
    assert row["status"] == "failed"
    _, row = pull(dagbag, dealer, logical_date=when, run_after=when)  # the same DAG run, cleared
    assert row["status"] == "success", row["errors"]
    assert len(api.keys) == 2
    assert api.keys[0] != api.keys[1]


@pytest.mark.parametrize(
    "script",
    [
        lambda body: answer(body, errors=[{"vin": None, "error": "partially applied: database timeout"}]),
        lambda body: answer(body, processed=len(body["vehicles"]) - 3),
    ],
    ids=["error without a VIN", "short processed"],
)
def test_an_answer_that_does_not_say_what_was_applied_writes_no_fingerprints(
    dagbag, dealer, clean, scripted, script
) -> None:
    api = scripted(batch=script)
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["performance_metrics"]["batches_unconfirmed"] == 1
    assert row["performance_metrics"]["vehicles_unconfirmed"] == 80
    assert fingerprint_rows(dealer) == {}
    with job_history_conn() as db:  # no window / ETag / segment counts advanced past unconfirmed vehicles
        assert db.execute(
            "SELECT count(*) FROM source_state WHERE dealer_id = %s", (dealer["id"],)
        ).fetchone() == (0,)
    _, row = pull(dagbag, dealer)
    assert [len(b["vehicles"]) for b in api.bodies] == [80, 80], "unconfirmed vehicles are sent again"


def test_vins_in_errors_are_matched_after_normalization(dagbag, dealer, clean, scripted) -> None:
    refused = truth_vins(clean, dealer)[2]
    scripted(batch=lambda body: answer(body, errors=[{"vin": f" {refused.lower()} ", "error": RECALL}]))
    _, row = pull(dagbag, dealer)
    assert row["status"] == "success"
    assert row["vehicles_rejected"] == 1
    rows = fingerprint_rows(dealer)
    assert rows[refused]["rejected_reason"] == RECALL
    assert rows[refused]["content_hash"] is None
    assert sum(1 for r in rows.values() if r["content_hash"] is not None) == 79


# -- the job-history side ----------------------------------------------------------------------------


def test_fingerprint_rows_hold_accepted_content_rejections_and_a_revision(clean) -> None:
    from od_scheduler.hooks.job_history import JobHistoryHook

    history, d, p = JobHistoryHook(), "hook-dealer", "dealer.com"
    history.fingerprints.record_accepted(d, p, {"V1": "a"}, hash_version=1)
    history.fingerprints.record_accepted(d, p, {"V1": "b"}, hash_version=1)
    history.fingerprints.mark_delisted(d, p, ["V1"])
    history.fingerprints.record_rejected(
        d, p, {"V1": ("c", "price too low"), "V2": ("x", RECALL)}, hash_version=1
    )
    known = history.fingerprints.for_dealer(d, p)
    assert (known["V1"].content_hash, known["V1"].live, known["V1"].revision) == ("b", False, 3)
    assert known["V1"].rejects("c", 1)
    assert known["V2"].content_hash is None
    assert not known["V2"].live
    assert known["V2"].token == "new"
    assert known["V2"].rejects("x", 1)

    history.fingerprints.mark_delisted(d, p, ["V2"])  # never accepted: nothing to delist, the revision stays
    assert history.fingerprints.for_dealer(d, p)["V2"].revision == 0
    history.fingerprints.record_accepted(
        d, p, {"V1": "c"}, hash_version=1
    )  # accepted now: the rejection ends
    known = history.fingerprints.for_dealer(d, p)
    assert (known["V1"].live, known["V1"].revision, known["V1"].rejected_reason) == (True, 4, None)
    history.fingerprints.clear_rejections(d, p, ["V2"])  # a row that held only a rejection goes
    assert set(history.fingerprints.for_dealer(d, p)) == {"V1"}


def test_the_schema_refuses_a_half_written_rejection(clean) -> None:
    import psycopg

    with job_history_conn() as db, pytest.raises(psycopg.errors.CheckViolation):
        db.execute(
            "INSERT INTO vehicle_fingerprints (dealer_id, platform, vin, rejected_hash) "
            "VALUES ('d', 'p', 'v', 'h')"
        )
