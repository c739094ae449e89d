"""HomenetHook: the dealer's own integration token, else the connection's extra, else an error."""

from __future__ import annotations

import json

import pytest

from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.homenet import HomenetHook

pytestmark = pytest.mark.unit

CONN = {
    "conn_type": "http",
    "host": "https://transformer.test",
    "password": "bearer-token-1234",
    "extra": {"integration_token": "shared-token-5678"},
}


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch):
    def define(spec: dict) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_OD_SOAP_TRANSFORMER", json.dumps(spec))

    define(CONN)
    return define


def test_the_dealers_own_token_wins(connection) -> None:
    token, source = HomenetHook().integration_token("  dealer-token-9abc ")
    assert (token, source) == ("dealer-token-9abc", "the dealer's homenet_config")


@pytest.mark.parametrize("dealer_token", [None, "", "   "])
def test_without_one_the_connections_extra_is_used(connection, dealer_token: str | None) -> None:
    token, source = HomenetHook().integration_token(dealer_token)
    assert (token, source) == (
        "shared-token-5678",
        "connection 'od_soap_transformer' extra 'integration_token'",
    )


def test_neither_is_a_config_error_naming_both_places(connection) -> None:
    connection({**CONN, "extra": {}})
    with pytest.raises(ConfigError, match="homenet_config has none and connection 'od_soap_transformer'"):
        HomenetHook().integration_token(None)


def test_the_client_gets_the_bearer_and_redacts_both_tokens(connection) -> None:
    with HomenetHook().get_client(integration_token="dealer-token-9abc", credential_source="x") as client:
        assert client.base_url.rstrip("/") == "https://transformer.test"
        text = client.redactor.redact("bearer-token-1234 dealer-token-9abc shared-token-5678")
    assert text == "*** *** ***"
