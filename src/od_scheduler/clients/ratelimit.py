"""A token-bucket rate limit for one client's requests (no Airflow imports)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
