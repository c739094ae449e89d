"""``test_connection`` of every upstream hook (the UI's Test button) against the sandbox on a loopback port.

The sandbox app runs in this process under uvicorn on 127.0.0.1, so each hook sends real HTTP through its
real client. Connections are defined both as they are today (type ``http``) and with the new types, and
the last tests go the way Airflow's API does: a ``Connection`` of an ``od_*`` type, exported as a URI,
tested through ``Connection.test_connection()``, which finds the hook through the provider entry point.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from include.sandbox.app import create_app
from include.tools.localenv import sandbox_connections
from od_scheduler.hooks.alerts import TEST_MESSAGE, AlertWebhookHook
from od_scheduler.hooks.apify import ApifyHook
from od_scheduler.hooks.cobalt import CobaltHook
from od_scheduler.hooks.data_api import DataApiHook
from od_scheduler.hooks.dealer_com import DealerComHook
from od_scheduler.hooks.dealersocket import DealersocketHook
from od_scheduler.hooks.homenet import HomenetHook
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.hooks.vinsolutions import VinsolutionsHook
from od_scheduler.provider_info import CONNECTION_TYPES

pytestmark = pytest.mark.unit

HOOKS: dict[str, type[OdHttpHook]] = {
    "od_payload_cms": PayloadCmsHook,
    "od_soap_transformer": HomenetHook,
    "od_dealer_com": DealerComHook,
    "od_apify": ApifyHook,
    "od_vinsolutions": VinsolutionsHook,
    "od_dealersocket": DealersocketHook,
    "od_cobalt": CobaltHook,
    "od_data_api": DataApiHook,
    "od_alerts": AlertWebhookHook,
}
#: What each hook's message says on success.
CHECKED = {
    "od_payload_cms": "PayloadCMS reachable",
    "od_soap_transformer": "The SOAP transformer is reachable and accepted the credentials",
    "od_dealer_com": "nothing was sent",
    "od_apify": "Apify is reachable and accepted the API token",
    "od_vinsolutions": "VinSolutions is reachable and accepted the credentials",
    "od_dealersocket": "DealerSocket is reachable and accepted the credentials",
    "od_cobalt": "Cobalt is reachable and accepted the credentials",
    "od_data_api": "The Data API is reachable and accepted the credentials",
    "od_alerts": "accepted a test message",
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[str, Any]]:
    """(base URL, the app) of a fresh sandbox served by uvicorn on a free loopback port."""
    app = create_app()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


def define(monkeypatch: pytest.MonkeyPatch, conn_id: str, spec: dict[str, Any]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(spec))


def with_type(spec: dict[str, Any], conn_type: str) -> dict[str, Any]:
    """``spec`` as a connection of ``conn_type`` whose extras are in the older ``extra__<type>__`` form."""
    extra = {f"extra__{conn_type}__{k}": v for k, v in spec.get("extra", {}).items()}
    return {**spec, "conn_type": conn_type, "extra": extra}


CONN_TYPE_OF = {conn_id: hook.conn_type for conn_id, hook in HOOKS.items()}


@pytest.mark.parametrize("conn_id", sorted(HOOKS))
def test_an_http_connection_passes_the_test(
    conn_id: str, sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = sandbox
    spec = sandbox_connections(url)[conn_id]
    assert spec["conn_type"] == "http"  # as they are defined today
    define(monkeypatch, conn_id, spec)
    ok, message = HOOKS[conn_id]().test_connection()
    assert ok, message
    assert CHECKED[conn_id] in message


@pytest.mark.parametrize("conn_id", sorted(HOOKS))
def test_a_connection_of_the_new_type_passes_the_test(
    conn_id: str, sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = sandbox
    define(monkeypatch, conn_id, with_type(sandbox_connections(url)[conn_id], CONN_TYPE_OF[conn_id]))
    ok, message = HOOKS[conn_id]().test_connection()
    assert ok, message


#: A wrong secret per connection (the field the message must point at).
WRONG_SECRET = {
    "od_payload_cms": ({"password": "wrong-cms-key"}, "401"),
    "od_soap_transformer": ({"password": "wrong-bearer"}, "refused the credentials"),
    "od_apify": ({"password": "wrong-apify-token"}, "refused the API token"),
    "od_vinsolutions": ({"password": "wrong-vs-secret"}, "invalid_client"),
    "od_dealersocket": ({"password": "wrong-ds-key"}, "refused the credentials"),
    "od_cobalt": ({"password": "wrong-cobalt-pass"}, "refused the credentials"),
    "od_data_api": ({"password": "wrong-data-key"}, "refused the credentials"),
}


@pytest.mark.parametrize("conn_id", sorted(WRONG_SECRET))
def test_a_wrong_secret_fails_the_test_and_says_so(
    conn_id: str, sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = sandbox
    change, said = WRONG_SECRET[conn_id]
    define(monkeypatch, conn_id, {**sandbox_connections(url)[conn_id], **change})
    started = time.monotonic()
    ok, message = HOOKS[conn_id]().test_connection()
    assert not ok
    assert said in message
    assert change["password"] not in message
    assert time.monotonic() - started < 10  # one attempt, no retries


def test_a_wrong_vinsolutions_api_key_fails_the_test(
    sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = sandbox
    spec = sandbox_connections(url)["od_vinsolutions"]
    define(monkeypatch, "od_vinsolutions", {**spec, "extra": {**spec["extra"], "api_key": "wrong-api-key"}})
    ok, message = VinsolutionsHook().test_connection()
    assert not ok
    assert "403" in message
    assert "wrong-api-key" not in message


@pytest.mark.parametrize("conn_id", ["od_soap_transformer", "od_dealersocket", "od_cobalt", "od_data_api"])
def test_a_host_that_is_not_the_upstream_fails_the_test(
    conn_id: str, sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox's root is a server, but not this upstream: without credentials it answers 404, not 401."""
    url, _ = sandbox
    define(monkeypatch, conn_id, {**sandbox_connections(url)[conn_id], "host": url})
    ok, message = HOOKS[conn_id]().test_connection()
    assert not ok
    assert "answered HTTP 404 without credentials" in message
    assert f"check that the host of connection {conn_id!r}" in message


def test_apify_wants_apify_s_own_not_found(sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = sandbox
    define(monkeypatch, "od_apify", {**sandbox_connections(url)["od_apify"], "host": f"{url}/cms"})
    ok, message = ApifyHook().test_connection()
    assert not ok
    assert "expected Apify's 404 record-not-found" in message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("conn_id", sorted(set(HOOKS) - {"od_dealer_com"}))
def test_an_unreachable_upstream_fails_fast_and_never_raises(
    conn_id: str, sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = sandbox
    dead = f"http://127.0.0.1:{closed_port()}"
    spec = json.loads(json.dumps(sandbox_connections(url)[conn_id]).replace(url, dead))
    define(monkeypatch, conn_id, spec)
    started = time.monotonic()
    ok, message = HOOKS[conn_id]().test_connection()
    assert not ok
    assert "ConnectError" in message
    assert time.monotonic() - started < 10


def test_a_missing_connection_or_setting_is_a_message_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_OD_DATA_API", raising=False)
    ok, message = DataApiHook().test_connection()
    assert not ok
    assert "od_data_api" in message
    define(
        monkeypatch,
        "od_cobalt",
        {"conn_type": "od_cobalt", "host": "https://feeds.test", "password": "p-1234"},
    )
    ok, message = CobaltHook().test_connection()
    assert not ok
    assert "no login" in message
    define(
        monkeypatch, "od_dealer_com", {"conn_type": "od_dealer_com", "extra": {"requests_per_second": "fast"}}
    )
    ok, message = DealerComHook().test_connection()
    assert not ok
    assert "requests_per_second must be a number" in message


def test_the_alert_test_message_reaches_the_webhook(
    sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app = sandbox
    define(monkeypatch, "od_alerts", sandbox_connections(url)["od_alerts"])
    before = len(app.state.sandbox.webhook_alerts)
    ok, _ = AlertWebhookHook().test_connection()
    assert ok
    assert app.state.sandbox.webhook_alerts[before:] == [{"text": TEST_MESSAGE, "kind": "connection_test"}]


def test_the_job_history_test_reports_an_unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    define(
        monkeypatch,
        "od_job_history",
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": closed_port(),
            "login": "nobody",
            "schema": "x",
        },
    )
    ok, message = JobHistoryHook().test_connection()
    assert not ok
    assert "connection 'od_job_history'" in message
    assert "OperationalError" in message


# -- the way Airflow's API tests a connection ------------------------------------------------------------
@pytest.mark.parametrize("conn_id", ["od_cobalt", "od_vinsolutions", "od_soap_transformer", "od_dealer_com"])
def test_airflow_tests_a_connection_of_the_new_type_with_our_hook(
    conn_id: str, sandbox: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``POST /api/v2/connections/test`` does: a transient id exported as a URI, then the test."""
    from airflow.models.connection import Connection

    url, _ = sandbox
    spec = with_type(sandbox_connections(url)[conn_id], CONN_TYPE_OF[conn_id])
    extra = spec.pop("extra")
    spec.pop("description", None)
    conn = Connection(conn_id="odtransient1234", extra=json.dumps(extra), **spec)
    monkeypatch.setenv("AIRFLOW_CONN_ODTRANSIENT1234", conn.get_uri())
    assert type(conn.get_hook()) is HOOKS[conn_id]
    ok, message = conn.test_connection()
    assert ok, message
    assert CHECKED[conn_id] in message


def test_every_declared_type_is_tested_here() -> None:
    assert sorted(CONN_TYPE_OF.values()) == sorted(ct["connection-type"] for ct in CONNECTION_TYPES)
