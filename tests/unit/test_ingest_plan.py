"""One dealer's ingest, planned without I/O: what is sent in which batches under which keys, which VINs are
marked seen, reset, counted and delisted, whether the pull is an anomaly, and why the dealer fails."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from od_scheduler.delta import Fingerprint, idempotency_key
from od_scheduler.ingest_plan import IngestPlan, IngestRules, judge, plan_ingest
from od_scheduler.models.job import PullResult
from od_scheduler.models.vehicle import HASH_VERSION, Vehicle
from od_scheduler.models.vin import check_digit
from tests.fingerprints import rejected_content

pytestmark = pytest.mark.unit

DEALER = "d-1"
SOURCE = "dealer.com"
RUN = "inventory_dealer_com/r1"
SCOPE = f"inventory_dealer_com|r1|{SOURCE}|{DEALER}"


def vin(serial: int) -> str:
    draft = f"1FTFW1E50P{serial:07d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def car(serial: int, **fields: Any) -> Vehicle:
    return Vehicle(vin=vin(serial), dealer_id=DEALER, source=SOURCE, make="Ford", **fields)


def held(vehicle: Vehicle, **over: Any) -> Fingerprint:
    """The Data API holds this vehicle's content, live."""
    return Fingerprint(
        content_hash=vehicle.content_hash(), hash_version=HASH_VERSION, live=True, revision=1, **over
    )


def live(serial: int, **over: Any) -> Fingerprint:
    """A live vehicle whose held content differs from ``car(serial)``."""
    return held(car(serial, model="older"), **over)


def pull(found: int, *, complete: bool = True, rejected: int = 0, **over: Any) -> PullResult:
    return PullResult(
        dealer_id=DEALER,
        platform=SOURCE,
        staging_path=None,
        checksum=None,
        vehicles_found=found,
        vehicles_staged=found - rejected,
        vehicles_rejected=rejected,
        complete=complete,
        **over,
    )


def plan(
    vehicles: list[Vehicle],
    known: dict[str, Fingerprint] | None = None,
    *,
    complete: bool = True,
    rejected: int = 0,
    rejected_vins: tuple[str, ...] = (),
    **rules: Any,
) -> IngestPlan:
    settings: dict[str, Any] = {
        "batch_size": 500,
        "after_misses": 2,
        "max_drop_fraction": 0.5,
        "max_reject_fraction": 0.2,
        "hash_version": HASH_VERSION,
        **rules,
    }
    return plan_ingest(
        pull(len(vehicles) + rejected, complete=complete, rejected=rejected),
        vehicles,
        known or {},
        rejected_vins=rejected_vins,
        scope=SCOPE,
        run=RUN,
        rules=IngestRules(**settings),
    )


# -- what is sent, in which batches, under which keys ----------------------------------------------------
def test_only_new_and_changed_vehicles_are_sent_in_vin_order_and_unchanged_ones_are_marked_seen() -> None:
    same, changed, new = car(1), car(2), car(3)
    p = plan([new, changed, same], {same.vin: held(same), changed.vin: live(2)})
    assert [v.vin for v in p.delta.send] == sorted([changed.vin, new.vin])
    assert p.seen == (same.vin,)
    assert p.vehicles_sent == 2
    assert [[b["vin"] for b in batch.bodies] for batch in p.batches] == [sorted([changed.vin, new.vin])]


def test_batches_are_cut_in_order_each_under_its_key() -> None:
    cars = [car(i) for i in range(5)]
    p = plan(cars, {cars[0].vin: live(0)}, batch_size=2)
    assert [(b.position, b.through, len(b.bodies)) for b in p.batches] == [
        ("0", 2, 2),
        ("2", 4, 2),
        ("4", 5, 1),
    ]
    for batch in p.batches:
        assert batch.key == idempotency_key(SCOPE, batch.position, list(batch.bodies), p.delta.previous)
    assert len({b.key for b in p.batches}) == 3
    # A retry against the same stored state sends the same batches under the same keys.
    assert plan(cars, {cars[0].vin: live(0)}, batch_size=2).batches == p.batches


def test_a_split_batch_gets_a_position_and_key_per_half() -> None:
    p = plan([car(i) for i in range(3)])
    first, second = p.split(p.batches[0])
    assert (first.position, len(first.bodies), second.position, len(second.bodies)) == ("0a", 1, "0b", 2)
    assert first.key == idempotency_key(SCOPE, "0a", list(first.bodies), p.delta.previous)
    assert len({p.batches[0].key, first.key, second.key}) == 3


def test_nothing_to_send_is_no_batch() -> None:
    same = car(1)
    assert plan([same], {same.vin: held(same)}).batches == ()


def test_full_refresh_sends_everything_even_unchanged_and_still_rejected() -> None:
    same, bad = car(1), car(2)
    known = {same.vin: held(same), bad.vin: rejected_content(bad, "bad price")}
    p = plan([same, bad], known, full_refresh=True)
    assert [v.vin for v in p.delta.send] == [same.vin, bad.vin]
    assert (p.seen, p.still_rejected) == ((), Counter())


# -- rejections ------------------------------------------------------------------------------------------
def test_a_rejected_content_is_not_resent_and_counts_as_rejected_again() -> None:
    bad = car(1)
    p = plan([bad, car(2)], {bad.vin: rejected_content(bad, "bad price")})
    assert [v.vin for v in p.delta.send] == [car(2).vin]
    assert p.seen == (bad.vin,)
    assert p.still_rejected == Counter({"bad price": 1})
    assert p.api_rejects({"no photo": 1}) == Counter({"no photo": 1, "bad price": 1})


def test_an_unchanged_vehicle_with_a_rejection_of_other_content_ends_that_rejection() -> None:
    same = car(1)
    p = plan([same], {same.vin: rejected_content(car(1, model="other"), "bad trim", base=held(same))})
    assert p.seen == (same.vin,)
    assert p.rejections_over == (same.vin,)


def test_a_partial_pull_keeps_the_rejections_of_vehicles_it_did_not_see() -> None:
    away, here = car(1), car(2)
    known = {away.vin: rejected_content(away, "bad price"), here.vin: held(here)}
    p = plan([here], known, complete=False)
    assert p.standing == {away.vin: "bad price"}
    assert p.still_rejected == Counter({"bad price": 1})
    assert p.lot == 2, "the lot of a partial pull includes what the job history knows"
    assert p.rejections_left == ()
    assert plan([here], known).standing == {}, "after a complete pull a vehicle absent from it has left"


def test_rejections_fail_the_dealer_only_past_the_fraction_of_the_lot_naming_both_sides() -> None:
    cars = [car(i) for i in range(10)]
    p = plan(cars, rejected=1)
    assert p.lot == 11
    assert judge(p, reported={"no photo": 1}).problem is None
    verdict = judge(p, reported={"no photo": 2})
    assert verdict.problem is not None
    assert verdict.problem.startswith("too many rejected vehicles: 3 of the lot's 11")
    assert "1 rejected at pull {'rejected': 1}, 2 rejected by the Data API {'no photo': 2}" in verdict.problem
    assert verdict.anomaly is None


def test_the_dealer_is_told_every_problem_in_order() -> None:
    p = plan([car(i) for i in range(4)])
    verdict = judge(
        p, failed_batches=["first failure", "second"], reported={"x": 4}, delist_failed="delisting failed: no"
    )
    assert verdict.problem is not None
    parts = verdict.problem.split("; ")
    assert parts[0] == (
        "2 batch(es) failed at the Data API and were not recorded (their vehicles are sent again by the next "
        "run): first failure"
    )
    assert parts[1].startswith("too many rejected vehicles: 4 of the lot's 4")
    assert parts[-1] == "delisting failed: no"
    assert judge(p).problem is None


# -- delisting -------------------------------------------------------------------------------------------
def test_a_missing_live_vin_waits_for_the_delist_threshold() -> None:
    here, gone = car(1), car(2)
    known = {here.vin: held(here), gone.vin: live(2)}
    first = plan([here], known)
    assert (first.delisting.count, first.delisting.delist, dict(first.delisting.waiting)) == (
        (gone.vin,),
        (),
        {gone.vin: 1},
    )
    again = plan([here], {**known, gone.vin: live(2, missing_pulls=1, missing_runs=("dag/r0",))})
    assert again.delisting.delist == (gone.vin,)
    assert plan([here], known, after_misses=1).delisting.delist == (gone.vin,)


def test_a_vehicle_seen_again_or_rejected_at_pull_is_present_and_its_misses_reset() -> None:
    back, refused_at_pull = car(1), car(2)
    known = {back.vin: held(back, missing_pulls=1), refused_at_pull.vin: live(2, missing_pulls=1)}
    p = plan([back], known, rejected=1, rejected_vins=(refused_at_pull.vin,))
    assert p.delisting.reset == (back.vin, refused_at_pull.vin)
    assert (p.delisting.count, p.delisting.delist) == ((), ())


def test_a_partial_pull_counts_and_delists_nothing() -> None:
    here, gone = car(1), car(2)
    p = plan([here], {here.vin: held(here), gone.vin: live(2, missing_pulls=5)}, complete=False)
    assert (p.delisting.count, p.delisting.delist, p.anomaly) == ((), (), None)
    assert judge(p).problem is None


def test_a_complete_pull_ends_the_rejections_of_vehicles_that_left_the_lot() -> None:
    here, left = car(1), car(2)
    p = plan([here], {here.vin: held(here), left.vin: rejected_content(left, "bad price")})
    assert p.rejections_left == (left.vin,)


@pytest.mark.parametrize(("pulled", "anomalous"), [(0, True), (3, True), (5, False)])
def test_an_empty_pull_or_a_drop_past_max_drop_fraction_is_an_anomaly(pulled: int, anomalous: bool) -> None:
    known = {vin(i): live(i) for i in range(10)}
    p = plan([car(i) for i in range(pulled)], known)
    assert (p.anomaly is not None) is anomalous
    if not anomalous:
        assert p.delisting.count == tuple(sorted(vin(i) for i in range(pulled, 10)))
        return
    assert p.anomaly is not None
    assert p.anomaly.startswith(f"inventory anomaly: the pull returned {pulled} vehicles but 10 are live")
    assert (p.delisting.count, p.delisting.delist, p.rejections_left) == ((), (), ())
    verdict = judge(p)
    assert verdict.anomaly == p.anomaly
    assert verdict.problem == f"{p.anomaly}; nothing was delisted (re-run with force_delist=true if real)"


def test_force_delist_delists_every_missing_vin_at_once_anomaly_or_not() -> None:
    known = {vin(i): live(i) for i in range(10)}
    p = plan([car(0)], known, force_delist=True)
    assert p.anomaly is None
    assert p.delisting.delist == tuple(sorted(vin(i) for i in range(1, 10)))
    assert judge(p) == judge(p, reported={})
    assert judge(p).problem is None
