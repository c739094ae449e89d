"""The one retry policy: which failures are worth retrying, how long to wait, when to give up.

:func:`retrying` and :func:`async_retrying` build a tenacity loop from a :class:`RetryPolicy` for the sync
client (:meth:`~od_scheduler.clients.http.BaseClient.request`) and the async Apify watcher alike. The
caller's attempt sends once and classifies the outcome: a success is returned, a permanent failure raised
as is, a transient one (:func:`is_transient`) raised as :class:`TransientFailure`. The loop then waits
``Retry-After`` when the upstream sends one (else capped exponential backoff with equal jitter), counts
retries and rate-limit waits, logs one redacted line per retry, and gives up with a
``TransientUpstreamError`` carrying the last failure, so Airflow's task retry takes over: when the attempts
run out, when the call's :class:`RetryBudget` is spent or the wait would not fit in it (the worker does not
sleep for Airflow), or at once when a request that is not idempotent may have reached the upstream
(:class:`AmbiguousRequestError`: repeating it could repeat its effect, so only the caller may decide).

No Airflow imports.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import tenacity

from od_scheduler.exceptions import TransientUpstreamError

logger = logging.getLogger(__name__)

#: Upper bound for a server's ``Retry-After``: a worker slot should not sleep longer than this in one go;
#: past it, the attempts run out and Airflow's task retry (which frees the slot) takes over.
MAX_RETRY_AFTER_S = 300.0
#: Methods whose requests can be repeated without repeating an effect (RFC 9110 §9.2.2); POST and PATCH
#: are retried after they may have reached the upstream only when the caller says they are idempotent.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: Failures after which a request certainly did not reach the upstream: no connection was made.
_NOT_SENT: tuple[type[BaseException], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: What :class:`AmbiguousRequestError` says by default.
NOT_RESENT = "Not re-sent: it may have reached the upstream, and the request is not idempotent."


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


def is_idempotent(method: str) -> bool:
    """Whether requests of ``method`` are idempotent by default (GET, HEAD, PUT, DELETE, ...; not POST)."""
    return method.upper() in IDEMPOTENT_METHODS


def maybe_processed(*, exc: BaseException | None = None, status_code: int | None = None) -> bool:
    """Whether a failed request may have reached the upstream and taken effect there.

    Only two failures prove it did not: no connection was ever made (connect error or timeout, no free
    connection in the pool), or the upstream refused it with 429. A timeout after sending, a broken
    connection, a 5xx or any other answer may come after the upstream acted on it.
    """
    if status_code is not None:
        return status_code != 429
    return not isinstance(exc, _NOT_SENT)


class TransientFailure(Exception):
    """One attempt failed in a way retrying can help; raised by an attempt inside :func:`retrying`'s loop.

    Its message says what happened (``HTTP 503``, ``ReadTimeout: ...``; redacted), ``retry_after`` is the
    upstream's ``Retry-After`` header as sent, ``processed`` whether the request may have taken effect
    (:func:`maybe_processed`). Raise it ``from`` the exception behind it: the final error is chained to it.
    Never escapes the loop.
    """

    def __init__(
        self,
        failure: str,
        *,
        status_code: int | None = None,
        retry_after: str | None = None,
        processed: bool = True,
    ) -> None:
        super().__init__(failure)
        self.status_code = status_code
        self.retry_after = retry_after
        self.processed = processed


class AmbiguousRequestError(TransientUpstreamError):
    """A request that is not idempotent failed after it may have reached the upstream: not re-sent.

    The message is ``what`` failed (``<service> POST <url>: <failure>``) and ``advice``, what it means;
    ``what`` is kept for callers that explain the consequence in their own words.
    """

    def __init__(self, what: str, *, status_code: int | None = None, advice: str = NOT_RESENT) -> None:
        super().__init__(f"{what}. {advice}", status_code=status_code)
        self.what = what


class RetryCounters(Protocol):
    """The counters a retry loop keeps (``RequestStats`` has them)."""

    retries: int
    rate_limits_hit: int
    rate_limit_wait_s: float


@dataclass(frozen=True)
class RetryBudget:
    """The time one retried call may take: until ``end`` on ``clock``; ``what`` names the bound in messages.

    Without a budget, a ``Retry-After`` is capped at :data:`MAX_RETRY_AFTER_S` and waited; with one, a wait
    longer than the time left (or than that cap) ends the call instead.
    """

    end: float
    what: str
    clock: Callable[[], float]

    def left(self) -> float:
        """Seconds left before ``end``."""
        return self.end - self.clock()


class _Rules:
    """The callbacks tenacity calls around one retried call: retry predicate, wait, stop, logging, errors.

    Tenacity computes the wait before it asks whether to stop, so the stop sees the wait it would take.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        label: str,
        counters: RetryCounters,
        idempotent: bool,
        budget: RetryBudget | None,
    ) -> None:
        self.policy = policy
        self.label = label
        self.counters = counters
        self.idempotent = idempotent
        self.budget = budget
        self._by_server = False  # the upcoming wait is the upstream's Retry-After
        self._give_up: TransientUpstreamError | None = None

    @staticmethod
    def _failure(state: tenacity.RetryCallState) -> TransientFailure:
        exc = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(exc, TransientFailure):  # the retry predicate lets only these through
            raise TypeError(f"expected a TransientFailure, got {exc!r}")
        return exc

    def after(self, state: tenacity.RetryCallState) -> None:
        if self._failure(state).status_code == 429:
            self.counters.rate_limits_hit += 1

    def wait(self, state: tenacity.RetryCallState) -> float:
        failure = self._failure(state)
        cap = None if self.budget is not None else MAX_RETRY_AFTER_S
        asked = parse_retry_after(failure.retry_after, cap=cap)
        self._by_server = asked is not None
        return asked if asked is not None else self.policy.backoff(state.attempt_number)

    def stop(self, state: tenacity.RetryCallState) -> bool:
        self._give_up = self._error(self._failure(state), state.attempt_number, state.upcoming_sleep)
        return self._give_up is not None

    def _error(self, failure: TransientFailure, attempt: int, wait: float) -> TransientUpstreamError | None:
        status, label = failure.status_code, self.label
        if not self.idempotent and failure.processed:
            return AmbiguousRequestError(f"{label}: {failure}", status_code=status)
        budget = self.budget
        left = budget.left() if budget is not None else math.inf
        if budget is not None and left <= 0:
            return TransientUpstreamError(
                f"{label} did not complete within {budget.what} ({attempt} attempt(s); last: {failure}). "
                "The upstream is too slow or stalls; Airflow's task retry tries again later.",
                status_code=status,
            )
        if attempt >= self.policy.max_attempts:
            return TransientUpstreamError(
                f"{label} still failing after {attempt} attempts (last: {failure}). "
                "The upstream is unavailable or rate limiting.",
                status_code=status,
            )
        if budget is not None and wait > min(left, MAX_RETRY_AFTER_S):
            asked = "Retry-After asks for" if self._by_server else "the backoff would wait"
            return TransientUpstreamError(
                f"{label}: {failure}; {asked} {wait:.0f}s, more than the {min(left, MAX_RETRY_AFTER_S):.0f}s "
                f"this request may still wait ({budget.what}). Not waiting in the worker: Airflow's "
                "task retry tries again later.",
                status_code=status,
            )
        return None

    def raise_error(self, state: tenacity.RetryCallState) -> Any:
        if self._give_up is None:  # tenacity calls this only after stop() said to stop
            raise RuntimeError("the retry loop stopped without a reason")
        raise self._give_up from self._failure(state).__cause__

    def before_sleep(self, state: tenacity.RetryCallState) -> None:
        failure, wait = self._failure(state), state.upcoming_sleep
        logger.warning(
            "%s: %s (attempt %d of %d); retrying in %.2fs%s",
            self.label,
            failure,
            state.attempt_number,
            self.policy.max_attempts,
            wait,
            " as Retry-After asks" if self._by_server else "",
        )
        self.counters.retries += 1
        if failure.status_code == 429:
            self.counters.rate_limit_wait_s += wait

    def options(self) -> dict[str, Any]:
        return {
            "retry": tenacity.retry_if_exception_type(TransientFailure),
            "after": self.after,
            "wait": self.wait,
            "stop": self.stop,
            "before_sleep": self.before_sleep,
            "retry_error_callback": self.raise_error,
        }


def retrying(
    policy: RetryPolicy,
    *,
    label: str,
    counters: RetryCounters,
    sleep: Callable[[float], None],
    idempotent: bool = True,
    budget: RetryBudget | None = None,
) -> tenacity.Retrying:
    """A sync tenacity loop for one call: ``for attempt in retrying(...): with attempt: return send()``.

    ``label`` names the call in every message (``<service> <METHOD> <redacted url>``); ``counters`` gets
    the retries and rate-limit waits; ``sleep`` is the caller's (injectable in tests).
    """
    rules = _Rules(policy, label=label, counters=counters, idempotent=idempotent, budget=budget)
    return tenacity.Retrying(sleep=lambda seconds: sleep(float(seconds)), **rules.options())


def async_retrying(
    policy: RetryPolicy,
    *,
    label: str,
    counters: RetryCounters,
    sleep: Callable[[float], Awaitable[None]],
    idempotent: bool = True,
    budget: RetryBudget | None = None,
) -> tenacity.AsyncRetrying:
    """:func:`retrying` for async code: ``async for attempt in async_retrying(...): with attempt: ...``."""
    rules = _Rules(policy, label=label, counters=counters, idempotent=idempotent, budget=budget)
    return tenacity.AsyncRetrying(sleep=lambda seconds: sleep(float(seconds)), **rules.options())
