"""PullInventoryOperator: the base of every platform's pull.

A platform subclass implements ``pull(dealer, context)``: a generator that yields, per source record,
either a canonical ``Vehicle`` or the ``RecordRejected`` explaining why the record cannot become one, and
that returns a ``PullOutcome`` (complete or partial and why, unchanged, per-source state, measured request
metrics). The base does the rest the same way for every platform: the `job_executions` row, fresh dealer
config from the CMS, VIN dedupe, rejects by reason, staging to a gzipped JSON-lines file, and a small XCom
summary.

A deferrable platform (Apify) splits the work: ``begin()`` + its own start + ``self.defer(...)`` in
``execute``, then ``resume()`` + ``stage(...)`` in the method the trigger resumes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.sdk.log import mask_secret

from od_scheduler.exceptions import ConfigError, RecordRejected
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerRef, ExecutionKey, PullResult
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.operators.job_tracking import dealer_ref, execution_key, failing_job
from od_scheduler.platforms import get_platform
from od_scheduler.settings import get_settings
from od_scheduler.staging import staging_path, write_vehicles

#: How many rejected records are logged one by one before the rest are only counted.
MAX_LOGGED_REJECTS = 20


@dataclass
class PullOutcome:
    """What a platform's pull reports once its records are exhausted."""

    complete: bool = True
    unchanged: bool = False
    since: datetime | None = None
    notes: list[str] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


PullStream = Generator["Vehicle | RecordRejected", None, PullOutcome]


@dataclass
class PullJob:
    """One dealer's pull in progress: identity, job-history key and where to write."""

    ref: DealerRef
    key: ExecutionKey
    history: JobHistoryHook
    try_number: int
    started: float = field(default_factory=time.monotonic)


class PullInventoryOperator(BaseOperator):
    """Pull one dealer's inventory from one platform, normalize it and stage it."""

    platform_id: ClassVar[str]
    template_fields = ("dealer", "full_refresh")
    ui_color = "#fdf2e8"

    def __init__(self, *, dealer: Any, full_refresh: Any = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dealer = dealer
        self.full_refresh = full_refresh

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
        """The run's ``full_refresh`` param (rendered from ``{{ params.full_refresh }}``)."""
        return str(self.full_refresh).strip().lower() in ("true", "1", "yes")

    def incremental_since(self, context: Context, dealer: Dealer, history: JobHistoryHook) -> datetime | None:
        """Start of the change window for incremental sources, or None for a full pull.

        Full when ``full_refresh`` is asked or the dealer never succeeded on this platform (nothing to
        build on); otherwise the run's ``data_interval_start``, so scheduled runs and backfills each
        cover their own window.
        """
        if self.wants_full_refresh():
            return None
        if history.last_success(dealer.id, self.platform_id) is None:
            return None
        since = context.get("data_interval_start")
        return since if isinstance(since, datetime) else None

    # -- the flow ----------------------------------------------------------------------------------
    def begin(self, context: Context) -> PullJob:
        """Mark the dealer's job ``running``; returns the in-progress pull."""
        platform = get_platform(self.platform_id)
        ref = dealer_ref(self.dealer)
        job = PullJob(
            ref=ref,
            key=execution_key(context, ref, platform.id),
            history=JobHistoryHook(),
            try_number=int(context["ti"].try_number or 1),
        )
        holder = job.history.acquire_lease(job.key, minutes=get_settings().lease_minutes)
        if holder is not None:
            reason = f"skipped: run {holder} is pulling this dealer right now"
            job.history.skip(job.key, try_number=job.try_number, reason=reason)
            raise AirflowSkipException(f"{ref.label}: {reason}")
        job.history.start(job.key, try_number=job.try_number)
        self.log.info("Pulling %s inventory for %s, try %d", platform.name, ref.label, job.try_number)
        return job

    def resume(self, context: Context) -> PullJob:
        """The in-progress pull after a deferral (the row is already ``running``)."""
        ref = dealer_ref(self.dealer)
        return PullJob(
            ref=ref,
            key=execution_key(context, ref, self.platform_id),
            history=JobHistoryHook(),
            try_number=int(context["ti"].try_number or 1),
        )

    def guarded(self, job: PullJob) -> Any:
        """Context manager: any error ends the job ``failed`` and fails (or retries) the task."""
        name = get_platform(self.platform_id).name
        return failing_job(
            job.history, job.key, what=f"{name} pull", label=job.ref.label, try_number=job.try_number
        )

    def load_dealer(self, ref: DealerRef) -> Dealer:
        """The dealer's current CMS document (credentials stay out of XCom, so re-read them here)."""
        if ref.error:
            raise AirflowFailException(ref.error)
        with PayloadCmsHook().get_client() as client:
            for doc in client.iter_dealers(platform=self.platform_id, dealer_id=ref.dealer_id):
                if isinstance(doc, Dealer):
                    return doc
                raise ConfigError(f"invalid dealer document in PayloadCMS: {doc.error}")
        raise ConfigError(
            f"dealer {ref.dealer_id} is no longer an active {self.platform_id} dealer in PayloadCMS"
        )

    def execute(self, context: Context) -> dict[str, Any]:
        job = self.begin(context)
        with self.guarded(job):
            dealer = self.load_dealer(job.ref)
            result = self.stage(job, dealer, self.pull(dealer, context), context)
        return result

    def stage(self, job: PullJob, dealer: Dealer, stream: PullStream, context: Context) -> dict[str, Any]:
        """Screen and stage the stream, record counts and metrics, return the XCom summary."""
        rejects: Counter[str] = Counter()
        warnings: Counter[str] = Counter()
        counts = {"records": 0, "duplicates": 0}
        box: list[PullOutcome] = []

        def accepted() -> Generator[Vehicle, None, None]:
            box.append((yield from self._screen(stream, rejects, warnings, set(), counts)))

        path = staging_path(self.platform_id, dealer.id, context["run_id"])
        staged, checksum = write_vehicles(path, accepted())
        outcome = box[0]
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
            complete=outcome.complete and outcome.since is None and not outcome.unchanged,
            unchanged=outcome.unchanged,
            since=outcome.since,
            notes=outcome.notes,
            state=outcome.state,
        )
        job.history.progress(
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
            },
        )
        kind = "unchanged" if result.unchanged else ("full" if result.complete else "PARTIAL")
        self.log.info(
            "%s: %d found, %d staged, %d rejected %s, %d duplicate(s); %s pull%s",
            job.ref.label,
            result.vehicles_found,
            result.vehicles_staged,
            result.vehicles_rejected,
            dict(result.rejects),
            result.duplicates,
            kind,
            ("; " + "; ".join(result.notes)) if result.notes else "",
        )
        return result.model_dump(mode="json")

    def _screen(
        self,
        stream: PullStream,
        rejects: Counter[str],
        warnings: Counter[str],
        seen: set[str],
        counts: dict[str, int],
    ) -> Generator[Vehicle, None, PullOutcome]:
        """Count records, drop duplicate VINs (first wins), count and log rejects and warnings by reason."""
        while True:
            try:
                item = next(stream)
            except StopIteration as stop:
                return stop.value if isinstance(stop.value, PullOutcome) else PullOutcome()
            counts["records"] += 1
            if isinstance(item, RecordRejected):
                rejects[item.reason] += 1
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
