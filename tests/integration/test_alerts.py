"""Alerts end to end: dag.test() runs, real PostgreSQL, and the sandbox webhook receiving exactly the expected
messages (and none twice): failure rate, inventory anomaly, freshness digest, long run, system error, webhook
down, and one resolved message when a check finds alerted conditions over. Every message names its dealers
as the CMS does, beside their ids, and links to its run and log in the Airflow UI when [api] base_url is
set."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest

from tests.fixtures import job_history_conn, platform_dealers, run_dag

pytestmark = pytest.mark.integration

DAG_ID = "inventory_dealer_com"
FRESHNESS = "inventory_freshness"
#: Every secret the sandbox connections and dealers use: none may ever reach a webhook message.
SANDBOX_SECRETS = (
    "sandbox-cms-key",
    "sandbox-data-api-key",
    "sandbox-homenet-token",
    "sandbox-homenet-integration",
    "sandbox-apify-token",
    "sandbox-vs-secret",
    "sandbox-vs-api-key",
    "sandbox-dealersocket-key",
    "sandbox-cobalt-pass",
)


@pytest.fixture
def control(clean: httpx.Client) -> Iterator[httpx.Client]:
    """A reset sandbox (webhook store empty), empty job history, no alert state and no dealer directory."""
    with job_history_conn() as db:
        db.execute("TRUNCATE alert_state, dealer_directory")
    yield clean
    assert_no_secrets(received(clean))


def received(control: httpx.Client) -> list[dict[str, Any]]:
    return control.get("/_sandbox/webhook/alerts").json()["alerts"]


def assert_no_secrets(messages: list[dict[str, Any]]) -> None:
    raw = json.dumps(messages)
    leaked = [s for s in SANDBOX_SECRETS if s in raw]
    assert not leaked, f"secrets in webhook messages: {leaked}"
    # Per-dealer HomeNet integration tokens live in the CMS documents.
    assert "integration_token" not in raw


def dealer_id(control: httpx.Client, slug: str) -> str:
    return next(d["id"] for d in control.get("/_sandbox/dealers").json()["dealers"] if d["slug"] == slug)


def alert_state() -> dict[str, tuple[bool, bool]]:
    """``{key: (open, sent)}``."""
    with job_history_conn() as db:
        rows = db.execute("SELECT key, cleared_at IS NULL, last_sent IS NOT NULL FROM alert_state").fetchall()
    return {key: (is_open, sent) for key, is_open, sent in rows}


def ti_state(dag_id: str, run_id: str, task_id: str) -> str | None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id, task_id=task_id).one()
        return ti.state


def pull(dagbag, dealer: str, **conf: Any):
    return run_dag(dagbag.dags[DAG_ID], conf={"dealer_id": dealer, "force": True, **conf})


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["kind"] for m in messages]


#: What the UI's links start with in the tests that set ``[api] base_url``.
AIRFLOW_UI = "http://airflow.example.test:8080"


def run_url(dag_id: str, run_id: str) -> str:
    """A run's page in the Airflow UI (Airflow 3's path, the run id percent-encoded)."""
    return f"{AIRFLOW_UI}/dags/{dag_id}/runs/{quote(run_id, safe='')}"


# -- summarize_run: failure rate ---------------------------------------------------------------------------
def test_a_high_failure_rate_alerts_once_until_a_clean_run_resolves_it(
    dagbag, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", AIRFLOW_UI)
    broken = dealer_id(control, "broken-arrow-chevrolet")
    harbor = dealer_id(control, "harbor-volkswagen")

    run = pull(dagbag, broken)
    assert run.state == "failed", "alerting does not change the verdict"
    [message] = received(control)
    print("failure_rate alert:", json.dumps(message, indent=2))
    # It links to the run and to summarize_run's log, the task that found the failure rate.
    failing_run = run_url(DAG_ID, run.run_id)
    assert message["dag_run_url"] == failing_run
    assert message["log_url"] == f"{failing_run}/tasks/summarize_run?try_number=1"
    assert (message["task_id"], message["try_number"]) == ("summarize_run", 1)
    assert message["text"].splitlines()[1] == (
        f"DAG {DAG_ID}, run <{failing_run}|{run.run_id}>, task summarize_run "
        f"(<{failing_run}/tasks/summarize_run?try_number=1|log, try 1>)"
    )
    assert message["kind"] == "failure_rate"
    assert message["severity"] == "error"
    assert (message["dag_id"], message["run_id"], message["platform"]) == (DAG_ID, run.run_id, "dealer.com")
    assert message["conditions"] == [f"failure_rate:{DAG_ID}"]
    assert message["counts"]["dealers"] == message["counts"]["failed"] == 1
    [failed] = message["dealers"]
    assert (failed["dealer_id"], failed["slug"], failed["condition"]) == (
        broken,
        "broken-arrow-chevrolet",
        "failed",
    )
    assert "HTTP 500" in failed["detail"]
    assert [g["dealers"] for g in message["groups"]] == [[broken]]
    assert message["text"].startswith(
        f"[ERROR] {DAG_ID}: 1 of 1 dealer(s) failed (100.0% &gt; alert_failure_rate 20.0%)"
    )
    assert f"Broken Arrow Chevrolet (broken-arrow-chevrolet, id {broken})" in message["text"]

    assert pull(dagbag, broken).state == "failed"
    assert len(received(control)) == 1, "the same condition does not alert twice"
    assert alert_state()[f"failure_rate:{DAG_ID}"] == (True, True)

    clean = pull(dagbag, harbor)
    assert clean.state == "success"
    assert alert_state()[f"failure_rate:{DAG_ID}"][0] is False, "a clean run clears the condition"
    messages = received(control)
    assert kinds(messages) == ["failure_rate", "resolved"], "the clean run says so, once"
    resolved = messages[1]
    print("resolved:", json.dumps(resolved, indent=2))
    assert resolved["severity"] == "info"
    assert resolved["conditions"] == [f"failure_rate:{DAG_ID}"]
    assert resolved["title"] == f"Resolved: failure rate of {DAG_ID}"
    assert (resolved["run_id"], resolved["platform"]) == (clean.run_id, "dealer.com")
    assert resolved["dag_run_url"] == run_url(DAG_ID, clean.run_id)
    assert resolved["log_url"] == f"{run_url(DAG_ID, clean.run_id)}/tasks/summarize_run?try_number=1"
    assert resolved["text"].startswith(f"[RESOLVED] Resolved: failure rate of {DAG_ID}\n")
    assert f"• failure rate of {DAG_ID}: open since " in resolved["text"]
    assert "was: 1 of 1 dealer(s) failed" in resolved["text"]
    [record] = resolved["details"]["resolved"]
    assert (record["kind"], record["dag_id"]) == ("failure_rate", DAG_ID)
    assert record["since"] <= resolved["sent_at"]

    assert pull(dagbag, harbor).state == "success"
    assert len(received(control)) == 2, "cleared once: the next clean run sends nothing"

    third = pull(dagbag, broken)
    messages = received(control)
    assert kinds(messages) == ["failure_rate", "resolved", "failure_rate"], "it came back: it alerts again"
    assert messages[2]["run_id"] == third.run_id


# -- summarize_run: inventory anomaly ----------------------------------------------------------------------
def test_an_inventory_anomaly_alerts_once_and_clears_on_success(dagbag, control: httpx.Client) -> None:
    harbor = dealer_id(control, "harbor-volkswagen")
    assert pull(dagbag, harbor).state == "success"
    vins = control.get(f"/_sandbox/truth/dealer.com/{harbor}").json()["vins"]
    control.post(f"/_sandbox/lots/dealer.com/{harbor}/remove", json={"vins": vins[24:]}).raise_for_status()

    run = pull(dagbag, harbor)
    messages = received(control)
    # The only dealer of the run failed, so the failure rate alerts too: two messages, one of each kind.
    assert sorted(m["kind"] for m in messages) == ["anomaly", "failure_rate"]
    anomaly = next(m for m in messages if m["kind"] == "anomaly")
    print("anomaly alert:", json.dumps(anomaly, indent=2))
    assert anomaly["severity"] == "warning"
    assert anomaly["run_id"] == run.run_id
    assert anomaly["conditions"] == [f"anomaly:dealer.com:{harbor}"]
    [dealer] = anomaly["dealers"]
    assert (dealer["slug"], dealer["condition"]) == ("harbor-volkswagen", "anomaly")
    assert dealer["detail"].startswith("inventory anomaly: the pull returned 24 vehicles but 80 are live")

    pull(dagbag, harbor)
    assert len(received(control)) == 2, "still anomalous: no second message"

    assert pull(dagbag, harbor, force_delist=True).state == "success"
    messages = received(control)
    assert len(messages) == 3
    state = alert_state()
    assert state[f"anomaly:dealer.com:{harbor}"][0] is False
    assert state[f"failure_rate:{DAG_ID}"][0] is False
    # Both conditions cleared in one run: one resolved message for both.
    assert messages[2]["kind"] == "resolved"
    assert messages[2]["conditions"] == [f"failure_rate:{DAG_ID}", f"anomaly:dealer.com:{harbor}"]
    assert (
        f"inventory anomaly on dealer.com (1): Harbor Volkswagen (harbor-volkswagen, id {harbor})"
        in (messages[2]["text"])
    )
    assert messages[2]["dag_run_url"] is None, "[api] base_url is not set here: no links"


# -- inventory_freshness ----------------------------------------------------------------------------------
Seeded = tuple[str, str, str, timedelta, str | None] | tuple[str, str, str, timedelta, str | None, str]


def seed(rows: list[Seeded]) -> None:
    """Insert finished executions: (dealer_id, platform, status, age, error[, anomaly])."""
    now = datetime.now(UTC)
    with job_history_conn() as db:
        for dealer, platform, status, age, error, *anomaly in rows:
            start = now - age
            db.execute(
                "INSERT INTO job_executions (job_id, dag_id, run_id, dealer_id, platform, status, start_time,"
                " end_time, errors, anomaly) VALUES (%s, 'seeded', %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    f"{dealer}_{platform}",
                    f"seeded-{uuid4()}",
                    dealer,
                    platform,
                    status,
                    start,
                    start + timedelta(minutes=2),
                    [error] if error else [],
                    anomaly[0] if anomaly else None,
                ),
            )


def check(dagbag) -> Any:
    run = run_dag(dagbag.dags[FRESHNESS])
    assert run.state == "success"
    return run


def test_the_freshness_digest_names_exactly_the_stale_held_and_anomalous_dealers(
    dagbag, control: httpx.Client
) -> None:
    ids = {
        slug: dealer_id(control, slug)
        for slug in (
            "summit-ford",
            "bluebonnet-ford",
            "mesa-honda",
            "pinecrest-buick-gmc",
            "evergreen-kia",
            "granite-state-subaru",
            "cedar-ridge-bmw",
            "bayview-auto-group",
            "oakwood-chevrolet",
            "old-mill-chrysler",
        )
    }
    minutes, hours = (lambda n: timedelta(minutes=n)), (lambda n: timedelta(hours=n))
    anomaly = "inventory anomaly: the pull returned 2 vehicles but 8 are live at the Data API"
    seed(
        [
            (ids["summit-ford"], "dealer.com", "success", hours(5), None),  # hourly, 5 h: missing
            (ids["bluebonnet-ford"], "dealer.com", "success", hours(5), None),  # 1440-min interval: fine
            (ids["mesa-honda"], "dealer.com", "success", hours(7), None),  # then 5 failures: held
            *[(ids["mesa-honda"], "dealer.com", "failed", hours(n), "try 1: HTTP 503") for n in range(1, 6)],
            (ids["pinecrest-buick-gmc"], "dealer.com", "success", minutes(50), None),  # 4 failures: fine
            *[
                (ids["pinecrest-buick-gmc"], "dealer.com", "failed", minutes(n), "x")
                for n in (40, 30, 20, 10)
            ],
            (ids["evergreen-kia"], "dealer.com", "success", minutes(70), None),  # then an anomaly
            (ids["evergreen-kia"], "dealer.com", "failed", minutes(10), f"try 1: {anomaly}", anomaly),
            (ids["granite-state-subaru"], "dealer.com", "success", hours(10), None),  # paused in the CMS
            (ids["cedar-ridge-bmw"], "dealer.com", "success", minutes(20), None),  # fresh
            (ids["bayview-auto-group"], "homenet", "success", hours(72), None),  # daily, 3 days: missing
            (
                ids["oakwood-chevrolet"],
                "dealer.com",
                "failed",
                hours(3),
                "try 1: HTTP 500",
            ),  # never succeeded
            (ids["oakwood-chevrolet"], "dealer.com", "failed", hours(2), "try 1: HTTP 500"),
            (ids["old-mill-chrysler"], "dealer.com", "success", hours(10), None),  # inactive in the CMS
        ]
    )

    run = check(dagbag)
    [digest] = received(control)
    print("freshness digest:", json.dumps(digest, indent=2))
    assert digest["kind"] == "freshness"
    assert (digest["dag_id"], digest["run_id"]) == (FRESHNESS, run.run_id)
    named = {(d["slug"], d["platform"], d["condition"]) for d in digest["dealers"]}
    assert named == {
        ("summit-ford", "dealer.com", "missing"),
        ("bayview-auto-group", "homenet", "missing"),
        ("oakwood-chevrolet", "dealer.com", "missing"),
        ("mesa-honda", "dealer.com", "held"),
        ("evergreen-kia", "dealer.com", "anomaly"),
    }
    assert len(digest["dealers"]) == 5
    assert {k: digest["counts"][k] for k in ("missing", "held", "anomaly")} == {
        "missing": 3,
        "held": 1,
        "anomaly": 1,
    }
    assert {d["name"] for d in digest["dealers"]} >= {"Summit Ford", "Mesa Honda"}
    assert f"Summit Ford (summit-ford, id {ids['summit-ford']})" in digest["text"]
    # The check recorded every active dealer the CMS listed: the status page can name them all.
    with job_history_conn() as db:
        directory = dict(db.execute("SELECT slug, platforms FROM dealer_directory").fetchall())
    assert directory["bayview-auto-group"] == ["homenet"]
    assert "granite-state-subaru" in directory, "paused, but active: listed"
    assert "old-mill-chrysler" not in directory, "inactive dealers are not listed"
    details = {d["slug"]: d["detail"] for d in digest["dealers"]}
    assert details["summit-ford"].startswith("last success 5 h 00 min ago; interval 60 min")
    assert details["oakwood-chevrolet"].startswith("no success since its first execution 3 h")
    assert details["mesa-honda"].startswith("held back from scheduled runs: the last 5 executions failed")

    check(dagbag)
    assert len(received(control)) == 1, "nothing new: no second digest"

    # Summit Ford is pulled again: its condition clears (one resolved message); with the fresh success gone
    # it alerts again.
    seed([(ids["summit-ford"], "dealer.com", "success", minutes(1), None)])
    check(dagbag)
    assert alert_state()[f"missing:dealer.com:{ids['summit-ford']}"][0] is False
    [_, resolved] = received(control)
    assert resolved["kind"] == "resolved"
    assert resolved["conditions"] == [f"missing:dealer.com:{ids['summit-ford']}"]
    assert resolved["title"] == "Resolved: 1 dealer(s) no longer missing executions"
    assert (
        f"missing executions on dealer.com (1): Summit Ford (summit-ford, id {ids['summit-ford']})"
        in (resolved["text"])
    )
    check(dagbag)
    assert len(received(control)) == 2, "resolved once"
    with job_history_conn() as db:
        db.execute(
            "DELETE FROM job_executions WHERE dealer_id = %s AND start_time > now() - interval '1 hour'",
            (ids["summit-ford"],),
        )
    check(dagbag)
    messages = received(control)
    assert len(messages) == 3
    assert [(d["slug"], d["condition"]) for d in messages[2]["dealers"]] == [("summit-ford", "missing")]


# -- DeadlineAlert: a long run -------------------------------------------------------------------------
def test_a_long_run_alert_names_the_dealers_still_running(control: httpx.Client) -> None:
    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.models.dealer import Dealer
    from od_scheduler.notifications import WebhookAlertNotifier

    harbor = platform_dealers(control, "dealer.com")["harbor-volkswagen"]
    JobHistoryHook().directory.remember_dealers([Dealer.model_validate(harbor)], platform="dealer.com")
    run_id = f"scheduled__{uuid4()}"
    started = datetime.now(UTC) - timedelta(minutes=50)
    with job_history_conn() as db:
        for dealer in (harbor["id"], "never-listed-dealer"):
            db.execute(
                "INSERT INTO job_executions (job_id, dag_id, run_id, dealer_id, platform, status, start_time)"
                " VALUES (%s, %s, %s, %s, 'dealer.com', 'running', %s)",
                (f"{dealer}_dealer.com", DAG_ID, run_id, dealer, started),
            )
    notifier = WebhookAlertNotifier(kind="long_run", platform="dealer.com", details={"expected_minutes": 45})

    notifier(
        {
            "dag_run": {
                "dag_id": DAG_ID,
                "dag_run_id": run_id,
                "queued_at": started.isoformat(),
                "state": "running",
            }
        }
    )

    [message] = received(control)
    assert message["kind"] == "long_run"
    running = {d["dealer_id"]: (d["name"], d["slug"], d["condition"]) for d in message["dealers"]}
    assert running == {
        harbor["id"]: (harbor["name"], "harbor-volkswagen", "running"),
        "never-listed-dealer": (None, None, "running"),  # not in the directory: no name is made up
    }
    assert f"{harbor['name']} (harbor-volkswagen, id {harbor['id']})" in message["text"]
    assert "never-listed-dealer" in message["text"]


# -- system errors -----------------------------------------------------------------------------------------
def test_an_unreachable_cms_fails_the_run_and_sends_one_system_alert(
    dagbag, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    harbor = dealer_id(control, "harbor-volkswagen")
    cms = json.loads(__import__("os").environ["AIRFLOW_CONN_OD_PAYLOAD_CMS"])
    monkeypatch.setenv("AIRFLOW_CONN_OD_PAYLOAD_CMS", json.dumps({**cms, "host": f"{dead_url()}/cms"}))

    run = pull(dagbag, harbor)
    assert run.state == "failed"
    assert ti_state(DAG_ID, run.run_id, "list_dealers") == "failed"
    [message] = received(control)
    print("system alert:", json.dumps(message, indent=2))
    assert message["kind"] == "system"
    assert message["severity"] == "critical"
    assert (message["dag_id"], message["run_id"], message["task_id"]) == (DAG_ID, run.run_id, "list_dealers")
    assert message["conditions"] == [f"system:{DAG_ID}"]
    assert "payload_cms" in message["details"]["error"]
    assert "ConnectError" in message["details"]["error"]

    assert pull(dagbag, harbor).state == "failed"
    assert len(received(control)) == 1, "still down: no second message"

    monkeypatch.setenv("AIRFLOW_CONN_OD_PAYLOAD_CMS", json.dumps(cms))
    assert pull(dagbag, harbor).state == "success"
    assert alert_state()[f"system:{DAG_ID}"][0] is False, "the next run that lists its dealers clears it"
    messages = received(control)
    assert kinds(messages) == ["system", "resolved"]
    assert messages[1]["conditions"] == [f"system:{DAG_ID}"]


def test_an_unreachable_job_history_fails_the_run_and_alerts_without_dedup(
    dagbag, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    harbor = dealer_id(control, "harbor-volkswagen")
    port = int(dead_url().rsplit(":", 1)[1])
    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_JOB_HISTORY",
        json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": port, "login": "postgres"}),
    )

    run = pull(dagbag, harbor)
    assert run.state == "failed"
    assert ti_state(DAG_ID, run.run_id, "list_dealers") == "failed"
    [message] = received(control)
    assert (message["kind"], message["task_id"], message["run_id"]) == ("system", "list_dealers", run.run_id)
    assert message["details"]["error"] == "OperationalError: connection failed: Connection refused"
    assert "127.0.0.1" not in json.dumps(message), "the alert says what failed, not where the database is"
    assert str(port) not in json.dumps(message)


# -- delivery problems never change a run's outcome --------------------------------------------------------
def test_a_webhook_that_is_down_does_not_fail_the_run_and_the_alert_is_sent_later(
    dagbag, control: httpx.Client
) -> None:
    broken = dealer_id(control, "broken-arrow-chevrolet")
    control.put("/_sandbox/faults/webhook", json={"status_code": 503}).raise_for_status()

    # max_failure_rate=1 tolerates the failed dealer: the run's verdict is success, the alert is due.
    run = pull(dagbag, broken, max_failure_rate=1)
    assert run.state == "success"
    assert received(control) == []
    attempts = control.get("/_sandbox/requests", params={"service": "webhook"}).json()["requests"]
    assert attempts
    assert {a["status"] for a in attempts} == {503}

    control.delete("/_sandbox/faults/webhook").raise_for_status()
    pull(dagbag, broken, max_failure_rate=1)
    [message] = received(control)
    assert message["kind"] == "failure_rate", "the undelivered alert is sent at the next run"


def test_without_an_od_alerts_connection_runs_are_unaffected(
    dagbag, control: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = dealer_id(control, "broken-arrow-chevrolet")
    monkeypatch.delenv("AIRFLOW_CONN_OD_ALERTS")

    assert pull(dagbag, broken, max_failure_rate=1).state == "success"
    assert pull(dagbag, broken).state == "failed"
    assert received(control) == []


# -- list_dealers: a platform that had dealers and now lists none -----------------------------------------
@pytest.fixture
def empty_cms() -> Iterator[str]:
    """A PayloadCMS on loopback that answers every dealers query with an empty page."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Empty(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "docs": [],
                    "totalDocs": 0,
                    "limit": 100,
                    "totalPages": 1,
                    "page": 1,
                    "pagingCounter": 1,
                    "hasPrevPage": False,
                    "hasNextPage": False,
                    "prevPage": None,
                    "nextPage": None,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Empty)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_platform_that_had_dealers_and_lists_none_fails_and_alerts_until_force_accepts_it(
    dagbag, control: httpx.Client, empty_cms: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with job_history_conn() as db:
        db.execute("TRUNCATE platform_listings")
    cobalt = dagbag.dags["inventory_cobalt"]
    run_dag(cobalt, conf={"force": True, "max_failure_rate": 1.0})
    with job_history_conn() as db:
        (listed,) = db.execute("SELECT dealers FROM platform_listings WHERE platform = 'cobalt'").fetchone()
    assert listed == len(platform_dealers(control, "cobalt"))
    spec = json.loads(__import__("os").environ["AIRFLOW_CONN_OD_PAYLOAD_CMS"])
    monkeypatch.setenv("AIRFLOW_CONN_OD_PAYLOAD_CMS", json.dumps({**spec, "host": empty_cms}))

    run = run_dag(cobalt)
    assert run.state == "failed", "zero dealers after some is never a green run"
    assert ti_state("inventory_cobalt", run.run_id, "list_dealers") == "failed"
    [message] = received(control)
    assert (message["kind"], message["task_id"]) == ("system", "list_dealers")
    assert f"lists no active Cobalt dealer, but its last listing had {listed}" in message["details"]["error"]

    accepted = run_dag(cobalt, conf={"force": True})
    assert accepted.state == "success", "force=true accepts an empty listing"
    assert run_dag(cobalt).state == "success", "and from then on an empty listing is the norm"
    messages = received(control)
    assert kinds(messages) == ["system", "resolved"], "the accepted listing resolved the system alert"
    assert (messages[1]["run_id"], messages[1]["conditions"]) == (
        accepted.run_id,
        ["system:inventory_cobalt"],
    )
