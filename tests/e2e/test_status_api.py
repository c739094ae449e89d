"""The status plugin on a real ``airflow api-server``: listed, mounted, and behind Airflow's authentication.

Nothing is overridden here: the requests carry (or lack) real JWTs issued by the api-server's
``POST /auth/token``, and the answers are compared with Airflow's own ``/api/v2`` for the same credentials.
The api-server's auth manager is ``tests/support/scoped_auth_manager.py`` (SimpleAuthManager; ``admin`` and
``viewer`` read every DAG, ``homenet_reader`` only ``inventory_homenet``, ``cleanup_reader`` only
``maintenance_cleanup``), so the rows a restricted user reads are checked against the DAG runs Airflow's own
API lets the same user read.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import httpx
import pytest

from od_scheduler.platforms import PLATFORMS
from tests import status_history as sh
from tests.e2e.conftest import LOGS, ROOT, free_port
from tests.fixtures import job_history_conn

pytestmark = pytest.mark.e2e

ROUTES = [
    "/od-scheduler/api/jobs/status",
    "/od-scheduler/api/jobs/status?platform=homenet&status=failed&limit=5",
    "/od-scheduler/api/jobs/stats?days=7",
    "/od-scheduler/api/dealers/health?only=held",
    "/od-scheduler/api/dealers?q=ford&platform=homenet",
    "/od-scheduler/ui",
    "/od-scheduler/ui?q=ford",
]


@pytest.fixture(scope="module")
def seeded(airflow) -> list[sh.Row]:
    from od_scheduler.hooks.job_history import JobHistoryHook

    rows = sh.generate(datetime.now(UTC))
    with job_history_conn() as db:
        sh.insert(db, rows)
    JobHistoryHook().directory.remember_dealers(sh.directory())
    return rows


def test_the_plugin_is_listed_by_the_plugins_api(airflow) -> None:
    with airflow.client("viewer") as api:
        plugins = api.get("/api/v2/plugins").json()["plugins"]
        errors = api.get("/api/v2/plugins/importErrors").json()
    ours = next(p for p in plugins if p["name"] == "od_scheduler")
    assert {"name": "OD scheduler status", "url_prefix": "/od-scheduler"}.items() <= ours["fastapi_apps"][
        0
    ].items()
    view = ours["external_views"][0]
    assert (view["name"], view["href"], view["category"], view["url_route"]) == (
        "Inventory status",
        "/od-scheduler/ui",
        "browse",
        "inventory-status",
    )
    assert errors["total_entries"] == 0, errors


@pytest.mark.parametrize("path", ROUTES)
def test_without_a_token_every_route_is_401_like_airflows_own_api(airflow, path: str) -> None:
    ours = httpx.get(f"{airflow.base_url}{path}", timeout=30)
    theirs = httpx.get(f"{airflow.base_url}/api/v2/dags", timeout=30)
    assert (
        (ours.status_code, ours.json())
        == (theirs.status_code, theirs.json())
        == (
            401,
            {"detail": "Not authenticated"},
        )
    )
    # a bad parameter does not get past authentication either
    bad_param = f"{airflow.base_url}{path}{'&' if '?' in path else '?'}limit=-1"
    assert httpx.get(bad_param, timeout=30).status_code == 401


@pytest.mark.parametrize("path", ROUTES)
def test_an_invalid_token_is_refused_like_airflows_own_api(airflow, path: str) -> None:
    bad = {"Authorization": "Bearer abc.def.ghi"}
    ours = httpx.get(f"{airflow.base_url}{path}", headers=bad, timeout=30)
    theirs = httpx.get(f"{airflow.base_url}/api/v2/dags", headers=bad, timeout=30)
    assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json())
    assert ours.status_code in (401, 403)
    forged = airflow.token("viewer")[:-4] + "AAAA"  # signature broken
    ours = httpx.get(f"{airflow.base_url}{path}", cookies={"_token": forged}, timeout=30)
    assert ours.status_code in (401, 403)


@pytest.mark.parametrize("user", ["admin", "viewer"])
def test_with_a_token_every_route_answers(airflow, seeded: list[sh.Row], user: str) -> None:
    with airflow.client(user) as api:
        for path in ROUTES:
            resp = api.get(path)
            assert resp.status_code == 200, (path, resp.text[:500])
        status = api.get("/od-scheduler/api/jobs/status").json()
        assert status["success"] is True
        assert status["data"]["statistics"]["total"] == len(seeded)
        assert len(status["data"]["executions"]) == 50
        held = api.get("/od-scheduler/api/dealers/health", params={"only": "held"}).json()["data"]["dealers"]
        assert ("dealer.com", "dealer-03", "Cedar Ridge Ford") in {
            (h["platform"], h["dealer_id"], h["dealer_name"]) for h in held
        }
        found = api.get("/od-scheduler/api/dealers", params={"q": "ford", "platform": "homenet"}).json()
        assert [d["dealer_id"] for d in found["data"]["dealers"]] == [
            d.id for d in sh.search(sh.directory(), q="ford", platform="homenet")
        ]
        bad = api.get("/od-scheduler/api/jobs/status", params={"platform": "myspace"})
        assert bad.status_code == 422
        assert "unknown platform 'myspace'" in bad.json()["detail"][0]["msg"]
        page = api.get("/od-scheduler/ui")
        assert page.headers["content-type"].startswith("text/html")
        assert f"for {user}" in page.text


def test_a_user_who_may_read_one_platform_dag_reads_that_platforms_rows_only(
    airflow, seeded: list[sh.Row]
) -> None:
    homenet = [r for r in seeded if r.dag_id == "inventory_homenet"]
    assert 0 < len(homenet) < len(seeded)
    with airflow.client("homenet_reader") as api:
        # Airflow's own API, same user and auth manager: the runs of inventory_homenet and of no other DAG
        for spec in PLATFORMS.values():
            runs = api.get(f"/api/v2/dags/{spec.dag_id}/dagRuns", params={"limit": 1})
            assert runs.status_code == (200 if spec.id == "homenet" else 403), (spec.dag_id, runs.text[:200])

        status = api.get("/od-scheduler/api/jobs/status", params={"limit": 500}).json()["data"]
        assert status["statistics"]["total"] == status["pagination"]["total"] == len(homenet)
        assert status["statistics"]["by_status"] == sh.aggregate(homenet)["by_status"]
        assert [p["platform"] for p in status["statistics"]["by_platform"]] == ["homenet"]
        assert {(e["dag_id"], e["platform"]) for e in status["executions"]} == {
            ("inventory_homenet", "homenet")
        }

        series = api.get("/od-scheduler/api/jobs/stats", params={"days": 30}).json()["data"]["series"]
        assert {d["platform"] for d in series} == {"homenet"}

        health = api.get("/od-scheduler/api/dealers/health", params={"limit": 500}).json()["data"]
        expected_pairs = [k for k in sh.health(seeded, now=datetime.now(UTC)) if k[0] == "homenet"]
        assert [(h["platform"], h["dealer_id"]) for h in health["dealers"]] == expected_pairs

        dealers = api.get("/od-scheduler/api/dealers", params={"limit": 500}).json()["data"]["dealers"]
        assert [d["dealer_id"] for d in dealers] == [
            d.id for d in sh.search(sh.directory()) if "homenet" in d.platforms
        ]
        assert {tuple(d["platforms"]) for d in dealers} == {("homenet",)}

        page = api.get("/od-scheduler/ui")
        assert page.status_code == 200
        assert "for homenet_reader" in page.text
        assert re.findall(r'<g class="series" data-platform="([^"]+)"', page.text) == ["homenet"]
        assert set(re.findall(r'<tr data-dag-id="([^"]+)"', page.text)) == {"inventory_homenet"}

    with airflow.client("admin") as api:  # the same history, unfiltered for a user who reads every DAG
        assert api.get("/od-scheduler/api/jobs/status").json()["data"]["statistics"]["total"] == len(seeded)


@pytest.mark.parametrize(
    "path",
    [
        "/od-scheduler/api/jobs/status",
        "/od-scheduler/api/jobs/stats",
        "/od-scheduler/api/dealers/health",
        "/od-scheduler/api/dealers",
        "/od-scheduler/ui",
    ],
)
def test_another_platforms_filter_is_403_for_a_user_of_one_platform_dag(airflow, path: str) -> None:
    with airflow.client("homenet_reader") as api:
        refused = api.get(path, params={"platform": "cobalt"})
        assert refused.status_code == 403, refused.text[:500]
        assert refused.json()["detail"] == (
            "Forbidden: you may not read the runs of inventory_cobalt, so not the job history of platform "
            "'cobalt'. Platforms you may read: homenet."
        )
        assert api.get(path, params={"platform": "homenet"}).status_code == 200


def test_a_user_who_may_read_no_platform_dag_is_refused_everywhere(airflow, seeded: list[sh.Row]) -> None:
    with airflow.client("cleanup_reader") as api:
        # Airflow lets this user read maintenance_cleanup's runs, and no platform DAG's
        assert api.get("/api/v2/dags/maintenance_cleanup/dagRuns", params={"limit": 1}).status_code == 200
        assert api.get("/api/v2/dags/inventory_homenet/dagRuns", params={"limit": 1}).status_code == 403
        for path in ROUTES:
            resp = api.get(path)
            assert resp.status_code == 403, (path, resp.text[:500])
            assert "you may read the runs of none of them" in resp.json()["detail"], path


def test_the_ui_session_cookie_authenticates_the_page(airflow, seeded: list[sh.Row]) -> None:
    resp = httpx.get(
        f"{airflow.base_url}/od-scheduler/ui", cookies={"_token": airflow.token("viewer")}, timeout=60
    )
    assert resp.status_code == 200
    assert 'id="success-chart"' in resp.text


def test_no_public_docs_or_openapi(airflow) -> None:
    for path in ("/od-scheduler/docs", "/od-scheduler/redoc", "/od-scheduler/openapi.json"):
        assert httpx.get(f"{airflow.base_url}{path}", timeout=30).status_code == 404, path


def test_an_api_server_finds_the_connection_in_the_metadata_db(airflow, seeded: list[sh.Row]) -> None:
    """A second api-server whose environment lacks AIRFLOW_CONN_OD_JOB_HISTORY: the DB connection serves."""
    spec = json.loads(os.environ["AIRFLOW_CONN_OD_JOB_HISTORY"])
    env = {k: v for k, v in airflow.env.items() if k != "AIRFLOW_CONN_OD_JOB_HISTORY"}
    port = free_port()
    env["AIRFLOW__API__BASE_URL"] = f"http://127.0.0.1:{port}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    cli("connections", "delete", "od_job_history")
    added = cli("connections", "add", "od_job_history", "--conn-json", json.dumps(spec))
    assert added.returncode == 0, added.stderr[-2000:]
    log = open(LOGS / "api-server-metadata-conn.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            tail = (LOGS / "api-server-metadata-conn.log").read_text()[-3000:]
            pytest.fail(f"second api-server did not start: {tail}")
        token = httpx.post(
            f"{base}/auth/token", json={"username": "viewer", "password": "viewer-e2e"}, timeout=30
        ).json()["access_token"]
        resp = httpx.get(
            f"{base}/od-scheduler/api/jobs/status", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert resp.status_code == 200, resp.text[:500]
        assert resp.json()["data"]["statistics"]["total"] == len(seeded)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()
        cli("connections", "delete", "od_job_history")
