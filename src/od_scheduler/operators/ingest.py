"""DataApiIngestOperator: send a dealer's staged pull to the Open Dealer Data API, as a delta.

Decide, then act: the operator reads what the job history knows of the dealer once, asks
:func:`od_scheduler.ingest_plan.plan_ingest` for the whole plan (batches and their keys, VINs to mark seen,
to reset, count and delist, whether the pull is an anomaly), executes it (sends, records each answer,
delists), and asks :func:`od_scheduler.ingest_plan.judge` whether the dealer fails. The rules are pure
functions in :mod:`od_scheduler.delta`.

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
4. **Delisting** (:func:`od_scheduler.delta.plan_delisting`). A VIN the pull staged, or whose record it
   rejected (the staged file names those VINs), is present: its miss count is reset. After a *complete*
   pull each live VIN missing from it counts one miss, once per DAG run (a retry or re-run of the run
   counts nothing more), and is delisted once it missed ``delist_after_missing_pulls`` consecutive complete
   pulls (rejections of vehicles that left the lot end at the first miss). A pull that is empty, or that
   dropped below ``1 - max_drop_fraction`` of the live count, is an *inventory anomaly*: nothing is counted
   or delisted and the job fails naming both counts (the anomaly is recorded in the job row's ``anomaly``),
   unless ``force_delist``, which delists every missing VIN at once. A partial pull counts and delists
   nothing.
5. **Delist answers are checked** (:func:`od_scheduler.delta.reconcile_delist`): ``success: false`` marks
   nothing delisted, stops delisting and fails the dealer; a ``delisted`` count short of the chunk marks
   none of the chunk delisted (sent again by the next complete pull) and is logged.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from airflow.sdk import BaseOperator, Context, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

from od_scheduler.alert_rules import dealer_deadline_s
from od_scheduler.clients.data_api import DataApiClient
from od_scheduler.delta import BatchOutcome, DeltaPlan, Fingerprint, reconcile, reconcile_delist
from od_scheduler.exceptions import BatchTooLarge, PayloadError
from od_scheduler.hooks.data_api import DataApiHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.ingest_plan import Batch, IngestPlan, IngestRules, Verdict, judge, plan_ingest
from od_scheduler.models.job import (
    DealerRef,
    IngestResult,
    JobExecution,
    JobStatus,
    PullResult,
    RunParams,
    Shard,
)
from od_scheduler.models.vehicle import HASH_VERSION, Vehicle
from od_scheduler.operators.ingest_feed import StagedFeed, runs_in_process, sibling_state
from od_scheduler.operators.job_tracking import (
    DealerLease,
    InventoryAnomaly,
    execution_key,
    failing_job,
    stale_pull,
    ti_max_tries,
)
from od_scheduler.operators.shard import (
    DealerState,
    NothingToDo,
    ShardFailed,
    ShardLogMixin,
    finish_shard,
    run_dealers,
)
from od_scheduler.platforms import get_platform
from od_scheduler.settings import get_settings
from od_scheduler.staging import StagedPull, read_staged

#: Dealers an ingest task works on per Data API slot it holds. A dealer's ingest spends most of its time
#: on the job history and its staged file, not on the Data API: while the task's ``pool_slots`` requests
#: are in flight (never more, see ``_api_slot``), other dealers get their delta ready.
PREPARED_PER_SLOT = 4
#: How many per-VIN API rejections are logged one by one.
MAX_LOGGED_API_ERRORS = 20
DELIST_BATCH = 500

__all__ = ["DataApiIngestOperator"]


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


@dataclass
class DelistTally:
    """What the delisting step of one ingest came to."""

    #: VINs the Data API confirmed delisted (and marked so).
    delisted: int = 0
    #: Live VINs missing from this complete pull, not delisted yet (their misses are below the threshold).
    waiting: int = 0
    #: VINs sent to delist whose answer came short: not marked delisted, sent again next complete pull.
    unconfirmed: int = 0
    #: Why delisting stopped (``success: false``), or None.
    problem: str | None = None


class DataApiIngestOperator(ShardLogMixin, BaseOperator):
    """Ingest the staged pulls of a shard's dealers into the Data API, ``pool_slots`` dealers at once, and
    close each dealer's job-history row.

    What each dealer's pull staged is read from its row (``pull_result``), so a dealer whose pull succeeded
    is ingested even when another dealer of the shard failed its pull; a dealer done earlier in this run,
    or with nothing staged in this run, is left as it is.
    """

    template_fields = ("shard",)
    ui_color = "#e9f7ef"

    def __init__(self, *, shard: Any, platform: str, pull_task_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard = shard
        self.platform = platform
        #: The shard's pull task, which this task runs beside (its dealers are ingested as they are staged,
        #: see :mod:`od_scheduler.operators.ingest_feed`). None: the pull has ended before this task runs
        #: (it is upstream of it).
        self.pull_task_id = pull_task_id
        #: The run's params, parsed once per task (read-only while the dealers' threads run).
        self.params_of_run = RunParams()
        #: At most ``pool_slots`` Data API requests in flight from this task (None: unbounded, outside a
        #: shard run).
        self._api_slots: threading.BoundedSemaphore | None = None

    def _api_slot(self) -> threading.BoundedSemaphore | contextlib.nullcontext[None]:
        """Hold one of the task's Data API slots for one request."""
        return self._api_slots if self._api_slots is not None else contextlib.nullcontext()

    def execute(self, context: Context) -> dict[str, Any]:
        shard = Shard.load(self.shard, self.platform)
        self.params_of_run = RunParams.of(context["params"])
        platform = get_platform(self.platform)
        history = JobHistoryHook(reuse_connections=True)
        hook = DataApiHook()
        self._api_slots = threading.BoundedSemaphore(self.pool_slots)
        workers = self.pool_slots * PREPARED_PER_SLOT
        try:
            feed = StagedFeed(
                shard.dealers,
                read_rows=partial(
                    history.executions.shard_rows, context["dag"].dag_id, context["run_id"], platform.id
                ),
                pull_state=partial(self._pull_state, context),
                workers=workers,
                reschedules=int(context.get("task_reschedule_count") or 0),
                stop_after_s=(self.execution_timeout.total_seconds() / 2 if self.execution_timeout else None),
                in_process=runs_in_process(),
            )
            outcomes = run_dealers(
                feed,
                lambda ref: self.ingest_dealer(context, ref, history, hook, feed.row(ref.dealer_id)),
                in_flight=workers,
                log=self.log,
                what="Data API ingest",
                deadline_s=dealer_deadline_s(platform.id),
                on_end=lambda outcome: feed.finished(failed=outcome.state == DealerState.FAILED),
            )
        finally:
            history.close()
        if feed.reschedule_at is None:
            return finish_shard(outcomes, what="Data API ingest", log=self.log)
        try:
            finish_shard(outcomes, what="Data API ingest", log=self.log)
        except AirflowFailException as err:
            # The pull still stages dealers this task must come back for: even a permanent failure of one
            # dealer is retried (the retry re-does only the dealers not ingested in this run).
            raise ShardFailed(f"{err} ({len(feed.waiting)} dealer(s) not staged yet)") from err
        self.log.info(
            "%d dealer(s) of this shard not staged yet and %s: this task lets its %s slot go and comes "
            "back at %s",
            len(feed.waiting),
            feed.reason,
            self.pool,
            feed.reschedule_at.isoformat(timespec="seconds"),
        )
        raise AirflowRescheduleException(feed.reschedule_at)

    def _pull_state(self, context: Context) -> str | None:
        """The Airflow state of this shard's pull task in this run ("success" when it is upstream)."""
        return "success" if self.pull_task_id is None else sibling_state(context, self.pull_task_id)

    def ingest_dealer(
        self,
        context: Context,
        ref: DealerRef,
        history: JobHistoryHook,
        hook: DataApiHook,
        row: JobExecution | None,
    ) -> dict[str, Any]:
        """One dealer's ingest of what its pull staged in this run, on its own row."""
        if row is None:
            raise NothingToDo(
                "nothing to ingest: the dealer has no job row in this run (its pull never began)"
            )
        if row.status == JobStatus.SUCCESS:
            raise NothingToDo("already ingested in this run")
        if row.pull_result is None:
            raise NothingToDo(
                f"nothing to ingest: its pull staged nothing in this run (job {row.status.value})"
            )
        platform = get_platform(self.platform)
        key = execution_key(context, ref)
        try_number = int(context["ti"].try_number or 1)
        # Renewed at the start of every try (a cleared ingest re-takes a lease nobody holds) and after every
        # batch; another run holding it fails the try before anything is written (see job_tracking).
        lease = DealerLease(history.executions, key, label=ref.label, what="Data API ingest")

        # failing_job gets no lease to renew: it is renewed below, in one transaction with the reads.
        with failing_job(
            history.executions,
            key,
            what="Data API ingest",
            label=ref.label,
            try_number=try_number,
            max_tries=ti_max_tries(context),
        ):
            with history.transaction():
                lease.keep()
                later = history.executions.later_success(key)
                known = history.fingerprints.for_dealer(ref.dealer_id, platform.id)
            if later is not None:
                # Clearing an old run's failed ingest after a later run succeeded would re-send stale
                # content (re-listing sold cars) and move the source state (window, ETag) backwards.
                raise AirflowFailException(stale_pull(ref.label, later))
            pulled = PullResult.model_validate(row.pull_result)
            started = time.monotonic()
            scope = f"{key.dag_id}|{key.run_id}|{platform.id}|{ref.dealer_id}"
            if row.performance_metrics.get("batches_failed"):
                # An earlier try of this run got `success: false` for a batch: nothing of it was applied,
                # and the Data API answers the same key with that same failure again. New keys this try.
                scope += f"|after-failed-batch|try{try_number}"
            staged = self._read(pulled)
            with hook.get_client() as client:
                result, metrics, verdict = self.ingest(
                    client,
                    history,
                    pulled,
                    staged.vehicles,
                    known=known,
                    scope=scope,
                    run=f"{key.dag_id}/{key.run_id}",
                    rejected_vins=staged.rejected_vins,
                    lease=lease,
                )
            ingest_ms = int((time.monotonic() - started) * 1000)

            def record_counts() -> None:
                history.executions.progress(
                    key,
                    processed=result.vehicles_processed,
                    rejected=pulled.vehicles_rejected + result.vehicles_rejected,
                    delisted=result.vehicles_delisted,
                    metrics={"ingest_ms": ingest_ms, **metrics},
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
            if verdict.problem:
                # The counts are the row's whatever the verdict; failing_job ends the row failed.
                record_counts()
                if verdict.anomaly:
                    raise InventoryAnomaly(verdict.problem, anomaly=verdict.anomaly)
                raise AirflowFailException(verdict.problem)
            advance = bool(pulled.state) and not metrics["batches_unconfirmed"]
            if pulled.state and not advance:
                # The Data API did not confirm every batch: keep the old window / ETag, so the next run
                # fetches these vehicles again instead of asking only for what changed after this pull.
                self.log.warning(
                    "%s: %d batch(es) unconfirmed by the Data API; source state (window, ETag) not advanced",
                    ref.label,
                    metrics["batches_unconfirmed"],
                )
            # The closing writes together: the counts, the source state and the row's success.
            with history.transaction():
                record_counts()
                if advance:
                    # Only now is it safe to advance per-source state (e.g. the ETag of this pull).
                    history.fingerprints.set_state(pulled.dealer_id, pulled.platform, pulled.state)
                history.executions.finish(key, JobStatus.SUCCESS)
        return result.model_dump(mode="json")

    @staticmethod
    def _read(pulled: PullResult) -> StagedPull:
        staged = StagedPull()
        if pulled.staging_path:
            staged = read_staged(ObjectStoragePath(pulled.staging_path), checksum=pulled.checksum)
        if len(staged.vehicles) != pulled.vehicles_staged:
            raise PayloadError(
                f"staged file holds {len(staged.vehicles)} vehicles but the pull staged "
                f"{pulled.vehicles_staged}"
            )
        return staged

    def ingest(
        self,
        client: DataApiClient,
        history: JobHistoryHook,
        pulled: PullResult,
        vehicles: list[Vehicle],
        *,
        known: Mapping[str, Fingerprint],
        scope: str,
        run: str,
        rejected_vins: Collection[str] = (),
        lease: DealerLease | None = None,
    ) -> tuple[IngestResult, dict[str, Any], Verdict]:
        """Plan the ingest, send the delta, record every answer, delist; returns (result, metrics, verdict).

        ``known``: the dealer's fingerprints, read by the caller (``history.fingerprints.for_dealer``) while
        it held ``lease``. ``run`` (``<dag_id>/<run_id>``) is what a miss is counted once for;
        ``rejected_vins`` are the VINs of records the pull rejected, present on the lot though not staged.
        ``lease`` (this run's on the dealer, renewed by the caller before the first batch) is renewed with the
        record of every batch's answer, so before every next batch and before delisting; once another run
        holds it, nothing more is sent or written.
        """
        settings = get_settings()
        dealer_id, platform = pulled.dealer_id, pulled.platform
        rules = IngestRules(
            batch_size=settings.ingest_batch_size,
            after_misses=settings.delist_after_missing_pulls,
            max_drop_fraction=settings.max_drop_fraction,
            max_reject_fraction=settings.max_reject_fraction,
            hash_version=HASH_VERSION,
            full_refresh=self.params_of_run.full_refresh,
            force_delist=self.params_of_run.force_delist,
        )
        plan = plan_ingest(
            pulled,
            vehicles,
            known,
            rejected_vins=rejected_vins,
            scope=scope,
            run=run,
            rules=rules,
        )
        tally = SendTally()
        for batch in plan.batches:
            answers = self._post(client, pulled, plan, batch)
            self._record_then_renew(
                history,
                plan,
                lease,
                record=partial(self._record, history, pulled, plan.delta, answers, tally),
                last=batch is plan.batches[-1],
            )
            self.log.info(
                "Ingest %s: %d/%d new or changed vehicle(s) sent, %d processed so far",
                dealer_id,
                batch.through,
                plan.vehicles_sent,
                tally.processed,
            )
        still_rejected = plan.still_rejected
        if still_rejected:
            self.log.info(
                "%d vehicle(s) not re-sent: the Data API rejected their current content before (%s)",
                still_rejected.total(),
                dict(still_rejected),
            )
        if not plan.batches:
            self._record_then_renew(history, plan, lease, record=None, last=True)
        gone = self._delist_gone(client, history, pulled, plan)
        verdict = judge(
            plan, failed_batches=tally.failed, reported=tally.reported, delist_failed=gone.problem
        )
        api_rejects = plan.api_rejects(tally.reported)
        result = IngestResult(
            dealer_id=dealer_id,
            platform=platform,
            vehicles_sent=plan.vehicles_sent,
            vehicles_unchanged=len(plan.delta.unchanged),
            vehicles_processed=tally.processed,
            vehicles_rejected=sum(api_rejects.values()),
            vehicles_delisted=gone.delisted,
            batches=tally.batches,
            api_errors=dict(api_rejects),
        )
        stats = client.stats.as_metrics()
        metrics = {
            "vehicles_sent": result.vehicles_sent,
            "vehicles_unchanged": result.vehicles_unchanged,
            "vehicles_still_rejected": still_rejected.total(),
            "vehicles_unconfirmed": tally.vehicles_unconfirmed,
            "lot_size": plan.lot,
            "batches": result.batches,
            "batches_failed": len(tally.failed),
            "batches_unconfirmed": tally.batches_unconfirmed,
            "vehicles_missing_not_delisted": gone.waiting,
            "vehicles_delist_unconfirmed": gone.unconfirmed,
            "api_rejects": result.api_errors,
            "api_rejects_new": dict(tally.reported),
            "ingest_api_calls": stats["api_calls"],
            "ingest_retries": stats["retries"],
            "ingest_rate_limits_hit": stats["rate_limits_hit"],
        }
        return result, metrics, verdict

    def _record_then_renew(
        self,
        history: JobHistoryHook,
        plan: IngestPlan,
        lease: DealerLease | None,
        *,
        record: Callable[[], None] | None,
        last: bool,
    ) -> None:
        """In one transaction: ``record`` what a batch's answer confirmed, renew the lease for what comes
        next (the next batch, or delisting), and after the ``last`` batch write the plan's marks of the VINs
        not sent (:meth:`_record_pull`).

        An answer is committed even when the lease turns out to be lost (the Data API applied it: it must be
        neither re-sent nor forgotten); nothing else is written then, and the ingest stops naming the run
        that holds the lease."""
        with history.transaction():
            if record is not None:
                record()
            holder = lease.renew() if lease is not None else None
            if holder is None and last:
                self._record_pull(history, plan)
        if holder is not None and lease is not None:
            raise lease.lost(holder)

    @staticmethod
    def _record_pull(history: JobHistoryHook, plan: IngestPlan) -> None:
        """Write what the plan says of the VINs it did not send, in one statement set: their ``last_seen``
        moves on; rejections are over for unchanged vehicles (the Data API holds their current content) and
        for vehicles that left the lot; present VINs' misses are reset; after a complete pull that is no
        anomaly, live VINs missing from it count one miss (nothing for a partial pull or an anomaly)."""
        history.fingerprints.record_pull(
            plan.dealer_id,
            plan.platform,
            seen=plan.seen,
            rejections_over=(*plan.rejections_over, *plan.rejections_left),
            reset=plan.delisting.reset,
            missing=plan.delisting.count,
            run=plan.run,
        )

    def _delist_gone(
        self, client: DataApiClient, history: JobHistoryHook, pulled: PullResult, plan: IngestPlan
    ) -> DelistTally:
        """After a complete pull that is no anomaly, delist the live VINs that reached the miss threshold
        (their misses are counted and the present VINs' reset before, see :meth:`_record_pull`)."""
        decision = plan.delisting
        if not pulled.complete:
            self.log.info(
                "Partial or unchanged pull (%s): no miss is counted, nothing is delisted",
                "; ".join(pulled.notes) or "not full",
            )
            return DelistTally()
        if decision.anomaly:
            self.log.error(
                "%s; nothing delisted, no miss counted. If the lot really shrank, re-run with "
                "force_delist=true",
                decision.anomaly,
            )
            return DelistTally()
        if decision.waiting:
            self.log.info(
                "%d live vehicle(s) missing from this complete pull, not delisted yet (delisted after %d "
                "consecutive complete pulls without them): %s",
                len(decision.waiting),
                get_settings().delist_after_missing_pulls,
                ", ".join(f"{vin} ({n} miss(es))" for vin, n in list(decision.waiting.items())[:20]),
            )
        tally = self._delist(client, history, pulled, list(decision.delist))
        tally.waiting = len(decision.waiting)
        return tally

    def _delist(
        self, client: DataApiClient, history: JobHistoryHook, pulled: PullResult, vins: list[str]
    ) -> DelistTally:
        """Delist VINs in chunks; each chunk is marked delisted only when the answer confirms all of it.

        ``success: false`` stops here (later chunks are not sent) and fails the dealer; a short count leaves
        its chunk live (sent again by the next complete pull) and goes on.
        """
        tally = DelistTally()
        done: list[str] = []
        for start in range(0, len(vins), DELIST_BATCH):
            chunk = vins[start : start + DELIST_BATCH]
            with self._api_slot():
                answer = client.delist(dealer_id=pulled.dealer_id, source=pulled.platform, vins=chunk)
            outcome = reconcile_delist(len(chunk), answer, dealer_id=pulled.dealer_id, source=pulled.platform)
            if outcome.failed:
                self.log.error("Delisting stopped: %s", outcome.failed)
                tally.problem = (
                    f"delisting failed: {outcome.failed} ({len(vins) - start} of {len(vins)} vehicle(s) to "
                    "delist were not delisted in this run)"
                )
                break
            if outcome.short:
                self.log.warning("%s: %s", outcome.short, ", ".join(chunk[:20]))
                history.fingerprints.mark_delist_unconfirmed(pulled.dealer_id, pulled.platform, chunk)
                tally.unconfirmed += len(chunk)
                continue
            history.fingerprints.mark_delisted(pulled.dealer_id, pulled.platform, chunk)
            tally.delisted += len(chunk)
            done.extend(chunk)
        if done:
            self.log.info("Delisted %d vehicle(s) no longer on the lot: %s", len(done), ", ".join(done[:20]))
        return tally

    def _post(
        self, client: DataApiClient, pulled: PullResult, plan: IngestPlan, batch: Batch
    ) -> list[SentBatch]:
        """Post one batch and reconcile the answer; on 413 split it in halves and post each (recursively)."""
        bodies = batch.bodies
        try:
            with self._api_slot():
                response = client.post_batch(
                    dealer_id=pulled.dealer_id,
                    source=pulled.platform,
                    vehicles=bodies,
                    idempotency_key=batch.key,
                )
        except BatchTooLarge:
            if len(bodies) == 1:
                raise
            self.log.warning("Data API answered 413 for %d vehicles: splitting the batch", len(bodies))
            first, second = plan.split(batch)
            return [*self._post(client, pulled, plan, first), *self._post(client, pulled, plan, second)]
        vins = [str(body["vin"]) for body in bodies]
        outcome = reconcile(vins, response, dealer_id=pulled.dealer_id, source=pulled.platform)
        return [SentBatch(position=batch.position, key=batch.key, vins=vins, outcome=outcome)]

    def _record(
        self,
        history: JobHistoryHook,
        pulled: PullResult,
        plan: DeltaPlan,
        answers: list[SentBatch],
        tally: SendTally,
    ) -> None:
        """Count and log the reconciled answers of one batch (its halves, after a 413); record what they
        confirmed (accepted and rejected VINs) in one statement set."""
        accepted: dict[str, str] = {}
        rejected: dict[str, tuple[str, str]] = {}
        for sent in answers:
            if self._count(sent, tally):
                accepted.update({vin: plan.hashes[vin] for vin in sent.outcome.accepted})
                rejected.update({vin: (plan.hashes[vin], r) for vin, r in sent.outcome.rejected.items()})
        history.fingerprints.record_answer(
            pulled.dealer_id, pulled.platform, accepted, rejected, hash_version=HASH_VERSION
        )

    def _count(self, sent: SentBatch, tally: SendTally) -> bool:
        """Count and log one reconciled answer; whether it says what was applied (then it is recorded)."""
        outcome = sent.outcome
        tally.batches += 1
        if outcome.failed:
            self.log.error("Batch at position %s (key %s): %s", sent.position, sent.key, outcome.failed)
            tally.failed.append(outcome.failed)
            return False
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
            return False
        return True
