"""Auth flows: bearer, header, OAuth2 client credentials (cached token, one refresh on 401)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from od_scheduler.clients.auth import BearerAuth, HeaderAuth, OAuth2ClientCredentials
from od_scheduler.exceptions import (
    PermanentUpstreamError,
)

from .conftest import FakeClock, Script, make_client

pytestmark = pytest.mark.unit

SECRET = "sk_live_9f8e7d6c5b4a"


def test_auth_reprs_hide_secrets() -> None:
    for auth in (
        BearerAuth(SECRET),
        HeaderAuth("Authorization", f"users API-Key {SECRET}"),
        OAuth2ClientCredentials("https://t.test/token", "cid", SECRET),
    ):
        assert SECRET not in repr(auth)


# -- OAuth2 client credentials ---------------------------------------------------------------------
def token_response(token: str, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})


def oauth(clock: FakeClock) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        "https://auth.test/token", "client-1", SECRET, "PublicAPI", clock=clock, expiry_margin=60
    )


def test_oauth_token_is_fetched_once_and_reused(clock: FakeClock) -> None:
    script = Script(token_response("tok-1"), httpx.Response(200, json=1), httpx.Response(200, json=2))
    client = make_client(script, clock, auth=oauth(clock))
    assert client.get_json("/a") == 1
    assert client.get_json("/b") == 2
    token_req, first, second = script.requests
    assert token_req.url == "https://auth.test/token"
    assert token_req.method == "POST"
    form = dict(httpx.QueryParams(token_req.content.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "client-1",
        "client_secret": SECRET,
        "scope": "PublicAPI",
    }
    assert first.headers["Authorization"] == second.headers["Authorization"] == "Bearer tok-1"
    assert client.stats.api_calls == 3


def test_oauth_token_is_refreshed_before_expiry(clock: FakeClock) -> None:
    script = Script(
        token_response("tok-1", expires_in=3600),
        httpx.Response(200, json=1),
        token_response("tok-2"),
        httpx.Response(200, json=2),
    )
    client = make_client(script, clock, auth=oauth(clock))
    client.get_json("/a")
    clock.now += 3600 - 60  # within the margin: treat as expired
    client.get_json("/b")
    assert script.requests[3].headers["Authorization"] == "Bearer tok-2"


def test_oauth_401_refreshes_once_then_succeeds(clock: FakeClock) -> None:
    seen: list[str] = []

    def answer(status: int) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request.headers["Authorization"])
            return httpx.Response(status, json=1)

        return handler

    script = Script(token_response("old"), answer(401), token_response("new"), answer(200))
    client = make_client(script, clock, auth=oauth(clock))
    assert client.get_json("/a") == 1
    assert seen == ["Bearer old", "Bearer new"]
    assert client.stats.api_calls == 4


def test_oauth_second_401_fails(clock: FakeClock) -> None:
    script = Script(token_response("old"), httpx.Response(401), token_response("new"), httpx.Response(401))
    client = make_client(script, clock, auth=oauth(clock), conn_id="od_vinsolutions")
    with pytest.raises(PermanentUpstreamError, match=r"HTTP 401.*connection 'od_vinsolutions'"):
        client.get_json("/a")
    assert len(script.requests) == 4


def test_oauth_token_endpoint_refusal_is_permanent(clock: FakeClock) -> None:
    script = Script(httpx.Response(401, json={"error": "invalid_client", "echo": SECRET}))
    client = make_client(script, clock, auth=oauth(clock))
    with pytest.raises(
        PermanentUpstreamError, match=r"token request .* failed with HTTP 401.*client secret"
    ) as info:
        client.get_json("/a")
    assert SECRET not in str(info.value)
    assert len(script.requests) == 1


def test_oauth_token_endpoint_outage_is_retried(clock: FakeClock) -> None:
    script = Script(httpx.Response(503), token_response("tok"), httpx.Response(200, json=1))
    client = make_client(script, clock, auth=oauth(clock))
    assert client.get_json("/a") == 1
    assert clock.sleeps == [0.5]


def test_bearer_auth_sets_header(clock: FakeClock) -> None:
    script = Script(httpx.Response(200, json={}))
    make_client(script, clock, auth=BearerAuth("tkn-1234")).get_json("/a")
    assert script.requests[0].headers["Authorization"] == "Bearer tkn-1234"
