"""The status API for users who may read some platforms' DAGs only, in-process against the seeded history.

The auth manager is ``tests/support/scoped_auth_manager.py``: SimpleAuthManager with users restricted to named
DAGs (what a FAB role holding ``DAG:inventory_homenet`` can_read is). The app gets it through its
``status_auth_manager`` dependency, the one thing overridden besides the user (no api-server runs here; the
same users against a real api-server are in ``tests/e2e/test_status_api.py``). Every answer is compared with
the seeded rows filtered in Python by their DAG, so a row of another platform, or a statistic computed over
rows the user may not read, fails the comparison. The seed has every platform, and a retired one, so the
filter visibly removes rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from od_scheduler.platforms import PLATFORMS
from tests import status_history as sh
from tests.fixtures import job_history_conn

pytestmark = pytest.mark.integration

STATUS = "/api/jobs/status"
STATS = "/api/jobs/stats"
HEALTH = "/api/dealers/health"
DEALERS = "/api/dealers"
ROUTES = [STATUS, STATS, HEALTH, DEALERS, "/ui"]

ALL_PLATFORM_DAGS = frozenset(spec.dag_id for spec in PLATFORMS.values())
#: user -> the DAGs the auth manager lets them read
USER_DAGS: dict[str, frozenset[str]] = {
    "homenet_reader": frozenset({"inventory_homenet"}),
    "two_reader": frozenset({"inventory_homenet", "inventory_cobalt"}),
    # every platform's DAG, but not the retired platform's: its history stays hidden
    "platforms_reader": ALL_PLATFORM_DAGS,
    "cleanup_reader": frozenset({"maintenance_cleanup"}),
}
SCOPED = ["homenet_reader", "two_reader", "platforms_reader"]


@pytest.fixture(scope="module")
def history(airflow_db: None) -> tuple[datetime, list[sh.Row]]:
    from od_scheduler.hooks.job_history import JobHistoryHook

    now = datetime.now(UTC)
    rows = sh.generate(now)
    with job_history_conn() as db:
        assert sh.insert(db, rows) == len(rows)
    assert JobHistoryHook().directory.remember_dealers(sh.directory()) == len(sh.directory())
    return now, rows


@pytest.fixture
def client_for(history: tuple[datetime, list[sh.Row]]) -> Iterator[Callable[[str], TestClient]]:
    """``client_for(user)``: a TestClient on the app as ``user`` (a viewer) under the scoped auth manager."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.api_fastapi.core_api.security import get_user

    from od_scheduler.status.app import app, require_read_runs, status_auth_manager
    from tests.support.scoped_auth_manager import ScopedAuthManager

    manager = ScopedAuthManager(USER_DAGS)

    def client(user: str) -> TestClient:
        app.dependency_overrides[require_read_runs] = lambda: None
        app.dependency_overrides[get_user] = lambda: SimpleAuthManagerUser(username=user, role="viewer")
        app.dependency_overrides[status_auth_manager] = lambda: manager
        return TestClient(app)

    try:
        yield client
    finally:
        app.dependency_overrides.clear()


def visible(rows: list[sh.Row], user: str) -> list[sh.Row]:
    return [r for r in rows if r.dag_id in USER_DAGS[user]]


def readable_platforms(user: str) -> set[str]:
    return {p for p, spec in PLATFORMS.items() if spec.dag_id in USER_DAGS[user]}


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


# -- /api/jobs/status ---------------------------------------------------------------------------------
@pytest.mark.parametrize("user", SCOPED)
def test_status_rows_statistics_and_totals_cover_the_readable_dags_only(client_for, history, user) -> None:
    _, rows = history
    mine = visible(rows, user)
    assert 0 < len(mine) < len(rows)  # the filter removes rows
    with client_for(user) as api:
        data = api.get(STATUS, params={"limit": 500}).json()["data"]
    stats = data["statistics"]
    _check_aggregate(stats, sh.aggregate(mine))
    assert [p["platform"] for p in stats["by_platform"]] == sorted(readable_platforms(user))
    for got in stats["by_platform"]:
        _check_aggregate(got, sh.aggregate([r for r in mine if r.platform == got["platform"]]))
    assert [(x["platform"], x["dealer_id"]) for x in stats["last_success"]] == [
        (x["platform"], x["dealer_id"]) for x in sh.last_successes(mine)
    ]
    assert data["pagination"]["total"] == len(mine)
    assert [(e["dag_id"], e["dealer_id"], _ts(e["start_time"])) for e in data["executions"]] == [
        (r.dag_id, r.dealer_id, r.start_time) for r in sh.newest_first(mine)[:500]
    ]


@pytest.mark.parametrize(
    "filters",
    [{"status": "failed"}, {"dealer_id": "dealer-07"}, {"since_days": 3}, {"platform": "homenet"}],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()),
)
def test_filters_apply_within_the_readable_rows(client_for, history, filters: dict[str, Any]) -> None:
    now, rows = history
    params = dict(filters)
    if "since_days" in params:
        params["since"] = now - timedelta(days=params.pop("since_days"))
    expected = sh.select(visible(rows, "two_reader"), **params)
    assert expected
    if "since" in params:
        params["since"] = params["since"].isoformat()
    with client_for("two_reader") as api:
        data = api.get(STATUS, params={**params, "limit": 500}).json()["data"]
    _check_aggregate(data["statistics"], sh.aggregate(expected))
    assert data["pagination"]["total"] == len(expected)
    assert {e["platform"] for e in data["executions"]} <= {"homenet", "cobalt"}


def test_pages_walk_the_readable_rows_only(client_for, history) -> None:
    _, rows = history
    expected = sh.newest_first(visible(rows, "two_reader"))
    seen: list[tuple[str, datetime | None]] = []
    offset: int | None = 0
    with client_for("two_reader") as api:
        while offset is not None:
            data = api.get(STATUS, params={"limit": 500, "offset": offset}).json()["data"]
            assert data["pagination"]["total"] == len(expected)
            seen += [(e["dealer_id"], _ts(e["start_time"])) for e in data["executions"]]
            offset = data["pagination"]["next_offset"]
    assert seen == [(r.dealer_id, r.start_time) for r in expected]


def test_a_dealer_on_unreadable_platforms_only_answers_like_an_unknown_dealer(client_for, history) -> None:
    _, rows = history
    assert sh.select(rows, dealer_id="dealer-03")  # dealer.com only: it has rows, none on homenet
    with client_for("homenet_reader") as api:
        hidden = api.get(STATUS, params={"dealer_id": "dealer-03"})
        unknown = api.get(STATUS, params={"dealer_id": "nobody"})
        assert hidden.status_code == unknown.status_code == 200
        assert hidden.json()["data"]["statistics"] == unknown.json()["data"]["statistics"]
        assert hidden.json()["data"]["executions"] == []
        shared = api.get(STATUS, params={"dealer_id": "dealer-07"}).json()["data"]  # dealer.com and homenet
    assert {e["platform"] for e in shared["executions"]} == {"homenet"}
    assert shared["pagination"]["total"] == len(
        sh.select(visible(rows, "homenet_reader"), dealer_id="dealer-07")
    )


def test_the_retired_platforms_history_is_decided_by_its_own_dag(client_for, history) -> None:
    """A user of every platform DAG but not ``inventory_legacy_feed`` does not read the retired rows."""
    _, rows = history
    retired = [r for r in rows if r.platform == sh.RETIRED_PLATFORM]
    assert retired
    with client_for("platforms_reader") as api:
        stats = api.get(STATUS).json()["data"]["statistics"]
        series = api.get(STATS, params={"days": 30}).json()["data"]["series"]
    assert stats["total"] == len(rows) - len(retired)
    assert sh.RETIRED_PLATFORM not in {p["platform"] for p in stats["by_platform"]}
    assert sh.RETIRED_PLATFORM not in {d["platform"] for d in series}


# -- 403s ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ROUTES)
def test_naming_another_platform_is_403_and_its_own_is_200(client_for, history, path: str) -> None:
    with client_for("homenet_reader") as api:
        refused = api.get(path, params={"platform": "cobalt"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == (
            "Forbidden: you may not read the runs of inventory_cobalt, so not the job history of platform "
            "'cobalt'. Platforms you may read: homenet."
        )
        assert api.get(path, params={"platform": "homenet"}).status_code == 200
        # with a bad value beside it: still refused, not a 422 that would tell the value apart
        assert api.get(path, params={"platform": "cobalt", "offset": "-1"}).status_code == 403
        assert api.get(path, params={"platform": "myspace"}).status_code == 422


@pytest.mark.parametrize("path", ROUTES)
def test_a_user_who_may_read_no_platform_dag_gets_403_on_every_route(client_for, history, path) -> None:
    with client_for("cleanup_reader") as api:
        resp = api.get(path)
    assert resp.status_code == 403
    assert "you may read the runs of none of them" in resp.json()["detail"]


# -- stats, health, directory -------------------------------------------------------------------------
@pytest.mark.parametrize("user", SCOPED)
def test_daily_series_cover_the_readable_dags_only(client_for, history, user: str) -> None:
    now, rows = history
    with client_for(user) as api:
        data = api.get(STATS, params={"days": 14}).json()["data"]
    first_day = now.date() - timedelta(days=13)
    expected = sh.daily(visible(rows, user), first_day=first_day)
    got = {(datetime.fromisoformat(d["day"]).date(), d["platform"]): d for d in data["series"]}
    assert sorted(got) == sorted(expected)
    assert {p for _, p in got} == readable_platforms(user)
    for key, exp in expected.items():
        assert got[key]["runs"] == exp["runs"]
        assert got[key]["executions"] == exp["total"]
        assert got[key]["success_rate"] == _approx(exp["success_rate"])


@pytest.mark.parametrize("user", SCOPED)
def test_health_covers_the_readable_platforms_only(client_for, history, user: str) -> None:
    now, rows = history
    expected = {k: v for k, v in sh.health(rows, now=now).items() if k[0] in readable_platforms(user)}
    with client_for(user) as api:
        data = api.get(HEALTH, params={"limit": 500}).json()["data"]
        held = api.get(HEALTH, params={"only": "held", "limit": 500}).json()["data"]["dealers"]
    assert data["pagination"]["total"] == len(expected)
    got = {(h["platform"], h["dealer_id"]): h for h in data["dealers"]}
    assert list(got) == list(expected)
    for key, exp in expected.items():
        for field in ("consecutive_failures", "held", "overdue", "executions", "last_status"):
            assert got[key][field] == exp[field], (key, field)
    assert [(h["platform"], h["dealer_id"]) for h in held] == [k for k, e in expected.items() if e["held"]]


@pytest.mark.parametrize("user", SCOPED)
def test_the_directory_lists_dealers_of_readable_platforms_with_those_platforms(
    client_for, history, user: str
) -> None:
    mine = readable_platforms(user)
    expected = [
        (d.id, d.name, sorted(set(d.platforms) & mine))
        for d in sh.search(sh.directory())
        if set(d.platforms) & mine
    ]
    got: list[tuple[str, str, list[str]]] = []
    offset: int | None = 0
    with client_for(user) as api:
        while offset is not None:
            data = api.get(DEALERS, params={"limit": 9, "offset": offset}).json()["data"]
            assert data["pagination"]["total"] == len(expected)
            got += [(d["dealer_id"], d["name"], d["platforms"]) for d in data["dealers"]]
            offset = data["pagination"]["next_offset"]
        ford = api.get(DEALERS, params={"q": "ford"}).json()["data"]["dealers"]
    assert got == expected
    assert len(expected) < len(sh.directory()) or mine == set(PLATFORMS)
    assert [d["dealer_id"] for d in ford] == [e[0] for e in expected if "Ford" in e[1]]


# -- the page -----------------------------------------------------------------------------------------
def test_the_page_shows_the_readable_platforms_only(client_for, history) -> None:
    now, rows = history
    mine = visible(rows, "homenet_reader")
    with client_for("homenet_reader") as api:
        resp = api.get("/ui")
        searched = api.get("/ui", params={"q": "ford"}).text
    assert resp.status_code == 200
    html = resp.text
    assert re.findall(r'<g class="series" data-platform="([^"]+)"', html) == ["homenet"]
    failing = html.split('id="failing-dealers"', 1)[1].split("</table>", 1)[0]
    assert set(re.findall(r'data-platform="([^"]+)"', failing)) == {"homenet"}
    assert 'data-dealer="dealer-12" data-platform="homenet"' in failing  # held on homenet
    assert 'data-dealer="dealer-03"' not in html  # held on dealer.com: not this user's
    first_day = now.date() - timedelta(days=13)
    since = datetime.combine(first_day, datetime.min.time(), UTC)
    runs = re.findall(r'<tr data-dag-id="([^"]+)" data-run-id="([^"]+)"', html)
    assert runs == [tuple(r) for r in sh.latest_runs(mine, since=since, limit=25)]
    directory = [d.id for d in sh.search(sh.directory()) if "homenet" in d.platforms]
    assert re.findall(r'<tr data-directory-dealer="([^"]+)">', html) == directory[:25]
    assert f"of {len(directory)}" in html
    assert re.findall(r'<option value="([^"]*)"', html) == ["", "homenet"]
    assert 'id="read-scope"' in html
    assert re.search(r"Showing the platforms whose DAG you may read:\s+HomeNet</span>", html)
    assert re.findall(r'<tr data-directory-dealer="([^"]+)">', searched) == [
        d.id for d in sh.search(sh.directory(), q="ford") if "homenet" in d.platforms
    ]


def test_the_page_of_a_user_who_reads_every_platform_says_nothing_about_scope(client_for, history) -> None:
    with client_for("platforms_reader") as api:
        html = api.get("/ui").text
    assert 'id="read-scope"' not in html
    assert re.findall(r'<option value="([^"]*)"', html) == ["", *PLATFORMS]
