"""url_guard without a hook: start URLs' shape, the allowlist's syntax, which addresses are refused."""

from __future__ import annotations

import ipaddress

import pytest

from od_scheduler.clients.apify import run_input
from od_scheduler.clients.url_guard import AllowedHost, address_problem, check_start_url, parse_allowlist
from od_scheduler.exceptions import ConfigError

pytestmark = pytest.mark.unit


def test_start_urls_are_checked_for_shape_only_and_keep_their_query() -> None:
    body = run_input(
        start_urls=["https://www.twinriversauto.com/inventory/?page=2"], dealer_id="d-9", max_items=None
    )
    assert body["startUrls"] == [{"url": "https://www.twinriversauto.com/inventory/?page=2"}]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://www.example-dealer.com/inventory", "not https"),
        ("javascript:alert(1)", "absolute https URL"),
        ("https://user:pw@www.example-dealer.com/", "user-info"),
        ("https://www.example-dealer.com/a b", "blanks or control characters"),
        ("file:///etc/passwd", "absolute https URL"),
    ],
)
def test_bad_start_urls_are_refused_naming_dealer_and_field(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as caught:
        run_input(start_urls=["https://ok.example.com/", url], dealer_id="d-9", max_items=5)
    assert "dealer d-9: web_scraping_config.start_urls[1]" in str(caught.value)


def test_an_allowlisted_host_may_be_plain_http() -> None:
    assert check_start_url("http://127.0.0.1:8000/x", dealer="d", field="f", allowlist="127.0.0.1")


def test_allowlist_entries() -> None:
    assert parse_allowlist(" 127.0.0.1, sandbox:8000 ,[::1]:9000,") == (
        AllowedHost("127.0.0.1"),
        AllowedHost("sandbox", 8000),
        AllowedHost("::1", 9000),
    )
    with pytest.raises(ConfigError, match="url_allowlist"):
        parse_allowlist("http://sandbox/path")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "a cloud metadata endpoint"),
        ("fd00:ec2::254", "a cloud metadata endpoint"),
        ("::ffff:10.1.2.3", "private"),
        ("100.64.1.1", "not public"),
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_address_problems(address: str, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem
