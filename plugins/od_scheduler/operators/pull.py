"""PullInventoryOperator: the base of every platform's pull.

A platform subclass only implements ``pull(dealer)``: a generator that yields, per source record, either
a canonical ``Vehicle`` or the ``RecordRejected`` explaining why the record cannot become one, and that
returns a ``PullOutcome`` (was the pull complete, why not, measured request metrics). The base does the
rest the same way for every platform: the `job_executions` row, fresh dealer config from the CMS, VIN
dedupe, rejects by reason, staging to a gzipped JSON-lines file, and a small XCom summary.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from od_scheduler.exceptions import ConfigError, RecordRejected
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerRef, PullResult
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.operators.job_tracking import dealer_ref, execution_key, failing_job
from od_scheduler.platforms import get_platform
from od_scheduler.staging import staging_path, write_vehicles

#: How many rejected records are logged one by one before the rest are only counted.
MAX_LOGGED_REJECTS = 20


@dataclass
class PullOutcome:
    """What a platform's pull reports once its records are exhausted."""

    complete: bool = True
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


PullStream = Generator["Vehicle | RecordRejected", None, PullOutcome]


class PullInventoryOperator(BaseOperator):
    """Pull one dealer's inventory from one platform, normalize it and stage it."""

    platform_id: ClassVar[str]
    template_fields = ("dealer",)
    ui_color = "#fdf2e8"

    def __init__(self, *, dealer: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dealer = dealer

    @abstractmethod
    def pull(self, dealer: Dealer) -> PullStream:
        """Yield a Vehicle or a RecordRejected per source record; return the PullOutcome."""

    def load_dealer(self, ref: DealerRef) -> Dealer:
        """The dealer's current CMS document (credentials stay out of XCom, so re-read them here)."""
        with PayloadCmsHook().get_client() as client:
            for doc in client.iter_dealers(platform=self.platform_id, dealer_id=ref.dealer_id):
                if isinstance(doc, Dealer):
                    return doc
                raise ConfigError(f"invalid dealer document in PayloadCMS: {doc.error}")
        raise ConfigError(
            f"dealer {ref.dealer_id} is no longer an active {self.platform_id} dealer in PayloadCMS"
        )

    def execute(self, context: Context) -> dict[str, Any]:
        platform = get_platform(self.platform_id)
        ref = dealer_ref(self.dealer)
        key = execution_key(context, ref, platform.id)
        try_number = int(context["ti"].try_number or 1)
        history = JobHistoryHook()
        history.start(key, try_number=try_number)
        self.log.info("Pulling %s inventory for %s, try %d", platform.name, ref.label, try_number)

        with failing_job(history, key, what=f"{platform.name} pull", label=ref.label, try_number=try_number):
            if ref.error:
                raise AirflowFailException(ref.error)
            dealer = self.load_dealer(ref)
            started = time.monotonic()
            result, metrics = self._pull_and_stage(dealer, context)
            metrics["pull_ms"] = int((time.monotonic() - started) * 1000)
            history.progress(
                key,
                found=result.vehicles_found,
                rejected=result.vehicles_rejected,
                metrics={**metrics, "rejects": result.rejects, "complete": result.complete},
            )
        self.log.info(
            "%s: %d found, %d staged, %d rejected %s, %d duplicate(s); %s pull%s",
            ref.label,
            result.vehicles_found,
            result.vehicles_staged,
            result.vehicles_rejected,
            dict(result.rejects),
            result.duplicates,
            "full" if result.complete else "PARTIAL",
            ("; " + "; ".join(result.notes)) if result.notes else "",
        )
        return result.model_dump(mode="json")

    def _pull_and_stage(self, dealer: Dealer, context: Context) -> tuple[PullResult, dict[str, Any]]:
        rejects: Counter[str] = Counter()
        seen: set[str] = set()
        counts = {"records": 0, "duplicates": 0}
        outcome_box: list[PullOutcome] = []

        def accepted() -> Generator[Vehicle, None, None]:
            outcome = yield from self._screen(self.pull(dealer), rejects, seen, counts)
            outcome_box.append(outcome)

        path = staging_path(self.platform_id, dealer.id, context["run_id"])
        staged, checksum = write_vehicles(path, accepted())
        outcome = outcome_box[0]
        result = PullResult(
            dealer_id=dealer.id,
            platform=self.platform_id,
            staging_path=str(path),
            checksum=checksum,
            vehicles_found=counts["records"] - counts["duplicates"],
            vehicles_staged=staged,
            vehicles_rejected=sum(rejects.values()),
            rejects=dict(rejects),
            duplicates=counts["duplicates"],
            complete=outcome.complete,
            notes=outcome.notes,
        )
        return result, dict(outcome.metrics)

    def _screen(
        self, stream: PullStream, rejects: Counter[str], seen: set[str], counts: dict[str, int]
    ) -> Generator[Vehicle, None, PullOutcome]:
        """Count records, drop duplicate VINs (first wins), count and log rejects by reason."""
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
            yield item
