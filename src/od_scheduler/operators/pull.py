"""PullInventoryOperator: the base of every platform's pull.

A platform subclass implements ``pull(dealer, context)``: a generator that yields, per source record, a
canonical ``Vehicle`` or the ``RecordRejected`` explaining why not, and returns a ``PullOutcome``. The base
does the rest the same way for every platform: the `job_executions` row, fresh dealer config from the CMS,
VIN dedupe, rejects by reason, staging (``od_scheduler.staging``) and a small XCom summary. It also keeps
the source state: HomeNet's change windows and full-pull cadence (:func:`plan_window`) and per-part counts
(Dealer.com segments). Why they work as they do: docs/design.md, "Pull".
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk.log import mask_secret

from od_scheduler.alert_rules import dealer_deadline_s
from od_scheduler.exceptions import ConfigError, RecordRejected
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.models.dealer import Dealer, InvalidDealer
from od_scheduler.models.job import (
    DealerRef,
    ExecutionKey,
    JobExecution,
    JobStatus,
    PullResult,
    RunParams,
    Shard,
)
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.models.vin import INVALID_VIN_CHECK_DIGIT, normalize_vin, vin_problem
from od_scheduler.operators.ingest_feed import TaskPhase, sibling_state
from od_scheduler.operators.job_tracking import (
    DealerLease,
    execution_key,
    failing_job,
    ti_max_tries,
)
from od_scheduler.operators.shard import ShardLogMixin, finish_shard, run_dealers
from od_scheduler.platforms import get_platform
from od_scheduler.settings import get_settings
from od_scheduler.staging import staging_path, write_vehicles

#: How many rejected records are logged one by one before the rest are only counted.
MAX_LOGGED_REJECTS = 20

#: Source-state keys written by the base (values are strings; times ISO-8601 UTC).
WINDOW_START = "window_start"
FULL_PULL_AT = "full_pull_at"
FULL_PULL_RUN = "full_pull_run"
PART_COUNTS = "part_counts"


@dataclass
class PullOutcome:
    """What a platform's pull reports once its records are exhausted."""

    complete: bool = True
    unchanged: bool = False
    since: datetime | None = None
    notes: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: Vehicles per part of the source (e.g. Dealer.com segment), for platforms that pull in parts.
    parts: dict[str, int] | None = None


def _utc(value: datetime) -> datetime:
    """A UTC stdlib datetime (naive is taken as UTC; pendulum values become plain datetimes)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return datetime(*value.timetuple()[:6], value.microsecond, tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _utc(value).isoformat()


def _parse_time(value: str | None) -> datetime | None:
    """A stored time, or None when missing or unreadable (then the pull is full: the safe side)."""
    if not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def data_interval_time(context: Mapping[str, Any]) -> datetime:
    """The run's data-interval time: ``data_interval_end``, else the logical date, else ``run_after``.

    Stored on the DAG run, so every try and every re-run of a run sees the same value.
    """
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if isinstance(value, datetime):
            return _utc(value)
    run_after = getattr(context.get("dag_run"), "run_after", None)
    if isinstance(run_after, datetime):
        return _utc(run_after)
    return datetime.now(UTC)


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:g} h"


@dataclass(frozen=True)
class IncrementalWindow:
    """What an incremental source asks for in this run, and the state its success will save.

    ``since`` is None for a full pull. ``reason`` says why, for logs and the pull's notes.
    """

    since: datetime | None
    reason: str
    run_time: datetime
    run_id: str
    stored: Mapping[str, str] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        """True when this pull reads the whole lot."""
        return self.since is None

    def state_after(self, started: datetime) -> dict[str, str]:
        """Source state to save once this pull's ingest succeeded; ``started`` = when it began fetching.

        Both times only move forward: the later of the stored value and this pull's.
        """
        start = _utc(started).replace(microsecond=0)  # rounding down only widens the next window
        previous = _parse_time(self.stored.get(WINDOW_START))
        state = {WINDOW_START: _iso(max(start, previous) if previous else start)}
        if self.full:
            last_full = _parse_time(self.stored.get(FULL_PULL_AT))
            if last_full is None or self.run_time >= last_full:
                state[FULL_PULL_AT] = _iso(self.run_time)
                state[FULL_PULL_RUN] = self.run_id
        return state


def plan_window(
    stored: Mapping[str, str],
    *,
    run_time: datetime,
    run_id: str,
    overlap: timedelta,
    full_every: timedelta,
    full_refresh: bool = False,
    has_success: bool = True,
) -> IncrementalWindow:
    """Decide full or incremental for one dealer and run, from its source state (see the module docstring)."""
    run_time = _utc(run_time)

    def full(reason: str) -> IncrementalWindow:
        return IncrementalWindow(since=None, reason=reason, run_time=run_time, run_id=run_id, stored=stored)

    if full_refresh:
        return full("full_refresh was asked")
    if not has_success:
        return full("the dealer has no successful pull on this platform yet")
    window_start = _parse_time(stored.get(WINDOW_START))
    if window_start is None:
        return full("no change window is recorded for the dealer yet")
    last_full = _parse_time(stored.get(FULL_PULL_AT))
    if last_full is None:
        return full("no full pull is recorded for the dealer yet")
    if full_every <= timedelta(0):
        return full("full_pull_hours is 0: every pull is full")
    if stored.get(FULL_PULL_RUN) == run_id:
        return full("this run made the dealer's last full pull, so its re-run pulls in full again")
    age = run_time - last_full
    if age >= full_every:
        return full(
            f"the last full pull was {_hours(age)} of data-interval time before this run "
            f"(full_pull_hours {_hours(full_every)})"
        )
    since = window_start - overlap
    return IncrementalWindow(
        since=since,
        reason=(
            f"changes since the last successful pull began ({window_start.isoformat()}) minus "
            f"{int(overlap.total_seconds() // 60)} min overlap; last full pull {_hours(age)} of "
            "data-interval time before this run"
        ),
        run_time=run_time,
        run_id=run_id,
        stored=stored,
    )


def parse_part_counts(value: str | None) -> dict[str, int]:
    """``part_counts`` from the source state ({} when missing or unreadable)."""
    if not value:
        return {}
    try:
        raw = json.loads(value)
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): int(v) for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}


def lost_parts(previous: Mapping[str, int], current: Mapping[str, int]) -> list[str]:
    """Parts that had vehicles in the last complete pull and have none now."""
    return sorted(name for name, count in previous.items() if count > 0 and current.get(name, 0) == 0)


PullStream = Generator["Vehicle | RecordRejected", None, PullOutcome]


@dataclass
class PullJob:
    """One dealer's pull in progress: identity, job-history key and where to write."""

    ref: DealerRef
    key: ExecutionKey
    history: JobHistoryHook
    try_number: int
    #: The task instance's ``max_tries`` (None: unknown), for the retry-or-last-try decision.
    max_tries: int | None
    #: This run's lease on the dealer, renewed while the pull goes on.
    lease: DealerLease
    started: float = field(default_factory=time.monotonic)


def pulled_in_this_run(row: JobExecution | None) -> bool:
    """Whether the dealer needs no new pull in this run: it succeeded, or its pull staged and waits for
    (or is in) its ingest. A retried or cleared pull task skips such dealers."""
    if row is None:
        return False
    return row.status == JobStatus.SUCCESS or (
        row.status == JobStatus.RUNNING and row.pull_result is not None
    )


#: The CMS documents of a shard's dealers, or why they could not be read (each dealer's pull then fails
#: with it, on its own row).
DealerDocs = Mapping[str, "Dealer | InvalidDealer"] | BaseException


def _leased(stream: PullStream, lease: DealerLease) -> PullStream:
    """The pull's stream, renewing the dealer's lease as records come (a long pull must not lose it)."""
    while True:
        lease.keep()
        try:
            item = next(stream)
        except StopIteration as stop:
            return stop.value if isinstance(stop.value, PullOutcome) else PullOutcome()
        yield item


class PullInventoryOperator(ShardLogMixin, BaseOperator):
    """Pull the inventory of a shard of dealers from one platform, ``pool_slots`` dealers at once;
    normalize and stage each dealer's vehicles."""

    platform_id: ClassVar[str]
    template_fields = ("shard",)
    ui_color = "#fdf2e8"

    def __init__(self, *, shard: Any, ingest_task_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard = shard
        #: The shard's ingest task, which runs beside this one and ingests each dealer it stages (see
        #: :mod:`od_scheduler.operators.ingest_feed`); a try refuses to begin once it has ended.
        self.ingest_task_id = ingest_task_id
        #: The run's params, parsed once per task (read-only while the dealers' threads run).
        self.params_of_run = RunParams()

    # -- what a platform implements ----------------------------------------------------------------
    def pull(self, dealer: Dealer, context: Context) -> PullStream:
        """Yield a Vehicle or a RecordRejected per source record; return the PullOutcome."""
        raise NotImplementedError(f"{type(self).__name__} must implement pull()")

    # -- helpers for platforms ---------------------------------------------------------------------
    @staticmethod
    def register_secret(value: str | None) -> None:
        """Mask a per-dealer credential in every log line from here on (call before anything is logged)."""
        if value:
            mask_secret(value)

    def wants_full_refresh(self) -> bool:
        """The run's ``full_refresh`` param."""
        return self.params_of_run.full_refresh

    def wants_force_delist(self, context: Context) -> bool:
        """The run's ``force_delist`` param."""
        return self.params_of_run.force_delist

    def incremental_window(
        self, context: Context, dealer: Dealer, history: JobHistoryHook
    ) -> IncrementalWindow:
        """This run's change window for an incremental source (see the module docstring and plan_window).

        Full when ``full_refresh`` is asked, the dealer never succeeded on this platform, no window is
        recorded, or a full pull is due (``full_pull_hours`` of data-interval time); otherwise the changes
        since the start of the dealer's last successful pull, minus ``incremental_overlap_minutes``.
        """
        settings = get_settings()
        return plan_window(
            history.fingerprints.get_state(dealer.id, self.platform_id),
            run_time=data_interval_time(context),
            run_id=str(context["run_id"]),
            overlap=timedelta(minutes=settings.incremental_overlap_minutes),
            full_every=timedelta(hours=settings.full_pull_hours),
            full_refresh=self.wants_full_refresh(),
            has_success=history.executions.last_success(dealer.id, self.platform_id) is not None,
        )

    # -- the shard ---------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        shard = Shard.load(self.shard, self.platform_id)
        self.params_of_run = RunParams.of(context["params"])
        platform = get_platform(self.platform_id)
        self.check_ingest_waits(context)
        history = JobHistoryHook(reuse_connections=True)
        try:
            todo = self.dealers_to_pull(context, shard, history)
            docs = self.load_dealers(todo)
            outcomes = run_dealers(
                todo,
                lambda ref: self.pull_dealer(context, ref, history, docs),
                in_flight=self.pool_slots,
                log=self.log,
                what=f"{platform.name} pull",
                deadline_s=dealer_deadline_s(self.platform_id),
            )
            return finish_shard(outcomes, what=f"{platform.name} pull", log=self.log) | {
                "already_pulled": len(shard.dealers) - len(todo)
            }
        finally:
            history.close()

    def check_ingest_waits(self, context: Context) -> None:
        """Refuse a try when the shard's ingest has already ended in this run: what it staged would never be
        ingested (this happens when only this task is cleared). Nothing is pulled; the message says what to
        clear."""
        if self.ingest_task_id is None:
            return
        state = sibling_state(context, self.ingest_task_id)
        if TaskPhase.of(state) is TaskPhase.ENDED:
            raise AirflowFailException(
                f"this shard's {self.ingest_task_id} has already ended in this run ({state}), so nothing "
                "this try staged would be ingested; nothing was pulled. Clear both tasks of the shard "
                f"together (clear the task group, or {self.task_id} with {self.ingest_task_id}): the pull "
                "then re-does only the dealers that did not succeed in this run, and the ingest ingests them."
            )

    def dealers_to_pull(self, context: Context, shard: Shard, history: JobHistoryHook) -> list[DealerRef]:
        """The shard's dealers this try pulls: all but those pulled or done earlier in this run."""
        rows = history.executions.shard_rows(
            context["dag"].dag_id, context["run_id"], self.platform_id, [d.dealer_id for d in shard.dealers]
        )
        todo = [ref for ref in shard.dealers if not pulled_in_this_run(rows.get(ref.dealer_id))]
        if len(todo) < len(shard.dealers):
            self.log.info(
                "%d of the shard's %d dealer(s) were already pulled in this run (an earlier try or a clear): "
                "not pulled again",
                len(shard.dealers) - len(todo),
                len(shard.dealers),
            )
        return todo

    def load_dealers(self, refs: Sequence[DealerRef]) -> DealerDocs:
        """The dealers' current CMS documents, read once for the shard (credentials stay out of XCom, so
        they are read here); an error is returned, and each dealer's pull fails with it on its own row."""
        ids = [r.dealer_id for r in refs if not r.error]
        if not ids:
            return {}
        try:
            return PayloadCmsHook().get_dealers(platform=self.platform_id, dealer_ids=ids)
        except Exception as err:  # recorded on every dealer's row by its own pull
            self.log.error("PayloadCMS: the shard's dealer documents could not be read: %s", err)
            return err

    def dealer_document(self, ref: DealerRef, docs: DealerDocs) -> Dealer:
        """One dealer's CMS document from the shard's read (raises what the read or the document says)."""
        if ref.error:
            raise AirflowFailException(ref.error)
        if isinstance(docs, BaseException):
            raise docs
        doc = docs.get(ref.dealer_id)
        if doc is None:
            raise ConfigError(
                f"dealer {ref.dealer_id} is no longer an active {self.platform_id} dealer in PayloadCMS"
            )
        if isinstance(doc, InvalidDealer):
            raise ConfigError(f"invalid dealer document in PayloadCMS: {doc.error}")
        return doc

    def pull_dealer(
        self, context: Context, ref: DealerRef, history: JobHistoryHook, docs: DealerDocs
    ) -> dict[str, Any]:
        """One dealer's pull, on its own row: lease, pull, stage."""
        job = self.begin(context, ref, history)
        with self.guarded(job):
            dealer = self.dealer_document(ref, docs)
            return self.stage(job, dealer, self.pull(dealer, context), context)

    # -- one dealer's flow -------------------------------------------------------------------------
    def begin(self, context: Context, ref: DealerRef, history: JobHistoryHook) -> PullJob:
        """Lease the dealer and mark its job ``running``; returns the in-progress pull.

        Another run holding the lease makes a first pull skip the dealer; a retry of a pull this run began
        (its lease expired and that run took it) fails instead, naming that run: it must not stage a pull
        for an ingest that would refuse it anyway.
        """
        platform = get_platform(self.platform_id)
        job = self._job(context, ref, history)
        holder = job.history.executions.acquire_lease(job.key, minutes=get_settings().lease_minutes)
        if holder is not None:
            earlier = job.history.executions.get(job.key) if job.try_number > 1 else None
            if earlier is not None and earlier.status != JobStatus.SKIPPED:
                raise AirflowFailException(
                    f"{platform.name} pull refused for {ref.label}: this run no longer holds the dealer's "
                    f"lease — it expired and run {holder} holds it now. Nothing was pulled by this try; "
                    "re-run this dealer once that run has finished."
                )
            reason = f"skipped: run {holder} is pulling this dealer right now"
            job.history.executions.skip(job.key, try_number=job.try_number, reason=reason)
            raise AirflowSkipException(f"{ref.label}: {reason}")
        job.lease.renewed = time.monotonic()
        job.history.executions.start(job.key, try_number=job.try_number)
        job.history.executions.mark_pull_start(job.key)
        self.log.info("Pulling %s inventory for %s, try %d", platform.name, ref.label, job.try_number)
        return job

    def resume(self, context: Context, ref: DealerRef, history: JobHistoryHook) -> PullJob:
        """The in-progress pull after a deferral (the row is already ``running``).

        Its lease is renewed when the pull is ``guarded()`` again (the deferral may have lasted long).
        """
        return self._job(context, ref, history)

    def _job(self, context: Context, ref: DealerRef, history: JobHistoryHook) -> PullJob:
        key = execution_key(context, ref)
        name = get_platform(self.platform_id).name
        return PullJob(
            ref=ref,
            key=key,
            history=history,
            try_number=int(context["ti"].try_number or 1),
            max_tries=ti_max_tries(context),
            lease=DealerLease(history.executions, key, label=ref.label, what=f"{name} pull"),
        )

    def guarded(self, job: PullJob) -> Any:
        """Context manager: renew the dealer's lease (or fail if lost); any error ends the job ``failed``
        and fails (or retries) the dealer."""
        name = get_platform(self.platform_id).name
        return failing_job(
            job.history.executions,
            job.key,
            what=f"{name} pull",
            label=job.ref.label,
            try_number=job.try_number,
            max_tries=job.max_tries,
            lease=job.lease,
        )

    def stage(self, job: PullJob, dealer: Dealer, stream: PullStream, context: Context) -> dict[str, Any]:
        """Screen and stage the stream, record counts and metrics, return the XCom summary."""
        rejects: Counter[str] = Counter()
        warnings: Counter[str] = Counter()
        counts = {"records": 0, "duplicates": 0}
        box: list[PullOutcome] = []
        # VINs of rejected records: still on the lot, so the ingest counts them present (staged after
        # the vehicles, filled while they stream).
        rejected_vins: set[str] = set()

        def accepted() -> Generator[Vehicle, None, None]:
            box.append(
                (
                    yield from self._screen(
                        _leased(stream, job.lease), rejects, warnings, set(), counts, rejected_vins
                    )
                )
            )

        path = staging_path(self.platform_id, dealer.id, context["run_id"], try_number=job.try_number)
        staged, checksum = write_vehicles(path, accepted(), rejected_vins=rejected_vins)
        outcome = box[0]
        notes = list(outcome.notes)
        state = dict(outcome.state)
        complete = outcome.complete and outcome.since is None and not outcome.unchanged
        if outcome.parts is not None:
            complete = self._check_parts(job, dealer, outcome.parts, complete, notes, context)
            if complete:
                # The baseline of the next pulls: only ever from a complete pull.
                state[PART_COUNTS] = json.dumps(outcome.parts, sort_keys=True)
        result = PullResult(
            dealer_id=dealer.id,
            platform=self.platform_id,
            staging_path=str(path),
            checksum=checksum,
            vehicles_found=counts["records"] - counts["duplicates"],
            vehicles_staged=staged,
            vehicles_rejected=sum(rejects.values()),
            rejects=dict(rejects),
            warnings=dict(warnings),
            duplicates=counts["duplicates"],
            complete=complete,
            unchanged=outcome.unchanged,
            since=outcome.since,
            notes=notes,
            state=state,
        )
        job.history.executions.progress(
            job.key,
            found=result.vehicles_found,
            rejected=result.vehicles_rejected,
            metrics={
                **outcome.metrics,
                "pull_ms": int((time.monotonic() - job.started) * 1000),
                "rejects": result.rejects,
                "warnings": result.warnings,
                "complete": result.complete,
                "unchanged": result.unchanged,
                **({"since": result.since.isoformat()} if result.since else {}),
                **({"parts": outcome.parts} if outcome.parts is not None else {}),
            },
        )
        kind = "unchanged" if result.unchanged else ("full" if result.complete else "PARTIAL")
        self.log.info(
            "%s: %d found, %d staged, %d rejected%s, %d duplicate(s); %s pull%s",
            job.ref.label,
            result.vehicles_found,
            result.vehicles_staged,
            result.vehicles_rejected,
            f" ({', '.join(f'{reason}: {n}' for reason, n in sorted(result.rejects.items()))})"
            if result.rejects
            else "",
            result.duplicates,
            kind,
            ("; " + "; ".join(result.notes)) if result.notes else "",
        )
        self.log.info("%s: staged to %s (sha256 %s)", job.ref.label, path, checksum)
        summary = result.model_dump(mode="json")
        job.history.executions.record_pull(job.key, summary)
        return summary

    def _check_parts(
        self,
        job: PullJob,
        dealer: Dealer,
        parts: Mapping[str, int],
        complete: bool,
        notes: list[str],
        context: Context,
    ) -> bool:
        """Compare per-part counts with the last complete pull's; a part gone empty makes the pull partial."""
        previous = parse_part_counts(
            job.history.fingerprints.get_state(dealer.id, self.platform_id).get(PART_COUNTS)
        )
        lost = lost_parts(previous, parts)
        if not lost:
            return complete
        described = ", ".join(f"{name} (had {previous[name]})" for name in lost)
        if not any(parts.values()):
            # The whole pull is empty: the ingest's anomaly guard fails the dealer and alerts, which says
            # more than a quiet partial pull would (and force_delist is its way out, as for any anomaly).
            notes.append(f"every part came back empty, {described}: left to the ingest's anomaly guard")
            return complete
        if self.wants_force_delist(context):
            notes.append(
                f"part(s) now empty that had vehicles in the last complete pull: {described}; "
                "accepted as complete because force_delist is set"
            )
            self.log.warning("%s: %s", job.ref.label, notes[-1])
            return complete
        notes.append(
            f"partial pull: part(s) now empty that had vehicles in the last complete pull: {described}; "
            "nothing is delisted (re-run with force_delist=true if they really are gone)"
        )
        self.log.warning("%s: %s", job.ref.label, notes[-1])
        return False

    def _screen(
        self,
        stream: PullStream,
        rejects: Counter[str],
        warnings: Counter[str],
        seen: set[str],
        counts: dict[str, int],
        rejected_vins: set[str],
    ) -> Generator[Vehicle, None, PullOutcome]:
        """Count records, drop duplicate VINs (first wins), count and log rejects and warnings by reason.

        A rejected record whose ``ref`` reads as a VIN (17 valid characters; a wrong check digit is its
        problem, not a sign it is no VIN) goes to ``rejected_vins``; a stock number or garbage cannot.
        """
        while True:
            try:
                item = next(stream)
            except StopIteration as stop:
                return stop.value if isinstance(stop.value, PullOutcome) else PullOutcome()
            counts["records"] += 1
            if isinstance(item, RecordRejected):
                rejects[item.reason] += 1
                vin = normalize_vin(item.ref)
                if vin is not None and vin_problem(vin) in (None, INVALID_VIN_CHECK_DIGIT):
                    rejected_vins.add(vin)
                if sum(rejects.values()) <= MAX_LOGGED_REJECTS:
                    self.log.warning("Rejected record %s: %s", item.ref or "<no VIN or stock number>", item)
                continue
            if item.vin in seen:
                counts["duplicates"] += 1
                continue
            seen.add(item.vin)
            if item.warnings:
                if sum(warnings.values()) < MAX_LOGGED_REJECTS:
                    self.log.warning(
                        "VIN %s: field(s) set to unknown: %s", item.vin, ", ".join(item.warnings)
                    )
                warnings.update(item.warnings)
            yield item
