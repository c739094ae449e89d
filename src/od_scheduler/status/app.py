"""The status FastAPI app, mounted by ``plugins/od_scheduler_plugin.py`` at ``/od-scheduler``.

Every route sits behind Airflow's own authentication: a valid Airflow JWT, as ``Authorization: Bearer``
(API clients, ``POST /auth/token``) or as the UI's ``_token`` cookie (the page, in the UI's iframe), of a
user allowed to read DAG runs. Without a token the answer is 401, exactly like ``/api/v2``. There is no
public route: Swagger, ReDoc and the OpenAPI document are switched off.

Every route then answers with the rows of the DAGs the user may read, as Airflow's auth manager decides per
DAG (``status/access.py``): statistics, totals and pages are computed over those rows only; naming a
platform whose DAG the user may not read, or reading with access to no platform's DAG at all, is 403.

Routes (below the mount point):

- ``GET /api/jobs/status?dealer_id&platform&status&since&limit&offset``
- ``GET /api/jobs/stats?days&platform``
- ``GET /api/dealers/health?dealer_id&platform&only&limit&offset``
- ``GET /api/dealers?q&platform&limit&offset`` - the dealer directory: find a dealer's PayloadCMS id by
  part of its name, slug or id
- ``GET /ui?days&q&platform&offset`` - the HTML page (``q``, ``platform``, ``offset``: its Dealers section)

Wherever a dealer id is returned, ``dealer_name`` and ``dealer_slug`` sit beside it (``null`` for a dealer
no ``list_dealers`` run has recorded yet).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import psycopg
from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from od_scheduler.exceptions import ConfigError
from od_scheduler.notifications import describe_database_error
from od_scheduler.platforms import PLATFORMS
from od_scheduler.settings import get_settings
from od_scheduler.status.access import read_scope, require_platform
from od_scheduler.status.page import CONTENT_SECURITY_POLICY, build_chart, directory_page, render_page
from od_scheduler.status.queries import (
    ReadScope,
    StatusQueries,
    dealer_health,
    job_history_hook,
    overdue_factor,
)
from od_scheduler.status.schemas import (
    DirectoryData,
    DirectoryQuery,
    DirectoryResponse,
    HealthData,
    HealthQuery,
    HealthResponse,
    Pagination,
    StatsData,
    StatsQuery,
    StatsResponse,
    StatusData,
    StatusQuery,
    StatusResponse,
    UiQuery,
)

log = logging.getLogger(__name__)

#: Rows of each table on the page (the API pages through the rest).
PAGE_ROWS = 100
PAGE_RUNS = 25
PAGE_DEALERS = 25

app = FastAPI(
    title="OD scheduler status",
    description="Job history status behind Airflow authentication",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)

#: The authorization of every route: an authenticated Airflow user who may read DAG runs (401 without a
#: token, like ``/api/v2``). Which DAGs' runs is decided per request by :func:`get_scope`. A module-level
#: object so that in-process tests can override exactly this dependency.
require_read_runs = requires_access_dag("GET", DagAccessEntity.RUN)

router = APIRouter(dependencies=[Depends(require_read_runs)])


def status_auth_manager() -> BaseAuthManager:
    """The api-server's auth manager (a dependency of its own, so in-process tests can supply one)."""
    return get_auth_manager()


def get_scope(
    request: Request, user: GetUserDep, auth_manager: Annotated[BaseAuthManager, Depends(status_auth_manager)]
) -> ReadScope:
    """What this request's user may read: the auth manager decides per DAG. 403 when no platform's DAG is
    readable, or when ``?platform=`` names one that is not: decided here, before any job-history work (the
    routes check their validated ``platform`` again; an unknown one is left to the 422 of validation)."""
    scope = read_scope(auth_manager, user)
    named = request.query_params.get("platform")
    if named in PLATFORMS:
        require_platform(scope, named)
    return scope


def get_queries(scope: Annotated[ReadScope, Depends(get_scope)]) -> Iterator[StatusQueries]:
    """One read-only job-history connection per request, limited to the user's scope, closed after the
    response is built."""
    with StatusQueries(job_history_hook(), scope) as queries:
        yield queries


QueriesDep = Annotated[StatusQueries, Depends(get_queries)]


def _page(limit: int, offset: int, returned: int, total: int) -> Pagination:
    end = offset + returned
    return Pagination(limit=limit, offset=offset, total=total, next_offset=end if end < total else None)


def _first_day(days: int, now: datetime) -> date:
    return now.date() - timedelta(days=days - 1)


@app.exception_handler(ConfigError)
def _config_error(request: Request, exc: ConfigError) -> JSONResponse:
    log.warning("status API unavailable: %s", exc)
    return JSONResponse(status_code=503, content={"detail": str(exc)})


def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # libpq names the host, address, port, socket and user it tried: none of that leaves the server.
    what = describe_database_error(exc)
    log.warning("job-history database error on %s: %s", request.url.path, what)
    return JSONResponse(status_code=503, content={"detail": f"job-history database unavailable: {what}"})


# PostgresHook connects with psycopg 3 when it is installed, else psycopg2.
app.add_exception_handler(psycopg.OperationalError, _database_error)
try:
    import psycopg2
except ImportError:  # pragma: no cover - psycopg2 is optional
    pass
else:
    app.add_exception_handler(psycopg2.OperationalError, _database_error)


@router.get("/api/jobs/status", response_model=StatusResponse)
def jobs_status(query: Annotated[StatusQuery, Query()], queries: QueriesDep) -> StatusResponse:
    """A page of executions (newest first) and statistics of the whole filtered set."""
    require_platform(queries.scope, query.platform)
    statistics = queries.statistics(query)
    executions = queries.executions(query)
    return StatusResponse(
        data=StatusData(
            executions=executions,
            statistics=statistics,
            pagination=_page(query.limit, query.offset, len(executions), statistics.total),
        ),
        timestamp=datetime.now(UTC),
    )


@router.get("/api/jobs/stats", response_model=StatsResponse)
def jobs_stats(query: Annotated[StatsQuery, Query()], queries: QueriesDep) -> StatsResponse:
    """Per UTC day x platform over the last ``days`` days (today included)."""
    require_platform(queries.scope, query.platform)
    now = datetime.now(UTC)
    first_day = _first_day(query.days, now)
    return StatsResponse(
        data=StatsData(
            days=query.days,
            first_day=first_day,
            last_day=now.date(),
            platform=query.platform,
            series=queries.daily(first_day=first_day, platform=query.platform),
        ),
        timestamp=now,
    )


@router.get("/api/dealers/health", response_model=HealthResponse)
def dealers_health(query: Annotated[HealthQuery, Query()], queries: QueriesDep) -> HealthResponse:
    """Per dealer x platform: last success, failures in a row, held, overdue; by (platform, dealer)."""
    require_platform(queries.scope, query.platform)
    settings = get_settings()
    now = datetime.now(UTC)
    rows = dealer_health(
        queries,
        now=now,
        hold_after_failures=settings.hold_after_failures,
        due_grace=timedelta(minutes=settings.due_grace_minutes),
        dealer_id=query.dealer_id,
        platform=query.platform,
        only=query.only,
    )
    page = rows[query.offset : query.offset + query.limit]
    return HealthResponse(
        data=HealthData(
            dealers=page,
            pagination=_page(query.limit, query.offset, len(page), len(rows)),
            hold_after_failures=settings.hold_after_failures,
            overdue_factor=overdue_factor(),
        ),
        timestamp=now,
    )


@router.get("/api/dealers", response_model=DirectoryResponse)
def dealers_directory(query: Annotated[DirectoryQuery, Query()], queries: QueriesDep) -> DirectoryResponse:
    """The dealers PayloadCMS listed (by name): the ``dealer_id`` a run's trigger form asks for."""
    require_platform(queries.scope, query.platform)
    dealers, total = queries.directory(query)
    return DirectoryResponse(
        data=DirectoryData(dealers=dealers, pagination=_page(query.limit, query.offset, len(dealers), total)),
        timestamp=datetime.now(UTC),
    )


@router.get("/ui", response_class=HTMLResponse)
def status_page(query: Annotated[UiQuery, Query()], user: GetUserDep, queries: QueriesDep) -> HTMLResponse:
    """The status page: success-rate chart, failing and overdue dealers, latest runs, the dealer directory."""
    require_platform(queries.scope, query.platform)
    settings = get_settings()
    now = datetime.now(UTC)
    first_day = _first_day(query.days, now)
    health = dealer_health(
        queries,
        now=now,
        hold_after_failures=settings.hold_after_failures,
        due_grace=timedelta(minutes=settings.due_grace_minutes),
    )
    html = render_page(
        user=user.get_name(),
        now=now,
        chart=build_chart(
            queries.daily(first_day=first_day, platform=None), first_day=first_day, days=query.days
        ),
        failing=[h for h in health if h.consecutive_failures > 0],
        overdue=[h for h in health if h.overdue],
        runs=queries.latest_runs(
            since=datetime.combine(first_day, datetime.min.time(), UTC), limit=PAGE_RUNS
        ),
        directory=directory_page(
            *queries.directory(
                DirectoryQuery(q=query.q, platform=query.platform, limit=PAGE_DEALERS, offset=query.offset)
            ),
            query=query,
            size=PAGE_DEALERS,
        ),
        hold_after_failures=settings.hold_after_failures,
        overdue_factor=overdue_factor(),
        max_rows=PAGE_ROWS,
        readable_platforms=None if queries.scope.complete else queries.scope.platforms,
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


app.include_router(router)
