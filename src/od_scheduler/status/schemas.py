"""Query parameters and response models of the status API.

Every query model forbids unknown parameters, so a typo (``?platfrom=``) is a 422 instead of a silently
unfiltered answer. Platform ids are checked against the registry; dates are ISO 8601 (a date alone means
midnight UTC, a date-time without offset is UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from od_scheduler.models.job import DealerRef, JobStatus
from od_scheduler.platforms import PLATFORMS

#: The largest page any endpoint returns.
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_OFFSET = 1_000_000
MAX_DAYS = 366


def _known_platform(value: str) -> str:
    if value not in PLATFORMS:
        raise ValueError(f"unknown platform {value!r}; known platforms: {', '.join(sorted(PLATFORMS))}")
    return value


def _iso_text(value: object) -> object:
    # pydantic would read a bare number as Unix seconds; "since=7" meaning 1970 helps nobody.
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        raise ValueError("expected an ISO 8601 date or date-time, e.g. 2026-11-01 or 2026-11-01T06:00:00Z")
    return value


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


PlatformId = Annotated[str, AfterValidator(_known_platform)]
DealerId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[\w.:-]+$")
]
Since = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_utc)]


def _blank_is_none(value: object) -> object:
    # An empty search box submits ``q=``: that means no search, not "names containing nothing".
    return None if isinstance(value, str) and not value.strip() else value


SearchText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Search = Annotated[
    SearchText | None,
    BeforeValidator(_blank_is_none),
    Field(description="part of a dealer's name, slug or id (any case)"),
]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"page size, 1..{MAX_LIMIT}")]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description="rows to skip")]


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusQuery(_Query):
    """``GET /api/jobs/status``: filters of the executions list and of its statistics."""

    dealer_id: DealerId | None = None
    platform: PlatformId | None = None
    status: JobStatus | None = None
    since: Since | None = Field(default=None, description="executions started at or after this time")
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0


class StatsQuery(_Query):
    """``GET /api/jobs/stats``: the last ``days`` UTC calendar days, today included."""

    days: Annotated[int, Field(ge=1, le=MAX_DAYS)] = 14
    platform: PlatformId | None = None


class UiQuery(_Query):
    """``GET /ui``: the window of the chart and of the latest runs; ``q``, ``platform`` and ``offset`` search
    and page the Dealers section only."""

    days: Annotated[int, Field(ge=1, le=90)] = 14
    q: Search = None
    platform: Annotated[PlatformId | None, BeforeValidator(_blank_is_none)] = None
    offset: Offset = 0


HealthState = Literal["failing", "held", "overdue"]


class HealthQuery(_Query):
    """``GET /api/dealers/health``: one row per dealer x platform seen in the job history."""

    dealer_id: DealerId | None = None
    platform: PlatformId | None = None
    only: HealthState | None = Field(
        default=None, description="failing: last finished execution(s) failed; held; overdue"
    )
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0


class DirectoryQuery(_Query):
    """``GET /api/dealers``: the dealer directory, by name; ``q`` searches name, slug and id."""

    q: Search = None
    platform: PlatformId | None = None
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0


# -- responses ----------------------------------------------------------------------------------------
#: Beside every dealer id a person reads: the name and slug PayloadCMS last listed for it (``null`` when no
#: ``list_dealers`` run has recorded the dealer yet; a name is never guessed).
DealerName = Annotated[str | None, Field(description="the dealer's name in PayloadCMS; null: not known")]
DealerSlug = Annotated[str | None, Field(description="the dealer's slug in PayloadCMS; null: not known")]


class Execution(BaseModel):
    """One row of the job history (the previous endpoint's columns plus run identity and counts)."""

    id: int
    job_id: str
    dag_id: str
    run_id: str
    try_number: int
    dealer_id: str
    dealer_name: DealerName = None
    dealer_slug: DealerSlug = None
    platform: str
    status: JobStatus
    start_time: datetime
    end_time: datetime | None
    duration_ms: int | None
    vehicles_found: int
    vehicles_processed: int
    vehicles_rejected: int
    vehicles_delisted: int
    errors: list[str]
    performance_metrics: dict[str, Any]
    created_at: datetime


class StatusCounts(BaseModel):
    """Executions per status."""

    running: int = 0
    success: int = 0
    failed: int = 0
    skipped: int = 0


class VehicleTotals(BaseModel):
    """Vehicle counts summed over executions; ``processed`` = sent to and accepted by the Data API."""

    found: int = 0
    processed: int = 0
    rejected: int = 0
    delisted: int = 0


class Aggregate(BaseModel):
    """Statistics of a set of executions.

    ``finished`` = every execution that is not ``running``; the rates are shares of ``finished`` (``null``
    when nothing finished), so a skipped execution counts as neither success nor failure. Durations are
    end minus start of executions that ran and ended (``success`` or ``failed``); p95 is interpolated
    (``percentile_cont``).
    """

    total: int
    by_status: StatusCounts
    finished: int
    success_rate: float | None
    failure_rate: float | None
    avg_duration_ms: float | None
    p95_duration_ms: float | None
    vehicles: VehicleTotals


class PlatformAggregate(Aggregate):
    """:class:`Aggregate` of one platform."""

    platform: str


class LastSuccess(BaseModel):
    """Start of the latest successful execution of a dealer x platform in the filtered set."""

    dealer_id: str
    dealer_name: DealerName = None
    dealer_slug: DealerSlug = None
    platform: str
    last_success: datetime | None


class Statistics(Aggregate):
    """Statistics of the whole filtered set (not only the returned page)."""

    by_platform: list[PlatformAggregate]
    last_success: list[LastSuccess]


class Pagination(BaseModel):
    """Where this page sits in the filtered set."""

    limit: int
    offset: int
    total: int
    next_offset: int | None


class StatusData(BaseModel):
    executions: list[Execution]
    statistics: Statistics
    pagination: Pagination


class StatusResponse(BaseModel):
    """The previous ``/api/jobs/status`` shape: ``{success, data: {executions, statistics}, timestamp}``."""

    success: bool = True
    data: StatusData
    timestamp: datetime


class DayStats(BaseModel):
    """One UTC day x platform. ``runs`` = distinct DAG runs; ``executions`` = dealer jobs."""

    day: date
    platform: str
    runs: int
    executions: int
    by_status: StatusCounts
    finished: int
    success_rate: float | None
    p95_duration_ms: float | None
    vehicles: VehicleTotals


class StatsData(BaseModel):
    days: int
    first_day: date
    last_day: date
    platform: str | None
    series: list[DayStats]


class StatsResponse(BaseModel):
    success: bool = True
    data: StatsData
    timestamp: datetime


class DealerHealth(BaseModel):
    """Health of one dealer x platform, judged by the scheduler's own rules.

    ``held`` and ``consecutive_failures`` come from the same history query and hold rule the scheduled
    runs use (a CMS pause is not visible here: the API does not call the CMS). ``overdue``: the freshness
    check's rule (``scheduling.is_overdue``) over the same history: the last success is older than
    ``overdue_factor`` x the platform's default interval or, for a dealer that never succeeded, its first
    finished execution is (skipped and running rows do not count).
    """

    dealer_id: str
    dealer_name: DealerName = None
    dealer_slug: DealerSlug = None
    platform: str
    interval_minutes: int
    last_success: datetime | None
    consecutive_failures: int
    held: bool
    held_reason: str | None
    overdue: bool
    due: bool
    executions: int
    last_run: datetime
    last_status: JobStatus
    last_failure: datetime | None
    last_error: str | None

    @property
    def dealer(self) -> DealerRef:
        """The dealer's identity on this platform, as the rest of the project reads it (not in the JSON)."""
        return DealerRef(
            dealer_id=self.dealer_id, platform=self.platform, name=self.dealer_name, slug=self.dealer_slug
        )


class HealthData(BaseModel):
    dealers: list[DealerHealth]
    pagination: Pagination
    hold_after_failures: int
    overdue_factor: float


class HealthResponse(BaseModel):
    success: bool = True
    data: HealthData
    timestamp: datetime


class DirectoryDealer(BaseModel):
    """One dealer as PayloadCMS last listed it: ``dealer_id`` is what a run's ``dealer_id`` param takes.

    ``platforms`` is the CMS document's list; ``listed_at`` is when a run last saw the dealer active (a dealer
    the CMS stopped listing keeps its last entry); ``cms_error`` is set when that document failed validation.
    """

    dealer_id: str
    name: str | None
    slug: str | None
    platforms: list[str]
    listed_at: datetime
    cms_error: str | None


class DirectoryData(BaseModel):
    dealers: list[DirectoryDealer]
    pagination: Pagination


class DirectoryResponse(BaseModel):
    success: bool = True
    data: DirectoryData
    timestamp: datetime
