"""ApifyHook: the od_apify connection -> a sync client (worker) and an async run watcher (triggerer)."""

from __future__ import annotations

import asyncio
import json

import pytest

from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.apify import ApifyHook

pytestmark = pytest.mark.unit

CONN = {
    "conn_type": "http",
    "host": "https://apify.test",
    "password": "apify-token-1234",
    "extra": {"items_page_size": 250, "timeout": 7, "max_attempts": 2},
}


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch):
    def define(spec: dict) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_OD_APIFY", json.dumps(spec))

    define(CONN)
    return define


def test_the_client_takes_host_token_and_page_size_from_the_connection(connection) -> None:
    with ApifyHook().get_client() as client:
        assert client.base_url == "https://apify.test"
        assert client.page_size == 250
        assert client.retry.max_attempts == 2
        assert "apify-token-1234" in client.redactor._secrets
        assert client.conn_id == "od_apify"


def test_without_a_host_the_public_api_is_used(connection) -> None:
    connection({"conn_type": "http", "password": "apify-token-1234"})
    with ApifyHook().get_client() as client:
        assert client.base_url == "https://api.apify.com"
        assert client.page_size == 1000


def test_the_async_watcher_reads_the_same_connection(connection) -> None:
    async def build():
        watcher = await ApifyHook().aget_watcher()
        async with watcher:
            return str(watcher._client.base_url), watcher.timeout, watcher.retry.max_attempts

    assert asyncio.run(build()) == ("https://apify.test", 7.0, 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"conn_type": "http", "host": "https://apify.test"}, "no password: put the Apify API token there"),
        ({**CONN, "extra": {"items_page_size": "lots"}}, "items_page_size must be a whole number"),
        ({**CONN, "extra": {"items_page_size": 0}}, "items_page_size must be >= 1"),
    ],
)
def test_a_bad_connection_is_a_config_error_naming_it(connection, spec: dict, message: str) -> None:
    connection(spec)
    with pytest.raises(ConfigError, match=message):
        ApifyHook().get_client()
