"""The alert webhook (what the ``od_alerts`` connection points at), served under ``/webhook``.

- ``POST /webhook/alerts``: a JSON object (a Slack incoming-webhook message: ``text`` plus any fields) →
  ``200 ok`` (plain text, as Slack answers) and the body is stored; a body that is not a JSON object → 400.
  No auth, like a Slack webhook URL. Fault target ``webhook`` (e.g. ``{"status_code": 503}``: the webhook is
  down); a faulted request stores nothing.
- ``GET /_sandbox/webhook/alerts`` → ``{"alerts": [body, ...]}`` oldest first; ``POST /_sandbox/reset``
  forgets them.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from include.sandbox.http import arrive, json_response
from include.sandbox.state import SandboxState

PREFIX = "/webhook"
TARGET = "webhook"


def build_router(state: SandboxState) -> APIRouter:
    """The webhook endpoint and its control listing, bound to ``state``."""
    router = APIRouter(tags=["webhook"])

    @router.post(f"{PREFIX}/alerts")
    async def receive(request: Request) -> Response:
        exchange = state.begin(request, TARGET)
        decision = await arrive(state, TARGET)
        if decision.fails:
            response = json_response(
                {"error": decision.error_message(TARGET)}, decision.status_code or 500, decision.headers()
            )
        else:
            try:
                body = json.loads(await request.body())
            except ValueError:
                body = None
            if isinstance(body, dict):
                state.webhook_alerts.append(body)
                exchange.detail = {"kind": body.get("kind"), "conditions": body.get("conditions")}
                response = Response(content=b"ok", media_type="text/plain")
            else:
                response = json_response({"error": "the body must be a JSON object"}, 400)
        state.finish(exchange, response.status_code)
        return response

    @router.get("/_sandbox/webhook/alerts")
    async def received() -> dict[str, Any]:
        return {"alerts": list(state.webhook_alerts)}

    return router
