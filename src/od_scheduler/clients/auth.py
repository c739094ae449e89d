"""httpx auth flows for the clients: bearer token, a secret header, OAuth2 client credentials.

Each exposes ``secrets`` (the values the client must redact); OAuth2 registers every access token it gets
with the client's redactor. No Airflow imports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import httpx

from od_scheduler.clients.redaction import Redactor, excerpt
from od_scheduler.clients.retry import is_transient
from od_scheduler.exceptions import PayloadError, PermanentUpstreamError, TransientUpstreamError


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self._token = token

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values the client must redact."""
        return (self._token,)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the header and send."""
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


class HeaderAuth(httpx.Auth):
    """A secret in one header: ``X-API-Key: <key>``, or Payload's ``Authorization: users API-Key <key>``."""

    def __init__(self, header: str, value: str) -> None:
        self.header = header
        self._value = value

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values the client must redact."""
        return (self._value,)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the header and send."""
        request.headers[self.header] = self._value
        yield request

    def __repr__(self) -> str:
        return f"HeaderAuth({self.header!r}, ***)"


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth2 client-credentials grant with a cached bearer token, shared by every request of the client.

    The token is fetched on first use and reused until ``expiry_margin`` seconds before it expires. A 401
    on a request triggers one refresh and one resend; a second 401 is returned to the caller (and becomes
    a ``PermanentUpstreamError`` in :class:`BaseClient`). Token requests go through the client's own
    transport. A token endpoint answering 408/429/5xx raises ``TransientUpstreamError``; any other
    failure ``PermanentUpstreamError`` (check the client id and secret).
    """

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        expiry_margin: float = 60.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._clock = clock
        self._expiry_margin = expiry_margin
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.token_requests = 0
        #: The client's redactor (set by :class:`BaseClient`): every access token is registered with it.
        self.redactor: Redactor | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values the client must redact."""
        return (self._client_secret,)

    def _cached(self) -> str | None:
        with self._lock:
            if self._token is not None and self._clock() < self._expires_at:
                return self._token
            return None

    def _token_request(self) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
        }
        if self.scope:
            form["scope"] = self.scope
        self.token_requests += 1
        return httpx.Request("POST", self.token_url, data=form, headers={"Accept": "application/json"})

    def _store(self, response: httpx.Response) -> str:
        redactor = self.redactor or Redactor([self._client_secret])
        what = f"OAuth2 token request to {redactor.redact(self.token_url)} for client {self.client_id!r}"
        data: Any = None
        if response.status_code == 200:
            try:
                data = response.json()
            except (ValueError, RecursionError):
                data = None
        token = data.get("access_token") if isinstance(data, dict) else None
        if isinstance(token, str) and token:
            redactor.add(token)  # before anything quotes the body: an echo of the token stays masked
        body = excerpt(response.content, redactor)
        if response.status_code != 200:
            message = f"{what} failed with HTTP {response.status_code}: {body}"
            if is_transient(status_code=response.status_code):
                raise TransientUpstreamError(message, status_code=response.status_code)
            raise PermanentUpstreamError(
                f"{message}. Check the client id, client secret and token URL.",
                status_code=response.status_code,
            )
        if data is None:
            raise PayloadError(f"{what}: the token response is not JSON: {body}")
        if not isinstance(token, str) or not token:
            raise PayloadError(f"{what}: the token response has no access_token")
        expires_in = data.get("expires_in")
        lifetime = (
            float(min(expires_in, 86400))  # min first: float() of a 400-digit int overflows
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0
            else 3600.0
        )
        with self._lock:
            self._token = token
            self._expires_at = self._clock() + lifetime - min(self._expiry_margin, lifetime / 2)
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with the cached token; on a 401 refresh the token once and resend."""
        token = self._cached()
        if token is None:
            token = self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        current = self._cached()
        if current is not None and current != token:
            fresh = current  # another request refreshed it meanwhile
        else:
            with self._lock:
                self._token = None
            fresh = self._store((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials({self.token_url!r}, client_id={self.client_id!r}, ***)"
