"""Read-only queries of the status API over the job history.

Constant SQL with bound parameters; one read-only REPEATABLE READ transaction per request with a statement
timeout; dealer health from the scheduler's own rules; dealer names LEFT JOINed from ``dealer_directory``;
every query limited to the request's :class:`ReadScope` inside the SQL. Who may read which DAG is decided
in ``status/access.py``. Why: docs/design.md, "Status and monitoring".
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import TracebackType
from typing import Any

from airflow.exceptions import AirflowNotFoundException

from od_scheduler import conn_ids
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerHistory
from od_scheduler.platforms import PLATFORMS
from od_scheduler.scheduling import interval_for, is_overdue, select_dealers
from od_scheduler.settings import get_settings
from od_scheduler.status.schemas import (
    Aggregate,
    DayStats,
    DealerHealth,
    DirectoryDealer,
    DirectoryQuery,
    Execution,
    HealthState,
    LastSuccess,
    PlatformAggregate,
    Statistics,
    StatusCounts,
    StatusQuery,
    VehicleTotals,
)

log = logging.getLogger(__name__)


def overdue_factor() -> float:
    """A dealer is overdue when its last success is older than this many intervals: the same
    ``missing_after_intervals`` setting the freshness alerts use, so page and alerts agree."""
    return get_settings().missing_after_intervals


STATEMENT_TIMEOUT_MS = 15_000

# Constant SQL fragments (no user input), shared by the statistics and the per-day series.
_DURATION_MS = "extract(epoch FROM end_time - start_time)::float8 * 1000"
_RAN = "status IN ('success', 'failed') AND end_time IS NOT NULL"
_AGGREGATES = f"""
    count(*) AS total,
    count(*) FILTER (WHERE status = 'running') AS running,
    count(*) FILTER (WHERE status = 'success') AS success,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'skipped') AS skipped,
    count(*) FILTER (WHERE status <> 'running') AS finished,
    (count(*) FILTER (WHERE status = 'success'))::float8
        / NULLIF(count(*) FILTER (WHERE status <> 'running'), 0) AS success_rate,
    (count(*) FILTER (WHERE status = 'failed'))::float8
        / NULLIF(count(*) FILTER (WHERE status <> 'running'), 0) AS failure_rate,
    avg({_DURATION_MS}) FILTER (WHERE {_RAN}) AS avg_duration_ms,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY {_DURATION_MS}) FILTER (WHERE {_RAN}) AS p95_duration_ms,
    coalesce(sum(vehicles_found), 0)::bigint AS vehicles_found,
    coalesce(sum(vehicles_processed), 0)::bigint AS vehicles_processed,
    coalesce(sum(vehicles_rejected), 0)::bigint AS vehicles_rejected,
    coalesce(sum(vehicles_delisted), 0)::bigint AS vehicles_delisted
"""

_EXECUTION_COLUMNS = f"""
    id, job_id, dag_id, run_id, try_number, dealer_id, platform, status, start_time, end_time,
    round({_DURATION_MS})::bigint AS duration_ms,
    vehicles_found, vehicles_processed, vehicles_rejected, vehicles_delisted, errors,
    performance_metrics, created_at
"""


#: The directory's columns beside a dealer id (the directory is joined as ``d``).
_NAMES = "d.name AS dealer_name, d.slug AS dealer_slug"


def like_pattern(text: str) -> str:
    """``%text%`` for ILIKE, with LIKE's own wildcards in ``text`` matched literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def job_history_hook(conn_id: str = conn_ids.JOB_HISTORY) -> JobHistoryHook:
    """A JobHistoryHook whose connection resolves in the api-server as well as in tasks.

    The Task SDK lookup (``BaseHook.get_connection``) finds environment and secrets-backend connections
    everywhere, and metadata-DB connections only where Airflow marks the process as a server (the
    api-server does). Anywhere else a connection defined in the metadata DB would be missed, so on
    "not found" the core model's lookup, which always includes the metadata DB, is tried once.
    """
    hook = JobHistoryHook(postgres_conn_id=conn_id)
    try:
        _ = hook.connection
        return hook
    except AirflowNotFoundException:
        pass
    from airflow.models.connection import Connection

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException as err:
        raise ConfigError(
            f"connection {conn_id!r} is not defined for the api-server: define it in Airflow "
            f"(UI, `airflow connections add`, or AIRFLOW_CONN_{conn_id.upper()} in its environment)"
        ) from err
    log.info("Connection %s resolved from the metadata DB (core Connection lookup)", conn_id)
    return JobHistoryHook(postgres_conn_id=conn_id, connection=conn)


@dataclass(frozen=True)
class ReadScope:
    """What one request may read of the job history, as the auth manager decided it for its user.

    ``platforms``: the registry platforms whose DAG the user may read; the dealer directory (which has no
    DAG of its own) shows only dealers listed for one of them, and only those platforms of each dealer.
    ``may_read``: which of the given DAG ids the user may read; asked once per request, about the DAG ids
    present in the job history, whose rows are then filtered by ``dag_id``.
    """

    platforms: frozenset[str]
    may_read: Callable[[frozenset[str]], frozenset[str]]

    @property
    def complete(self) -> bool:
        """The user may read every platform's DAG: the directory is shown as stored, entries that name no
        registry platform (nothing to authorize them by) included."""
        return self.platforms >= PLATFORMS.keys()

    @classmethod
    def everything(cls) -> ReadScope:
        """No restriction: for callers acting for the system, not for a user (tools, tests)."""
        return cls(platforms=frozenset(PLATFORMS), may_read=lambda dag_ids: dag_ids)


#: The distinct dag_ids of the job history, by a loose index scan of the (dag_id, run_id, ...) unique index:
#: one index probe per DAG instead of reading every row.
_DAG_IDS_SQL = """
WITH RECURSIVE ids AS (
    (SELECT dag_id FROM job_executions ORDER BY dag_id LIMIT 1)
    UNION ALL
    SELECT (SELECT j.dag_id FROM job_executions j WHERE j.dag_id > ids.dag_id ORDER BY j.dag_id LIMIT 1)
      FROM ids
     WHERE ids.dag_id IS NOT NULL
)
SELECT dag_id FROM ids WHERE dag_id IS NOT NULL
"""


def _where(
    *,
    dag_ids: Collection[str],
    dealer_id: str | None = None,
    platform: str | None = None,
    platforms: Sequence[str] | None = None,
    status: str | None = None,
    since: datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """A WHERE clause picked from fixed fragments, and its bound parameters. ``dag_ids`` (required) are the
    DAGs whose rows the request may read: an empty collection selects nothing."""
    clauses: list[str] = ["dag_id = ANY(%(dag_ids)s)"]
    params: dict[str, Any] = {"dag_ids": sorted(dag_ids)}
    if dealer_id is not None:
        clauses.append("dealer_id = %(dealer_id)s")
        params["dealer_id"] = dealer_id
    if platform is not None:
        clauses.append("platform = %(platform)s")
        params["platform"] = platform
    if platforms is not None:
        clauses.append("platform = ANY(%(platforms)s)")
        params["platforms"] = list(platforms)
    if status is not None:
        clauses.append("status = %(status)s")
        params["status"] = status
    if since is not None:
        clauses.append("start_time >= %(since)s")
        params["since"] = since
    return " WHERE " + " AND ".join(clauses), params


def _status_filter(query: StatusQuery, dag_ids: Collection[str]) -> tuple[str, dict[str, Any]]:
    return _where(
        dag_ids=dag_ids,
        dealer_id=query.dealer_id,
        platform=query.platform,
        status=query.status.value if query.status else None,
        since=query.since,
    )


def _aggregate_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "total": row["total"],
        "by_status": StatusCounts(
            running=row["running"], success=row["success"], failed=row["failed"], skipped=row["skipped"]
        ),
        "finished": row["finished"],
        "success_rate": row["success_rate"],
        "failure_rate": row["failure_rate"],
        "avg_duration_ms": row["avg_duration_ms"],
        "p95_duration_ms": row["p95_duration_ms"],
        "vehicles": VehicleTotals(
            found=row["vehicles_found"],
            processed=row["vehicles_processed"],
            rejected=row["vehicles_rejected"],
            delisted=row["vehicles_delisted"],
        ),
    }


@dataclass(frozen=True)
class RunSummaryRow:
    """One DAG run of the job history, for the page's "latest runs" table."""

    dag_id: str
    run_id: str
    platform: str
    started: datetime
    ended: datetime | None
    dealers: int
    success: int
    failed: int
    skipped: int
    running: int
    vehicles_found: int
    vehicles_processed: int
    vehicles_rejected: int


class StatusQueries:
    """The status reads of one request, on one read-only connection, limited to what ``scope`` may read;
    use as a context manager."""

    def __init__(self, hook: JobHistoryHook, scope: ReadScope) -> None:
        self.hook = hook
        self.scope = scope
        self._conn: Any = None
        self._dag_ids: frozenset[str] | None = None

    def __enter__(self) -> StatusQueries:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Roll back the read-only transaction and close the connection."""
        if self._conn is not None:
            try:
                self._conn.rollback()
            finally:
                self._conn.close()
                self._conn = None

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self._conn is None:
            conn: Any = self.hook.get_conn()
            with conn.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(STATEMENT_TIMEOUT_MS),))
            self._conn = conn
        with self._conn.cursor() as cur:
            yield cur

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self._cursor() as cur:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def readable_dag_ids(self) -> frozenset[str]:
        """The DAG ids of the job history this request may read: the ids present in the request's snapshot,
        asked once (a row written after the snapshot is not read by this request, so none escapes)."""
        if self._dag_ids is None:
            present = frozenset(r["dag_id"] for r in self._rows(_DAG_IDS_SQL, {}))
            self._dag_ids = self.scope.may_read(present) & present
        return self._dag_ids

    # -- /api/jobs/status -------------------------------------------------------------------------
    def executions(self, query: StatusQuery) -> list[Execution]:
        """One page of the filtered executions, newest first."""
        where, params = _status_filter(query, self.readable_dag_ids())
        rows = self._rows(
            f"SELECT e.*, {_NAMES} FROM ("
            f"SELECT {_EXECUTION_COLUMNS} FROM job_executions{where} "
            "ORDER BY start_time DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s"
            ") e LEFT JOIN dealer_directory d USING (dealer_id) ORDER BY e.start_time DESC, e.id DESC",
            {**params, "limit": query.limit, "offset": query.offset},
        )
        return [Execution.model_validate(row) for row in rows]

    def statistics(self, query: StatusQuery) -> Statistics:
        """Totals, rates, durations and vehicles of the whole filtered set, overall and per platform."""
        where, params = _status_filter(query, self.readable_dag_ids())
        rows = self._rows(
            f"SELECT platform, GROUPING(platform) AS is_total, {_AGGREGATES} FROM job_executions{where} "
            "GROUP BY GROUPING SETS ((), (platform)) ORDER BY is_total DESC, platform",
            params,
        )
        overall = next((r for r in rows if r["is_total"]), None)
        base = (
            _aggregate_fields(overall)
            if overall
            else Aggregate(
                total=0,
                by_status=StatusCounts(),
                finished=0,
                success_rate=None,
                failure_rate=None,
                avg_duration_ms=None,
                p95_duration_ms=None,
                vehicles=VehicleTotals(),
            ).model_dump()
        )
        last = self._rows(
            f"SELECT l.*, {_NAMES} FROM ("
            "SELECT dealer_id, platform, max(start_time) FILTER (WHERE status = 'success') AS last_success "
            f"FROM job_executions{where} GROUP BY dealer_id, platform"
            ") l LEFT JOIN dealer_directory d USING (dealer_id) ORDER BY l.platform, l.dealer_id",
            params,
        )
        return Statistics(
            **base,
            by_platform=[
                PlatformAggregate(platform=r["platform"], **_aggregate_fields(r))
                for r in rows
                if not r["is_total"]
            ],
            last_success=[LastSuccess.model_validate(r) for r in last],
        )

    # -- /api/jobs/stats --------------------------------------------------------------------------
    def daily(self, *, first_day: date, platform: str | None) -> list[DayStats]:
        """Per UTC day x platform, from midnight UTC of ``first_day`` on."""
        where, params = _where(
            dag_ids=self.readable_dag_ids(),
            platform=platform,
            since=datetime.combine(first_day, time.min, UTC),
        )
        rows = self._rows(
            "SELECT (start_time AT TIME ZONE 'UTC')::date AS day, platform, "
            f"count(DISTINCT (dag_id, run_id)) AS runs, {_AGGREGATES} FROM job_executions{where} "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            params,
        )
        return [
            DayStats(
                day=r["day"],
                platform=r["platform"],
                runs=r["runs"],
                executions=r["total"],
                by_status=StatusCounts(
                    running=r["running"], success=r["success"], failed=r["failed"], skipped=r["skipped"]
                ),
                finished=r["finished"],
                success_rate=r["success_rate"],
                p95_duration_ms=r["p95_duration_ms"],
                vehicles=VehicleTotals(
                    found=r["vehicles_found"],
                    processed=r["vehicles_processed"],
                    rejected=r["vehicles_rejected"],
                    delisted=r["vehicles_delisted"],
                ),
            )
            for r in rows
        ]

    # -- /api/dealers/health ------------------------------------------------------------------------
    def pairs(self, *, dealer_id: str | None, platform: str | None) -> list[dict[str, Any]]:
        """Per dealer x readable registry platform: executions, last run, last failure."""
        where, params = _where(
            dag_ids=self.readable_dag_ids(),
            dealer_id=dealer_id,
            platform=platform,
            platforms=sorted(self.scope.platforms & PLATFORMS.keys()),
        )
        failed_where = f"{where} AND status = 'failed'"
        return self._rows(
            f"""
            WITH pairs AS (
                SELECT platform, dealer_id, count(*) AS executions
                  FROM job_executions{where}
                 GROUP BY platform, dealer_id
            ), last_execution AS (
                SELECT DISTINCT ON (platform, dealer_id) platform, dealer_id,
                       start_time AS last_run, status AS last_status
                  FROM job_executions{where}
                 ORDER BY platform, dealer_id, start_time DESC, id DESC
            ), last_failure AS (
                SELECT DISTINCT ON (platform, dealer_id) platform, dealer_id,
                       start_time AS last_failure, errors[cardinality(errors)] AS last_error
                  FROM job_executions{failed_where}
                 ORDER BY platform, dealer_id, start_time DESC, id DESC
            )
            SELECT pairs.*, last_run, last_status, last_failure, last_error, {_NAMES}
              FROM pairs
              JOIN last_execution USING (platform, dealer_id)
              LEFT JOIN last_failure USING (platform, dealer_id)
              LEFT JOIN dealer_directory d USING (dealer_id)
             ORDER BY platform, dealer_id
            """,
            params,
        )

    # -- /api/dealers: the dealer directory ------------------------------------------------------------
    def directory(self, query: DirectoryQuery) -> tuple[list[DirectoryDealer], int]:
        """(One page of the directory by name then id, the number of dealers matching the filters).

        A user who may not read every platform's DAG sees the dealers listed for a platform they may read,
        each with those platforms only."""
        clauses: list[str] = []
        params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
        readable = sorted(self.scope.platforms)
        if not self.scope.complete:
            clauses.append("platforms && %(readable)s::text[]")
            params["readable"] = readable
        if query.q is not None:
            clauses.append(
                "(name ILIKE %(pattern)s OR slug ILIKE %(pattern)s OR dealer_id ILIKE %(pattern)s)"
            )
            params["pattern"] = like_pattern(query.q)
        if query.platform is not None:
            clauses.append("%(platform)s = ANY(platforms)")
            params["platform"] = query.platform
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        total = self._rows(f"SELECT count(*) AS n FROM dealer_directory{where}", params)[0]["n"]
        rows = self._rows(
            "SELECT dealer_id, name, slug, platforms, listed_at, cms_error "
            f"FROM dealer_directory{where} ORDER BY lower(name), dealer_id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        if not self.scope.complete:
            for r in rows:
                r["platforms"] = [p for p in r["platforms"] if p in self.scope.platforms]
        return [DirectoryDealer.model_validate(r) for r in rows], int(total)

    # -- the page's latest runs -----------------------------------------------------------------------
    def latest_runs(self, *, since: datetime, limit: int) -> list[RunSummaryRow]:
        """The newest DAG runs that started since ``since``, one row per run."""
        where, params = _where(dag_ids=self.readable_dag_ids(), since=since)
        rows = self._rows(
            f"""
            SELECT dag_id, run_id, min(platform) AS platform,
                   min(start_time) AS started,
                   CASE WHEN bool_or(end_time IS NULL) THEN NULL ELSE max(end_time) END AS ended,
                   count(*) AS dealers,
                   count(*) FILTER (WHERE status = 'success') AS success,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'skipped') AS skipped,
                   count(*) FILTER (WHERE status = 'running') AS running,
                   coalesce(sum(vehicles_found), 0)::bigint AS vehicles_found,
                   coalesce(sum(vehicles_processed), 0)::bigint AS vehicles_processed,
                   coalesce(sum(vehicles_rejected), 0)::bigint AS vehicles_rejected
              FROM job_executions{where}
             GROUP BY dag_id, run_id
             ORDER BY started DESC, dag_id, run_id
             LIMIT %(limit)s
            """,
            {**params, "limit": limit},
        )
        return [RunSummaryRow(**r) for r in rows]


def dealer_health(
    queries: StatusQueries,
    *,
    now: datetime,
    hold_after_failures: int,
    due_grace: timedelta,
    dealer_id: str | None = None,
    platform: str | None = None,
    only: HealthState | None = None,
) -> list[DealerHealth]:
    """Health of every dealer x platform in the history, by (platform, dealer_id).

    The dealers are judged as a scheduled (not forced) run would judge them, with each platform's default
    interval: the API does not call the CMS, so per-dealer interval overrides and pauses are not seen.
    """
    by_platform: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in queries.pairs(dealer_id=dealer_id, platform=platform):
        by_platform[row["platform"]].append(row)
    result: list[DealerHealth] = []
    for platform_id in sorted(by_platform):
        spec = PLATFORMS[platform_id]
        rows = by_platform[platform_id]
        dealers = [
            Dealer(id=r["dealer_id"], name=r["dealer_id"], slug=r["dealer_id"], status="active") for r in rows
        ]
        histories = queries.hook.executions.dealer_histories(platform_id, [d.id for d in dealers])
        selection = select_dealers(
            dealers,
            histories,
            now=now,
            default_interval_minutes=spec.default_interval_minutes,
            force=False,
            hold_after_failures=hold_after_failures,
            grace=due_grace,
        )
        selected = set(selection.selected)
        for dealer, row in zip(dealers, rows, strict=True):
            history = histories.get(dealer.id, DealerHistory())
            interval = interval_for(dealer, spec.default_interval_minutes)
            result.append(
                DealerHealth(
                    dealer_id=dealer.id,
                    dealer_name=row["dealer_name"],
                    dealer_slug=row["dealer_slug"],
                    platform=platform_id,
                    interval_minutes=int(interval.total_seconds() // 60),
                    last_success=history.last_success,
                    consecutive_failures=history.consecutive_failures,
                    held=dealer.id in selection.held,
                    held_reason=selection.held.get(dealer.id),
                    overdue=is_overdue(history, interval=interval, factor=overdue_factor(), now=now),
                    due=dealer.id in selected,
                    executions=row["executions"],
                    last_run=row["last_run"],
                    last_status=row["last_status"],
                    last_failure=row["last_failure"],
                    last_error=row["last_error"],
                )
            )
    if only == "failing":
        result = [h for h in result if h.consecutive_failures > 0]
    elif only == "held":
        result = [h for h in result if h.held]
    elif only == "overdue":
        result = [h for h in result if h.overdue]
    return result
