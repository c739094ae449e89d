"""One dealer's ingest, decided before it is done: :func:`plan_ingest` and :func:`judge`, pure functions.

The ingest operator reads what the job history knows of the dealer once (its :class:`Fingerprint` rows),
asks :func:`plan_ingest` what to do with the staged vehicles, executes the plan (sends its batches,
records each reconciled answer, writes what the plan says of the VINs it did not send, delists), and asks
:func:`judge` whether the dealer fails, and why, from what the Data API answered. No Airflow, no I/O: the
rules themselves are in :mod:`od_scheduler.delta`; this module puts them together for one ingest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from od_scheduler.delta import (
    DelistPlan,
    DeltaPlan,
    Fingerprint,
    idempotency_key,
    lot_size,
    plan_delisting,
    plan_delta,
    reject_problem,
    standing_rejections,
)
from od_scheduler.models.job import PullResult
from od_scheduler.models.vehicle import Vehicle


@dataclass(frozen=True)
class IngestRules:
    """The settings and run params an ingest decides by."""

    #: At most this many vehicles per batch (``ingest_batch_size``).
    batch_size: int
    #: Consecutive complete pulls a live VIN must miss to be delisted (``delist_after_missing_pulls``).
    after_misses: int
    max_drop_fraction: float
    max_reject_fraction: float
    hash_version: int
    full_refresh: bool = False
    force_delist: bool = False


@dataclass(frozen=True)
class Batch:
    """One batch to post: its position in the dealer's sorted delta, its bodies and its idempotency key."""

    position: str
    bodies: tuple[Mapping[str, Any], ...]
    key: str
    #: How many of the delta's vehicles are sent once this batch is (for progress logs).
    through: int


def make_batch(
    scope: str,
    position: str,
    bodies: Sequence[Mapping[str, Any]],
    previous: Mapping[str, str],
    *,
    through: int,
) -> Batch:
    """A batch with its key (see :func:`od_scheduler.delta.idempotency_key`)."""
    return Batch(
        position=position,
        bodies=tuple(bodies),
        key=idempotency_key(scope, position, bodies, previous),
        through=through,
    )


@dataclass(frozen=True)
class IngestPlan:
    """What one ingest of one dealer's staged pull does, decided from the staged vehicles and the job
    history's fingerprints before anything is sent."""

    dealer_id: str
    platform: str
    #: ``<dag_id>/<run_id>`` and the run scope the idempotency keys cover.
    run: str
    scope: str
    delta: DeltaPlan
    #: The delta's vehicles to send, sorted by VIN, in order.
    batches: tuple[Batch, ...]
    #: VINs not sent but seen in this pull (unchanged, still rejected): their ``last_seen`` moves on.
    seen: tuple[str, ...]
    #: Unchanged VINs with a rejection of other content: the Data API holds their current content, so the
    #: rejection is over.
    rejections_over: tuple[str, ...]
    #: VIN -> reason of rejections that stand for vehicles not in this (partial) pull.
    standing: Mapping[str, str]
    #: How many vehicles the dealer's lot holds (what rejections are measured against).
    lot: int
    #: Pull-side rejects by reason.
    pull_rejects: Mapping[str, int]
    max_reject_fraction: float
    #: Miss counts to reset and count, VINs to delist, and whether the pull is an inventory anomaly.
    delisting: DelistPlan
    #: Rejections of vehicles that left the lot (after a complete pull that is no anomaly): they end.
    rejections_left: tuple[str, ...]

    @property
    def vehicles_sent(self) -> int:
        """How many vehicles the batches hold."""
        return len(self.delta.send)

    @property
    def still_rejected(self) -> Counter[str]:
        """Rejections that stand and are counted again without sending (in this pull, or outside it)."""
        return Counter(self.delta.still_rejected.values()) + Counter(self.standing.values())

    @property
    def anomaly(self) -> str | None:
        """Why this complete pull is an inventory anomaly (nothing counted or delisted), or None."""
        return self.delisting.anomaly

    def api_rejects(self, reported: Mapping[str, int]) -> Counter[str]:
        """Rejections by the Data API, by reason: those it ``reported`` in this run and the standing ones."""
        return Counter(reported) + self.still_rejected

    def split(self, batch: Batch) -> tuple[Batch, Batch]:
        """The halves of a batch the Data API found too large (413), each with its own position and key."""
        half = len(batch.bodies) // 2
        first, second = batch.bodies[:half], batch.bodies[half:]
        previous = self.delta.previous
        return (
            make_batch(self.scope, f"{batch.position}a", first, previous, through=batch.through),
            make_batch(self.scope, f"{batch.position}b", second, previous, through=batch.through),
        )


def _pull_rejects(pulled: PullResult) -> dict[str, int]:
    """Pull-side rejects by reason (a total without reasons counts as ``rejected``)."""
    if pulled.rejects or not pulled.vehicles_rejected:
        return dict(pulled.rejects)
    return {"rejected": pulled.vehicles_rejected}


def plan_ingest(
    pulled: PullResult,
    vehicles: Iterable[Vehicle],
    known: Mapping[str, Fingerprint],
    *,
    rejected_vins: Collection[str] = (),
    scope: str,
    run: str,
    rules: IngestRules,
) -> IngestPlan:
    """Decide one dealer's ingest of its staged ``vehicles`` against what the job history ``known``.

    ``rejected_vins`` are the VINs of records the pull rejected (present on the lot though not staged);
    ``scope`` is what every idempotency key of the run covers, ``run`` (``<dag_id>/<run_id>``) what a miss
    is counted once for.
    """
    delta = plan_delta(vehicles, known, hash_version=rules.hash_version, full_refresh=rules.full_refresh)
    bodies = [v.to_api() for v in delta.send]
    size = rules.batch_size
    batches = tuple(
        make_batch(
            scope,
            str(start),
            bodies[start : start + size],
            delta.previous,
            through=min(start + size, len(bodies)),
        )
        for start in range(0, len(bodies), size)
    )
    present = {*delta.hashes, *rejected_vins}
    delisting = plan_delisting(
        known,
        present,
        run=run,
        complete=pulled.complete,
        after_misses=rules.after_misses,
        max_drop_fraction=rules.max_drop_fraction,
        force=rules.force_delist,
    )
    left: tuple[str, ...] = ()
    if pulled.complete and delisting.anomaly is None:
        left = tuple(
            vin for vin, state in known.items() if state.rejected_reason is not None and vin not in present
        )
    return IngestPlan(
        dealer_id=pulled.dealer_id,
        platform=pulled.platform,
        run=run,
        scope=scope,
        delta=delta,
        batches=batches,
        seen=(*delta.unchanged, *delta.still_rejected),
        rejections_over=tuple(vin for vin in delta.unchanged if known[vin].rejected_reason is not None),
        standing=standing_rejections(known, delta, complete=pulled.complete, hash_version=rules.hash_version),
        lot=lot_size(known, delta, pull_rejected=pulled.vehicles_rejected, complete=pulled.complete),
        pull_rejects=_pull_rejects(pulled),
        max_reject_fraction=rules.max_reject_fraction,
        delisting=delisting,
        rejections_left=left,
    )


@dataclass(frozen=True)
class Verdict:
    """Whether the dealer fails after its ingest: why (``problem``), and the inventory anomaly, if any,
    recorded on its job row as data."""

    problem: str | None = None
    anomaly: str | None = None


def judge(
    plan: IngestPlan,
    *,
    failed_batches: Sequence[str] = (),
    reported: Mapping[str, int] | None = None,
    delist_failed: str | None = None,
) -> Verdict:
    """Why the dealer fails, from the plan and what the Data API answered, or a verdict without a problem.

    ``failed_batches``: one message per batch answered ``success: false``; ``reported``: per-VIN rejections
    the Data API reported in this run, by reason; ``delist_failed``: why delisting stopped, if it did.
    """
    problems: list[str] = []
    if failed_batches:
        problems.append(
            f"{len(failed_batches)} batch(es) failed at the Data API and were not recorded (their vehicles "
            f"are sent again by the next run): {failed_batches[0]}"
        )
    too_many = reject_problem(
        pull_rejects=plan.pull_rejects,
        api_rejects=plan.api_rejects(reported or {}),
        lot=plan.lot,
        max_reject_fraction=plan.max_reject_fraction,
    )
    if too_many:
        problems.append(too_many)
    if plan.anomaly:
        problems.append(f"{plan.anomaly}; nothing was delisted (re-run with force_delist=true if real)")
    if delist_failed:
        problems.append(delist_failed)
    return Verdict(problem="; ".join(problems) or None, anomaly=plan.anomaly)
