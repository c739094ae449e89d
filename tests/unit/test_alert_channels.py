"""alert_channel: the webhook by default, or Airflow's Slack or Apprise provider, each delivering for real to
a loopback receiver, with the links, the dedup and the scrubbing of the webhook channel."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from od_scheduler.alert_rules import failure_rate_alert
from od_scheduler.exceptions import ConfigError
from od_scheduler.models.alert import Condition, ConditionKind, TaskRef
from od_scheduler.notifications import (
    CHANNEL_PACKAGES,
    AlertChannel,
    Delivery,
    WebhookAlertNotifier,
    alert_channel,
)
from tests.loopback import LoopbackServer
from tests.unit.test_notifications import REFS, RUN_ID, MemoryState, summary, three_failed

pytestmark = pytest.mark.unit

DAG_ID = "inventory_dealer_com"
AIRFLOW_UI = "https://airflow.example.test"
RUN_URL = f"{AIRFLOW_UI}/dags/{DAG_ID}/runs/manual__2026-11-01T10%3A00%3A00%2B00%3A00"
LOG_URL = f"{RUN_URL}/tasks/summarize_run?try_number=1"
SUMMARIZE = TaskRef(dag_id=DAG_ID, run_id=RUN_ID, task_id="summarize_run", try_number=1)
SLACK_TOKEN = "T0000SLACK/B0000SLACK/slack-hook-secret-4f3e2d1c"
CONDITION = Condition(key=f"failure_rate:{DAG_ID}", kind=ConditionKind.FAILURE_RATE)


class Receiver:
    """Answers every request on a loopback server with ``status`` and records the request line and body."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, bytes]] = []

    def __call__(self, conn: socket.socket, head: bytes, stop: threading.Event) -> None:
        header, _, body = head.partition(b"\r\n\r\n")
        match = re.search(rb"(?im)^content-length:\s*(\d+)", header)
        length = int(match.group(1)) if match else 0
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        self.requests.append((header.split(b"\r\n", 1)[0].decode(), body[:length]))
        answer = b"ok" if self.status == 200 else b"no_service"
        conn.sendall(
            b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (self.status, len(answer), answer)
        )

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    handler = Receiver()
    with LoopbackServer(handler) as server:
        yield handler, server.url


@pytest.fixture(autouse=True)
def base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", AIRFLOW_UI)


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read afresh from the environment this test sets (and again after it)."""
    from od_scheduler.settings import get_settings

    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def connection(monkeypatch: pytest.MonkeyPatch, **spec: Any) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OD_ALERTS", json.dumps(spec))


def build(_new: list[Condition]):  # type: ignore[no-untyped-def]
    return failure_rate_alert(three_failed(), REFS, 0.2)


# -- the setting -------------------------------------------------------------------------------------------
def test_the_webhook_is_the_default_channel(settings_env: pytest.MonkeyPatch) -> None:
    from od_scheduler.settings import ALERT_CHANNELS, get_settings

    settings_env.delenv("AIRFLOW__OD_SCHEDULER__ALERT_CHANNEL", raising=False)
    assert get_settings().alert_channel == "webhook"
    assert tuple(c.value for c in AlertChannel) == ALERT_CHANNELS


def test_an_unknown_channel_is_a_config_error_naming_the_choices(settings_env: pytest.MonkeyPatch) -> None:
    from od_scheduler.settings import get_settings

    settings_env.setenv("AIRFLOW__OD_SCHEDULER__ALERT_CHANNEL", "teams")
    with pytest.raises(ConfigError) as err:
        get_settings()
    assert str(err.value) == (
        "[od_scheduler] alert_channel must be one of webhook, slack, apprise, got 'teams'"
    )


@pytest.mark.parametrize(
    ("channel", "module"),
    [("slack", "airflow.providers.slack.hooks.slack_webhook"), ("apprise", "apprise")],
)
def test_a_channel_whose_provider_is_missing_names_the_pip_package(
    monkeypatch: pytest.MonkeyPatch, channel: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    package = CHANNEL_PACKAGES[AlertChannel(channel)]

    with pytest.raises(ConfigError) as err:
        alert_channel(channel)
    assert f"pip install {package}" in str(err.value)
    assert f"alert_channel = {channel}" in str(err.value)

    # Through the notifier: logged at ERROR with the alert, never raised, and retried at the next check.
    connection(monkeypatch, conn_type="http", host="http://127.0.0.1:9/unused")
    notifier = WebhookAlertNotifier(channel=channel, state=MemoryState(), task=SUMMARIZE)
    with capture_logs() as logs:
        assert notifier.send(build([])) == Delivery.FAILED
    [error] = [e["event"] for e in logs if e["log_level"] == "error"]
    assert f"pip install {package}" in error
    assert "It is retried at the next check." in error


# -- Slack, through Airflow's Slack provider ---------------------------------------------------------------
def test_the_slack_channel_posts_the_text_with_its_links_once_per_condition(
    receiver: tuple[Receiver, str], settings_env: pytest.MonkeyPatch
) -> None:
    handler, url = receiver
    connection(settings_env, conn_type="slack_webhook", host=url, password=SLACK_TOKEN)
    settings_env.setenv("AIRFLOW__OD_SCHEDULER__ALERT_CHANNEL", "slack")
    notifier = WebhookAlertNotifier(state=MemoryState(), task=SUMMARIZE)

    alert = notifier.send_new([CONDITION], build)
    assert notifier.send_new([CONDITION], build) is None, "the same condition does not alert twice"

    assert alert is not None
    [(line, _)] = handler.requests
    assert line == f"POST /{SLACK_TOKEN} HTTP/1.1", "the provider's URL: host + the webhook token"
    [body] = handler.bodies
    print("slack body:", json.dumps(body, indent=2))
    assert body["unfurl_links"] is False
    assert body["text"] == notifier.linked(alert).slack_text()
    assert body["text"].startswith("[ERROR] inventory_dealer_com: 3 of 4 dealer(s) failed (75.0% &gt; ")
    assert f"run <{RUN_URL}|{RUN_ID}>" in body["text"]
    assert f"task summarize_run (<{LOG_URL}|log, try 1>)" in body["text"]
    assert "Broken Arrow Chevrolet (broken-arrow-chevrolet, id d-broken)" in body["text"]


def test_slack_refusing_the_message_is_logged_and_the_alert_is_sent_at_the_next_check(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, url = receiver
    handler.status = 404
    connection(monkeypatch, conn_type="slack_webhook", host=url, password=SLACK_TOKEN)
    notifier = WebhookAlertNotifier(channel="slack", state=MemoryState(), task=SUMMARIZE)

    with capture_logs() as logs:
        notifier.send_new([CONDITION], build)
    [error] = [e["event"] for e in logs if e["log_level"] == "error"]
    assert "could not be delivered to 'od_alerts' (Slack webhook)" in error
    assert "slack-hook-secret-4f3e2d1c" not in error

    handler.status = 200
    assert notifier.send_new([CONDITION], build) is not None
    assert len(handler.requests) == 2


def test_no_secret_reaches_slack(receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import mask_secret

    handler, url = receiver
    dealer_token = "dealer-tok-Slack-A1b2C3"
    mask_secret(dealer_token)
    connection(monkeypatch, conn_type="slack_webhook", host=url, password=SLACK_TOKEN)
    leaky = summary(
        **{
            "d-broken": f"PermanentUpstreamError: GET https://feeds.test/x?token=qs-secret-99 {dealer_token}",
            "d-flaky": "ConfigError: posted to slack-hook-secret-4f3e2d1c and failed",
        }
    )

    notifier = WebhookAlertNotifier(channel="slack", state=MemoryState())
    assert notifier.send(failure_rate_alert(leaky, REFS, 0.2)) == Delivery.SENT

    raw = handler.requests[0][1].decode()
    for secret in (dealer_token, "qs-secret-99", "slack-hook-secret-4f3e2d1c"):
        assert secret not in raw
    assert "***" in raw


def test_a_slack_connection_without_a_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, conn_type="slack_webhook", host="https://hooks.slack.com/services")
    notifier = WebhookAlertNotifier(channel="slack", state=MemoryState())

    with capture_logs() as logs:
        assert notifier.send(build([])) == Delivery.FAILED
    [error] = [e["event"] for e in logs if e["log_level"] == "error"]
    assert "has no password: put the Slack webhook token" in error


# -- Apprise, through Airflow's Apprise provider -----------------------------------------------------------
def test_the_apprise_channel_sends_the_plain_text_with_its_urls(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, url = receiver
    path = url.replace("http://", "json://") + "/od-alerts"
    connection(monkeypatch, conn_type="apprise", extra={"config": {"path": path}})
    state = MemoryState()
    notifier = WebhookAlertNotifier(channel="apprise", state=state, task=SUMMARIZE)

    notifier.send_new([CONDITION], build)
    notifier.send_new([CONDITION], build)
    notifier.clear([CONDITION.key])
    notifier.send_resolved(dag_id=DAG_ID, run_id=RUN_ID)

    assert [line for line, _ in handler.requests] == ["POST /od-alerts HTTP/1.1"] * 2
    alert, resolved = handler.bodies
    print("apprise bodies:", json.dumps(handler.bodies, indent=2))
    assert alert["type"] == "failure"
    assert alert["title"].startswith("[ERROR] inventory_dealer_com: 3 of 4 dealer(s) failed (75.0% > ")
    assert f"Run: {RUN_URL}\nLog: {LOG_URL}" in alert["message"]
    assert "&gt;" not in alert["message"] + alert["title"], "plain text, not Slack's escapes"
    assert resolved["type"] == "success"
    assert resolved["title"] == f"[RESOLVED] Resolved: failure rate of {DAG_ID}"
    assert f"Log: {LOG_URL}" in resolved["message"]


def test_no_secret_reaches_an_apprise_service(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.log import mask_secret

    handler, url = receiver
    dealer_token = "dealer-tok-Apprise-D4e5F6"
    mask_secret(dealer_token)
    path = url.replace("http://", "json://") + "/hook-path-secret-8a7b6c"
    connection(monkeypatch, conn_type="apprise", extra={"config": {"path": path}})
    leaky = summary(
        **{
            "d-broken": f"PermanentUpstreamError: GET https://feeds.test/x?token=qs-secret-77 {dealer_token}",
            "d-flaky": f"ConfigError: could not post to {path}",
        }
    )

    notifier = WebhookAlertNotifier(channel="apprise", state=MemoryState())
    assert notifier.send(failure_rate_alert(leaky, REFS, 0.2)) == Delivery.SENT

    raw = handler.requests[0][1].decode()
    for secret in (dealer_token, "qs-secret-77", "hook-path-secret-8a7b6c"):
        assert secret not in raw
    assert "***" in raw


def test_an_apprise_service_that_is_down_is_logged_and_retried(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, url = receiver
    handler.status = 500
    connection(monkeypatch, conn_type="apprise", extra={"config": [{"path": url.replace("http", "json")}]})
    notifier = WebhookAlertNotifier(channel="apprise", state=MemoryState())

    with capture_logs() as logs:
        notifier.send_new([CONDITION], build)
    assert any("could not be delivered to 'od_alerts' (Apprise)" in e["event"] for e in logs)

    handler.status = 200
    assert notifier.send_new([CONDITION], build) is not None
    assert len(handler.requests) == 2


def test_an_apprise_connection_without_config_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    connection(monkeypatch, conn_type="apprise")
    notifier = WebhookAlertNotifier(channel="apprise", state=MemoryState())

    with capture_logs() as logs:
        assert notifier.send(build([])) == Delivery.FAILED
    [error] = [e["event"] for e in logs if e["log_level"] == "error"]
    assert 'needs the extra "config"' in error


def test_without_a_connection_every_channel_only_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OD_ALERTS", raising=False)
    for channel in AlertChannel:
        notifier = WebhookAlertNotifier(channel=channel, state=MemoryState())
        assert notifier.send(build([])) == Delivery.LOGGED, channel
