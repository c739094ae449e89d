"""Redaction: secrets masked in messages, logs and errors."""

from __future__ import annotations

import logging

import httpx
import pytest

from od_scheduler.clients.auth import HeaderAuth
from od_scheduler.clients.redaction import Redactor
from od_scheduler.exceptions import (
    PermanentUpstreamError,
)

from .conftest import FakeClock, Script, make_client

pytestmark = pytest.mark.unit

SECRET = "sk_live_9f8e7d6c5b4a"


# -- redaction -------------------------------------------------------------------------------------
def test_redactor_masks_secrets_and_secret_params() -> None:
    redactor = Redactor(["abc", SECRET, "p@ss word/1"])
    assert redactor.redact(f"key {SECRET} here") == "key *** here"
    assert redactor.redact("abc stays: shorter than 4 chars") == "abc stays: shorter than 4 chars"
    assert redactor.redact("https://h/x?q=1&token=zzz&api_key=yyy&apikey=www#f") == (
        "https://h/x?q=1&token=***&api_key=***&apikey=***#f"
    )
    assert redactor.redact("https://u:pw@host.test/p") == "https://***@host.test/p"
    assert redactor.redact("pw=p%40ss%20word%2F1 or p%40ss+word%2F1") == "pw=*** or ***"
    redactor.add("late-secret")
    assert redactor.redact("a late-secret") == "a ***"


def test_secret_never_in_logs_or_errors(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """The key travels in a header; the server echoes it back in bodies, headers and a redirect."""
    echo = f"invalid key {SECRET}"
    script = Script(
        httpx.Response(503, text=echo),
        httpx.Response(429, text=echo, headers={"Retry-After": "1"}),
        httpx.ReadTimeout,
        httpx.Response(401, text=echo),
    )
    client = make_client(script, clock, auth=HeaderAuth("X-API-Key", SECRET), conn_id="od_testapi")
    with caplog.at_level(logging.DEBUG), pytest.raises(PermanentUpstreamError) as info:
        client.get_json("/things", params={"token": SECRET})
    assert script.requests[0].headers["X-API-Key"] == SECRET
    assert len(caplog.records) >= 3
    for record in caplog.records:
        if record.name.startswith("httpx"):
            continue  # httpx logs the raw URL; our clients never put secrets in URLs (docs/contracts.md)
        assert SECRET not in record.getMessage()
    assert SECRET not in str(info.value)
    assert "token=***" in str(info.value)
    assert "invalid key ***" in str(info.value)
