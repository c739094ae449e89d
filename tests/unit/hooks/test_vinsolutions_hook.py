"""VinsolutionsHook: ``od_vinsolutions`` login/password/extras become the OAuth2 client's settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.vinsolutions import VinsolutionsHook

pytestmark = pytest.mark.unit

TOKEN_URL = "https://auth.vinsolutions.test/oauth/token"


def define(monkeypatch: pytest.MonkeyPatch, **spec: Any) -> None:
    conn = {
        "conn_type": "http",
        "host": "https://gateway.vinsolutions.test",
        "login": "od-client",
        "password": "vs-secret-9913",
        "extra": {"token_url": TOKEN_URL, "api_key": "vs-api-key-4471"},
        **spec,
    }
    monkeypatch.setenv("AIRFLOW_CONN_OD_VINSOLUTIONS", json.dumps(conn))


def test_client_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    define(monkeypatch)
    with VinsolutionsHook().get_client() as client:
        assert client.base_url.rstrip("/") == "https://gateway.vinsolutions.test"
        assert (client.oauth.token_url, client.oauth.client_id, client.oauth.scope) == (
            TOKEN_URL,
            "od-client",
            "PublicAPI",
        )
        assert client.conn_id == "od_vinsolutions"
        shown = client.redactor.redact(f"vs-secret-9913 vs-api-key-4471 {TOKEN_URL}")
        assert shown == f"*** *** {TOKEN_URL}"  # secrets masked; the token URL is not a secret


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"login": None}, "no login: put the OAuth2 client id there"),
        ({"password": None}, "no password: put the OAuth2 client secret there"),
        ({"extra": {"api_key": "k-1234"}}, "no extra 'token_url'"),
        ({"extra": {"token_url": TOKEN_URL}}, "no extra 'api_key'"),
        ({"host": None}, "has no host"),
    ],
)
def test_missing_settings_are_config_errors(
    monkeypatch: pytest.MonkeyPatch, spec: dict[str, Any], message: str
) -> None:
    define(monkeypatch, **spec)
    with pytest.raises(ConfigError, match=message):
        VinsolutionsHook().get_client()
