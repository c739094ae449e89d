"""The one retry policy: which failures are worth retrying, how long to wait, when to give up.

No Airflow imports.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from od_scheduler.exceptions import TransientUpstreamError

#: Upper bound for a server's ``Retry-After``: a worker slot should not sleep longer than this in one go;
#: past it, the attempts run out and Airflow's task retry (which frees the slot) takes over.
MAX_RETRY_AFTER_S = 300.0


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
