"""Fault profiles: what a target (a dealer's site, the CMS, the Data API) does wrong, and when.

Deterministic by construction: faults fire on request counters, never on random draws, so a test
that makes the same requests sees the same failures. Each target has its own counter; it starts at
zero on ``POST /_sandbox/reset`` and whenever the target's profile is replaced or restored.

Trigger rules for request number ``n`` (1-based) of a target:

- ``every_nth: k``            request ``n`` fails when ``n % k == 0``       (default status 503)
- ``first_n_of_every: [k, m]`` request ``n`` fails when ``(n - 1) % m < k``  (default status 429)
- ``status_code`` alone        every request fails with it
- ``malformed_first_n: k``     requests ``1..k`` that did not fail get 200 with a truncated JSON body
- ``latency_s``                every request is delayed by this many seconds
- ``ignore_page_start``        (Dealer.com) ``pageStart`` is ignored: the first page every time
- ``token_expires_after: k``   (VinSolutions) a bearer token that already served ``k`` of the dealer's
  inventory requests is refused with 401 ``invalid_token`` (it expires mid-pagination)
- ``hostile_xml``              (DealerSocket) every page is a hostile document: ``billion_laughs``
  (nested entity expansion) or ``xxe`` (an external entity reading ``file:///etc/passwd``)
- ``retry_after``              ``Retry-After`` value on failed responses; ``retry_after_format``
  ``seconds`` sends it as is, ``http-date`` converts the seconds into an HTTP-date, ``alternate``
  switches between the two on successive failures (first seconds, then date).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FaultProfile(BaseModel):
    """A target's misbehaviour. All fields optional; an empty profile is a clean target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status_code: int | None = Field(default=None, ge=400, le=599)
    every_nth: int | None = Field(default=None, ge=1)
    first_n_of_every: tuple[int, int] | None = None
    retry_after: str | None = None
    retry_after_format: Literal["seconds", "http-date", "alternate"] = "seconds"
    latency_s: float = Field(default=0.0, ge=0.0, le=30.0)
    malformed_first_n: int = Field(default=0, ge=0)
    ignore_page_start: bool = False
    token_expires_after: int | None = Field(default=None, ge=1)
    hostile_xml: Literal["billion_laughs", "xxe"] | None = None

    @model_validator(mode="after")
    def _check(self) -> FaultProfile:
        if self.first_n_of_every is not None:
            burst, window = self.first_n_of_every
            if not 0 < burst <= window:
                raise ValueError("first_n_of_every must be [n, m] with 0 < n <= m")
        if self.retry_after_format != "seconds" and not (self.retry_after or "").isdigit():
            raise ValueError("retry_after must be whole seconds when retry_after_format is not 'seconds'")
        return self

    def describe(self) -> str:
        """One line for the README-style dealer listing."""
        parts: list[str] = []
        if self.every_nth:
            parts.append(f"every {_ordinal(self.every_nth)} request -> {self.failure_status()}")
        if self.first_n_of_every:
            burst, window = self.first_n_of_every
            parts.append(f"first {burst} of every {window} requests -> {self.failure_status()}")
        if self.status_code and not (self.every_nth or self.first_n_of_every):
            parts.append(f"every request -> {self.status_code}")
        if self.retry_after:
            parts.append(f"Retry-After {self.retry_after} ({self.retry_after_format})")
        if self.latency_s:
            parts.append(f"{self.latency_s:g}s latency")
        if self.malformed_first_n:
            parts.append(f"truncated JSON on the first {self.malformed_first_n} request(s)")
        if self.ignore_page_start:
            parts.append("ignores pageStart")
        if self.token_expires_after:
            parts.append(f"tokens expire after {self.token_expires_after} request(s)")
        if self.hostile_xml:
            parts.append(f"hostile XML ({self.hostile_xml})")
        return "; ".join(parts) or "clean"

    def failure_status(self) -> int:
        """The status a fired failure answers with."""
        if self.status_code is not None:
            return self.status_code
        if self.every_nth is not None:
            return 503
        if self.first_n_of_every is not None:
            return 429
        return 500

    def fails(self, n: int) -> bool:
        """Whether request number ``n`` (1-based) of the target fails."""
        if self.every_nth is not None and n % self.every_nth == 0:
            return True
        if self.first_n_of_every is not None:
            burst, window = self.first_n_of_every
            if (n - 1) % window < burst:
                return True
        return self.status_code is not None and self.every_nth is None and self.first_n_of_every is None


CLEAN = FaultProfile()


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request, decided when it arrives."""

    request_number: int
    latency_s: float
    status_code: int | None = None
    retry_after: str | None = None
    malformed: bool = False

    @property
    def fails(self) -> bool:
        return self.status_code is not None

    def error_message(self, target: str) -> str:
        phrase = HTTPStatus(self.status_code).phrase if self.status_code else "OK"
        return f"{phrase} (sandbox fault on {target}, request #{self.request_number})"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": self.retry_after} if self.retry_after else {}


class FaultCounters:
    """Per-target request and failure counters; the only mutable part of fault injection."""

    def __init__(self) -> None:
        self._requests: dict[str, int] = {}
        self._failures: dict[str, int] = {}

    def reset(self, target: str | None = None) -> None:
        if target is None:
            self._requests.clear()
            self._failures.clear()
        else:
            self._requests.pop(target, None)
            self._failures.pop(target, None)

    def requests(self, target: str) -> int:
        return self._requests.get(target, 0)

    def decide(self, target: str, profile: FaultProfile) -> FaultDecision:
        """Count one request for ``target`` and decide its fate under ``profile``."""
        n = self._requests.get(target, 0) + 1
        self._requests[target] = n
        if profile.fails(n):
            failure_index = self._failures.get(target, 0)
            self._failures[target] = failure_index + 1
            return FaultDecision(
                request_number=n,
                latency_s=profile.latency_s,
                status_code=profile.failure_status(),
                retry_after=_retry_after(profile, failure_index),
            )
        return FaultDecision(
            request_number=n, latency_s=profile.latency_s, malformed=n <= profile.malformed_first_n
        )


def _retry_after(profile: FaultProfile, failure_index: int) -> str | None:
    if profile.retry_after is None:
        return None
    as_date = profile.retry_after_format == "http-date" or (
        profile.retry_after_format == "alternate" and failure_index % 2 == 1
    )
    if not as_date:
        return profile.retry_after
    # An HTTP-date has whole-second resolution: round up so the wait is never shorter than asked.
    return formatdate(math.floor(time.time()) + int(profile.retry_after) + 1, usegmt=True)


def _ordinal(n: int) -> str:
    """2 -> '2nd', 3 -> '3rd', 4 -> '4th', 11 -> '11th', 21 -> '21st'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
