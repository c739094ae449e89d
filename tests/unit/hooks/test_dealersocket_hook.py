"""DealersocketHook: the password of ``od_dealersocket`` becomes the client's X-Api-Key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.dealersocket import DealersocketHook

pytestmark = pytest.mark.unit


def define(monkeypatch: pytest.MonkeyPatch, **spec: Any) -> None:
    conn = {"conn_type": "http", "host": "https://api.dealersocket.test", "password": "ds-key-7781", **spec}
    monkeypatch.setenv("AIRFLOW_CONN_OD_DEALERSOCKET", json.dumps(conn))


def test_client_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    define(monkeypatch)
    with DealersocketHook().get_client() as client:
        assert client.base_url.rstrip("/") == "https://api.dealersocket.test"
        assert client.redactor.redact("key ds-key-7781") == "key ***"


def test_a_missing_api_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    define(monkeypatch, password=None)
    with pytest.raises(ConfigError, match="no password: put the DealerSocket API key"):
        DealersocketHook().get_client()
