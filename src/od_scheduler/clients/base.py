"""The one HTTP client base: timeouts, auth, retry, rate limit, pagination, redaction and request stats.

Platform clients subclass :class:`BaseClient` and only describe endpoints and parse responses.

Retry. :meth:`BaseClient.request` retries transient failures (:func:`is_transient`: timeouts, connection
errors, 408/425/429/5xx) up to ``RetryPolicy.max_attempts`` attempts in total, waiting ``Retry-After``
when the upstream sends one, else capped exponential backoff with equal jitter; then it raises
``TransientUpstreamError`` so Airflow's task retry takes over. Anything else that is not an expected
status fails at once with ``PermanentUpstreamError``, whose message says what to check. The loop is
hand-written rather than built on tenacity: each attempt updates the stats, chooses between
``Retry-After`` and backoff, counts 429s and logs a redacted line, and the final error must carry the
last failure -- with tenacity that is four callbacks around a loop that is twenty lines here. POSTs are
retried too: every POST the project sends is idempotent (a read, or an ``Idempotency-Key``).

Invalid JSON. ``get_json`` / ``post_json`` retry a body that does not parse once (a proxy cutting a
chunked body or serving a maintenance page with 200 is usually transient), then raise ``PayloadError``
with a short redacted excerpt.

Bounds. Every call of :meth:`BaseClient.request` (all its attempts and waits together) ends within
``deadline_s``: each exchange's socket operations are capped by the time left, so a server dripping one
byte at a time cannot hold the worker (see :mod:`od_scheduler.clients.bounded`); a ``Retry-After`` or a
backoff longer than the time left fails at once with a retryable ``TransientUpstreamError`` (Airflow's task
retry, which frees the worker slot, waits instead). Bodies are streamed and capped at
``max_response_bytes``, raw and after decoding gzip/deflate (``BodyTooLarge``, a ``PayloadError``).

Redaction. Every secret handed to the client (``secrets=`` and the auth object's own, including values
derived at run time such as OAuth access tokens and Basic credentials) is replaced by ``***`` in every log
line and exception message the client writes, and in the ``httpx``/``httpcore`` loggers' records (a
filter installed on them); ``token=``/``api_key=``-style query parameters and URL user-info are masked
too. ``on_secret`` (the hooks pass Airflow's ``mask_secret``) is told of every secret registered.
Response bodies are never logged; an error quotes at most a short, redacted, single-line excerpt.

No Airflow imports: clients are usable and testable without Airflow.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Collection, Generator, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote, quote_plus

import httpx

from od_scheduler.clients.bounded import (
    ACCEPT_ENCODING,
    BoundedTransport,
    PeerCheck,
    current_work_budget,
    deadline_scope,
    network_transport,
)
from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError, TransientUpstreamError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Upper bound for a server's ``Retry-After``: a worker slot should not sleep longer than this in one go;
#: past it, the attempts run out and Airflow's task retry (which frees the slot) takes over.
MAX_RETRY_AFTER_S = 300.0
#: Characters of a response body quoted in an error message (redacted), never more.
EXCERPT_CHARS = 200
#: Default bound of one ``BaseClient.request`` call, attempts and waits included (setting http_deadline_s).
DEFAULT_DEADLINE_S = 300.0
#: Default cap of one response body, raw and decoded (setting max_response_mb).
DEFAULT_MAX_RESPONSE_BYTES = 50_000_000
#: Characters of an exception's own text (httpx, h11) quoted in an error message.
DETAIL_CHARS = 300
USER_AGENT = "od-scheduler (Open Dealer inventory scheduler)"


# --------------------------------------------------------------------------------------------------
# Stats
# --------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------
# Retry
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a request gets and how long to wait between them.

    ``max_attempts`` counts the first attempt (1 = never retry). The wait before retry ``n`` (1-based) is
    ``min(max_delay, base_delay * multiplier ** (n - 1))``, with equal jitter: half of it fixed, half
    random, so clients that failed together spread out but never retry immediately.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ValueError("base_delay and max_delay must be >= 0 and multiplier >= 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt is 1-based, got {attempt}")
        exponent = min(attempt - 1, 64)  # avoid float overflow on absurd attempt numbers
        delay = min(self.max_delay, self.base_delay * self.multiplier**exponent)
        if self.jitter:
            return delay / 2 + random.uniform(0, delay / 2)
        return delay


_TRANSIENT_STATUS = frozenset({408, 425, 429})
_TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,  # connect/read/write/pool timeouts
    httpx.NetworkError,  # connect/read/write/close errors
    httpx.RemoteProtocolError,  # server dropped the connection mid-response
    httpx.ProxyError,
    httpx.DecodingError,  # truncated/garbled compressed body
    TransientUpstreamError,
    TimeoutError,
    ConnectionError,
)


def is_transient(*, exc: BaseException | None = None, status_code: int | None = None) -> bool:
    """Whether retrying can help: timeouts, network errors, 408, 425, 429 and 5xx.

    401/403/404/422 and every other 4xx are permanent (the request itself is wrong), as is any
    exception not known to be transient (a bug must not be retried five times).
    """
    if status_code is not None:
        return status_code in _TRANSIENT_STATUS or 500 <= status_code <= 599
    if exc is not None:
        if isinstance(exc, httpx.HTTPStatusError):
            return is_transient(status_code=exc.response.status_code)
        return isinstance(exc, _TRANSIENT_EXCEPTIONS)
    return False


def parse_retry_after(
    value: str | None, *, now: datetime | None = None, cap: float | None = MAX_RETRY_AFTER_S
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    A date in the past means 0; an unparseable value means ``None`` (fall back to backoff); any value is
    capped at ``cap`` (default :data:`MAX_RETRY_AFTER_S`; ``None``: the server's value, for callers that
    compare it with their own budget).
    """
    limit = cap if cap is not None else float("inf")
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit() and text.isascii():
        return min(float(text[:12]) if len(text) <= 12 else 1e12, limit)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with unknown origin
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), limit)


# --------------------------------------------------------------------------------------------------
# Rate limit
# --------------------------------------------------------------------------------------------------
class TokenBucket:
    """Token-bucket rate limiter: at most ``rate`` requests per second, bursts up to ``capacity``.

    ``capacity`` defaults to 1 (evenly spaced requests, the polite choice for dealer sites). Thread-safe:
    a waiting caller reserves its token before sleeping, so concurrent callers queue up fairly.
    """

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate}")
        self.rate = float(rate)
        self.capacity = float(capacity) if capacity is not None else 1.0
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {self.capacity}")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is available. Returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0  # may go negative: a debt the next callers wait for
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait > 0:
            self._sleep(wait)
        return wait


# --------------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------------
_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:token|access_token|api_key|apikey|api-key|key|client_secret|secret|password)=)[^&#\s]*"
)
_URL_USERINFO = re.compile(r"(://)[^/@\s:]+:[^/@\s]*@")
REDACTED = "***"
MIN_SECRET_LENGTH = 4


class Redactor:
    """Replaces known secrets (and their URL-encoded forms) and secret-looking URL parts with ``***``.

    Secrets shorter than 4 characters are ignored: masking ``"1"`` would garble every number. Every
    secret added is also told to ``on_add`` (e.g. Airflow's ``mask_secret``) and to the process-wide
    filter on the ``httpx``/``httpcore`` loggers (:class:`HttpLogRedactor`).
    """

    def __init__(self, secrets: Iterable[str] = (), *, on_add: Callable[[str], None] | None = None) -> None:
        self._secrets: set[str] = set()
        self.on_add = on_add
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Register a secret (and its percent-encoded forms)."""
        if not secret or len(secret) < MIN_SECRET_LENGTH or secret in self._secrets:
            return
        forms = {secret, quote(secret, safe=""), quote_plus(secret)}
        self._secrets.update(forms)
        HTTP_LOG_REDACTOR.add(forms)
        if self.on_add is not None:
            self.on_add(secret)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret and secret query parameter masked."""
        return redact_text(text, self._secrets)


def redact_text(text: str, secrets: Collection[str]) -> str:
    """``text`` with ``secrets`` (longest first), secret query parameters and URL user-info masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _SECRET_PARAMS.sub(rf"\1{REDACTED}", text)
    return _URL_USERINFO.sub(rf"\1{REDACTED}@", text)


class HttpLogRedactor(logging.Filter):
    """Redacts the records of httpx's and httpcore's own loggers.

    httpx logs every request URL at INFO (``HTTP Request: POST https://hooks.slack.com/services/...``).
    Airflow's task logging lowers ``httpx`` to WARNING, but that is a deployment's logging config, not
    ours: ``airflow dags test``, other entry points and non-Airflow users of these clients log it. Rather
    than silencing a useful line everywhere, this filter rewrites each record with every secret any client
    of this process registered, plus the generic patterns (``token=`` parameters, URL user-info), masked.
    """

    #: Loggers it is installed on (filters on a logger do not apply to its children's records).
    LOGGERS = (
        "httpx",
        "httpcore",
        "httpcore.connection",
        "httpcore.http11",
        "httpcore.http2",
        "httpcore.proxy",
        "httpcore.socks",
    )

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secrets: Iterable[str]) -> None:
        """Mask ``secrets`` in every later record."""
        with self._lock:
            self._secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        with self._lock:
            secrets = tuple(self._secrets)
        redacted = redact_text(message, secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

    def install(self) -> None:
        """Attach to the httpx/httpcore loggers (idempotent)."""
        for name in self.LOGGERS:
            target = logging.getLogger(name)
            if self not in target.filters:
                target.addFilter(self)


HTTP_LOG_REDACTOR = HttpLogRedactor()
HTTP_LOG_REDACTOR.install()

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def excerpt(body: bytes | str, redactor: Redactor | None = None, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line, redacted excerpt of a response body for an error message.

    Control characters (NUL included: PostgreSQL text cannot hold it) become ``?``.
    """
    if isinstance(body, bytes):
        body = body[: limit * 10].decode("utf-8", errors="replace")
    text = " ".join(_CONTROL_CHARS.sub("?", body[: limit * 10]).split())
    if redactor is not None:
        text = redactor.redact(text)
    if not text:
        return "<empty body>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------------
# Auth
# --------------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------------
# Pagination
# --------------------------------------------------------------------------------------------------
class StopReason(StrEnum):
    """Why a paginator stopped. ``complete`` pulls end with the first three."""

    LAST_PAGE = "last_page"  # the response said there is no next page
    TOTAL_REACHED = "total_reached"  # offset reached the announced total
    EMPTY_PAGE = "empty_page"  # an empty page (complete only if the total was reached or unknown)
    NO_NEW_ITEMS = "no_new_items"  # a page's keyed items were all seen before: the upstream ignores paging
    MAX_PAGES = "max_pages"  # the page guard tripped


@dataclass(frozen=True)
class Page(Generic[T]):
    """What a fetch callback returns: the page's items, the announced total and whether more follow.

    ``has_next`` ``None`` means the upstream does not say (offset paging then relies on ``total``).
    """

    items: Sequence[T]
    total: int | None = None
    has_next: bool | None = None


@dataclass(frozen=True)
class FetchedPage(Generic[T]):
    """One page as the paginator saw it: ``items`` are only those with keys new to this paginator."""

    number: int
    offset: int
    returned: int
    items: list[T]
    total: int | None


class _Paginator(Generic[T]):
    """Shared loop state and guards; subclasses say how the next request is addressed."""

    def __init__(
        self,
        fetch: Callable[[int], Page[T]],
        *,
        key: Callable[[T], Hashable | None] | None = None,
        max_pages: int = 1000,
    ) -> None:
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages}")
        self._fetch = fetch
        self._key = key
        self.max_pages = max_pages
        self.pages = 0
        self.fetched = 0  # items the upstream returned, duplicates included
        self.items = 0  # items yielded
        self.duplicates = 0  # items dropped because their key was already yielded by this paginator
        self.total: int | None = None
        self.stop_reason: StopReason | None = None
        self._seen: set[Hashable] = set()

    @property
    def complete(self) -> bool:
        """True when the pagination ended because the upstream had no more, not because a guard tripped."""
        if self.stop_reason in (StopReason.LAST_PAGE, StopReason.TOTAL_REACHED):
            return True
        if self.stop_reason is StopReason.EMPTY_PAGE:
            return self.total is None or self.fetched >= self.total
        return False

    @property
    def note(self) -> str | None:
        """A sentence explaining an incomplete pagination, for the pull report; ``None`` when complete."""
        if self.complete or self.stop_reason is None:
            return None
        of_total = f"{self.items} of {self.total}" if self.total is not None else f"{self.items}"
        if self.stop_reason is StopReason.NO_NEW_ITEMS:
            return (
                f"page {self.pages} repeated only items already seen (the upstream ignores the paging "
                f"parameter); stopped after {of_total} items"
            )
        if self.stop_reason is StopReason.MAX_PAGES:
            return f"stopped at the {self.max_pages}-page limit after {of_total} items"
        return f"empty page after {of_total} items: the announced total was not reached"

    def _stop(self, reason: StopReason) -> None:
        self.stop_reason = reason

    def _take(self, page: Page[T], number: int, offset: int) -> FetchedPage[T] | None:
        """Account for one page; ``None`` when it ends the pagination without items to yield."""
        self.pages += 1
        if page.total is not None:
            self.total = page.total
        if not page.items:
            self._stop(StopReason.EMPTY_PAGE)
            return None
        self.fetched += len(page.items)
        if self._key is None:
            fresh = list(page.items)
        else:
            fresh = []
            new_keys = repeated_keys = 0
            for item in page.items:
                k = self._key(item)
                if k is None:
                    fresh.append(item)  # no key: cannot dedupe, and proves nothing either way
                elif k in self._seen:
                    repeated_keys += 1
                else:
                    self._seen.add(k)
                    new_keys += 1
                    fresh.append(item)
            if new_keys == 0 and repeated_keys > 0:
                self._stop(StopReason.NO_NEW_ITEMS)
                return None
            self.duplicates += repeated_keys
        self.items += len(fresh)
        return FetchedPage(
            number=number, offset=offset, returned=len(page.items), items=fresh, total=self.total
        )

    def iter_pages(self) -> Iterator[FetchedPage[T]]:
        """Fetch lazily and yield each page; ``stop_reason`` is set when the iterator ends."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.items


class PageNumberPaginator(_Paginator[T]):
    """``page=1, 2, ...`` while the response says there is a next page (``Page.has_next``).

    ``fetch(page_number)`` returns a :class:`Page`. Stops on ``has_next`` False, an empty page, a page
    of only known keys (when ``key`` is given) or ``max_pages``. With ``has_next`` unknown, it goes on
    until the announced total is reached or a page comes back empty.
    """

    def __init__(
        self,
        fetch: Callable[[int], Page[T]],
        *,
        first_page: int = 1,
        key: Callable[[T], Hashable | None] | None = None,
        max_pages: int = 1000,
    ) -> None:
        super().__init__(fetch, key=key, max_pages=max_pages)
        self.first_page = first_page

    def iter_pages(self) -> Iterator[FetchedPage[T]]:
        """Fetch lazily and yield each page; ``stop_reason`` is set when the iterator ends."""
        number = self.first_page
        while True:
            if self.pages >= self.max_pages:
                self._stop(StopReason.MAX_PAGES)
                return
            offset = self.fetched
            page = self._fetch(number)
            taken = self._take(page, number=number, offset=offset)
            if taken is None:
                return
            yield taken
            if page.has_next is False:
                self._stop(StopReason.LAST_PAGE)
                return
            if page.has_next is None and self.total is not None and self.fetched >= self.total:
                self._stop(StopReason.TOTAL_REACHED)
                return
            number += 1


class OffsetPaginator(_Paginator[T]):
    """``offset = 0, n1, n1 + n2, ...``: advances by the number of items actually returned.

    Advancing by what came back (not by what was asked) survives servers that cap the page size.
    ``fetch(offset)`` returns a :class:`Page`. Stops at the announced total, ``has_next`` False, an empty
    page, a page whose keyed items were all seen before (``key`` given: the server ignores the offset;
    items whose key is ``None`` are yielded but prove nothing) or ``max_pages``.
    """

    def __init__(
        self,
        fetch: Callable[[int], Page[T]],
        *,
        start: int = 0,
        key: Callable[[T], Hashable | None] | None = None,
        max_pages: int = 1000,
    ) -> None:
        super().__init__(fetch, key=key, max_pages=max_pages)
        self.start = start

    def iter_pages(self) -> Iterator[FetchedPage[T]]:
        """Fetch lazily and yield each page; ``stop_reason`` is set when the iterator ends."""
        offset = self.start
        while True:
            if self.pages >= self.max_pages:
                self._stop(StopReason.MAX_PAGES)
                return
            page = self._fetch(offset)
            taken = self._take(page, number=self.pages + 1, offset=offset)
            if taken is None:
                return
            yield taken
            offset += len(page.items)
            if page.has_next is False:
                self._stop(StopReason.LAST_PAGE)
                return
            if self.total is not None and offset >= self.total:
                self._stop(StopReason.TOTAL_REACHED)
                return


@dataclass
class SegmentReport:
    """One part of a pull (a Dealer.com segment, a feed, ...): what its pagination saw."""

    pages: int = 0
    items: int = 0  # yielded by this segment (new to the whole pull)
    duplicates: int = 0  # skipped: key already yielded (earlier in this part or in an earlier part)
    total_count: int | None = None  # as announced by the upstream, never summed across segments
    stop_reason: str | None = None
    complete: bool = True


@dataclass
class PullReport:
    """Whether a pull saw everything: ``complete`` is False when any part stopped on a guard.

    An incomplete pull still delivers what it got, but must be treated as partial (never delist from it).
    ``notes`` say why, one sentence per problem.
    """

    complete: bool = True
    notes: list[str] = field(default_factory=list)
    segments: dict[str, SegmentReport] = field(default_factory=dict)

    def record(
        self, name: str, paginator: _Paginator[Any], *, items: int, duplicates: int = 0
    ) -> SegmentReport:
        """Record one finished pagination under ``name``; marks the pull incomplete if it was.

        ``items`` is what the part contributed to the pull; ``duplicates`` what the caller dropped on top
        of the paginator's own duplicates (for example keys already yielded by an earlier part).
        """
        segment = SegmentReport(
            pages=paginator.pages,
            items=items,
            duplicates=duplicates + paginator.duplicates,
            total_count=paginator.total,
            stop_reason=paginator.stop_reason.value if paginator.stop_reason else None,
            complete=paginator.complete,
        )
        self.segments[name] = segment
        if not paginator.complete:
            self.complete = False
            self.notes.append(f"{name}: {paginator.note}")
        return segment

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form for XCom summaries and logs."""
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------------
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
        self, method: str, url: str, *, ok: Collection[int] = (200,), **kwargs: Any
    ) -> httpx.Response:
        """Send a request, retrying transient failures; return the response if its status is in ``ok``.

        ``kwargs`` go to ``httpx.Client.build_request`` (``params``, ``json``, ``headers``, ...).
        Raises ``TransientUpstreamError`` when the attempts or the ``deadline_s`` budget run out (a
        ``Retry-After`` or backoff longer than the time left included), ``PermanentUpstreamError`` at once
        for any other unexpected status, ``BodyTooLarge`` (a ``PayloadError``) for a body over the cap.
        """
        budget_s, bounded_by = self._budget(method, url)
        budget_end = self._clock() + budget_s
        attempt = 0
        while True:
            attempt += 1
            if self._bucket is not None:
                self.stats.rate_limit_wait_s += self._bucket.acquire()
            try:
                request = self._client.build_request(method, url, **kwargs)
            except httpx.InvalidURL as err:
                raise ConfigError(
                    f"{self.service}: invalid URL {self.redactor.redact(url)!r} ({err}). {self._hint(404)}"
                ) from err
            shown_url = self.redactor.redact(str(request.url))
            status: int | None = None
            retry_after: float | None = None
            cause: BaseException | None = None
            try:
                response = self.send_bounded(request, budget_end)
            except (httpx.HTTPError, TransientUpstreamError) as err:
                if not is_transient(exc=err):
                    failure = self._describe(err)
                    raise PermanentUpstreamError(
                        f"{self.service} {method} {shown_url} failed: {failure}. {self._hint(404)}"
                    ) from err
                failure = self._describe(err)
                cause = err
            else:
                self.stats.bytes_fetched += len(response.content)
                status = response.status_code
                if status in ok:
                    return response
                if status == 429:
                    self.stats.rate_limits_hit += 1
                if not is_transient(status_code=status):
                    raise self._permanent_error(method=method, url=shown_url, response=response)
                retry_after = parse_retry_after(response.headers.get("Retry-After"), cap=None)
                failure = f"HTTP {status}"

            left = budget_end - self._clock()
            if left <= 0:
                raise TransientUpstreamError(
                    f"{self.service} {method} {shown_url} did not complete within {bounded_by} "
                    f"({attempt} attempt(s); last: {failure}). The upstream is too slow or stalls; "
                    "Airflow's task retry tries again later.",
                    status_code=status,
                ) from cause
            if attempt >= self.retry.max_attempts:
                raise TransientUpstreamError(
                    f"{self.service} {method} {shown_url} still failing after {attempt} attempts "
                    f"(last: {failure}). The upstream is unavailable or rate limiting.",
                    status_code=status,
                ) from cause
            wait = retry_after if retry_after is not None else self.retry.backoff(attempt)
            if wait > min(left, MAX_RETRY_AFTER_S):
                asked = "Retry-After asks for" if retry_after is not None else "the backoff would wait"
                raise TransientUpstreamError(
                    f"{self.service} {method} {shown_url}: {failure}; {asked} {wait:.0f}s, more than the "
                    f"{min(left, MAX_RETRY_AFTER_S):.0f}s this request may still wait ({bounded_by}). "
                    "Not waiting in the worker: Airflow's task retry tries again later.",
                    status_code=status,
                ) from cause
            logger.warning(
                "%s %s %s: %s (attempt %d of %d); retrying in %.2fs%s",
                self.service,
                method,
                shown_url,
                failure,
                attempt,
                self.retry.max_attempts,
                wait,
                " as Retry-After asks" if retry_after is not None else "",
            )
            self.stats.retries += 1
            if status == 429:
                self.stats.rate_limit_wait_s += wait
            self._sleep(wait)

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

    def _json(self, method: str, url: str, *, ok: Collection[int], kwargs: dict[str, Any]) -> Any:
        for attempt in (1, 2):
            response = self.request(method, url, ok=ok, **kwargs)
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
                    f"(content-type {response.headers.get('Content-Type', '?')}): {body}"
                ) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, url: str, *, ok: Collection[int] = (200,), **kwargs: Any) -> Any:
        """GET and parse JSON (see :meth:`request`); invalid JSON -> ``PayloadError`` after one retry."""
        return self._json("GET", url, ok=ok, kwargs=kwargs)

    def post_json(self, url: str, *, ok: Collection[int] = (200,), **kwargs: Any) -> Any:
        """POST and parse JSON (see :meth:`request`); invalid JSON -> ``PayloadError`` after one retry."""
        return self._json("POST", url, ok=ok, kwargs=kwargs)
