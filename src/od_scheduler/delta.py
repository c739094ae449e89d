"""The ingest's decisions, as pure functions: what to send, how each Data API answer is reconciled, what
counts as rejected, and when rejections are too many.

No Airflow, no I/O: the ingest operator reads the staged vehicles and the job history, asks these
functions, and does what they say: :func:`plan_delta`, :func:`idempotency_key`, :func:`reconcile`,
:func:`reject_problem`, :func:`anomaly`, :func:`plan_delisting`, :func:`reconcile_delist`. Each rule and
why it is so: docs/design.md, "Ingest".
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from od_scheduler.clients.data_api import BatchResult, DelistResult
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.models.vin import normalize_vin

#: A rejection reason is stored as the Data API worded it, up to this many characters.
MAX_REASON_CHARS = 500
#: How many error texts a failure or unconfirmed-batch message quotes.
MAX_QUOTED_ERRORS = 3


@dataclass(frozen=True)
class Fingerprint:
    """What the job history knows of one (dealer, platform, VIN).

    ``content_hash``/``hash_version`` are the last version the Data API accepted (``None``: it never
    accepted one); ``live`` is false once delisted. ``revision`` grows with every change of what the Data
    API holds (accepted, re-listed, delisted), so a state that went A -> B -> A is still told apart.
    ``rejected_*`` is the last content the Data API rejected and why (``None``: no standing rejection).
    """

    content_hash: str | None = None
    hash_version: int | None = None
    live: bool = False
    revision: int = 0
    rejected_hash: str | None = None
    rejected_hash_version: int | None = None
    rejected_reason: str | None = None
    #: Consecutive complete pulls (distinct runs) that missed this live VIN, and the runs counted.
    missing_pulls: int = 0
    missing_runs: tuple[str, ...] = ()
    #: A delist of this VIN was answered with a short count: the Data API may no longer advertise it.
    delist_unconfirmed: bool = False

    def holds(self, content_hash: str, hash_version: int) -> bool:
        """The Data API has this exact content live (not in doubt after an unconfirmed delist)."""
        return (
            self.live
            and not self.delist_unconfirmed
            and self.content_hash == content_hash
            and self.hash_version == hash_version
        )

    def rejects(self, content_hash: str, hash_version: int) -> bool:
        """This exact content was rejected by the Data API and has not changed since."""
        return (
            self.rejected_reason is not None
            and self.rejected_hash == content_hash
            and self.rejected_hash_version == hash_version
        )

    @property
    def token(self) -> str:
        """The stored state this vehicle's batch was computed against (part of its idempotency key)."""
        if self.content_hash is None:
            return "new"
        return (
            f"{self.content_hash}:{self.hash_version}:{'live' if self.live else 'delisted'}:{self.revision}"
        )


NEW = Fingerprint()


@dataclass(frozen=True)
class DeltaPlan:
    """What one ingest does with a dealer's staged vehicles."""

    #: New, changed or delisted vehicles, by VIN (every staged vehicle on ``full_refresh``).
    send: tuple[Vehicle, ...]
    #: VINs whose exact content the Data API holds live: not sent, marked seen.
    unchanged: tuple[str, ...]
    #: VIN -> reason: this exact content was rejected before; not sent, counted as rejected again.
    still_rejected: Mapping[str, str]
    #: VIN -> content hash of every staged vehicle.
    hashes: Mapping[str, str]
    #: VIN -> :attr:`Fingerprint.token` of every vehicle to send, as the job history had it.
    previous: Mapping[str, str]


def plan_delta(
    vehicles: Iterable[Vehicle],
    known: Mapping[str, Fingerprint],
    *,
    hash_version: int,
    full_refresh: bool = False,
) -> DeltaPlan:
    """Decide, for each staged vehicle, whether it is sent, unchanged or still rejected."""
    ordered = sorted(vehicles, key=lambda v: v.vin)
    hashes = {v.vin: v.content_hash() for v in ordered}
    send: list[Vehicle] = []
    unchanged: list[str] = []
    still_rejected: dict[str, str] = {}
    for vehicle in ordered:
        state = known.get(vehicle.vin, NEW)
        content = hashes[vehicle.vin]
        if not full_refresh and state.holds(content, hash_version):
            unchanged.append(vehicle.vin)
        elif not full_refresh and state.rejects(content, hash_version):
            still_rejected[vehicle.vin] = state.rejected_reason or "rejected by the Data API"
        else:
            send.append(vehicle)
    previous = {v.vin: known.get(v.vin, NEW).token for v in send}
    return DeltaPlan(
        send=tuple(send),
        unchanged=tuple(unchanged),
        still_rejected=still_rejected,
        hashes=hashes,
        previous=previous,
    )


def idempotency_key(
    scope: str, position: str, vehicles: Sequence[Mapping[str, Any]], previous: Mapping[str, str]
) -> str:
    """Stable key for one batch: same run scope, position, bodies and stored state -> same key.

    ``previous`` maps each VIN to the state the job history had for it when the delta was computed
    (:attr:`Fingerprint.token`); a VIN missing from it counts as new.
    """
    digest = hashlib.sha256(scope.encode())
    digest.update(b"\x00" + position.encode())
    for vehicle in vehicles:
        digest.update(b"\x00" + json.dumps(vehicle, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\x00" + previous.get(str(vehicle.get("vin")), NEW.token).encode())
    return "od-" + digest.hexdigest()[:48]


@dataclass(frozen=True)
class BatchOutcome:
    """One Data API answer, reconciled with the batch that was sent."""

    sent: int
    processed: int
    #: VINs the Data API accepted: fingerprint them (empty unless the batch is confirmed).
    accepted: tuple[str, ...] = ()
    #: VIN -> reason of each per-VIN rejection the answer reported (empty when the batch failed).
    #: Counted in this run; remembered only when the batch is confirmed.
    rejected: Mapping[str, str] = field(default_factory=dict)
    #: Set when the batch failed (``success: false``): nothing in it was applied.
    failed: str | None = None
    #: Set when the answer does not say what was applied: nothing of the batch is recorded.
    unconfirmed: str | None = None

    @property
    def confirmed(self) -> bool:
        """The answer says exactly what was applied: record ``accepted`` and ``rejected``."""
        return self.failed is None and self.unconfirmed is None

    @property
    def reported(self) -> Counter[str]:
        """The per-VIN rejections, by reason."""
        return Counter(self.rejected.values())


def _quote(errors: Sequence[str]) -> str:
    shown = "; ".join(errors[:MAX_QUOTED_ERRORS])
    more = len(errors) - MAX_QUOTED_ERRORS
    return shown + (f"; and {more} more" if more > 0 else "")


def reconcile(sent_vins: Sequence[str], result: BatchResult, *, dealer_id: str, source: str) -> BatchOutcome:
    """What a batch answer means for the vehicles sent (see the module docstring)."""
    sent = set(sent_vins)
    rejected: dict[str, str] = {}
    whole_batch: list[str] = []
    for error in result.errors:
        vin = normalize_vin(error.vin)
        reason = (error.error.strip() or "rejected without a reason")[:MAX_REASON_CHARS]
        if vin is None:
            whole_batch.append(reason)
        elif vin not in sent:
            whole_batch.append(f"{reason} (names VIN {vin}, which was not in the batch)")
        else:
            rejected.setdefault(vin, reason)
    base: dict[str, Any] = {"sent": len(sent_vins), "processed": result.processed}
    if not result.success:
        texts = [*whole_batch, *(f"{vin}: {why}" for vin, why in rejected.items())]
        return BatchOutcome(
            **base,
            failed=(
                f"the Data API answered success=false for a batch of {len(sent_vins)} vehicle(s): nothing in "
                f"it was applied ({_quote(texts) or 'no error given'})"
            ),
        )
    if result.dealer_id != dealer_id or result.source != source:
        why = (
            f"the answer is about dealer {result.dealer_id!r} / source {result.source!r}, "
            f"not {dealer_id!r} / {source!r}"
        )
        return BatchOutcome(**base, rejected=rejected, unconfirmed=why)
    if whole_batch:
        why = f"error(s) concerning the whole batch: {_quote(whole_batch)}"
        return BatchOutcome(**base, rejected=rejected, unconfirmed=why)
    expected = len(sent) - len(rejected)
    if result.processed < expected:
        why = (
            f"the Data API processed {result.processed} but {expected} of {len(sent_vins)} vehicle(s) "
            f"were not rejected: it does not say which were applied"
        )
        return BatchOutcome(**base, rejected=rejected, unconfirmed=why)
    accepted = tuple(vin for vin in sent_vins if vin not in rejected)
    return BatchOutcome(**base, accepted=accepted, rejected=rejected)


def standing_rejections(
    known: Mapping[str, Fingerprint], plan: DeltaPlan, *, complete: bool, hash_version: int
) -> dict[str, str]:
    """VIN -> reason of rejections that still stand for vehicles *not* in this pull.

    Only a pull that is not complete (partial, or unchanged at the source) leaves vehicles out that are
    still on the lot; after a complete pull a vehicle absent from it has left, and so has its rejection.
    """
    if complete:
        return {}
    return {
        vin: state.rejected_reason
        for vin, state in known.items()
        if state.rejected_reason is not None
        and state.rejected_hash_version == hash_version
        and vin not in plan.hashes
    }


def lot_size(
    known: Mapping[str, Fingerprint],
    plan: DeltaPlan,
    *,
    pull_rejected: int,
    complete: bool,
) -> int:
    """How many vehicles the dealer's lot holds, as far as this pull and the job history tell.

    A complete pull is the whole lot: what it staged plus what it rejected. A partial or unchanged pull
    holds only changes, so the lot is also every vehicle the job history knows as live or rejected.
    """
    if complete:
        return len(plan.hashes) + pull_rejected
    on_lot = set(plan.hashes) | {
        vin for vin, state in known.items() if state.live or state.rejected_reason is not None
    }
    return len(on_lot) + pull_rejected


def reject_problem(
    *,
    pull_rejects: Mapping[str, int],
    api_rejects: Mapping[str, int],
    lot: int,
    max_reject_fraction: float,
) -> str | None:
    """Why this dealer fails for rejections, or ``None``: only when more than ``max_reject_fraction`` of
    the whole lot is rejected, at pull and by the Data API together."""
    at_pull = sum(pull_rejects.values())
    by_api = sum(api_rejects.values())
    total = at_pull + by_api
    if lot <= 0 or total <= max_reject_fraction * lot:
        return None
    return (
        f"too many rejected vehicles: {total} of the lot's {lot} ({100 * total / lot:.0f}%, more than "
        f"max_reject_fraction {max_reject_fraction:g}): {at_pull} rejected at pull {dict(pull_rejects)}, "
        f"{by_api} rejected by the Data API {dict(api_rejects)}"
    )


def anomaly(pulled: int, live: int, max_drop_fraction: float) -> str | None:
    """Why a full pull of ``pulled`` vehicles must not delist from ``live`` ones, or None."""
    if live == 0:
        return None
    if pulled == 0:
        return f"inventory anomaly: the pull returned 0 vehicles but {live} are live at the Data API"
    floor = (1 - max_drop_fraction) * live
    if pulled < floor:
        return (
            f"inventory anomaly: the pull returned {pulled} vehicles but {live} are live at the Data API "
            f"(a {100 * (1 - pulled / live):.0f}% drop; max_drop_fraction {max_drop_fraction:g})"
        )
    return None


@dataclass(frozen=True)
class DelistPlan:
    """What one pull means for the miss counts and delisting of a dealer's live VINs."""

    #: Present VINs whose miss count is above 0: reset it.
    reset: tuple[str, ...] = ()
    #: Live VINs missing from this complete pull whose miss this run has not counted yet: count it.
    count: tuple[str, ...] = ()
    #: VINs to delist now (their misses reached the threshold, or ``force_delist``).
    delist: tuple[str, ...] = ()
    #: VIN -> misses so far, of missing live VINs not delisted yet (below the threshold).
    waiting: Mapping[str, int] = field(default_factory=dict)
    #: Set when the pull is an inventory anomaly: nothing counted, nothing delisted, the dealer fails.
    anomaly: str | None = None


def plan_delisting(
    known: Mapping[str, Fingerprint],
    present: Iterable[str],
    *,
    run: str,
    complete: bool,
    after_misses: int,
    max_drop_fraction: float,
    force: bool = False,
) -> DelistPlan:
    """Decide resets, counted misses and delistings for one pull (see the module docstring).

    ``present``: VINs the pull staged or rejected with a readable VIN. ``run`` names the DAG run
    (``<dag_id>/<run_id>``): a run already in a VIN's :attr:`Fingerprint.missing_runs` counts nothing more.
    """
    seen = set(present)
    reset = tuple(sorted(vin for vin in seen if vin in known and known[vin].missing_pulls > 0))
    if not complete:
        return DelistPlan(reset=reset)
    live = {vin for vin, state in known.items() if state.live}
    gone = sorted(live - seen)
    why = anomaly(len(seen), len(live), max_drop_fraction)
    if force:
        return DelistPlan(reset=reset, delist=tuple(gone))
    if why:
        return DelistPlan(reset=reset, anomaly=why)
    count: list[str] = []
    delist: list[str] = []
    waiting: dict[str, int] = {}
    for vin in gone:
        state = known[vin]
        misses = state.missing_pulls
        if run not in state.missing_runs:
            count.append(vin)
            misses += 1
        if misses >= after_misses:
            delist.append(vin)
        else:
            waiting[vin] = misses
    return DelistPlan(reset=reset, count=tuple(count), delist=tuple(delist), waiting=waiting)


@dataclass(frozen=True)
class DelistOutcome:
    """One delist answer, reconciled with the chunk of VINs sent."""

    sent: int
    delisted: int
    #: Set when the Data API answered ``success: false``: nothing was delisted, the dealer fails.
    failed: str | None = None
    #: Set when ``delisted`` is short of the VINs sent: it does not say which; none is marked delisted.
    short: str | None = None

    @property
    def confirmed(self) -> bool:
        """Every VIN of the chunk is delisted at the Data API: mark them delisted."""
        return self.failed is None and self.short is None


def reconcile_delist(sent: int, result: DelistResult, *, dealer_id: str, source: str) -> DelistOutcome:
    """What a delist answer means for the ``sent`` VINs of its chunk (see the module docstring)."""
    if not result.success:
        return DelistOutcome(
            sent=sent,
            delisted=0,
            failed=(
                f"the Data API answered success=false to delisting {sent} vehicle(s) of dealer {dealer_id} "
                f"({source}): nothing was delisted; they stay live and are delisted by a later run"
            ),
        )
    if result.delisted < sent:
        return DelistOutcome(
            sent=sent,
            delisted=result.delisted,
            short=(
                f"the Data API delisted {result.delisted} of {sent} vehicle(s) sent for dealer {dealer_id} "
                f"({source}) without saying which: none is marked delisted, the next complete pull sends "
                "them again"
            ),
        )
    return DelistOutcome(sent=sent, delisted=sent)
