"""WebhookAlertNotifier: the payload the webhook gets, dedup, and that alerting never fails a run or leaks."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from airflow.sdk.exceptions import AirflowFailException
from structlog.testing import capture_logs

from od_scheduler.alert_rules import failure_rate_alert
from od_scheduler.exceptions import PermanentUpstreamError, TransientUpstreamError
from od_scheduler.models.alert import (
    Alert,
    AlertKind,
    ClearedCondition,
    Condition,
    ConditionKind,
    Severity,
    TaskRef,
    slack_escape,
)
from od_scheduler.models.job import DealerRef, RunSummary
from od_scheduler.notifications import (
    Delivery,
    WebhookAlertNotifier,
    database_error,
    describe_database_error,
    is_refusal,
    notify_long_run,
)

pytestmark = pytest.mark.unit

WEBHOOK = "https://hooks.example.test/services/T000/B000/webhook-path-secret"
WEBHOOK_TOKEN = "alerts-bearer-9f8e7d6c"
DAG_ID = "inventory_dealer_com"
RUN_ID = "manual__2026-11-01T10:00:00+00:00"


class Receiver:
    """An httpx transport standing in for the webhook: records each request, answers with ``status``."""

    def __init__(self, status: int = 200, error: type[Exception] | None = None) -> None:
        self.status = status
        self.error = error
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error("simulated", request=request)  # type: ignore[call-arg]
        return httpx.Response(self.status, text="ok")

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


class MemoryState:
    """The alert_state semantics in memory: claim once while open, release, clear (returning what was open:
    since when, whether its alert went out, its dealer)."""

    def __init__(self) -> None:
        self.open: dict[str, bool] = {}  # key -> sent
        self.opened: dict[str, tuple[datetime, Condition]] = {}

    def claim(self, conditions: Sequence[Condition]) -> list[str]:
        claimed = []
        for c in conditions:
            if c.key not in self.open:
                self.opened[c.key] = (datetime.now(UTC), c)
            if not self.open.get(c.key, False):
                self.open[c.key] = True
                claimed.append(c.key)
        return claimed

    def release(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.open[key] = False

    def clear(self, keys: Collection[str]) -> list[ClearedCondition]:
        cleared = []
        for key in sorted(k for k in keys if k in self.open):
            since, condition = self.opened.pop(key)
            cleared.append(
                ClearedCondition(
                    key=key,
                    kind=condition.kind,
                    since=since,
                    alerted=self.open.pop(key),
                    dealer=condition.dealer,
                    detail=condition.detail,
                )
            )
        return cleared

    def clear_open(self, kinds: Collection[str], keep: Collection[str]) -> list[ClearedCondition]:
        gone = [k for k in self.open if k.split(":")[0] in kinds and k not in keep]
        return self.clear(gone)


@pytest.fixture
def alerts_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"conn_type": "http", "host": WEBHOOK, "password": WEBHOOK_TOKEN, "extra": {"max_attempts": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_OD_ALERTS", json.dumps(spec))


@pytest.fixture
def no_alerts_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OD_ALERTS", raising=False)


def summary(**failed: str) -> RunSummary:
    return RunSummary(
        dag_id=DAG_ID,
        run_id=RUN_ID,
        platform="dealer.com",
        dealers=4,
        succeeded=4 - len(failed),
        failed=len(failed),
        running=0,
        skipped=0,
        failure_rate=len(failed) / 4,
        max_failure_rate=0.0,
        vehicles_found=300,
        vehicles_processed=290,
        vehicles_rejected=10,
        failed_dealers=dict(failed),
    )


REFS = {
    "d-broken": DealerRef(
        dealer_id="d-broken",
        platform="dealer.com",
        name="Broken Arrow Chevrolet",
        slug="broken-arrow-chevrolet",
    ),
    "d-flaky": DealerRef(
        dealer_id="d-flaky", platform="dealer.com", name="Flaky Ridge Kia", slug="flaky-ridge-kia"
    ),
    "d-vacant": DealerRef(
        dealer_id="d-vacant", platform="dealer.com", name="Vacant Lot Motors", slug="vacant-lot-motors"
    ),
}


def three_failed() -> RunSummary:
    return summary(
        **{
            "d-broken": "try 1: TransientUpstreamError: dealer_com POST http://127.0.0.1:1/dealer-com/"
            "broken-arrow-chevrolet/api still failing after 5 attempts (last: HTTP 500)",
            "d-flaky": "try 2: TransientUpstreamError: dealer_com POST http://127.0.0.1:1/dealer-com/"
            "flaky-ridge-kia/api still failing after 5 attempts (last: HTTP 500)",
            "d-vacant": "try 1: inventory anomaly: the pull returned 0 vehicles but 12 are live",
        }
    )


def task_context(dag_id: str, exception: BaseException) -> dict[str, Any]:
    """What Airflow hands a task's on_failure_callback (the parts the notifier reads)."""
    from airflow.sdk import DAG

    return {
        "dag": DAG(dag_id=dag_id, schedule=None),
        "run_id": RUN_ID,
        "ti": SimpleNamespace(task_id="list_dealers"),
        "exception": exception,
    }


# -- payload shape ----------------------------------------------------------------------------------------
def test_a_failure_rate_alert_is_one_message_with_dealers_grouped_by_error() -> None:
    alert = failure_rate_alert(three_failed(), REFS, threshold=0.2)
    payload = alert.payload()

    assert payload["kind"] == "failure_rate"
    assert payload["severity"] == "error"
    assert payload["source"] == "od-scheduler"
    assert (payload["dag_id"], payload["run_id"], payload["platform"]) == (DAG_ID, RUN_ID, "dealer.com")
    assert payload["conditions"] == [f"failure_rate:{DAG_ID}"]
    assert payload["counts"]["failed"] == 3
    assert payload["counts"]["dealers"] == 4
    assert payload["counts"]["alert_failure_rate"] == 0.2
    assert [d["dealer_id"] for d in payload["dealers"]] == ["d-broken", "d-flaky", "d-vacant"]
    assert payload["dealers"][0] == {
        "dealer_id": "d-broken",
        "platform": "dealer.com",
        "name": "Broken Arrow Chevrolet",
        "slug": "broken-arrow-chevrolet",
        "condition": "failed",
        "detail": "TransientUpstreamError: dealer_com POST http://127.0.0.1:1/dealer-com/"
        "broken-arrow-chevrolet/api still failing after 5 attempts (last: HTTP 500)",
    }
    # The two dealers whose sites answer 500 share one group (their URLs differ); the anomaly is another.
    assert [(g["count"], g["dealers"]) for g in payload["groups"]] == [
        (2, ["d-broken", "d-flaky"]),
        (1, ["d-vacant"]),
    ]
    assert payload["groups"][0]["error"] == (
        "TransientUpstreamError: dealer_com POST <url> still failing after 5 attempts (last: HTTP 500)"
    )
    text = payload["text"]
    assert text.splitlines()[0] == (
        # Posted escaped for Slack (models.alert.slack_escape): ">" travels as "&gt;".
        f"[ERROR] {DAG_ID}: 3 of 4 dealer(s) failed (75.0% &gt; alert_failure_rate 20.0%)"
    )
    assert text.count("• ") == 2, "one bullet per group of dealers, not one per dealer"
    # Each dealer by its CMS name and slug, beside the id a re-run's dealer_id takes.
    assert (
        "Broken Arrow Chevrolet (broken-arrow-chevrolet, id d-broken), "
        "Flaky Ridge Kia (flaky-ridge-kia, id d-flaky)" in text
    )
    assert "try 1:" not in text
    json.dumps(payload)  # JSON-serializable as is


def test_the_notifier_posts_the_payload_to_the_od_alerts_webhook(alerts_conn: None) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport)
    alert = failure_rate_alert(three_failed(), REFS, threshold=0.2)

    assert notifier.send(alert) == Delivery.SENT

    [request] = receiver.requests
    assert request.method == "POST"
    assert str(request.url) == WEBHOOK
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {WEBHOOK_TOKEN}"
    body = receiver.bodies[0]
    assert body["text"] == slack_escape(alert.text())
    assert body["kind"] == "failure_rate"
    assert body["dealers"] == [d.model_dump(mode="json") for d in alert.dealers]


# -- never fails the caller ---------------------------------------------------------------------------
def test_without_an_od_alerts_connection_the_alert_is_logged_at_warning(no_alerts_conn: None) -> None:
    notifier = WebhookAlertNotifier(state=MemoryState())
    alert = failure_rate_alert(three_failed(), REFS, threshold=0.2)

    with capture_logs() as logs:
        delivery = notifier.send(alert)

    assert delivery == Delivery.LOGGED
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert "No 'od_alerts' connection" in warnings[0]
    assert alert.title in warnings[0]


def test_without_a_connection_a_failure_callback_still_returns(no_alerts_conn: None) -> None:
    notifier = WebhookAlertNotifier(kind="system", platform="dealer.com", state=MemoryState())
    context = task_context(
        DAG_ID, TransientUpstreamError("payload_cms GET /api/dealers still failing after 5 attempts")
    )
    with capture_logs() as logs:
        notifier(context)  # how Airflow calls an on_failure_callback

    assert any(e["log_level"] == "warning" and "[CRITICAL]" in e["event"] for e in logs)


@pytest.mark.parametrize(
    "receiver",
    [Receiver(error=httpx.ConnectError), Receiver(status=503), Receiver(status=404)],
    ids=["connection refused", "503", "404"],
)
def test_a_webhook_that_is_down_is_logged_at_error_and_never_raises(
    alerts_conn: None, receiver: Receiver
) -> None:
    state = MemoryState()
    notifier = WebhookAlertNotifier(state=state, transport=receiver.transport)
    condition = Condition(key=f"failure_rate:{DAG_ID}", kind=ConditionKind.FAILURE_RATE)

    with capture_logs() as logs:
        alert = notifier.send_new([condition], lambda _new: failure_rate_alert(three_failed(), REFS, 0.2))

    assert alert is not None
    assert receiver.requests, "the webhook was tried"
    errors = [e["event"] for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1
    assert "could not be delivered" in errors[0]
    assert "webhook-path-secret" not in errors[0], "the webhook URL's path is a credential"
    # Not delivered: the condition is still owed an alert, so the next check sends it.
    receiver.status, receiver.error = 200, None
    assert notifier.send_new([condition], lambda _new: failure_rate_alert(three_failed(), REFS, 0.2))
    assert receiver.requests[-1].method == "POST"


def test_a_deadline_callback_with_the_webhook_down_returns(alerts_conn: None, monkeypatch) -> None:
    import anyio

    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_ALERTS", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/x"})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_JOB_HISTORY", json.dumps({"conn_type": "postgres", "host": "/nonexistent"})
    )
    context = {"dag_run": {"dag_id": DAG_ID, "dag_run_id": RUN_ID, "queued_at": "2026-11-01T10:00:00Z"}}

    with capture_logs() as logs:
        anyio.run(lambda: notify_long_run(platform="dealer.com", expected_minutes=45, context=context))

    levels = [e["log_level"] for e in logs]
    assert "error" in levels  # delivery failed
    assert "warning" in levels  # and the dedup store was unreachable too: sent without it


# -- no secrets ----------------------------------------------------------------------------------------
def test_no_secret_reaches_the_webhook(alerts_conn: None) -> None:
    from airflow.sdk.log import mask_secret

    dealer_token = "dealer-tok-A1b2C3d4e5"
    mask_secret(dealer_token)  # what pulls do with per-dealer credentials from the CMS
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport)
    leaky = summary(
        **{
            "d-broken": "PermanentUpstreamError: homenet GET https://soap.test/v1?rooftop=9"
            f"&token=qs-secret-77 returned HTTP 403 (integration token {dealer_token})",
            "d-flaky": "TransientUpstreamError: GET https://user:pw-secret-88@feeds.test/x failed",
            "d-vacant": f"ConfigError: connection refused with {WEBHOOK_TOKEN}",
        }
    )

    assert notifier.send(failure_rate_alert(leaky, REFS, 0.2)) == Delivery.SENT

    raw = receiver.requests[0].content.decode()
    for secret in (dealer_token, "qs-secret-77", "pw-secret-88", WEBHOOK_TOKEN, "webhook-path-secret"):
        assert secret not in raw
    assert "***" in raw
    assert "returned HTTP 403" in raw, "the error itself is still there"


# -- dedup ---------------------------------------------------------------------------------------------
def test_the_same_condition_alerts_once_until_it_clears(alerts_conn: None) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport)
    condition = Condition(key=f"failure_rate:{DAG_ID}", kind=ConditionKind.FAILURE_RATE)

    def build(_new: list[Condition]) -> Alert:
        return failure_rate_alert(three_failed(), REFS, 0.2)

    assert notifier.send_new([condition], build) is not None
    assert notifier.send_new([condition], build) is None
    assert len(receiver.requests) == 1
    assert notifier.clear([condition.key]) == [condition.key]
    assert notifier.send_new([condition], build) is not None
    assert len(receiver.requests) == 2


def test_a_digest_names_only_the_new_conditions(alerts_conn: None) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport)
    a, b = (Condition(key=f"missing:dealer.com:{d}", kind=ConditionKind.MISSING) for d in ("a", "b"))
    seen: list[list[str]] = []

    def build(new: list[Condition]) -> Alert:
        seen.append([c.key for c in new])
        return Alert(kind=AlertKind.FRESHNESS, severity=Severity.WARNING, title="t", conditions=seen[-1])

    notifier.send_new([a], build)
    notifier.send_new([a, b], build)
    notifier.send_new([a, b], build)
    assert seen == [["missing:dealer.com:a"], ["missing:dealer.com:b"]]
    assert [body["conditions"] for body in receiver.bodies] == seen


def test_when_the_alert_state_is_down_the_alert_is_sent_anyway(alerts_conn: None) -> None:
    class DownState(MemoryState):
        def claim(self, conditions: Sequence[Condition]) -> list[str]:
            raise OSError("could not connect to the job-history database")

    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=DownState(), transport=receiver.transport)
    condition = Condition(key=f"system:{DAG_ID}", kind=ConditionKind.SYSTEM)
    alert = Alert(
        kind=AlertKind.SYSTEM, severity=Severity.CRITICAL, title="db down", conditions=[condition.key]
    )

    assert notifier.send_new([condition], lambda _new: alert) is alert
    assert len(receiver.requests) == 1


class NoState(MemoryState):
    """A dedup store that must not be asked (the alert carries news of its own)."""

    def claim(self, conditions: Sequence[Condition]) -> list[str]:
        raise AssertionError("claim() called for an alert without conditions")


def test_an_alert_with_news_of_its_own_is_sent_when_no_condition_is_new(alerts_conn: None) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=NoState(), transport=receiver.transport)
    seen: list[list[Condition]] = []

    def build(new: list[Condition]) -> Alert:
        seen.append(new)
        return Alert(kind=AlertKind.FRESHNESS, severity=Severity.WARNING, title="3 job(s) closed")

    assert notifier.send_new([], build) is None, "nothing new and nothing to say: no message"
    assert notifier.send_new([], build, send_anyway=True) is not None
    assert seen == [[]]
    assert [b["title"] for b in receiver.bodies] == ["3 job(s) closed"]


def test_news_of_its_own_goes_out_beside_conditions_already_alerted(alerts_conn: None) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport)
    known = Condition(key="missing:dealer.com:a", kind=ConditionKind.MISSING)

    def build(new: list[Condition]) -> Alert:
        return Alert(
            kind=AlertKind.FRESHNESS, severity=Severity.WARNING, title="t", conditions=[c.key for c in new]
        )

    notifier.send_new([known], build)
    notifier.send_new([known], build, send_anyway=True)
    assert [b["conditions"] for b in receiver.bodies] == [["missing:dealer.com:a"], []]


# -- system alerts -------------------------------------------------------------------------------------
def test_a_refused_run_is_not_a_system_error() -> None:
    assert is_refusal(AirflowFailException("dealer_id 'x' is not an active Dealer.com dealer in PayloadCMS"))
    wrapped = AirflowFailException("PayloadCMS dealer listing failed")
    wrapped.__cause__ = PermanentUpstreamError("payload_cms GET /api/dealers returned HTTP 401")
    assert not is_refusal(wrapped)
    assert not is_refusal(TransientUpstreamError("payload_cms unreachable"))
    assert not is_refusal(OSError("connection to the job-history database refused"))


def test_a_system_alert_says_which_run_and_task_failed_and_why(alerts_conn: None) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(
        kind="system", platform="homenet", state=MemoryState(), transport=receiver.transport
    )
    context = task_context(
        "inventory_homenet",
        TransientUpstreamError("payload_cms GET http://cms.test/api/dealers: ConnectError"),
    )

    notifier(context)
    notifier(context)  # a second failing run: same open condition

    [body] = receiver.bodies
    assert body["kind"] == "system"
    assert body["severity"] == "critical"
    assert (body["dag_id"], body["run_id"], body["task_id"], body["platform"]) == (
        "inventory_homenet",
        RUN_ID,
        "list_dealers",
        "homenet",
    )
    assert body["conditions"] == ["system:inventory_homenet"]
    assert body["details"]["error"] == (
        "TransientUpstreamError: payload_cms GET http://cms.test/api/dealers: ConnectError"
    )


# -- long runs -----------------------------------------------------------------------------------------
def deadline_context(state: str) -> dict[str, Any]:
    """The simple context Airflow 3.3 passes a deadline callback."""
    return {
        "dag_run": {
            "dag_id": "inventory_cobalt",
            "dag_run_id": RUN_ID,
            "queued_at": "2026-11-01T10:00:00Z",
            "start_date": "2026-11-01T10:00:01Z",
            "state": state,
        },
        "deadline": {"id": "d1", "deadline_time": "2026-11-01T13:00:00+00:00"},
    }


def test_a_missed_deadline_of_a_running_run_alerts(alerts_conn: None, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OD_JOB_HISTORY", raising=False)  # running dealers: best effort
    receiver = Receiver()
    notifier = WebhookAlertNotifier(
        kind="long_run",
        platform="cobalt",
        details={"expected_minutes": 180},
        state=MemoryState(),
        transport=receiver.transport,
    )

    notifier(deadline_context("running"))

    [body] = receiver.bodies
    assert (body["kind"], body["dag_id"], body["run_id"], body["platform"]) == (
        "long_run",
        "inventory_cobalt",
        RUN_ID,
        "cobalt",
    )
    assert body["conditions"] == ["long_run:inventory_cobalt"]
    assert body["counts"]["expected_minutes"] == 180
    assert body["details"]["queued_at"] == "2026-11-01T10:00:00Z"


@pytest.mark.parametrize("state", ["failed", "success"])
def test_a_deadline_missed_after_the_run_ended_does_not_alert(alerts_conn: None, state: str) -> None:
    # Airflow 3.3 keeps the deadlines of a run that failed early; they fire later.
    receiver = Receiver()
    notifier = WebhookAlertNotifier(kind="long_run", state=MemoryState(), transport=receiver.transport)

    notifier(deadline_context(state))

    assert receiver.requests == []


# -- the job-history database is unreachable -----------------------------------------------------------
LIBPQ_REFUSED = (
    'connection failed: connection to server at "10.20.30.40", port 6543 failed: FATAL:  password '
    'authentication failed for user "od_history"\n\tIs the server running on that host?'
)


@pytest.fixture
def job_history_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {
        "conn_type": "postgres",
        "host": "pg.history.internal",
        "port": 6543,
        "login": "od_history",
        "password": "history-db-pw-1234",
        "schema": "history_db",
    }
    monkeypatch.setenv("AIRFLOW_CONN_OD_JOB_HISTORY", json.dumps(spec))


def test_a_database_error_is_found_behind_whatever_wraps_it() -> None:
    import psycopg

    cause = psycopg.OperationalError(LIBPQ_REFUSED)
    wrapper = RuntimeError("could not read the dealers' histories")
    wrapper.__cause__ = cause
    assert database_error(wrapper) is cause
    assert database_error(psycopg.errors.UndefinedTable("relation missing")) is None, "a bad query is not"
    assert database_error(TransientUpstreamError("payload_cms unreachable")) is None
    assert database_error(None) is None


def test_a_database_error_names_no_host_port_user_or_password(job_history_conn: None) -> None:
    import psycopg

    text = describe_database_error(
        psycopg.OperationalError("timeout expired contacting pg.history.internal/history_db as od_history")
    )
    assert text == "OperationalError: timeout expired contacting ***/*** as ***"
    text = describe_database_error(psycopg.OperationalError(LIBPQ_REFUSED))
    assert text == 'OperationalError: connection failed: FATAL: password authentication failed for user "***"'


def test_a_system_alert_for_an_unreachable_database_says_what_failed_not_where(
    alerts_conn: None, job_history_conn: None
) -> None:
    import psycopg

    class DownState(MemoryState):
        def claim(self, conditions: Sequence[Condition]) -> list[str]:
            raise psycopg.OperationalError(LIBPQ_REFUSED)

    receiver = Receiver()
    notifier = WebhookAlertNotifier(
        kind="system", platform="cobalt", state=DownState(), transport=receiver.transport
    )

    notifier(task_context("inventory_cobalt", psycopg.OperationalError(LIBPQ_REFUSED)))

    [body] = receiver.bodies
    assert body["details"]["error"] == (
        'OperationalError: connection failed: FATAL: password authentication failed for user "***"'
    )
    raw = json.dumps(body)
    for where in ("10.20.30.40", "6543", "od_history", "pg.history.internal", "history-db-pw-1234"):
        assert where not in raw, where


# -- links to the Airflow UI -----------------------------------------------------------------------------
AIRFLOW_UI = "https://airflow.example.test"


@pytest.fixture
def base_url(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", AIRFLOW_UI + "/")
    return AIRFLOW_UI


@pytest.fixture
def no_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from od_scheduler import notifications

    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    monkeypatch.setattr(notifications, "_BASE_URL_WARNED", set())


SUMMARIZE = TaskRef(dag_id=DAG_ID, run_id=RUN_ID, task_id="summarize_run", try_number=2)
RUN_URL = f"{AIRFLOW_UI}/dags/{DAG_ID}/runs/manual__2026-11-01T10%3A00%3A00%2B00%3A00"


def test_an_operators_alert_links_its_run_and_the_operators_log(alerts_conn: None, base_url: str) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport, task=SUMMARIZE)

    notifier.send(failure_rate_alert(three_failed(), REFS, threshold=0.2))

    [body] = receiver.bodies
    assert body["dag_run_url"] == RUN_URL
    assert body["log_url"] == f"{RUN_URL}/tasks/summarize_run?try_number=2"
    assert (body["task_id"], body["map_index"], body["try_number"]) == ("summarize_run", -1, 2)
    assert f"run <{RUN_URL}|{RUN_ID}>" in body["text"]
    assert f"(<{RUN_URL}/tasks/summarize_run?try_number=2|log, try 2>)" in body["text"]


def test_a_task_callback_links_the_failed_task_instance(alerts_conn: None, base_url: str) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(kind="system", state=MemoryState(), transport=receiver.transport)
    context = task_context(DAG_ID, TransientUpstreamError("payload_cms unreachable"))
    context["ti"] = SimpleNamespace(
        dag_id=DAG_ID, run_id=RUN_ID, task_id="shard.pull_inventory", map_index=7, try_number=3
    )

    notifier(context)

    [body] = receiver.bodies
    assert body["log_url"] == f"{RUN_URL}/tasks/shard.pull_inventory/mapped/7?try_number=3"
    assert (
        body["text"]
        .splitlines()[1]
        .startswith(f"DAG {DAG_ID}, run <{RUN_URL}|{RUN_ID}>, task shard.pull_inventory[7] (<")
    )


def test_a_deadline_alert_links_its_run_only(alerts_conn: None, base_url: str, monkeypatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OD_JOB_HISTORY", raising=False)
    receiver = Receiver()
    notifier = WebhookAlertNotifier(kind="long_run", state=MemoryState(), transport=receiver.transport)

    notifier(deadline_context("running"))

    [body] = receiver.bodies
    assert (
        body["dag_run_url"]
        == f"{AIRFLOW_UI}/dags/inventory_cobalt/runs/manual__2026-11-01T10%3A00%3A00%2B00%3A00"
    )
    assert body["log_url"] is None, "a deadline has no task"


def test_without_a_base_url_there_are_no_links_and_the_log_says_so_once(
    alerts_conn: None, no_base_url: None, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport, task=SUMMARIZE)

    with caplog.at_level("WARNING", logger="od_scheduler.notifications"):
        notifier.send(failure_rate_alert(three_failed(), REFS, threshold=0.2))
        notifier.send(failure_rate_alert(three_failed(), REFS, threshold=0.2))

    for body in receiver.bodies:
        assert (body["dag_run_url"], body["log_url"]) == (None, None)
        assert "http://localhost" not in json.dumps(body), "no link to a guessed host"
        assert body["task_id"] == "summarize_run", "the task is still named"
    said = [r.getMessage() for r in caplog.records if "base_url" in r.getMessage()]
    assert len(said) == 1
    assert "[api] base_url is not set" in said[0]


# -- resolved ----------------------------------------------------------------------------------------------
def missing(dealer_id: str, name: str) -> Condition:
    from od_scheduler.models.alert import AlertDealer

    dealer = AlertDealer(
        dealer_id=dealer_id, platform="dealer.com", name=name, slug=name.lower().replace(" ", "-")
    )
    return Condition(key=f"missing:dealer.com:{dealer_id}", kind=ConditionKind.MISSING, dealer=dealer)


def digest(new: list[Condition]) -> Alert:
    return Alert(
        kind=AlertKind.FRESHNESS,
        severity=Severity.WARNING,
        title="freshness",
        dag_id="inventory_freshness",
        run_id=RUN_ID,
        conditions=[c.key for c in new],
    )


def test_a_check_that_clears_alerted_conditions_sends_one_resolved_message(
    alerts_conn: None, base_url: str
) -> None:
    receiver = Receiver()
    state = MemoryState()
    check = TaskRef(dag_id="inventory_freshness", run_id=RUN_ID, task_id="check_freshness", try_number=1)
    notifier = WebhookAlertNotifier(state=state, transport=receiver.transport, task=check)
    summit, mesa = missing("d-summit", "Summit Ford"), missing("d-mesa", "Mesa Honda")
    notifier.send_new([summit, mesa], digest)
    system = Condition(key="system:inventory_freshness", kind=ConditionKind.SYSTEM, detail="CMS down")
    notifier.send_new([system], lambda _new: digest([system]))
    assert len(receiver.requests) == 2

    # One check: three clears (as inventory_freshness does), one message.
    assert notifier.clear(["system:inventory_freshness"]) == ["system:inventory_freshness"]
    assert notifier.clear_open(["missing", "held"], keep=[mesa.key]) == [summit.key]
    assert notifier.clear(["anomaly:dealer.com:d-never-open"]) == []
    resolved = notifier.send_resolved(dag_id="inventory_freshness", run_id=RUN_ID)

    assert resolved is not None
    assert len(receiver.requests) == 3
    body = receiver.bodies[-1]
    print("resolved:", json.dumps(body, indent=2))
    assert (body["kind"], body["severity"]) == ("resolved", "info")
    assert body["conditions"] == ["missing:dealer.com:d-summit", "system:inventory_freshness"]
    assert body["title"] == (
        "Resolved: system error of inventory_freshness, 1 dealer(s) no longer missing executions"
    )
    text = body["text"]
    assert text.startswith("[RESOLVED] Resolved: ")
    assert "• system error of inventory_freshness: open since " in text
    assert "was: CMS down" in text
    assert (
        "• missing executions on dealer.com (1): Summit Ford (summit-ford, id d-summit) (open since " in text
    )
    assert "Mesa Honda" not in text, "still missing: not resolved"
    check_run = f"{AIRFLOW_UI}/dags/inventory_freshness/runs/manual__2026-11-01T10%3A00%3A00%2B00%3A00"
    assert body["dag_run_url"] == check_run
    assert body["log_url"] == f"{check_run}/tasks/check_freshness?try_number=1"
    [record] = [r for r in body["details"]["resolved"] if r["kind"] == "missing"]
    assert (record["dealer_id"], record["platform"], record["name"]) == (
        "d-summit",
        "dealer.com",
        "Summit Ford",
    )
    assert record["since"] is not None

    # Cleared once: the next check's clear finds nothing open, and sends nothing.
    notifier.clear([summit.key, "system:inventory_freshness"])
    notifier.clear_open(["missing", "held"], keep=[mesa.key])
    assert notifier.send_resolved(dag_id="inventory_freshness", run_id=RUN_ID) is None
    assert len(receiver.requests) == 3


def test_a_condition_whose_alert_was_never_delivered_clears_quietly(alerts_conn: None) -> None:
    receiver = Receiver(status=503)
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport)
    condition = Condition(key=f"failure_rate:{DAG_ID}", kind=ConditionKind.FAILURE_RATE)
    notifier.send_new([condition], lambda _new: failure_rate_alert(three_failed(), REFS, 0.2))
    tried = len(receiver.requests)

    receiver.status = 200
    assert notifier.clear([condition.key]) == [condition.key], "closed all the same"
    assert notifier.send_resolved(dag_id=DAG_ID, run_id=RUN_ID) is None
    assert len(receiver.requests) == tried, "nobody was told it began: nobody is told it ended"


def test_a_resolved_message_that_cannot_be_delivered_is_only_logged(alerts_conn: None) -> None:
    receiver = Receiver()
    notifier = WebhookAlertNotifier(state=MemoryState(), transport=receiver.transport)
    condition = Condition(key=f"failure_rate:{DAG_ID}", kind=ConditionKind.FAILURE_RATE)
    notifier.send_new([condition], lambda _new: failure_rate_alert(three_failed(), REFS, 0.2))
    receiver.error = httpx.ConnectError

    notifier.clear([condition.key])
    with capture_logs() as logs:
        resolved = notifier.send_resolved(dag_id=DAG_ID, run_id=RUN_ID)

    assert resolved is not None
    errors = [e["event"] for e in logs if e["log_level"] == "error"]
    assert len(errors) == 1
    assert "The resolved alert could not be delivered" in errors[0]
    assert "It is not retried: its conditions are closed." in errors[0]
    receiver.error = None
    attempts = len(receiver.requests)
    assert notifier.send_resolved(dag_id=DAG_ID, run_id=RUN_ID) is None, "not sent again"
    assert len(receiver.requests) == attempts
