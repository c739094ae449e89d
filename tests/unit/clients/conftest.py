"""Fixtures for client tests: scripted HTTP fault sequences, a fake clock whose sleep advances time, and
a BaseClient on both."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from od_scheduler.clients.http import BaseClient
from od_scheduler.clients.retry import RetryPolicy

NO_JITTER = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=30.0, jitter=False)

Step = httpx.Response | type[Exception] | Callable[[httpx.Request], httpx.Response]


class Script:
    """An httpx handler that answers each request with the next scripted step and records the requests.

    A step is a response, a handler function, or an httpx exception class (raised for that request).
    """

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.steps:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        step = self.steps.pop(0)
        if isinstance(step, type) and issubclass(step, Exception):
            raise step(f"simulated {step.__name__}", request=request)  # type: ignore[call-arg]
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def json_bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(script: Script, clock: FakeClock, **kw: object) -> BaseClient:
    kw.setdefault("retry", NO_JITTER)
    return BaseClient(
        base_url="https://api.test",
        service="testapi",
        transport=script.transport,
        sleep=clock.sleep,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )
