"""DataApiIngestOperator: send a dealer's staged pull to the Open Dealer Data API, as a delta.

The decisions are pure functions in :mod:`od_scheduler.delta`; this operator reads, asks, sends and records.

1. **Delta.** Each staged vehicle's content hash is compared with what the job history knows of its VIN:
   only new, changed or delisted vehicles are sent; unchanged ones are counted (``vehicles_unchanged``) and
   not sent; a vehicle whose exact content the Data API rejected before is not re-sent until it changes,
   and is counted as rejected again. ``full_refresh`` sends everything.
2. **Batches.** Vehicles are sorted by VIN and cut into batches of at most ``ingest_batch_size`` (≤ 500),
   each with a deterministic ``Idempotency-Key`` (run, dealer, platform, position, content, and each
   vehicle's stored state when the delta was computed): a retried task recomputes the same delta against
   the same state and re-sends byte-identical batches under the same keys, so the Data API applies each
   once; a batch computed against other state never replays a stale answer. A 413 splits a batch.
3. **Every answer is reconciled** (:func:`od_scheduler.delta.reconcile`) and recorded batch by batch:
   accepted vehicles get their fingerprint, rejected ones are remembered with their content hash and
   reason. ``success: false`` (nothing applied) fails the dealer at the end of the ingest; an answer that
   does not say what was applied (an error without a VIN, a short ``processed``) records nothing of its
   batch, which is sent again next run. Rejections fail the dealer only when more than
   ``max_reject_fraction`` of its whole lot is rejected, at pull and by the Data API together.
4. **Delisting.** Only after a *full* pull: live fingerprints missing from the pull are delisted (and
   rejections of vehicles that left the lot end). A pull that is empty, or that dropped below
   ``1 - max_drop_fraction`` of the live count, is an *inventory anomaly*: nothing is delisted and the job
   fails naming both counts, unless ``force_delist``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseOperator, Context, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from od_scheduler.clients.data_api import DataApiClient
from od_scheduler.delta import (
    BatchOutcome,
    DeltaPlan,
    Fingerprint,
    idempotency_key,
    lot_size,
    plan_delta,
    reconcile,
    reject_problem,
    standing_rejections,
)
from od_scheduler.exceptions import BatchTooLarge, PayloadError
from od_scheduler.hooks.data_api import DataApiHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.job import IngestResult, JobStatus, PullResult
from od_scheduler.models.vehicle import HASH_VERSION, Vehicle
from od_scheduler.operators.job_tracking import dealer_ref, execution_key, failing_job
from od_scheduler.platforms import get_platform
from od_scheduler.settings import get_settings
from od_scheduler.staging import read_vehicles

#: How many per-VIN API rejections are logged one by one.
MAX_LOGGED_API_ERRORS = 20
DELIST_BATCH = 500

__all__ = ["DataApiIngestOperator", "anomaly", "idempotency_key"]


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


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


def _pull_rejects(pulled: PullResult) -> dict[str, int]:
    """Pull-side rejects by reason (a total without reasons counts as ``rejected``)."""
    if pulled.rejects or not pulled.vehicles_rejected:
        return dict(pulled.rejects)
    return {"rejected": pulled.vehicles_rejected}


@dataclass(frozen=True)
class SentBatch:
    """One batch as posted, with its reconciled answer."""

    position: str
    key: str
    vins: list[str]
    outcome: BatchOutcome


@dataclass
class SendTally:
    """What the batches of one ingest came to (filled in batch by batch)."""

    batches: int = 0
    processed: int = 0
    #: Per-VIN rejections the Data API reported in this run, by reason.
    reported: Counter[str] = field(default_factory=Counter)
    #: One message per batch that failed (``success: false``).
    failed: list[str] = field(default_factory=list)
    batches_unconfirmed: int = 0
    vehicles_unconfirmed: int = 0


class DataApiIngestOperator(BaseOperator):
    """Ingest one dealer's staged pull into the Data API and close its job-history row."""

    template_fields = ("dealer", "pull", "full_refresh", "force_delist")
    ui_color = "#e9f7ef"

    def __init__(
        self,
        *,
        dealer: Any,
        pull: Any,
        platform: str,
        full_refresh: Any = False,
        force_delist: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dealer = dealer
        self.pull = pull
        self.platform = platform
        self.full_refresh = full_refresh
        self.force_delist = force_delist

    def execute(self, context: Context) -> dict[str, Any]:
        platform = get_platform(self.platform)
        ref = dealer_ref(self.dealer)
        key = execution_key(context, ref, platform.id)
        try_number = int(context["ti"].try_number or 1)
        history = JobHistoryHook()

        with failing_job(
            history, key, what="Data API ingest", label=ref.label, try_number=try_number, retries=self.retries
        ):
            if not self.pull:
                raise PayloadError("no pull result to ingest (the pull task returned nothing)")
            pulled = PullResult.model_validate(self.pull)
            started = time.monotonic()
            scope = f"{key.dag_id}|{key.run_id}|{platform.id}|{ref.dealer_id}"
            vehicles = self._read(pulled)
            with DataApiHook().get_client() as client:
                result, metrics, problem = self.ingest(client, history, pulled, vehicles, scope=scope)
            history.progress(
                key,
                processed=result.vehicles_processed,
                rejected=pulled.vehicles_rejected + result.vehicles_rejected,
                delisted=result.vehicles_delisted,
                metrics={"ingest_ms": int((time.monotonic() - started) * 1000), **metrics},
            )
            self.log.info(
                "%s: %d unchanged (not sent), %d still rejected (not sent), sent %d in %d batch(es); "
                "Data API processed %d, rejected %d %s; delisted %d",
                ref.label,
                result.vehicles_unchanged,
                metrics["vehicles_still_rejected"],
                result.vehicles_sent,
                result.batches,
                result.vehicles_processed,
                result.vehicles_rejected,
                result.api_errors or "",
                result.vehicles_delisted,
            )
            if problem:
                raise AirflowFailException(problem)
            if pulled.state and metrics["batches_unconfirmed"]:
                # The Data API did not confirm every batch: keep the old window / ETag, so the next run
                # fetches these vehicles again instead of asking only for what changed after this pull.
                self.log.warning(
                    "%s: %d batch(es) unconfirmed by the Data API; source state (window, ETag) not advanced",
                    ref.label,
                    metrics["batches_unconfirmed"],
                )
            elif pulled.state:
                # Only now is it safe to advance per-source state (e.g. the ETag of this pull).
                history.set_state(pulled.dealer_id, pulled.platform, pulled.state)
            history.finish(key, JobStatus.SUCCESS)
        return result.model_dump(mode="json")

    @staticmethod
    def _read(pulled: PullResult) -> list[Vehicle]:
        vehicles: list[Vehicle] = []
        if pulled.staging_path:
            vehicles = list(read_vehicles(ObjectStoragePath(pulled.staging_path), checksum=pulled.checksum))
        if len(vehicles) != pulled.vehicles_staged:
            raise PayloadError(
                f"staged file holds {len(vehicles)} vehicles but the pull staged {pulled.vehicles_staged}"
            )
        return vehicles

    def ingest(
        self,
        client: DataApiClient,
        history: JobHistoryHook,
        pulled: PullResult,
        vehicles: list[Vehicle],
        *,
        scope: str,
    ) -> tuple[IngestResult, dict[str, Any], str | None]:
        """Send the delta, record every answer, delist; returns (result, metrics, why the dealer fails)."""
        settings = get_settings()
        dealer_id, platform = pulled.dealer_id, pulled.platform
        known = history.fingerprints(dealer_id, platform)
        plan = plan_delta(vehicles, known, hash_version=HASH_VERSION, full_refresh=_flag(self.full_refresh))
        bodies = [v.to_api() for v in plan.send]
        size = settings.ingest_batch_size
        tally = SendTally()
        for start in range(0, len(bodies), size):
            batch = bodies[start : start + size]
            for sent in self._post(client, pulled, plan, batch, position=str(start), scope=scope):
                self._record(history, pulled, plan, sent, tally)
            self.log.info(
                "Ingest %s: %d/%d new or changed vehicle(s) sent, %d processed so far",
                dealer_id,
                min(start + size, len(bodies)),
                len(bodies),
                tally.processed,
            )
        history.touch_seen(dealer_id, platform, [*plan.unchanged, *plan.still_rejected])
        # The Data API holds these vehicles' current content: a rejection of other content is over.
        history.clear_rejections(
            dealer_id, platform, [vin for vin in plan.unchanged if known[vin].rejected_reason is not None]
        )
        outside = standing_rejections(known, plan, complete=pulled.complete, hash_version=HASH_VERSION)
        if plan.still_rejected or outside:
            self.log.info(
                "%d vehicle(s) not re-sent: the Data API rejected their current content before (%s)",
                len(plan.still_rejected) + len(outside),
                dict(Counter([*plan.still_rejected.values(), *outside.values()])),
            )
        api_rejects = tally.reported + Counter(plan.still_rejected.values()) + Counter(outside.values())

        problems: list[str] = []
        if tally.failed:
            problems.append(
                f"{len(tally.failed)} batch(es) failed at the Data API and were not recorded (their vehicles "
                f"are sent again by the next run): {tally.failed[0]}"
            )
        lot = lot_size(known, plan, pull_rejected=pulled.vehicles_rejected, complete=pulled.complete)
        too_many = reject_problem(
            pull_rejects=_pull_rejects(pulled),
            api_rejects=api_rejects,
            lot=lot,
            max_reject_fraction=settings.max_reject_fraction,
        )
        if too_many:
            problems.append(too_many)
        delisted = 0
        if pulled.complete:
            delisted, why = self._delist_gone(client, history, pulled, known, plan)
            if why:
                problems.append(why)
        else:
            self.log.info(
                "Partial or unchanged pull (%s): nothing is delisted",
                "; ".join(pulled.notes) or "not full",
            )
        result = IngestResult(
            dealer_id=dealer_id,
            platform=platform,
            vehicles_sent=len(bodies),
            vehicles_unchanged=len(plan.unchanged),
            vehicles_processed=tally.processed,
            vehicles_rejected=sum(api_rejects.values()),
            vehicles_delisted=delisted,
            batches=tally.batches,
            api_errors=dict(api_rejects),
        )
        stats = client.stats.as_metrics()
        metrics = {
            "vehicles_sent": result.vehicles_sent,
            "vehicles_unchanged": result.vehicles_unchanged,
            "vehicles_still_rejected": len(plan.still_rejected) + len(outside),
            "vehicles_unconfirmed": tally.vehicles_unconfirmed,
            "lot_size": lot,
            "batches": result.batches,
            "batches_failed": len(tally.failed),
            "batches_unconfirmed": tally.batches_unconfirmed,
            "api_rejects": result.api_errors,
            "api_rejects_new": dict(tally.reported),
            "ingest_api_calls": stats["api_calls"],
            "ingest_retries": stats["retries"],
            "ingest_rate_limits_hit": stats["rate_limits_hit"],
        }
        return result, metrics, "; ".join(problems) or None

    def _delist_gone(
        self,
        client: DataApiClient,
        history: JobHistoryHook,
        pulled: PullResult,
        known: Mapping[str, Fingerprint],
        plan: DeltaPlan,
    ) -> tuple[int, str | None]:
        """After a full pull: delist live VINs missing from it, unless that is an anomaly.

        Returns (how many the Data API delisted, why the dealer fails or None).
        """
        settings = get_settings()
        live = {vin for vin, state in known.items() if state.live}
        gone = sorted(live - set(plan.hashes))
        why = anomaly(len(plan.hashes), len(live), settings.max_drop_fraction)
        if why and not _flag(self.force_delist):
            self.log.error(
                "%s; nothing delisted. If the lot really shrank, re-run with force_delist=true", why
            )
            return 0, f"{why}; nothing was delisted (re-run with force_delist=true if real)"
        delisted = self._delist(client, history, pulled, gone) if gone else 0
        # Vehicles that left the lot while rejected: their rejection no longer stands.
        left = [
            vin
            for vin, state in known.items()
            if state.rejected_reason is not None and vin not in plan.hashes
        ]
        history.clear_rejections(pulled.dealer_id, pulled.platform, left)
        return delisted, None

    def _delist(
        self, client: DataApiClient, history: JobHistoryHook, pulled: PullResult, vins: list[str]
    ) -> int:
        """Delist VINs gone from a full pull, in batches; fingerprints marked per accepted batch."""
        total = 0
        for start in range(0, len(vins), DELIST_BATCH):
            chunk = vins[start : start + DELIST_BATCH]
            total += client.delist(dealer_id=pulled.dealer_id, source=pulled.platform, vins=chunk)
            history.mark_delisted(pulled.dealer_id, pulled.platform, chunk)
        self.log.info("Delisted %d vehicle(s) no longer on the lot: %s", total, ", ".join(vins[:20]))
        return total

    def _post(
        self,
        client: DataApiClient,
        pulled: PullResult,
        plan: DeltaPlan,
        batch: list[dict[str, Any]],
        *,
        position: str,
        scope: str,
    ) -> list[SentBatch]:
        """Post one batch and reconcile the answer; on 413 split it in halves and post each (recursively)."""
        key = idempotency_key(scope, position, batch, plan.previous)
        try:
            response = client.post_batch(
                dealer_id=pulled.dealer_id, source=pulled.platform, vehicles=batch, idempotency_key=key
            )
        except BatchTooLarge:
            if len(batch) == 1:
                raise
            half = len(batch) // 2
            self.log.warning("Data API answered 413 for %d vehicles: splitting the batch", len(batch))
            return [
                *self._post(client, pulled, plan, batch[:half], position=f"{position}a", scope=scope),
                *self._post(client, pulled, plan, batch[half:], position=f"{position}b", scope=scope),
            ]
        vins = [str(body["vin"]) for body in batch]
        outcome = reconcile(vins, response, dealer_id=pulled.dealer_id, source=pulled.platform)
        return [SentBatch(position=position, key=key, vins=vins, outcome=outcome)]

    def _record(
        self, history: JobHistoryHook, pulled: PullResult, plan: DeltaPlan, sent: SentBatch, tally: SendTally
    ) -> None:
        """Count and log one reconciled answer; record what it confirmed (accepted and rejected VINs)."""
        outcome = sent.outcome
        tally.batches += 1
        if outcome.failed:
            self.log.error("Batch at position %s (key %s): %s", sent.position, sent.key, outcome.failed)
            tally.failed.append(outcome.failed)
            return
        tally.processed += outcome.processed
        for vin, reason in outcome.rejected.items():
            if sum(tally.reported.values()) < MAX_LOGGED_API_ERRORS:
                self.log.warning("Data API rejected VIN %s: %s", vin, reason)
            tally.reported[reason] += 1
        if outcome.unconfirmed:
            tally.batches_unconfirmed += 1
            tally.vehicles_unconfirmed += len(sent.vins)
            self.log.warning(
                "Batch at position %s (key %s, %d vehicles): no fingerprint written, its vehicles are sent "
                "again next run: %s",
                sent.position,
                sent.key,
                len(sent.vins),
                outcome.unconfirmed,
            )
            return
        history.record_accepted(
            pulled.dealer_id,
            pulled.platform,
            {vin: plan.hashes[vin] for vin in outcome.accepted},
            hash_version=HASH_VERSION,
        )
        history.record_rejected(
            pulled.dealer_id,
            pulled.platform,
            {vin: (plan.hashes[vin], reason) for vin, reason in outcome.rejected.items()},
            hash_version=HASH_VERSION,
        )
