"""Job history and run-level models: what `job_executions` holds and what tasks pass through XCom.

XCom payloads are deliberately small (``PullResult``, ``IngestResult``, ``RunSummary``): vehicles travel
through staging files, never through XCom.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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

    @property
    def duration_ms(self) -> int | None:
        """Wall time from the pull's start to the end of the job, when it has ended."""
        if self.end_time is None:
            return None
        return int((self.end_time - self.start_time).total_seconds() * 1000)


class DealerRef(BaseModel):
    """What `list_dealers` hands to each mapped task: identity only, never credentials.

    ``error`` is set for a dealer whose CMS document is invalid: its pull fails with that message,
    so a misconfigured dealer is visible in the run and in the job history instead of vanishing.
    """

    dealer_id: str
    name: str | None = None
    slug: str | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        """Human label for logs and the UI's map index."""
        return f"{self.name or '?'} ({self.slug or self.dealer_id})"


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
