"""CobaltHook: login + password of ``od_cobalt`` become the client's Basic credentials."""

from __future__ import annotations

import json

import pytest

from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.cobalt import CobaltHook

pytestmark = pytest.mark.unit


def define(monkeypatch: pytest.MonkeyPatch, **spec: object) -> None:
    conn = {"conn_type": "http", "host": "https://feeds.test/cobalt", **spec}
    monkeypatch.setenv("AIRFLOW_CONN_OD_COBALT", json.dumps(conn))


def test_client_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    define(monkeypatch, login="reader", password="cobalt-pass-1234")
    with CobaltHook().get_client() as client:
        assert client.base_url.rstrip("/") == "https://feeds.test/cobalt"
        assert client.redactor.redact("cobalt-pass-1234") == "***"


@pytest.mark.parametrize(
    ("login", "password", "message"), [(None, "p4ss-word", "no login"), ("reader", None, "no password")]
)
def test_missing_credentials_are_config_errors(
    monkeypatch: pytest.MonkeyPatch, login: str | None, password: str | None, message: str
) -> None:
    define(monkeypatch, login=login, password=password)
    with pytest.raises(ConfigError, match=message):
        CobaltHook().get_client()
