"""Response helpers shared by the sandbox services: compact JSON, fault application, truncation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import Response

from include.sandbox.faults import FaultDecision
from include.sandbox.state import SandboxState


def dumps(body: Any) -> bytes:
    """Compact, order-preserving JSON: the same data always gives the same bytes."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=dumps(body), status_code=status, headers=headers, media_type="application/json")


def truncated_json_response(body: Any) -> Response:
    """A 200 whose JSON body is cut in half: what a proxy dropping the connection mid-body leaves."""
    raw = dumps(body)
    return Response(content=raw[: max(len(raw) // 2, 1)], status_code=200, media_type="application/json")


async def arrive(state: SandboxState, target: str) -> FaultDecision:
    """Count a request for ``target``, wait out its latency, and return the fault decision."""
    decision = state.decide(target)
    if decision.latency_s:
        await asyncio.sleep(decision.latency_s)
    return decision
