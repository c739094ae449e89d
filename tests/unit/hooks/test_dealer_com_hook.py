"""DealerComHook: a dealer's CMS base_url is checked before any request (url_guard), naming dealer and field.

No test sends traffic anywhere but loopback: names that would resolve elsewhere are answered by a stub
resolver, and refused URLs are proven unreached by a listener that must see nothing.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from typing import Any

import pytest

from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.dealer_com import DealerComHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.settings import get_settings
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.unit

DEALER = Dealer.model_validate(
    {
        "id": "d-4711",
        "name": "Hilltop Motors",
        "slug": "hilltop-motors",
        "status": "active",
        "platforms": ["dealer.com"],
        "dealer_com_config": {"site_id": "hilltop", "base_url": "https://www.hilltopmotors.com"},
    }
)


@pytest.fixture(autouse=True)
def connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_DEALER_COM", json.dumps({"conn_type": "http", "extra": {"requests_per_second": 50}})
    )
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


LOOPBACK_REFUSED = r"connected to (127\.0\.0\.1|::1) \(loopback address\); refused"


def resolver(*addresses: str) -> Any:
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    return resolve


def refused(base_url: str, **kw: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        DealerComHook().get_client(base_url, dealer=DEALER, **kw)
    message = str(caught.value)
    assert "Hilltop Motors" in message, message
    assert "d-4711" in message, message
    assert "dealer_com_config.base_url" in message, message
    return message


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_loopback_base_url_not_allowlisted_is_refused_and_never_reached(scheme: str) -> None:
    assert get_settings().url_allowlist == ("127.0.0.1",)  # the tests' sandbox allowance, not 127.0.0.2
    with LoopbackServer(host="127.0.0.2") as listener:
        message = refused(f"{scheme}://127.0.0.2:{listener.port}/")
        assert listener.accepted == 0
        assert listener.heads == []
    assert ("not https" if scheme == "http" else "loopback address") in message


def test_a_base_url_with_a_query_string_is_refused() -> None:
    message = refused("https://www.hilltopmotors.com/?utm_source=cms", resolver=resolver("93.184.216.34"))
    assert "query string or fragment" in message
    assert "utm_source" not in message  # query values are never echoed


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.5",
        "192.168.1.20",
        "172.16.0.1",
        "169.254.169.254",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "224.0.0.1",
        "0.0.0.0",  # noqa: S104 - an address the stub resolver answers, nothing binds it
    ],
)
def test_a_host_resolving_to_a_private_address_is_refused(address: str) -> None:
    message = refused("https://inventory.hilltopmotors.com", resolver=resolver("93.184.216.34", address))
    assert f"points at {ipaddress.ip_address(address)} (" in message


def test_user_info_is_refused_without_echoing_it() -> None:
    message = refused("https://admin:hunter22@www.hilltopmotors.com", resolver=resolver("93.184.216.34"))
    assert "user-info" in message
    assert "hunter22" not in message


def test_a_public_https_base_url_gives_a_client() -> None:
    with DealerComHook().get_client(
        "www.hilltopmotors.com/", dealer=DEALER, resolver=resolver("93.184.216.34")
    ) as client:
        assert client.base_url.rstrip("/") == "https://www.hilltopmotors.com"


def test_an_allowlisted_host_may_use_plain_http() -> None:
    with LoopbackServer() as sandbox:
        client = DealerComHook().get_client(f"{sandbox.url}/dealer-com/x", dealer=DEALER)
        client.close()


def test_the_connection_itself_is_checked_when_dns_answers_differently_later() -> None:
    """check_base_url saw a public address; the connection then reaches loopback (DNS rebinding)."""
    with LoopbackServer() as listener:
        url = f"https://localhost:{listener.port}"
        client = DealerComHook().get_client(url, dealer=DEALER, resolver=resolver("93.184.216.34"))
        with client, pytest.raises(ConfigError, match=LOOPBACK_REFUSED):
            client.request("GET", "/api/widget/ws-inv-data/getInventory")
        assert listener.heads == [], "not one byte of the request may reach the refused address"
