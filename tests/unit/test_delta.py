"""The ingest's decisions (od_scheduler.delta): what is sent, how answers are reconciled, what is rejected."""

from __future__ import annotations

from typing import Any

import pytest

from od_scheduler.clients.data_api import BatchResult, DelistResult
from od_scheduler.delta import (
    NEW,
    Fingerprint,
    idempotency_key,
    lot_size,
    plan_delisting,
    plan_delta,
    reconcile,
    reconcile_delist,
    reject_problem,
    standing_rejections,
)
from od_scheduler.models.vehicle import HASH_VERSION, Vehicle
from od_scheduler.models.vin import check_digit
from tests.fingerprints import rejected_content

pytestmark = pytest.mark.unit

DEALER = "d-1"
SOURCE = "dealer.com"


def vin(serial: int) -> str:
    draft = f"1FTFW1E50P{serial:07d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def car(serial: int, **fields: Any) -> Vehicle:
    return Vehicle(vin=vin(serial), dealer_id=DEALER, source=SOURCE, make="Ford", **fields)


def accepted(vehicle: Vehicle, *, live: bool = True, revision: int = 1) -> Fingerprint:
    return Fingerprint(
        content_hash=vehicle.content_hash(), hash_version=HASH_VERSION, live=live, revision=revision
    )


def answer(processed: int, errors: list[dict[str, Any]] | None = None, **over: Any) -> BatchResult:
    body = {
        "success": True,
        "processed": processed,
        "dealer_id": DEALER,
        "source": SOURCE,
        "errors": errors or [],
    }
    return BatchResult.model_validate({**body, **over})


# -- the delta ---------------------------------------------------------------------------------------


def test_new_changed_and_delisted_are_sent_unchanged_are_not() -> None:
    same, changed, gone_back, new = car(1, price=20000), car(2, price=21000), car(3), car(4)
    known = {
        same.vin: accepted(same),
        changed.vin: accepted(car(2, price=25000)),
        gone_back.vin: accepted(gone_back, live=False),
    }
    plan = plan_delta([new, gone_back, changed, same], known, hash_version=HASH_VERSION)
    assert [v.vin for v in plan.send] == sorted([changed.vin, gone_back.vin, new.vin])
    assert plan.unchanged == (same.vin,)
    assert plan.still_rejected == {}
    assert plan.previous[new.vin] == "new"
    assert plan.previous[changed.vin] == known[changed.vin].token


def test_a_rejected_vehicle_is_not_resent_until_its_content_changes() -> None:
    bad = car(1, price=20000)
    known = {bad.vin: rejected_content(bad, "vehicle is on a recall hold")}
    plan = plan_delta([bad], known, hash_version=HASH_VERSION)
    assert plan.send == ()
    assert plan.still_rejected == {bad.vin: "vehicle is on a recall hold"}

    fixed = car(1, price=19000)
    plan = plan_delta([fixed], known, hash_version=HASH_VERSION)
    assert [v.vin for v in plan.send] == [fixed.vin]
    assert plan.still_rejected == {}


def test_a_rejection_of_other_content_does_not_hide_what_the_api_holds() -> None:
    # The API accepted A, rejected B; the source is back at A: nothing to send, nothing rejected.
    a, b = car(1, price=20000), car(1, price=1)
    plan = plan_delta(
        [a], {a.vin: rejected_content(b, "price too low", base=accepted(a))}, hash_version=HASH_VERSION
    )
    assert plan.unchanged == (a.vin,)
    assert plan.still_rejected == {}


def test_full_refresh_sends_everything_including_standing_rejections() -> None:
    same, bad = car(1), car(2)
    known = {same.vin: accepted(same), bad.vin: rejected_content(bad, "no")}
    plan = plan_delta([same, bad], known, hash_version=HASH_VERSION, full_refresh=True)
    assert [v.vin for v in plan.send] == sorted([same.vin, bad.vin])
    assert plan.unchanged == ()
    assert plan.still_rejected == {}


def test_a_new_hash_version_resends_everything() -> None:
    same = car(1)
    old = Fingerprint(content_hash=same.content_hash(), hash_version=HASH_VERSION - 1, live=True, revision=1)
    assert [v.vin for v in plan_delta([same], {same.vin: old}, hash_version=HASH_VERSION).send] == [same.vin]


# -- idempotency keys ------------------------------------------------------------------------------


def key_for(vehicle: Vehicle, known: dict[str, Fingerprint]) -> str:
    plan = plan_delta([vehicle], known, hash_version=HASH_VERSION)
    return idempotency_key("dag|run-1|dealer.com|d-1", "0", [v.to_api() for v in plan.send], plan.previous)


def test_the_same_batch_against_the_same_state_has_the_same_key() -> None:
    v = car(1, price=20000)
    known = {v.vin: accepted(car(1, price=25000), revision=4)}
    assert key_for(v, known) == key_for(v, dict(known))


def test_a_batch_computed_against_other_stored_state_gets_another_key() -> None:
    # Run 1 sent A when the API had B. Later runs changed the vehicle (B -> A -> B ...). Clearing run 1
    # re-sends A: with the content alone its key would be the same, and the API would replay the old answer.
    a, b = car(1, price=20000), car(1, price=25000)
    first = key_for(a, {a.vin: accepted(b, revision=1)})
    assert key_for(a, {}) != first  # the API had nothing
    assert key_for(a, {a.vin: accepted(car(1, price=30000), revision=2)}) != first  # other content
    assert key_for(a, {a.vin: accepted(b, revision=3)}) != first  # same content, after A -> B again
    assert key_for(a, {a.vin: accepted(b, live=False, revision=1)}) != first  # delisted since


# -- reconciling answers ---------------------------------------------------------------------------


def test_a_clean_answer_accepts_every_vehicle() -> None:
    outcome = reconcile([vin(1), vin(2)], answer(2), dealer_id=DEALER, source=SOURCE)
    assert outcome.confirmed
    assert outcome.accepted == (vin(1), vin(2))
    assert outcome.rejected == {}


def test_per_vin_errors_are_matched_after_normalization() -> None:
    errors = [{"vin": f"  {vin(2).lower()} ", "error": "vehicle is on a recall hold"}]
    outcome = reconcile([vin(1), vin(2), vin(3)], answer(2, errors), dealer_id=DEALER, source=SOURCE)
    assert outcome.confirmed
    assert outcome.accepted == (vin(1), vin(3))
    assert outcome.rejected == {vin(2): "vehicle is on a recall hold"}
    assert outcome.reported == {"vehicle is on a recall hold": 1}


def test_success_false_is_a_failed_batch_with_nothing_recorded() -> None:
    errors = [{"vin": None, "error": "dealer is not onboarded"}, {"vin": vin(1), "error": "bad make"}]
    outcome = reconcile([vin(1), vin(2)], answer(0, errors, success=False), dealer_id=DEALER, source=SOURCE)
    assert not outcome.confirmed
    assert outcome.accepted == ()
    assert outcome.rejected == {}
    assert outcome.failed is not None
    assert "success=false" in outcome.failed
    assert "nothing in it was applied" in outcome.failed
    assert "dealer is not onboarded" in outcome.failed


@pytest.mark.parametrize(
    ("errors", "processed", "why"),
    [
        ([{"error": "batch partially applied: database timeout"}], 1, "concerning the whole batch"),
        ([{"vin": "", "error": "internal error"}], 2, "concerning the whole batch"),
        ([{"vin": "1HGCM82633A004352", "error": "bad make"}], 1, "not in the batch"),
        ([], 1, "processed 1 but 2 of 2"),
        ([{"vin": vin(1), "error": "bad make"}], 0, "processed 0 but 1 of 2"),
    ],
    ids=["vin-less error", "blank vin", "unknown vin", "short processed", "short besides a rejection"],
)
def test_an_answer_that_does_not_say_what_was_applied_records_nothing(
    errors: list[dict[str, Any]], processed: int, why: str
) -> None:
    outcome = reconcile([vin(1), vin(2)], answer(processed, errors), dealer_id=DEALER, source=SOURCE)
    assert not outcome.confirmed
    assert outcome.failed is None
    assert outcome.accepted == ()
    assert why in (outcome.unconfirmed or "")


def test_an_answer_about_another_dealer_or_source_records_nothing() -> None:
    for over in ({"dealer_id": "someone-else"}, {"source": "cobalt"}):
        outcome = reconcile([vin(1)], answer(1, **over), dealer_id=DEALER, source=SOURCE)
        assert outcome.accepted == ()
        assert "not 'd-1' / 'dealer.com'" in (outcome.unconfirmed or "")


def test_processed_above_the_non_rejected_count_still_confirms() -> None:
    # Some APIs count rejected records as processed: every non-rejected vehicle was still applied.
    errors = [{"vin": vin(2), "error": "bad make"}]
    outcome = reconcile([vin(1), vin(2)], answer(2, errors), dealer_id=DEALER, source=SOURCE)
    assert outcome.confirmed
    assert outcome.accepted == (vin(1),)


# -- rejections against the whole lot --------------------------------------------------------------


def test_one_rejected_vehicle_in_a_lot_never_fails_the_dealer() -> None:
    # The run that sends only the one changed vehicle, which is rejected: 1 of the lot's 150, not 1 of 1.
    assert (
        reject_problem(pull_rejects={}, api_rejects={"recall": 1}, lot=150, max_reject_fraction=0.2) is None
    )


def test_rejections_over_the_fraction_of_the_lot_fail_the_dealer_naming_both_sides() -> None:
    why = reject_problem(
        pull_rejects={"invalid_vin_check_digit": 4},
        api_rejects={"suspended": 40},
        lot=120,
        max_reject_fraction=0.2,
    )
    assert why is not None
    assert "44 of the lot's 120" in why
    assert "max_reject_fraction 0.2" in why
    assert "{'invalid_vin_check_digit': 4}" in why
    assert "{'suspended': 40}" in why
    assert reject_problem(pull_rejects={"x": 24}, api_rejects={}, lot=120, max_reject_fraction=0.2) is None
    assert reject_problem(pull_rejects={"x": 25}, api_rejects={}, lot=120, max_reject_fraction=0.2)
    assert reject_problem(pull_rejects={}, api_rejects={}, lot=0, max_reject_fraction=0.0) is None


def test_the_lot_of_a_complete_pull_is_what_it_found() -> None:
    cars = [car(i) for i in range(10)]
    known = {car(99).vin: accepted(car(99))}  # gone from the lot: it is delisted, not part of it
    plan = plan_delta(cars, known, hash_version=HASH_VERSION)
    assert lot_size(known, plan, pull_rejected=3, complete=True) == 13


def test_the_lot_of_a_partial_pull_includes_what_the_job_history_knows() -> None:
    changed = [car(1, price=30000)]
    known = {
        **{car(i).vin: accepted(car(i)) for i in range(1, 6)},
        car(7).vin: rejected_content(car(7), "recall"),
        car(8).vin: accepted(car(8), live=False),
    }
    plan = plan_delta(changed, known, hash_version=HASH_VERSION)
    assert lot_size(known, plan, pull_rejected=0, complete=False) == 6  # 1..5 live, 7 rejected
    assert standing_rejections(known, plan, complete=False, hash_version=HASH_VERSION) == {
        car(7).vin: "recall"
    }
    assert standing_rejections(known, plan, complete=True, hash_version=HASH_VERSION) == {}


def test_fingerprint_tokens() -> None:
    assert NEW.token == "new"
    fp = Fingerprint(content_hash="abc", hash_version=1, live=True, revision=7)
    assert fp.token == "abc:1:live:7"
    assert Fingerprint(content_hash="abc", hash_version=1, live=False, revision=8).token == "abc:1:delisted:8"


# -- delisting waits for consecutive misses ------------------------------------------------------------

RUN = "inventory_dealer_com/scheduled__2026-05-01"


def live_lot(n: int, **over: Any) -> dict[str, Fingerprint]:
    return {vin(i): Fingerprint(**{**accepted(car(i)).__dict__, **over}) for i in range(n)}


def decide(known: dict[str, Fingerprint], present: set[str], **over: Any):
    kw: dict[str, Any] = {
        "run": RUN,
        "complete": True,
        "after_misses": 2,
        "max_drop_fraction": 0.5,
        **over,
    }
    return plan_delisting(known, present, **kw)


def test_a_first_miss_is_counted_and_waits_a_second_delists() -> None:
    known = live_lot(10)
    present = {vin(i) for i in range(1, 10)}
    first = decide(known, present)
    assert (first.count, first.delist, dict(first.waiting)) == ((vin(0),), (), {vin(0): 1})

    known[vin(0)] = Fingerprint(**{**known[vin(0)].__dict__, "missing_pulls": 1, "missing_runs": (RUN,)})
    second = decide(known, present, run="inventory_dealer_com/scheduled__2026-05-02")
    assert (second.count, second.delist, dict(second.waiting)) == ((vin(0),), (vin(0),), {})


def test_a_retry_or_re_run_of_the_counting_run_counts_nothing_more() -> None:
    known = live_lot(10, missing_pulls=1, missing_runs=(RUN,))
    again = decide(known, {vin(i) for i in range(1, 10)})
    assert again.count == ()
    assert again.delist == ()
    assert dict(again.waiting) == {vin(0): 1}


def test_setting_one_delists_at_the_first_miss() -> None:
    plan = decide(live_lot(10), {vin(i) for i in range(1, 10)}, after_misses=1)
    assert plan.delist == (vin(0),)


def test_a_vehicle_seen_again_has_its_misses_reset_even_by_a_partial_pull() -> None:
    known = live_lot(4)
    known[vin(2)] = Fingerprint(**{**known[vin(2)].__dict__, "missing_pulls": 1, "missing_runs": (RUN,)})
    for complete in (True, False):
        plan = decide(known, {vin(i) for i in range(4)}, complete=complete)
        assert plan.reset == (vin(2),)
        assert (plan.count, plan.delist) == ((), ())


def test_a_partial_pull_counts_and_delists_nothing() -> None:
    plan = decide(live_lot(10, missing_pulls=5, missing_runs=("x",)), {vin(9)}, complete=False)
    assert (plan.count, plan.delist, dict(plan.waiting), plan.anomaly) == ((), (), {}, None)


@pytest.mark.parametrize("present", [0, 3], ids=["empty pull", "70% drop"])
def test_an_anomaly_counts_nothing_and_force_delist_delists_every_missing_vin_at_once(present: int) -> None:
    known = live_lot(10, missing_pulls=1, missing_runs=("earlier",))
    seen = {vin(i) for i in range(present)}
    plan = decide(known, seen)
    assert plan.anomaly is not None
    assert "inventory anomaly" in plan.anomaly
    assert (plan.count, plan.delist) == ((), ())
    forced = decide(known, seen, force=True)
    assert forced.anomaly is None
    assert forced.delist == tuple(sorted(set(known) - seen))


def test_force_delist_does_not_wait_for_misses() -> None:
    forced = decide(live_lot(10), {vin(i) for i in range(1, 10)}, force=True, after_misses=3)
    assert forced.delist == (vin(0),)


def test_a_rejected_record_with_a_known_vin_is_present_not_missing() -> None:
    known = live_lot(10)
    staged = {vin(i) for i in range(1, 10)}
    plan = decide(known, staged | {vin(0)}, after_misses=1)  # vin(0)'s record was rejected at pull
    assert (plan.count, plan.delist) == ((), ())


def test_delisted_and_never_accepted_vins_are_not_counted() -> None:
    known = {
        vin(0): accepted(car(0), live=False),
        vin(1): rejected_content(car(1), "recall hold"),
        **{vin(i): accepted(car(i)) for i in range(2, 6)},
    }
    plan = decide(known, {vin(i) for i in range(2, 6)}, after_misses=1)
    assert (plan.count, plan.delist) == ((), ())


def test_a_doubtful_delist_makes_a_returning_vehicle_be_sent_again() -> None:
    vehicle = car(1)
    doubtful = Fingerprint(**{**accepted(vehicle).__dict__, "delist_unconfirmed": True})
    plan = plan_delta([vehicle], {vehicle.vin: doubtful}, hash_version=HASH_VERSION)
    assert [v.vin for v in plan.send] == [vehicle.vin]


# -- delist answers ------------------------------------------------------------------------------------


def test_a_full_delist_answer_confirms_the_chunk() -> None:
    outcome = reconcile_delist(3, DelistResult(success=True, delisted=3), dealer_id=DEALER, source=SOURCE)
    assert outcome.confirmed
    assert outcome.delisted == 3


def test_success_false_delists_nothing_and_says_so() -> None:
    outcome = reconcile_delist(3, DelistResult(success=False, delisted=3), dealer_id=DEALER, source=SOURCE)
    assert not outcome.confirmed
    assert outcome.delisted == 0
    assert outcome.failed is not None
    assert "success=false" in outcome.failed
    assert "nothing was delisted" in outcome.failed
    assert DEALER in outcome.failed


def test_a_short_delist_count_confirms_none_of_the_chunk() -> None:
    outcome = reconcile_delist(3, DelistResult(success=True, delisted=2), dealer_id=DEALER, source=SOURCE)
    assert not outcome.confirmed
    assert outcome.failed is None
    assert outcome.short is not None
    assert "delisted 2 of 3" in outcome.short
