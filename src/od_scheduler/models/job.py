"""Job history and run-level models: what `job_executions` holds and what tasks pass through XCom.

XCom payloads are deliberately small (``PullResult``, ``IngestResult``, ``RunSummary``): vehicles travel
through staging files, never through XCom.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from od_scheduler.models.dealer import Dealer, InvalidDealer


class JobStatus(StrEnum):
    """Status of one dealer x platform execution within a run."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"


class ExecutionKey(BaseModel):
    """The upsert key of a `job_executions` row: one row per (dag run, dealer, platform)."""

    model_config = ConfigDict(frozen=True)

    dag_id: str
    run_id: str
    dealer_id: str
    platform: str

    @property
    def job_id(self) -> str:
        """The previous system's job id, kept for continuity: ``<dealer_id>_<platform>``."""
        return f"{self.dealer_id}_{self.platform}"


class JobExecution(BaseModel):
    """One row of `job_executions` as read back from the job-history database."""

    id: int
    job_id: str
    dag_id: str | None
    run_id: str | None
    try_number: int | None
    dealer_id: str
    platform: str
    status: JobStatus
    start_time: datetime
    end_time: datetime | None
    vehicles_found: int
    vehicles_processed: int
    vehicles_rejected: int
    vehicles_delisted: int
    errors: list[str] = Field(default_factory=list)
    performance_metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    #: What this run's pull of the dealer staged (a ``PullResult``), until a new pull try clears it.
    pull_result: dict[str, Any] | None = None
    #: The inventory anomaly the job failed for (its pull came back empty or shrank past
    #: ``max_drop_fraction``; nothing was delisted), or None.
    anomaly: str | None = None

    @property
    def duration_ms(self) -> int | None:
        """Wall time from the pull's start to the end of the job, when it has ended."""
        if self.end_time is None:
            return None
        return int((self.end_time - self.start_time).total_seconds() * 1000)


@dataclass(frozen=True)
class DealerHistory:
    """A dealer's recent history on one platform, from its finished (``success``/``failed``) executions.

    One model for every reader: selection (due-ness, the hold rule), the freshness check (missing, held,
    anomaly) and the status API's dealer health. The default is a dealer with no finished execution yet.
    """

    #: Start of the latest successful execution.
    last_success: datetime | None = None
    #: Finished executions that failed since the latest success (all of them when none succeeded).
    consecutive_failures: int = 0
    #: Start of the first finished execution.
    first_execution: datetime | None = None
    #: ``success`` or ``failed``: the latest finished execution's status.
    last_status: str | None = None
    #: The latest finished execution's last error.
    last_error: str | None = None
    #: The inventory anomaly the latest finished execution failed for (its row's ``anomaly``), or None.
    last_anomaly: str | None = None


def dealer_label(dealer_id: str, name: str | None, slug: str | None, *, with_id: bool = True) -> str:
    """How a person reads a dealer: the one spelling for task logs, alerts and error messages.

    ``Name (slug, id <id>)`` as operators know it, beside the id a re-run's ``dealer_id`` takes; the id
    alone when neither name nor slug is known (never a made-up name). ``with_id=False`` is the short form
    of task logs and map indexes, ``Name (slug)`` (``?`` for an unknown name, the id for an unknown slug).
    """
    if not with_id:
        return f"{name or '?'} ({slug or dealer_id})"
    who = name or slug
    if who is None:
        return dealer_id
    inner = ", ".join(part for part in (slug if name else None, f"id {dealer_id}") if part)
    return f"{who} ({inner})"


class DealerRef(BaseModel):
    """A dealer's identity on one platform: what `list_dealers` hands to each mapped task, never credentials.

    Every task of a run (pull, ingest, summarize) reads it from the shard's XCom and derives the dealer's
    job-history key (:meth:`key`) and labels from it. ``error`` is set for a dealer whose CMS document is
    invalid: its pull fails with that message, so a misconfigured dealer is visible in the run and in the
    job history instead of vanishing.
    """

    dealer_id: str
    platform: str
    name: str | None = None
    slug: str | None = None
    error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _platform_of_the_task(cls, data: Any, info: ValidationInfo) -> Any:
        # A shard listed before refs carried their platform (a run in flight across an upgrade) gets the
        # platform of the task reading it (Shard.load); never a guess.
        if (
            isinstance(data, dict)
            and "platform" not in data
            and info.context
            and info.context.get("platform")
        ):
            return {**data, "platform": info.context["platform"]}
        return data

    @classmethod
    def of(cls, doc: Dealer | InvalidDealer, platform: str) -> DealerRef:
        """The identity of a CMS document on ``platform``; an invalid one keeps its error (and, without an
        id, an ``unknown:`` id from its slug or name)."""
        if isinstance(doc, InvalidDealer):
            return cls(
                dealer_id=doc.id or f"unknown:{doc.slug or doc.name}",
                platform=platform,
                name=doc.name,
                slug=doc.slug,
                error=f"invalid dealer document in PayloadCMS: {doc.error}",
            )
        return cls(dealer_id=doc.id, platform=platform, name=doc.name, slug=doc.slug)

    def key(self, *, dag_id: str, run_id: str) -> ExecutionKey:
        """This dealer's `job_executions` key in the DAG run ``dag_id``/``run_id``."""
        return ExecutionKey(dag_id=dag_id, run_id=run_id, dealer_id=self.dealer_id, platform=self.platform)

    @property
    def label(self) -> str:
        """Short label for task logs and the UI's map index: ``Name (slug)``."""
        return dealer_label(self.dealer_id, self.name, self.slug, with_id=False)

    @property
    def full_label(self) -> str:
        """``Name (slug, id <id>)``, or the id alone: see :func:`dealer_label`."""
        return dealer_label(self.dealer_id, self.name, self.slug)


#: How many dealer names a shard's label shows before it only counts.
SHARD_LABEL_NAMES = 2


class Shard(BaseModel):
    """The dealers one mapped task instance works on, and the label its map index shows.

    The label names the first dealers and the count (``Acme Ford (acme-ford), Bay Honda (bay-honda) +48:
    50 dealers``), so the grid says which dealers a task worked on; one dealer is just its own label.
    """

    dealers: list[DealerRef]
    label: str

    @classmethod
    def load(cls, value: Any, platform: str) -> Shard:
        """The shard a task received from ``list_dealers`` (its XCom), read by a task of ``platform``."""
        return cls.model_validate(value, context={"platform": platform})

    @classmethod
    def of(cls, dealers: Sequence[DealerRef]) -> Shard:
        """A shard of ``dealers`` with its label."""
        names = [d.label for d in dealers[:SHARD_LABEL_NAMES]]
        if len(dealers) <= 1:
            label = names[0] if names else "no dealers"
        elif len(dealers) <= SHARD_LABEL_NAMES:
            label = f"{', '.join(names)}: {len(dealers)} dealers"
        else:
            label = f"{', '.join(names)} +{len(dealers) - SHARD_LABEL_NAMES}: {len(dealers)} dealers"
        return cls(dealers=list(dealers), label=label)


#: A shard is worth its task's start-up (a few CPU-seconds) from about this many dealers.
MIN_SHARD_DEALERS = 10


def plan_shards(
    dealers: Sequence[DealerRef], *, dealers_per_task: int, max_shards: int, min_shards: int = 1
) -> list[Shard]:
    """Cut the run's dealers into shards of at most ``dealers_per_task`` (sizes differ by one at most).

    Never more than ``max_shards`` shards (Airflow's ``max_map_length``): past that, shards grow instead.
    At least ``min_shards`` when every one still gets :data:`MIN_SHARD_DEALERS` dealers, so a run of a
    hundred dealers still fills the pools' concurrency (four ingest shards at once) instead of one task; and,
    where each still gets that many, a whole multiple of ``min_shards``, so the last wave of ingests is as
    full as the others (1,000 dealers: 12 shards of 83 to 84 in three waves of four, not 10 of 100 in waves of
    four, four and two).
    """
    if not dealers:
        return []
    count = math.ceil(len(dealers) / max(dealers_per_task, 1))
    count = max(count, min(min_shards, len(dealers) // MIN_SHARD_DEALERS))
    whole_waves = math.ceil(count / max(min_shards, 1)) * max(min_shards, 1)
    if whole_waves * MIN_SHARD_DEALERS <= len(dealers):
        count = whole_waves
    count = max(1, min(count, max_shards))
    size, extra = divmod(len(dealers), count)
    shards: list[Shard] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        shards.append(Shard.of(dealers[start:end]))
        start = end
    return shards


def as_flag(value: Any) -> bool:
    """A boolean param as Airflow hands it over: a bool, or (rendered into a template) ``"True"``."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def optional_text(value: Any) -> str | None:
    """An optional string param: ``None``, ``""`` and (rendered) ``"None"`` are unset."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "None") else text


class RunParams(BaseModel):
    """A platform DAG run's params, parsed once from ``context["params"]`` for every task of the run."""

    model_config = ConfigDict(frozen=True)

    dealer_id: str | None = None
    force: bool = False
    full_refresh: bool = False
    force_delist: bool = False
    #: None: the ``max_failure_rate`` setting.
    max_failure_rate: float | None = Field(default=None, ge=0.0, le=1.0)

    @classmethod
    def of(cls, params: Mapping[str, Any] | None) -> RunParams:
        """From the run's params (values as Airflow validated them; rendered strings are accepted too)."""
        given = dict(params or {})
        rate = optional_text(given.get("max_failure_rate"))
        return cls(
            dealer_id=optional_text(given.get("dealer_id")),
            force=as_flag(given.get("force", False)),
            full_refresh=as_flag(given.get("full_refresh", False)),
            force_delist=as_flag(given.get("force_delist", False)),
            max_failure_rate=float(rate) if rate is not None else None,
        )


class PullResult(BaseModel):
    """XCom summary of a pull: where the staged vehicles are and what the pull saw."""

    dealer_id: str
    platform: str
    staging_path: str | None
    checksum: str | None
    vehicles_found: int
    vehicles_staged: int
    vehicles_rejected: int
    rejects: dict[str, int] = Field(default_factory=dict)
    #: Fields set to unknown because their value was implausible, by reason (the vehicle was kept).
    warnings: dict[str, int] = Field(default_factory=dict)
    duplicates: int = 0
    complete: bool
    #: The source said nothing changed since the last successful pull (e.g. HTTP 304): nothing to send.
    unchanged: bool = False
    #: Set when the pull asked only for changes since this time (a partial pull).
    since: datetime | None = None
    notes: list[str] = Field(default_factory=list)
    #: Per-source state to save once the ingest succeeded (e.g. ``{"etag": ...}``); never secrets.
    state: dict[str, str] = Field(default_factory=dict)


class IngestResult(BaseModel):
    """XCom summary of an ingest."""

    dealer_id: str
    platform: str
    vehicles_sent: int
    vehicles_unchanged: int = 0
    vehicles_processed: int
    vehicles_rejected: int
    vehicles_delisted: int = 0
    batches: int
    api_errors: dict[str, int] = Field(default_factory=dict)


class RunSummary(BaseModel):
    """What `summarize_run` computed for one DAG run, from the job history."""

    dag_id: str
    run_id: str
    platform: str
    dealers: int
    succeeded: int
    failed: int
    running: int
    skipped: int
    failure_rate: float
    max_failure_rate: float
    vehicles_found: int
    vehicles_processed: int
    vehicles_rejected: int
    failed_dealers: dict[str, str] = Field(default_factory=dict)

    @property
    def over_threshold(self) -> bool:
        """True when the run must be marked failed."""
        return self.dealers > 0 and self.failure_rate > self.max_failure_rate
