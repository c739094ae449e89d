"""The status API in-process against a seeded job history on the real job-history PostgreSQL.

Every statistic is checked against an independent computation in Python (``tests/status_history.py``).
Dealer names come from the dealer directory, seeded through the same ``DirectoryStore.remember_dealers``
that ``list_dealers`` calls (and once by a real platform run).

Auth: these tests call the FastAPI app in-process with fastapi's TestClient and OVERRIDE the app's auth
dependencies (``require_read_runs``, Airflow's ``get_user`` and ``status_auth_manager``) with a fixed admin
user and an auth manager instance, because no api-server runs here. Only
``test_without_the_override_every_route_answers_401`` runs with the real dependencies. Authentication
against a real ``airflow api-server`` is proven in ``tests/e2e/test_status_api.py``; users who may read
some DAGs only in ``test_status_access.py`` (here) and there.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from od_scheduler.platforms import PLATFORMS
from tests import status_history as sh
from tests.fixtures import job_history_conn, platform_dealers, run_dag

pytestmark = pytest.mark.integration

STATUS = "/api/jobs/status"
STATS = "/api/jobs/stats"
HEALTH = "/api/dealers/health"
DEALERS = "/api/dealers"


@pytest.fixture(scope="module")
def history(airflow_db: None) -> Iterator[tuple[datetime, list[sh.Row]]]:
    """Thousands of executions written to the job-history DB, and the dealer directory; (now, rows)."""
    from od_scheduler.hooks.job_history import JobHistoryHook

    now = datetime.now(UTC)
    rows = sh.generate(now)
    with job_history_conn() as db:
        assert sh.insert(db, rows) == len(rows)
    assert len(rows) > 4000
    assert JobHistoryHook().directory.remember_dealers(sh.directory()) == len(sh.directory())
    return now, rows


#: ``{dealer_id: (name, slug)}`` of the seeded directory; a dealer not in it must be named null.
NAMES = sh.names(sh.directory())
UNNAMED = (None, None)


@pytest.fixture
def api(history: tuple[datetime, list[sh.Row]]) -> Iterator[TestClient]:
    """TestClient on the app with the auth dependencies overridden (see the module docstring)."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    from od_scheduler.status.app import app, require_read_runs, status_auth_manager
    from tests.support.scoped_auth_manager import ScopedAuthManager

    app.dependency_overrides[require_read_runs] = lambda: None
    app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username="tester", role="admin")
    app.dependency_overrides[status_auth_manager] = lambda: ScopedAuthManager({})
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.dependency_overrides.clear()


def _approx(value: Any) -> Any:
    return None if value is None else pytest.approx(value, rel=1e-9, abs=1e-6)


def _check_aggregate(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got["total"] == expected["total"]
    assert got["by_status"] == expected["by_status"]
    assert got["finished"] == expected["finished"]
    for key in ("success_rate", "failure_rate", "avg_duration_ms", "p95_duration_ms"):
        assert got[key] == _approx(expected[key]), key
    assert got["vehicles"] == expected["vehicles"]


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# -- /api/jobs/status -------------------------------------------------------------------------------
def test_unfiltered_statistics_match_an_independent_computation(api: TestClient, history) -> None:
    _, rows = history
    body = api.get(STATUS).json()
    assert body["success"] is True
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    stats = body["data"]["statistics"]
    _check_aggregate(stats, sh.aggregate(rows))
    platforms = sorted({r.platform for r in rows})
    assert [p["platform"] for p in stats["by_platform"]] == platforms
    for got in stats["by_platform"]:
        _check_aggregate(got, sh.aggregate([r for r in rows if r.platform == got["platform"]]))
    expected_last = sh.last_successes(rows)
    assert [(x["platform"], x["dealer_id"]) for x in stats["last_success"]] == [
        (x["platform"], x["dealer_id"]) for x in expected_last
    ]
    assert [_ts(x["last_success"]) for x in stats["last_success"]] == [
        x["last_success"] for x in expected_last
    ]
    # The rates are of finished executions: running ones are left out, skipped ones count in neither.
    assert stats["by_status"]["running"] > 0
    assert stats["by_status"]["skipped"] > 0
    assert stats["success_rate"] + stats["failure_rate"] < 1


@pytest.mark.parametrize(
    "filters",
    [
        {"dealer_id": "dealer-07"},  # on dealer.com and homenet
        {"platform": "homenet"},
        {"status": "failed"},
        {"status": "running"},
        {"platform": "dealer.com", "status": "success"},
        {"dealer_id": "dealer-03", "platform": "dealer.com"},
        {"since_days": 3},
        {"since_days": 10, "platform": "cobalt", "status": "failed"},
        {"dealer_id": "nobody"},
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()),
)
def test_filters_select_the_same_rows_as_python(api: TestClient, history, filters: dict[str, Any]) -> None:
    now, rows = history
    params = dict(filters)
    if "since_days" in params:
        since = now - timedelta(days=params.pop("since_days"))
        expected_rows = sh.select(rows, since=since, **params)
        params["since"] = since.isoformat()
    else:
        expected_rows = sh.select(rows, **params)
    body = api.get(STATUS, params={**params, "limit": 500}).json()
    _check_aggregate(body["data"]["statistics"], sh.aggregate(expected_rows))
    executions = body["data"]["executions"]
    assert len(executions) == min(500, len(expected_rows))
    newest = sh.newest_first(expected_rows)[:500]
    assert [(e["dealer_id"], e["platform"], _ts(e["start_time"])) for e in executions] == [
        (r.dealer_id, r.platform, r.start_time) for r in newest
    ]
    if not expected_rows:
        assert body["data"]["statistics"]["success_rate"] is None
        assert body["data"]["statistics"]["p95_duration_ms"] is None
        assert body["data"]["statistics"]["last_success"] == []


def test_execution_rows_carry_the_history_columns(api: TestClient, history) -> None:
    _, rows = history
    newest_failed = max((r for r in rows if r.status == "failed"), key=lambda r: r.start_time)
    execution = api.get(STATUS, params={"status": "failed", "limit": 1}).json()["data"]["executions"][0]
    assert execution["job_id"] == f"{newest_failed.dealer_id}_{newest_failed.platform}"
    assert execution["dag_id"] == newest_failed.dag_id
    assert execution["run_id"] == newest_failed.run_id
    assert execution["errors"] == newest_failed.errors
    assert execution["duration_ms"] == round(newest_failed.duration_ms or 0)
    assert execution["performance_metrics"] == {"duration_ms": round(newest_failed.duration_ms or 0)}
    for key in ("vehicles_found", "vehicles_processed", "vehicles_rejected", "vehicles_delisted"):
        assert execution[key] == getattr(newest_failed, key)
    running = api.get(STATUS, params={"status": "running"}).json()["data"]["executions"]
    assert running
    assert all(e["end_time"] is None and e["duration_ms"] is None for e in running)


def test_pages_walk_the_whole_filtered_set_without_gaps(api: TestClient, history) -> None:
    _, rows = history
    expected = sh.newest_first(sh.select(rows, platform="dealer.com"))
    seen: list[tuple[str, datetime | None]] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        data = api.get(STATUS, params={"platform": "dealer.com", "limit": 500, "offset": offset}).json()[
            "data"
        ]
        assert data["pagination"]["total"] == len(expected)
        assert data["pagination"]["limit"] == 500
        assert data["pagination"]["offset"] == offset
        seen += [(e["dealer_id"], _ts(e["start_time"])) for e in data["executions"]]
        offset = data["pagination"]["next_offset"]
        pages += 1
    assert pages == -(-len(expected) // 500)
    assert seen == [(r.dealer_id, r.start_time) for r in expected]


def test_default_page_is_50_and_500_is_the_maximum(api: TestClient, history) -> None:
    data = api.get(STATUS).json()["data"]
    assert len(data["executions"]) == 50
    assert data["pagination"] == {"limit": 50, "offset": 0, "total": len(history[1]), "next_offset": 50}
    assert len(api.get(STATUS, params={"limit": 500}).json()["data"]["executions"]) == 500
    assert api.get(STATUS, params={"limit": 501}).status_code == 422
    beyond = api.get(STATUS, params={"offset": len(history[1])}).json()["data"]
    assert beyond["executions"] == []
    assert beyond["pagination"]["next_offset"] is None


# -- validation -------------------------------------------------------------------------------------
KNOWN = ", ".join(sorted(PLATFORMS))


@pytest.mark.parametrize(
    ("path", "params", "field", "message"),
    [
        (
            STATUS,
            {"platform": "myspace"},
            "platform",
            f"unknown platform 'myspace'; known platforms: {KNOWN}",
        ),
        (STATUS, {"platform": "legacy_feed"}, "platform", "unknown platform 'legacy_feed'"),
        (STATUS, {"limit": "-1"}, "limit", "greater than or equal to 1"),
        (STATUS, {"limit": "0"}, "limit", "greater than or equal to 1"),
        (STATUS, {"limit": "100000"}, "limit", "less than or equal to 500"),
        (STATUS, {"limit": "ten"}, "limit", "valid integer"),
        (STATUS, {"offset": "-5"}, "offset", "greater than or equal to 0"),
        (STATUS, {"since": "yesterday"}, "since", "valid datetime"),
        (STATUS, {"since": "2026-13-01"}, "since", "month value is outside expected range"),
        (STATUS, {"since": "1700000000"}, "since", "expected an ISO 8601 date or date-time"),
        (STATUS, {"status": "done"}, "status", "'running', 'success', 'failed' or 'skipped'"),
        (STATUS, {"dealer_id": "x'; DROP TABLE job_executions; --"}, "dealer_id", "should match pattern"),
        (STATUS, {"dealer_id": "d" * 101}, "dealer_id", "at most 100 characters"),
        (STATUS, {"platfrom": "homenet"}, "platfrom", "Extra inputs are not permitted"),
        (STATS, {"days": "0"}, "days", "greater than or equal to 1"),
        (STATS, {"days": "367"}, "days", "less than or equal to 366"),
        (STATS, {"platform": "Homenet"}, "platform", "unknown platform 'Homenet'"),
        (HEALTH, {"only": "sick"}, "only", "'failing', 'held' or 'overdue'"),
        (HEALTH, {"limit": "501"}, "limit", "less than or equal to 500"),
        (HEALTH, {"platform": "x"}, "platform", "unknown platform 'x'"),
        ("/ui", {"days": "91"}, "days", "less than or equal to 90"),
        ("/ui", {"q": "x" * 101}, "q", "at most 100 characters"),
        (DEALERS, {"platform": "x"}, "platform", "unknown platform 'x'"),
        (DEALERS, {"q": "x" * 101}, "q", "at most 100 characters"),
        (DEALERS, {"limit": "501"}, "limit", "less than or equal to 500"),
        (DEALERS, {"offset": "-1"}, "offset", "greater than or equal to 0"),
        (DEALERS, {"name": "harbor"}, "name", "Extra inputs are not permitted"),
    ],
)
def test_invalid_parameters_are_422_with_a_message_naming_the_field(
    api: TestClient, path: str, params: dict[str, str], field: str, message: str
) -> None:
    resp = api.get(path, params=params)
    assert resp.status_code == 422, resp.text
    errors = resp.json()["detail"]
    assert [e["loc"] for e in errors] == [["query", field]]
    assert message in errors[0]["msg"]


def test_dates_without_offset_are_utc_and_date_only_means_midnight(api: TestClient, history) -> None:
    now, rows = history
    day = (now - timedelta(days=4)).date()
    expected = len(sh.select(rows, since=datetime.combine(day, datetime.min.time(), UTC)))
    for since in (day.isoformat(), f"{day}T00:00:00", f"{day}T00:00:00Z", f"{day}T02:00:00+02:00"):
        assert api.get(STATUS, params={"since": since}).json()["data"]["statistics"]["total"] == expected


# -- /api/jobs/stats --------------------------------------------------------------------------------
@pytest.mark.parametrize(("days", "platform"), [(14, None), (1, None), (30, "dealer.com"), (7, "cobalt")])
def test_daily_series_match_python(api: TestClient, history, days: int, platform: str | None) -> None:
    now, rows = history
    params: dict[str, Any] = {"days": days} | ({"platform": platform} if platform else {})
    data = api.get(STATS, params=params).json()["data"]
    first_day = now.date() - timedelta(days=days - 1)
    assert (data["days"], data["first_day"], data["last_day"]) == (days, str(first_day), str(now.date()))
    expected = sh.daily(sh.select(rows, platform=platform), first_day=first_day)
    got = {(datetime.fromisoformat(d["day"]).date(), d["platform"]): d for d in data["series"]}
    assert sorted(got) == sorted(expected)
    assert [(d["day"], d["platform"]) for d in data["series"]] == sorted(
        (d["day"], d["platform"]) for d in data["series"]
    )
    for key, exp in expected.items():
        d = got[key]
        assert d["runs"] == exp["runs"]
        assert d["executions"] == exp["total"]
        assert d["by_status"] == exp["by_status"]
        assert d["finished"] == exp["finished"]
        assert d["success_rate"] == _approx(exp["success_rate"])
        assert d["p95_duration_ms"] == _approx(exp["p95_duration_ms"])
        assert d["vehicles"] == exp["vehicles"]
    if days == 14 and platform is None:
        # every registry platform ran on each of the last 14 days; hourly dealer.com runs 8 times a day
        assert {p for _, p in got} == set(PLATFORMS) | {sh.RETIRED_PLATFORM}
        assert all(d["runs"] == 8 for (day, p), d in got.items() if p == "dealer.com" and day < now.date())


# -- /api/dealers/health ------------------------------------------------------------------------------
def _health(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        data = api.get(HEALTH, params={**params, "limit": 37, "offset": offset}).json()["data"]
        out += data["dealers"]
        offset = data["pagination"]["next_offset"]
    return out


def test_health_matches_the_scheduler_rules_written_out_in_python(api: TestClient, history) -> None:
    now, rows = history
    expected = sh.health(rows, now=now)
    got = {(h["platform"], h["dealer_id"]): h for h in _health(api)}
    assert list(got) == list(expected)  # by (platform, dealer); the retired platform is not reported
    for key, exp in expected.items():
        h = got[key]
        assert _ts(h["last_success"]) == exp["last_success"], key
        assert _ts(h["last_run"]) == exp["last_run"], key
        for field in ("consecutive_failures", "held", "overdue", "due", "executions", "last_status"):
            assert h[field] == exp[field], (key, field)
        assert h["last_error"] == exp["last_error"], key
        assert h["interval_minutes"] == exp["interval_minutes"]
        assert (h["held_reason"] is not None) == h["held"]
    # the named cases of the seed
    held = got[("dealer.com", "dealer-03")]
    assert (held["held"], held["overdue"], held["consecutive_failures"]) == (True, True, 6)
    assert "held: last 6 executions failed (threshold 5)" in held["held_reason"]
    assert got[("cobalt", "dealer-20")]["held"] is False
    assert got[("cobalt", "dealer-20")]["overdue"] is True
    assert got[("vinsolutions", "dealer-30")]["consecutive_failures"] == 0
    assert got[("vinsolutions", "dealer-30")]["overdue"] is True
    assert got[("dealersocket", "dealer-40")]["last_success"] is None
    assert got[("dealersocket", "dealer-40")]["overdue"] is False
    assert got[("web_scraping", "dealer-50")]["held"]
    assert got[("web_scraping", "dealer-50")]["overdue"]
    assert got[("homenet", "dealer-06")]["last_status"] == "running"
    assert got[("homenet", "dealer-06")]["overdue"] is False


def test_health_and_the_freshness_alert_judge_a_never_successful_dealer_overdue_alike(
    api: TestClient, history
) -> None:
    """Without a success, both measure from the first finished execution: a skipped row (another run held
    the lease) is no evidence either way, so neither calls a dealer overdue because of one."""
    from od_scheduler.alert_rules import check_freshness
    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.models.alert import ConditionKind
    from od_scheduler.models.dealer import Dealer

    now = datetime.now(UTC)
    days, hours = timedelta(days=1), timedelta(hours=1)
    seeded = {  # dealer -> (status, started how long ago); cobalt: daily, overdue after 48 h
        "od-rule-skipped-then-failed": [("skipped", 5 * days), ("failed", 3 * hours)],
        "od-rule-only-skipped": [("skipped", 5 * days)],
        "od-rule-failed-long-ago": [("failed", 3 * days), ("skipped", 1 * hours)],
    }
    with job_history_conn() as db:
        for dealer_id, executions in seeded.items():
            for n, (status, ago) in enumerate(executions):
                db.execute(
                    "INSERT INTO job_executions (job_id, dag_id, run_id, dealer_id, platform, status, "
                    "start_time, end_time) VALUES (%s, 'inventory_cobalt', %s, %s, 'cobalt', %s, %s, %s)",
                    (f"{dealer_id}_cobalt", f"manual__od_rule_{n}", dealer_id, status, now - ago, now - ago),
                )
    try:
        page = {}
        for dealer_id in seeded:
            (row,) = api.get(HEALTH, params={"dealer_id": dealer_id}).json()["data"]["dealers"]
            page[dealer_id] = row["overdue"]
        histories = JobHistoryHook().executions.dealer_histories("cobalt", list(seeded))
        report = check_freshness(
            [
                Dealer.model_validate(
                    {"id": d, "name": d, "slug": d, "status": "active", "platforms": ["cobalt"]}
                )
                for d in seeded
            ],
            {("cobalt", d): h for d, h in histories.items()},
            now=now,
            hold_after_failures=sh.HOLD_AFTER_FAILURES,
            missing_after_intervals=sh.OVERDUE_FACTOR,
        )
        alerted = {c.dealer.dealer_id for c in report.of_kind(ConditionKind.MISSING) if c.dealer}
        assert page == {
            "od-rule-skipped-then-failed": False,
            "od-rule-only-skipped": False,
            "od-rule-failed-long-ago": True,
        }
        assert page == {d: d in alerted for d in seeded}
        overdue_table = api.get("/ui").text.split('id="overdue-dealers"', 1)[1].split("</table>", 1)[0]
        assert [d for d in seeded if f'data-dealer="{d}"' in overdue_table] == ["od-rule-failed-long-ago"]
    finally:
        with job_history_conn() as db:
            db.execute("DELETE FROM job_executions WHERE dealer_id = ANY(%s)", (list(seeded),))


@pytest.mark.parametrize("only", ["failing", "held", "overdue"])
def test_health_only_filters(api: TestClient, history, only: str) -> None:
    now, rows = history
    expected = sh.health(rows, now=now)
    want = {
        "failing": lambda e: e["consecutive_failures"] > 0,
        "held": lambda e: e["held"],
        "overdue": lambda e: e["overdue"],
    }[only]
    got = [(h["platform"], h["dealer_id"]) for h in _health(api, only=only)]
    assert got == [k for k, e in expected.items() if want(e)]
    assert got  # the seed has each case


def test_health_of_one_dealer_on_one_platform(api: TestClient, history) -> None:
    data = api.get(HEALTH, params={"dealer_id": "dealer-07"}).json()["data"]
    assert [(h["platform"], h["dealer_id"]) for h in data["dealers"]] == [
        ("dealer.com", "dealer-07"),
        ("homenet", "dealer-07"),
    ]
    data = api.get(HEALTH, params={"dealer_id": "dealer-07", "platform": "homenet"}).json()["data"]
    assert data["pagination"]["total"] == 1
    assert (data["hold_after_failures"], data["overdue_factor"]) == (5, 2)


# -- dealer names and the dealer directory ----------------------------------------------------------
def test_executions_and_last_successes_name_their_dealers(api: TestClient, history) -> None:
    data = api.get(STATUS, params={"limit": 500}).json()["data"]
    for execution in data["executions"]:
        got = (execution["dealer_name"], execution["dealer_slug"])
        assert got == NAMES.get(execution["dealer_id"], UNNAMED), execution["dealer_id"]
    last = data["statistics"]["last_success"]
    assert {(x["dealer_id"], x["dealer_name"], x["dealer_slug"]) for x in last} == {
        (x["dealer_id"], *NAMES.get(x["dealer_id"], UNNAMED)) for x in last
    }
    harbor = next(x for x in last if x["dealer_id"] == "dealer-01" and x["platform"] == "dealer.com")
    assert (harbor["dealer_name"], harbor["dealer_slug"]) == ("Harbor Ford", "harbor-ford")
    # A dealer the CMS never listed keeps its id and gets no name rather than an invented one.
    unlisted = api.get(STATUS, params={"dealer_id": "dealer-30"}).json()["data"]
    assert unlisted["executions"]
    assert {(e["dealer_name"], e["dealer_slug"]) for e in unlisted["executions"]} == {UNNAMED}
    assert [(x["dealer_name"], x["dealer_slug"]) for x in unlisted["statistics"]["last_success"]] == [UNNAMED]


def test_health_names_every_dealer_it_knows(api: TestClient, history) -> None:
    health = _health(api)
    assert health
    for h in health:
        assert (h["dealer_name"], h["dealer_slug"]) == NAMES.get(h["dealer_id"], UNNAMED), h["dealer_id"]
    by_key = {(h["platform"], h["dealer_id"]): h for h in health}
    assert by_key[("dealer.com", "dealer-03")]["dealer_name"] == "Cedar Ridge Ford"
    assert by_key[("web_scraping", "dealer-50")]["dealer_name"] is None


def _directory(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        resp = api.get(DEALERS, params={**params, "limit": 7, "offset": offset})
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        out += data["dealers"]
        offset = data["pagination"]["next_offset"]
    return out


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"q": "ford"},  # a name's brand, any case
        {"q": "SUMMIT"},
        {"q": "old-mill-"},  # a slug's start
        {"q": "dealer-07"},  # an id: what the job history and the trigger form show
        {"platform": "homenet"},
        {"platform": "homenet", "q": "honda"},
        {"q": "   kia  "},  # surrounding blanks of a pasted search are ignored
        {"q": "%"},  # LIKE wildcards are literal characters
        {"q": "_"},
        {"q": "nobody"},
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "all",
)
def test_the_dealers_endpoint_searches_name_slug_and_id(
    api: TestClient, history, filters: dict[str, str]
) -> None:
    expected = sh.search(sh.directory(), q=(filters.get("q") or "").strip(), platform=filters.get("platform"))
    got = _directory(api, **filters)
    assert [(d["dealer_id"], d["name"], d["slug"], d["platforms"]) for d in got] == [
        (e.id, e.name, e.slug, e.platforms) for e in expected
    ]
    if filters.get("q") not in ("%", "_", "nobody"):
        assert got, "the seed has a match"
    assert all(d["cms_error"] is None for d in got)
    assert all(datetime.now(UTC) - datetime.fromisoformat(d["listed_at"]) < timedelta(hours=1) for d in got)


def test_the_dealers_endpoint_pages_and_says_the_total(api: TestClient, history) -> None:
    everyone = sh.search(sh.directory())
    data = api.get(DEALERS, params={"limit": 10, "offset": 40}).json()["data"]
    assert data["pagination"] == {"limit": 10, "offset": 40, "total": len(everyone), "next_offset": None}
    assert [d["dealer_id"] for d in data["dealers"]] == [d.id for d in everyone[40:50]]
    first = api.get(DEALERS).json()["data"]["pagination"]
    assert (first["limit"], first["total"]) == (50, len(everyone))


def test_a_platform_run_records_its_dealers_so_the_api_names_them(
    api: TestClient, history, dagbag, sandbox: str
) -> None:
    """Nothing seeded: ``list_dealers`` of a real run writes the directory the API reads."""
    with httpx.Client(base_url=sandbox, timeout=30) as control:
        control.post("/_sandbox/reset").raise_for_status()
        harbor = platform_dealers(control, "dealer.com")["harbor-volkswagen"]
    assert not api.get(DEALERS, params={"q": harbor["id"]}).json()["data"]["dealers"]
    run = run_dag(dagbag.dags["inventory_dealer_com"], conf={"dealer_id": harbor["id"], "force": True})
    try:
        [found] = api.get(DEALERS, params={"q": "harbor-volkswagen"}).json()["data"]["dealers"]
        assert (found["dealer_id"], found["name"], found["slug"], found["platforms"]) == (
            harbor["id"],
            harbor["name"],
            "harbor-volkswagen",
            sorted(harbor["platforms"]),
        )
        executions = api.get(STATUS, params={"dealer_id": harbor["id"]}).json()["data"]["executions"]
        assert [(e["run_id"], e["dealer_name"], e["dealer_slug"]) for e in executions] == [
            (run.run_id, harbor["name"], "harbor-volkswagen")
        ]
    finally:
        with job_history_conn() as db:
            db.execute("DELETE FROM job_executions WHERE dealer_id = %s", (harbor["id"],))
            db.execute("DELETE FROM dealer_directory WHERE dealer_id = %s", (harbor["id"],))


def test_an_invalid_cms_document_keeps_the_known_name_and_shows_its_error(api: TestClient, history) -> None:
    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.models.dealer import InvalidDealer

    hook = JobHistoryHook()
    broken = InvalidDealer(id="dealer-07", name=None, slug=None, error="platforms: Input should be a list")
    fresh = InvalidDealer(id="dealer-77", name="New Lot Motors", slug=None, error="slug: Field required")
    try:
        assert (
            hook.directory.remember_dealers(
                [broken, fresh, InvalidDealer(error="no id at all")], platform="cobalt"
            )
            == 2
        )
        [seven] = api.get(DEALERS, params={"q": "dealer-07"}).json()["data"]["dealers"]
        assert (seven["name"], seven["slug"]) == NAMES["dealer-07"], "what the CMS said before is kept"
        assert seven["platforms"] == ["cobalt", "dealer.com", "homenet"], (
            "the platform it was listed for is added"
        )
        assert seven["cms_error"] == "platforms: Input should be a list"
        [new] = api.get(DEALERS, params={"q": "dealer-77"}).json()["data"]["dealers"]
        assert (new["name"], new["slug"], new["platforms"]) == ("New Lot Motors", None, ["cobalt"])
    finally:
        hook.directory.remember_dealers([d for d in sh.directory() if d.id == "dealer-07"])
        with job_history_conn() as db:
            db.execute("DELETE FROM dealer_directory WHERE dealer_id = 'dealer-77'")
    [seven] = api.get(DEALERS, params={"q": "dealer-07"}).json()["data"]["dealers"]
    assert (seven["platforms"], seven["cms_error"]) == (["dealer.com", "homenet"], None), (
        "a valid document replaces"
    )


def test_five_thousand_dealers_are_recorded_in_one_statement(history) -> None:
    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.hooks.stores.directory import DirectoryStore
    from od_scheduler.models.dealer import Dealer

    many = [
        Dealer.model_validate(
            {"id": f"bulk-{i:04d}", "name": f"Bulk {i}", "slug": f"bulk-{i}", "status": "active",
             "platforms": ["homenet"]}
        )
        for i in range(5000)
    ]  # fmt: skip
    statements: list[str] = []
    real_cursor = JobHistoryHook().cursor

    class Counting:
        """A cursor that records each statement it runs."""

        def __init__(self, cur: Any) -> None:
            self._cur = cur

        def execute(self, sql: str, *args: Any) -> Any:
            statements.append(sql)
            return self._cur.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._cur, name)

    @contextmanager
    def counting_cursor() -> Iterator[Counting]:
        with real_cursor() as cur:
            yield Counting(cur)

    try:
        assert DirectoryStore(counting_cursor).remember_dealers(many) == 5000
        assert len(statements) == 1
        with job_history_conn() as db:
            count = db.execute(
                "SELECT count(*) FROM dealer_directory WHERE dealer_id LIKE 'bulk-%'"
            ).fetchone()
        assert count == (5000,)
    finally:
        with job_history_conn() as db:
            db.execute("DELETE FROM dealer_directory WHERE dealer_id LIKE 'bulk-%'")


# -- the page ---------------------------------------------------------------------------------------
def test_page_is_self_contained_html_with_the_seeded_numbers(api: TestClient, history) -> None:
    now, rows = history
    resp = api.get("/ui")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    html = resp.text
    assert "tester" in html  # the authenticated user's name
    assert "<script" not in html
    assert "http://" not in html
    assert "https://" not in html
    first_day = now.date() - timedelta(days=13)
    expected = sh.daily(rows, first_day=first_day)
    for (day, platform), exp in expected.items():
        if exp["success_rate"] is not None:
            assert f'data-day="{day}" data-rate="{exp["success_rate"]:.4f}"' in html, (day, platform)
    assert 'id="failing-dealers"' in html
    assert 'data-dealer="dealer-03" data-platform="dealer.com"' in html
    assert 'id="overdue-dealers"' in html
    assert 'data-dealer="dealer-30" data-platform="vinsolutions"' in html
    assert html.count("<tr data-dag-id=") == 25


def _row(html: str, table: str, dealer: str, platform: str) -> str:
    """The ``<tr>`` of one dealer in one table of the page."""
    section = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    match = re.search(
        rf'<tr data-dealer="{re.escape(dealer)}" data-platform="{re.escape(platform)}">(.*?)</tr>',
        section,
        re.S,
    )
    assert match, (table, dealer, platform)
    return match.group(1)


def test_the_page_names_failing_and_overdue_dealers_beside_their_ids(api: TestClient, history) -> None:
    html = api.get("/ui").text
    held = _row(html, "failing-dealers", "dealer-03", "dealer.com")
    assert "Cedar Ridge Ford" in held
    assert "cedar-ridge-ford" in held
    assert "<code>dealer-03</code>" in held
    overdue = _row(html, "overdue-dealers", "dealer-20", "cobalt")
    assert "Evergreen Honda" in overdue
    assert "<code>dealer-20</code>" in overdue
    unlisted = _row(html, "overdue-dealers", "dealer-30", "vinsolutions")
    assert "<code>dealer-30</code>" in unlisted
    assert "no name known" in unlisted


def test_the_page_lists_and_searches_the_dealer_directory(api: TestClient, history) -> None:
    everyone = sh.search(sh.directory())
    html = api.get("/ui").text
    assert 'id="dealers"' in html
    listed = re.findall(r'<tr data-directory-dealer="([^"]+)">', html)
    assert listed == [d.id for d in everyone[:25]]
    assert f"1-25 of {len(everyone)}" in html
    assert 'href="?days=14&amp;offset=25#dealers"' in html  # the next page
    first = _row_of_directory(html, everyone[0].id)
    assert everyone[0].name in first
    assert everyone[0].slug in first
    assert f"<code>{everyone[0].id}</code>" in first
    assert "Dealer.com" in _row_of_directory(html, "dealer-01")  # platforms by their names
    assert 'name="q"' in html  # the search form
    assert 'name="platform"' in html

    found = api.get("/ui", params={"q": "ford", "platform": "homenet"}).text
    expected = sh.search(sh.directory(), q="ford", platform="homenet")
    assert expected
    assert re.findall(r'<tr data-directory-dealer="([^"]+)">', found) == [d.id for d in expected]
    assert 'value="ford"' in found

    last = api.get("/ui", params={"offset": 25}).text
    assert re.findall(r'<tr data-directory-dealer="([^"]+)">', last) == [d.id for d in everyone[25:50]]
    assert 'href="?days=14&amp;offset=0#dealers"' in last  # back to the first page
    none = api.get("/ui", params={"q": "nobody"}).text
    assert re.findall(r'<tr data-directory-dealer="', none) == []
    assert "No dealer matches" in none


def _row_of_directory(html: str, dealer: str) -> str:
    match = re.search(rf'<tr data-directory-dealer="{re.escape(dealer)}">(.*?)</tr>', html, re.S)
    assert match, dealer
    return match.group(1)


def test_page_escapes_what_the_history_contains(api: TestClient, history) -> None:
    with job_history_conn() as db:
        db.execute(
            "INSERT INTO job_executions (job_id, dag_id, run_id, dealer_id, platform, status, start_time, "
            "end_time, errors) VALUES ('x_cobalt', 'inventory_cobalt', 'manual__xss', 'dealer-<b>x</b>', "
            "'cobalt', 'failed', now(), now(), ARRAY['<script>alert(1)</script>'])"
        )
    try:
        html = api.get("/ui").text
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "dealer-&lt;b&gt;x&lt;/b&gt;" in html
    finally:
        with job_history_conn() as db:
            db.execute("DELETE FROM job_executions WHERE run_id = 'manual__xss'")


# -- auth, database, connection -------------------------------------------------------------------
def test_without_the_override_every_route_answers_401(history) -> None:
    from od_scheduler.status.app import app

    assert not app.dependency_overrides
    with TestClient(app) as client:
        for path in (STATUS, STATS, HEALTH, DEALERS, f"{DEALERS}?q=ford", "/ui", f"{STATUS}?limit=100000"):
            resp = client.get(path)
            assert (resp.status_code, resp.json()) == (401, {"detail": "Not authenticated"}), path
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404


def test_unreachable_database_is_a_503_that_says_so(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = json.loads(os.environ["AIRFLOW_CONN_OD_JOB_HISTORY"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_JOB_HISTORY", json.dumps({**spec, "host": "/nonexistent-socket-dir", "port": None})
    )
    resp = api.get(STATUS)
    assert resp.status_code == 503
    assert resp.json()["detail"].startswith("job-history database unavailable:")
    assert spec.get("password") in ("", None) or spec["password"] not in resp.text


def test_missing_connection_is_a_503_naming_it(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OD_JOB_HISTORY")
    resp = api.get(HEALTH)
    assert resp.status_code == 503
    assert "connection 'od_job_history' is not defined" in resp.json()["detail"]


def test_a_connection_defined_only_in_the_metadata_db_is_found(history) -> None:
    """Outside a server process the Task SDK lookup misses metadata-DB connections: the fallback finds it."""
    from airflow.models.connection import Connection
    from airflow.sdk import BaseHook
    from airflow.utils.session import create_session

    from od_scheduler.status.queries import ReadScope, StatusQueries, job_history_hook

    spec = json.loads(os.environ["AIRFLOW_CONN_OD_JOB_HISTORY"])
    conn_id = "od_status_test_metadata_only"
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()
        session.add(
            Connection(
                conn_id=conn_id,
                conn_type="postgres",
                host=spec["host"],
                port=spec.get("port"),
                login=spec["login"],
                password=spec.get("password") or None,
                schema=spec["schema"],
            )
        )
    try:
        with pytest.raises(Exception, match="isn't defined"):
            BaseHook.get_connection(conn_id)  # what the hook alone would do here
        with StatusQueries(job_history_hook(conn_id), ReadScope.everything()) as queries:
            assert queries.latest_runs(since=datetime.now(UTC) - timedelta(days=1), limit=1)
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
