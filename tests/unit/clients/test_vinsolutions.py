"""VinsolutionsClient against a fake token endpoint and gateway (docs/contracts.md §5), in-process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.clients.vinsolutions import ACCEPT, INVENTORY_PATH, VinsolutionsClient
from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.models.vin import check_digit

from .conftest import FakeClock

pytestmark = pytest.mark.unit

BASE = "https://api.vinsolutions.test"
TOKEN_URL = "https://auth.vinsolutions.test/oauth/token"
CLIENT_ID = "od-client-7"
SECRET = "vs-client-secret-3f9a1c"
API_KEY = "vs-api-key-77d2b0"
DEALER = "21457"
CONN = "od_vinsolutions"


def vin(n: int) -> str:
    draft = f"5TDZA23C05S{n:06d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def item(n: int, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "vin": vin(n),
        "stockNumber": f"T{n}",
        "newUsed": "Used",
        "year": 2021,
        "make": "Toyota",
        "model": "Sienna",
        "mileage": 30_000 + n,
        "pricing": {"internetPrice": 25_000 + n, "msrp": None},
        "photos": [{"url": f"https://images.test/{n}/1.jpg"}],
    }
    data.update(over)
    return data


class FakeVinsolutions:
    """Token endpoint + inventory gateway. Tokens are ``tok-1``, ``tok-2``, ...

    ``token_uses``: a token is refused (401) once it has served that many pages (server-side expiry).
    ``always_401``: every inventory request is refused. ``expires_in``: what the token endpoint announces.
    ``token_status``: the token endpoint answers with this status and an ``invalid_client`` body.
    """

    def __init__(
        self,
        items: list[dict[str, Any]],
        *,
        token_uses: int | None = None,
        always_401: bool = False,
        expires_in: int = 3600,
        token_status: int = 200,
        ignores_page_number: bool = False,
        on_page: Callable[[int], None] | None = None,
    ) -> None:
        self.items = items
        self.token_uses = token_uses
        self.always_401 = always_401
        self.expires_in = expires_in
        self.token_status = token_status
        self.ignores_page_number = ignores_page_number
        self.on_page = on_page
        self.uses: dict[str, int] = {}
        self.token_requests: list[httpx.Request] = []
        self.page_requests: list[httpx.Request] = []
        self.authorizations: list[str] = []  # as sent: the auth flow resends the same request object
        self.statuses: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.token_requests.append(request)
            if self.token_status != 200:
                # A careless server echoing the secret back: it must still never reach an error message.
                body = {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}
                return httpx.Response(self.token_status, json=body)
            token = f"tok-{len(self.token_requests)}"
            self.uses[token] = 0
            return httpx.Response(
                200, json={"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
            )
        assert request.url.path == INVENTORY_PATH
        self.page_requests.append(request)
        self.authorizations.append(request.headers.get("Authorization", ""))
        response = self._page(request)
        self.statuses.append(response.status_code)
        return response

    def _page(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.always_401 or token not in self.uses:
            return httpx.Response(401, json={"error": "invalid_token"})
        if self.token_uses is not None and self.uses[token] >= self.token_uses:
            return httpx.Response(401, json={"error": "invalid_token", "error_description": "expired"})
        if request.headers.get("api_key") != API_KEY:
            return httpx.Response(403, json={"message": "Forbidden"})
        self.uses[token] += 1
        number = int(request.url.params["pageNumber"])
        size = int(request.url.params["pageSize"])
        if self.on_page is not None:
            self.on_page(number)
        start = 0 if self.ignores_page_number else (number - 1) * size
        page = self.items[start : start + size]
        body = {"items": page, "totalItems": len(self.items), "pageNumber": number, "pageSize": size}
        return httpx.Response(200, json=body)

    def tokens_used(self) -> list[str]:
        return list(self.authorizations)


def make_client(fake: Any, clock: FakeClock, **kw: Any) -> VinsolutionsClient:
    kw.setdefault("api_key", API_KEY)
    kw.setdefault("client_secret", SECRET)
    return VinsolutionsClient(
        base_url=BASE,
        client_id=CLIENT_ID,
        token_url=TOKEN_URL,
        transport=httpx.MockTransport(fake),
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(max_attempts=3, jitter=False),
        conn_id=CONN,
        **kw,
    )


def test_requests_follow_the_contract(clock: FakeClock) -> None:
    fake = FakeVinsolutions([item(1), item(2)])
    vehicles = list(make_client(fake, clock).iter_inventory(DEALER))
    assert [v.vin for v in vehicles] == [vin(1), vin(2)]

    (token_request,) = fake.token_requests
    assert token_request.method == "POST"
    assert dict(httpx.QueryParams(token_request.content.decode())) == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "scope": "PublicAPI",
    }
    assert "api_key" not in token_request.headers  # the API key goes to the gateway only
    (page,) = fake.page_requests
    assert dict(page.url.params) == {"dealerId": DEALER, "pageNumber": "1", "pageSize": "100"}
    assert page.headers["Authorization"] == "Bearer tok-1"
    assert page.headers["api_key"] == API_KEY
    assert page.headers["Accept"] == ACCEPT == "application/vnd.coxauto.v3+json"


def test_one_token_serves_every_page_of_a_multi_page_pull(clock: FakeClock) -> None:
    fake = FakeVinsolutions([item(n) for n in range(250)])
    client = make_client(fake, clock)
    vehicles = list(client.iter_inventory(DEALER))

    assert [v.vin for v in vehicles] == [vin(n) for n in range(250)]
    assert len(fake.token_requests) == 1 == client.oauth.token_requests
    assert fake.tokens_used() == ["Bearer tok-1"] * 3
    assert [r.url.params["pageNumber"] for r in fake.page_requests] == ["1", "2", "3"]
    assert client.report.complete
    part = client.report.segments["inventory"]
    assert (part.pages, part.items, part.total_count, part.stop_reason) == (3, 250, 250, "total_reached")
    assert client.stats.pages == 3
    assert client.stats.api_calls == 4  # the token request counts as an API call


def test_a_token_about_to_expire_is_refreshed_before_the_next_page(clock: FakeClock) -> None:
    # The token lives 600 s; the second page is fetched 590 s later (inside the 60 s margin).
    fake = FakeVinsolutions(
        [item(n) for n in range(150)],
        expires_in=600,
        on_page=lambda number: setattr(clock, "now", clock.now + 590) if number == 1 else None,
    )
    client = make_client(fake, clock)
    assert len(list(client.iter_inventory(DEALER))) == 150
    assert fake.tokens_used() == ["Bearer tok-1", "Bearer tok-2"]
    assert fake.statuses == [200, 200]  # refreshed proactively: the gateway never saw an expired token


def test_a_token_expiring_mid_pagination_is_refreshed_once_and_the_page_resent(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeVinsolutions([item(n) for n in range(250)], token_uses=2)
    client = make_client(fake, clock)
    with caplog.at_level(logging.INFO, logger="od_scheduler"):
        vehicles = list(client.iter_inventory(DEALER))

    assert [v.vin for v in vehicles] == [vin(n) for n in range(250)]
    assert fake.statuses == [200, 200, 401, 200]
    assert fake.tokens_used() == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert [r.url.params["pageNumber"] for r in fake.page_requests] == ["1", "2", "3", "3"]
    assert len(fake.token_requests) == 2 == client.oauth.token_requests
    assert client.report.complete
    assert "page 3: the access token expired or was refused; refreshed it" in caplog.text


def test_a_second_401_is_a_clear_failure_naming_the_connection(clock: FakeClock) -> None:
    fake = FakeVinsolutions([item(1)], always_401=True)
    with pytest.raises(PermanentUpstreamError) as info:
        list(make_client(fake, clock).iter_inventory(DEALER))

    message = str(info.value)
    assert "HTTP 401" in message
    assert "even after one refresh" in message
    assert f"connection '{CONN}'" in message
    assert info.value.status_code == 401
    assert len(fake.token_requests) == 2  # the first token, then exactly one refresh
    assert fake.statuses == [401, 401]  # never retried beyond that


def test_a_wrong_client_secret_fails_at_the_token_endpoint(clock: FakeClock) -> None:
    fake = FakeVinsolutions([item(1)], token_status=401)
    with pytest.raises(PermanentUpstreamError) as info:
        list(make_client(fake, clock).iter_inventory(DEALER))

    message = str(info.value)
    assert "OAuth2 token request" in message
    assert "HTTP 401" in message
    assert "invalid_client" in message
    assert f"connection '{CONN}'" in message
    assert SECRET not in message
    assert len(fake.token_requests) == 1
    assert fake.page_requests == []


def test_a_refused_api_key_is_403_and_does_not_refresh_the_token(clock: FakeClock) -> None:
    fake = FakeVinsolutions([item(1)])
    with pytest.raises(PermanentUpstreamError, match=r"HTTP 403.*extra api_key in connection 'od_vinsol"):
        list(make_client(fake, clock, api_key="a-wrong-api-key").iter_inventory(DEALER))
    assert len(fake.token_requests) == 1
    assert fake.statuses == [403]


def test_secrets_never_reach_the_logs(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    calls = {"n": 0}
    inner = FakeVinsolutions([item(n) for n in range(150)], token_uses=1)

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 2:  # the first page request: a 503 to be retried (logged with its URL)
            return httpx.Response(503)
        return inner(request)

    with caplog.at_level(logging.DEBUG):
        assert len(list(make_client(flaky, clock).iter_inventory(DEALER))) == 150
        with pytest.raises(PermanentUpstreamError) as info:
            list(make_client(FakeVinsolutions([], token_status=401), clock).iter_inventory(DEALER))

    assert "retrying" in caplog.text
    assert "refreshed it" in caplog.text
    for secret in (SECRET, API_KEY, "tok-1", "tok-2"):
        assert secret not in caplog.text, secret
        assert secret not in str(info.value), secret


def test_an_empty_page_before_the_total_marks_the_pull_incomplete(clock: FakeClock) -> None:
    fake = FakeVinsolutions([item(n) for n in range(100)])
    fake_total = 180

    def short(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        if request.url.path == INVENTORY_PATH and response.status_code == 200:
            body = response.json()
            return httpx.Response(200, json={**body, "totalItems": fake_total})
        return response

    client = make_client(short, clock)
    assert len(list(client.iter_inventory(DEALER))) == 100
    assert not client.report.complete
    assert client.report.notes == [
        "inventory: empty page after 100 of 180 items: the announced total was not reached"
    ]


def test_a_gateway_ignoring_page_number_stops_and_marks_the_pull_incomplete(clock: FakeClock) -> None:
    fake = FakeVinsolutions([item(n) for n in range(250)], ignores_page_number=True)
    client = make_client(fake, clock)
    assert len(list(client.iter_inventory(DEALER))) == 100
    assert len(fake.page_requests) == 2
    assert not client.report.complete
    assert client.report.segments["inventory"].stop_reason == "no_new_items"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected a JSON object, got list"),
        ({"totalItems": 3}, "the response has no 'items' list"),
        ({"items": ["1HGCM82633A004352"], "totalItems": 1}, "item 0 is a str, not an object"),
    ],
)
def test_a_body_of_the_wrong_shape_is_a_payload_error(clock: FakeClock, body: Any, message: str) -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        return httpx.Response(200, json=body)

    with pytest.raises(PayloadError, match=rf"vinsolutions dealer '{DEALER}' page 1: {message}"):
        list(make_client(gateway, clock).iter_inventory(DEALER))


def test_missing_credentials_are_a_config_error(clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="client secret, api_key"):
        make_client(FakeVinsolutions([]), clock, client_secret="", api_key="")
