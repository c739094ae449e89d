"""``create_app``: one FastAPI app serving every sandboxed upstream under its own path prefix.

| prefix                      | upstream                                          |
|-----------------------------|---------------------------------------------------|
| ``/cms``                    | PayloadCMS ``dealers`` collection (CONTRACTS §1)  |
| ``/dealer-com/<slug>``      | one Dealer.com site per dealer (CONTRACTS §3)     |
| ``/homenet``                | HomeNet through the SOAP transformer (§2)         |
| ``/cobalt``                 | Cobalt inventory feeds, CSV (CONTRACTS §7)        |
| ``/data-api``               | Open Dealer Data API ingestion (CONTRACTS §8)     |
| ``/webhook``                | the alert webhook (od_alerts), records messages   |
| ``/_sandbox``               | control API for tests and the demo                |

Every base URL the sandbox hands out is built from the request's own host:port, so the app works
on any port and in-process (``httpx.ASGITransport``, ``fastapi.testclient.TestClient``).
"""

from __future__ import annotations

from fastapi import FastAPI

from include.sandbox import cms, control, data_api, webhook
from include.sandbox.config import SandboxConfig
from include.sandbox.platforms import PLATFORMS
from include.sandbox.state import SandboxState


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    """A fresh sandbox with its own in-memory state (``app.state.sandbox``)."""
    state = SandboxState(config or SandboxConfig())
    app = FastAPI(
        title="Open Dealer upstream sandbox",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    app.include_router(control.build_router(state))
    app.include_router(cms.build_router(state))
    app.include_router(data_api.build_router(state))
    app.include_router(webhook.build_router(state))
    for platform in PLATFORMS.values():
        app.include_router(platform.router(state))
    return app
