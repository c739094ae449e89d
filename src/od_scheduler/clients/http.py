"""The one HTTP client base: timeouts, auth, retry, rate limit, redaction, bounds and request stats.

Platform clients subclass :class:`BaseClient` and only describe endpoints and parse responses.

Retry. :meth:`BaseClient.request` retries transient failures by the one policy of
:mod:`od_scheduler.clients.retry` (``Retry-After``, backoff, counters, redacted log lines). A POST is not
idempotent unless its caller says so (``idempotent=True``: a read, or keyed so that a repeat changes
nothing): one that may have reached the upstream is not re-sent.

Invalid JSON. ``get_json`` / ``post_json`` retry a body that does not parse once (a proxy cutting a
chunked body or serving a maintenance page with 200 is usually transient), then raise ``PayloadError``
with a short redacted excerpt; a POST that is not idempotent is not sent again for it.

Bounds. Every call of :meth:`BaseClient.request` (all its attempts and waits together) ends within
``deadline_s``: each exchange's socket operations are capped by the time left, so a server dripping one
byte at a time cannot hold the worker (see :mod:`od_scheduler.clients.bounded`); a ``Retry-After`` or a
backoff longer than the time left fails at once with a retryable ``TransientUpstreamError`` (Airflow's task
retry, which frees the worker slot, waits instead). Bodies are streamed and capped at
``max_response_bytes``, raw and after decoding gzip/deflate (``BodyTooLarge``, a ``PayloadError``).

No Airflow imports: clients are usable and testable without Airflow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self

import httpx

from od_scheduler.clients.auth import OAuth2ClientCredentials
from od_scheduler.clients.bounded import (
    ACCEPT_ENCODING,
    BoundedTransport,
    PeerCheck,
    current_work_budget,
    deadline_scope,
    network_transport,
)
from od_scheduler.clients.ratelimit import TokenBucket
from od_scheduler.clients.redaction import Redactor, excerpt
from od_scheduler.clients.retry import (
    RetryBudget,
    RetryPolicy,
    TransientFailure,
    is_idempotent,
    is_transient,
    maybe_processed,
    retrying,
)
from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError, TransientUpstreamError

logger = logging.getLogger(__name__)

#: Default bound of one ``BaseClient.request`` call, attempts and waits included (setting http_deadline_s).
DEFAULT_DEADLINE_S = 300.0
#: Default cap of one response body, raw and decoded (setting max_response_mb).
DEFAULT_MAX_RESPONSE_BYTES = 50_000_000
#: Characters of an exception's own text (httpx, h11) quoted in an error message.
DETAIL_CHARS = 300
USER_AGENT = "od-scheduler (Open Dealer inventory scheduler)"


@dataclass
class RequestStats:
    """Measured request counters of one client, for ``job_executions.performance_metrics``.

    ``api_calls`` counts every HTTP request sent (retries and OAuth token requests included);
    ``rate_limit_wait_s`` is time spent waiting for the token bucket or after a 429.
    """

    api_calls: int = 0
    retries: int = 0
    rate_limits_hit: int = 0
    bytes_fetched: int = 0
    pages: int = 0
    rate_limit_wait_s: float = 0.0

    def as_metrics(self) -> dict[str, int | float]:
        """The counters as a JSON-safe dict (wait time rounded to milliseconds)."""
        metrics: dict[str, int | float] = asdict(self)
        metrics["rate_limit_wait_s"] = round(self.rate_limit_wait_s, 3)
        return metrics


class BaseClient:
    """An ``httpx.Client`` with the project's retry, rate limit, redaction and stats.

    ``service`` names the upstream in every log line and error; ``conn_id`` (optional) names the Airflow
    connection holding its settings, so messages can say where to fix a credential. ``deadline_s`` bounds
    each :meth:`request` (attempts and waits together), ``max_response_bytes`` each body (raw and decoded).
    ``peer_check`` vets the address of every new connection (for URLs that came from the CMS).
    ``on_secret`` is told every secret registered (hooks pass Airflow's ``mask_secret``). ``transport``,
    ``sleep`` and ``clock`` are injectable for tests; an injected transport is wrapped in the body cap too.
    """

    def __init__(
        self,
        *,
        base_url: str,
        service: str,
        auth: httpx.Auth | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        requests_per_second: float | None = None,
        secrets: Iterable[str] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        conn_id: str | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        peer_check: PeerCheck | None = None,
        on_secret: Callable[[str], None] | None = None,
    ) -> None:
        if deadline_s <= 0:
            raise ConfigError(f"{service}: the request deadline must be > 0 seconds, got {deadline_s}")
        self.service = service
        self.conn_id = conn_id
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats()
        self.deadline_s = float(deadline_s)
        self.max_response_bytes = int(max_response_bytes)
        self.redactor = Redactor(secrets, on_add=on_secret)
        for secret in getattr(auth, "secrets", ()):
            self.redactor.add(secret)
        if isinstance(auth, OAuth2ClientCredentials):
            auth.redactor = self.redactor
        self._sleep = sleep
        self._clock = clock
        self._bucket = (
            TokenBucket(requests_per_second, clock=clock, sleep=sleep) if requests_per_second else None
        )
        self._client = httpx.Client(
            base_url=base_url,
            auth=auth,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, **(headers or {})},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=BoundedTransport(
                transport or network_transport(peer_check=peer_check),
                max_bytes=self.max_response_bytes,
                describe=lambda request: (
                    f"{self.service} {request.method} {self.redactor.redact(str(request.url))}"
                ),
            ),
            # a redirect means a wrong base URL; following it could leak API-key headers to another host
            follow_redirects=False,
            event_hooks={"request": [self._count_request]},
        )

    @property
    def base_url(self) -> str:
        """The base URL requests are relative to (for making relative links in responses absolute)."""
        return str(self._client.base_url)

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------------------------
    def _count_request(self, request: httpx.Request) -> None:
        self.stats.api_calls += 1

    def request(
        self,
        method: str,
        url: str,
        *,
        ok: Collection[int] = (200,),
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request, retrying transient failures; return the response if its status is in ``ok``.

        ``kwargs`` go to ``httpx.Client.build_request`` (``params``, ``json``, ``headers``, ...).
        ``idempotent`` (default: by method, so GET/HEAD/PUT/DELETE yes, POST no) says whether the request may
        be repeated after it may have reached the upstream; one that may not is retried only when it
        certainly did not (no connection was made, or a 429), else ``AmbiguousRequestError`` at once.
        Raises ``TransientUpstreamError`` when the attempts or the ``deadline_s`` budget run out (a
        ``Retry-After`` or backoff longer than the time left included), ``PermanentUpstreamError`` at once
        for any other unexpected status, ``BodyTooLarge`` (a ``PayloadError``) for a body over the cap.
        """
        budget_s, bounded_by = self._budget(method, url)
        budget = RetryBudget(self._clock() + budget_s, bounded_by, self._clock)
        request = self._build_request(method, url, kwargs)
        shown_url = self.redactor.redact(str(request.url))
        for attempt in retrying(
            self.retry,
            label=f"{self.service} {method} {shown_url}",
            counters=self.stats,
            sleep=self._sleep,
            idempotent=is_idempotent(method) if idempotent is None else idempotent,
            budget=budget,
        ):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    request = self._build_request(method, url, kwargs)
                return self._send_once(request, method, shown_url, ok=ok, budget_end=budget.end)
        raise AssertionError("unreachable")  # pragma: no cover: the loop returns or raises

    def _build_request(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Request:
        try:
            return self._client.build_request(method, url, **kwargs)
        except httpx.InvalidURL as err:
            raise ConfigError(
                f"{self.service}: invalid URL {self.redactor.redact(url)!r} ({err}). {self._hint(404)}"
            ) from err

    def _send_once(
        self, request: httpx.Request, method: str, shown_url: str, *, ok: Collection[int], budget_end: float
    ) -> httpx.Response:
        """One attempt: the response if its status is in ``ok``; ``TransientFailure`` if retrying can help."""
        if self._bucket is not None:
            self.stats.rate_limit_wait_s += self._bucket.acquire()
        try:
            response = self.send_bounded(request, budget_end)
        except (httpx.HTTPError, TransientUpstreamError) as err:
            failure = self._describe(err)
            if not is_transient(exc=err):
                raise PermanentUpstreamError(
                    f"{self.service} {method} {shown_url} failed: {failure}. {self._hint(404)}"
                ) from err
            raise TransientFailure(failure, processed=maybe_processed(exc=err)) from err
        self.stats.bytes_fetched += len(response.content)
        status = response.status_code
        if status in ok:
            return response
        if not is_transient(status_code=status):
            raise self._permanent_error(method=method, url=shown_url, response=response)
        raise TransientFailure(
            f"HTTP {status}",
            status_code=status,
            retry_after=response.headers.get("Retry-After"),
            processed=maybe_processed(status_code=status),
        )

    def _budget(self, method: str, url: str) -> tuple[float, str]:
        """The seconds one ``request`` call may take, and what bounds them (for messages): the request's own
        deadline, or less when the work it belongs to (a dealer) has less time left."""
        own = (self.deadline_s, f"its {self.deadline_s:g}s deadline")
        work = current_work_budget()
        if work is None:
            return own
        left = work.left()
        if left <= 0:
            raise TransientUpstreamError(
                f"{self.service} {method} {self.redactor.redact(url)}: not sent, {work.what} is past its "
                f"{work.seconds:g}s deadline (setting dealer_deadline_minutes). Airflow's task retry tries "
                "again later."
            )
        if left < self.deadline_s:
            return left, f"the {work.seconds:g}s deadline of {work.what}"
        return own

    def send_bounded(self, request: httpx.Request, budget_end: float | None = None) -> httpx.Response:
        """Send ``request`` and read its body within the time left before ``budget_end`` (client clock).

        ``None``: one full ``deadline_s`` from now. The body is capped by the transport.
        """
        left = self.deadline_s if budget_end is None else budget_end - self._clock()
        if left <= 0:
            raise httpx.ReadTimeout("the request's overall deadline passed", request=request)
        with deadline_scope(time.monotonic() + left):
            return self._client.send(request)

    def _describe(self, err: BaseException) -> str:
        detail = " ".join((str(err) or "no detail").split())
        if len(detail) > DETAIL_CHARS:
            detail = detail[: DETAIL_CHARS - 1] + "…"
        return self.redactor.redact(f"{type(err).__name__}: {detail}")

    def _hint(self, status: int) -> str:
        """What the data engineer should check for a permanent ``status``."""
        where = f"connection {self.conn_id!r}" if self.conn_id else f"the {self.service} client settings"
        if status in (401, 403):
            return f"Check the API key / credentials in {where}."
        if status == 404:
            return f"Check the base URL in {where} and the ids in the dealer's configuration."
        if 300 <= status < 400:
            return f"The upstream redirects: check the base URL (scheme, host, path) in {where}."
        if status in (400, 422):
            return "The upstream rejected the request as invalid; see its message above."
        return ""

    def _permanent_error(self, *, method: str, url: str, response: httpx.Response) -> PermanentUpstreamError:
        """The error for a non-retryable status. Subclasses override to map statuses to finer errors."""
        status = response.status_code
        location = response.headers.get("Location")
        moved = f" (redirect to {self.redactor.redact(location)})" if location and 300 <= status < 400 else ""
        return PermanentUpstreamError(
            f"{self.service} {method} {url} returned HTTP {status}{moved}: "
            f"{excerpt(response.content, self.redactor)}. {self._hint(status)}".rstrip(),
            status_code=status,
        )

    def _json(
        self, method: str, url: str, *, ok: Collection[int], idempotent: bool, kwargs: dict[str, Any]
    ) -> Any:
        for attempt in (1, 2):
            response = self.request(method, url, ok=ok, idempotent=idempotent, **kwargs)
            try:
                return response.json()
            except RecursionError as err:  # nested deeper than the interpreter's stack: never transient
                shown_url = self.redactor.redact(str(response.request.url))
                raise PayloadError(
                    f"{self.service} {method} {shown_url} returned JSON nested too deeply to parse "
                    f"({len(response.content)} bytes): {excerpt(response.content[:100], self.redactor, 60)}"
                ) from err
            except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                shown_url = self.redactor.redact(str(response.request.url))
                body = excerpt(response.content, self.redactor)
                content_type = response.headers.get("Content-Type", "?")
                if not idempotent:  # it was processed: sending it again would repeat its effect
                    raise PayloadError(
                        f"{self.service} {method} {shown_url} returned invalid JSON (content-type "
                        f"{content_type}): {body}. Not re-sent: the request is not idempotent."
                    ) from err
                if attempt == 1:
                    wait = self.retry.backoff(1)
                    logger.warning(
                        "%s %s %s: the response is not valid JSON (%d bytes); retrying once in %.2fs",
                        self.service,
                        method,
                        shown_url,
                        len(response.content),
                        wait,
                    )
                    self.stats.retries += 1
                    self._sleep(wait)
                    continue
                raise PayloadError(
                    f"{self.service} {method} {shown_url} returned invalid JSON twice "
                    f"(content-type {content_type}): {body}"
                ) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, url: str, *, ok: Collection[int] = (200,), **kwargs: Any) -> Any:
        """GET and parse JSON (see :meth:`request`); invalid JSON -> ``PayloadError`` after one retry."""
        return self._json("GET", url, ok=ok, idempotent=True, kwargs=kwargs)

    def post_json(
        self, url: str, *, ok: Collection[int] = (200,), idempotent: bool = False, **kwargs: Any
    ) -> Any:
        """POST and parse JSON (see :meth:`request`); invalid JSON -> ``PayloadError``, after one retry
        when the caller says the POST is ``idempotent`` (a read, or keyed so a repeat changes nothing)."""
        return self._json("POST", url, ok=ok, idempotent=idempotent, kwargs=kwargs)
