"""A Data API on a loopback port whose answers a test scripts (real HTTP, the project's real client).

``scripted(batch=..., delist=...)`` (a fixture) points ``od_data_api`` at one for the rest of the test. An
unscripted batch is accepted whole; an unscripted delist delists everything it names.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Answer = Callable[[dict[str, Any]], dict[str, Any]]


def accept(body: dict[str, Any]) -> dict[str, Any]:
    """The answer of a Data API that applied the whole batch."""
    return {
        "success": True,
        "processed": len(body["vehicles"]),
        "dealer_id": body["dealer_id"],
        "source": body["source"],
        "errors": [],
    }


def delist_all(body: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "delisted": len(body["vins"])}


class ScriptedDataApi:
    """Records every batch body and its ``Idempotency-Key``, and every delist body.

    ``batch`` and ``delist`` may be replaced while it runs (a later run gets other answers).
    """

    def __init__(self, batch: Answer = accept, delist: Answer = delist_all) -> None:
        self.batch = batch
        self.delist = delist
        self.bodies: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.delists: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.endswith("/batch"):
                    api.bodies.append(body)
                    api.keys.append(self.headers["Idempotency-Key"])
                    reply = api.batch(body)
                else:
                    api.delists.append(body)
                    reply = api.delist(body)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, sandbox: str) -> Iterator[Callable[..., ScriptedDataApi]]:
    """Point ``od_data_api`` at a scripted Data API for the rest of the test."""
    servers: list[ScriptedDataApi] = []

    def start(*, batch: Answer = accept, delist: Answer = delist_all) -> ScriptedDataApi:
        api = ScriptedDataApi(batch, delist)
        servers.append(api)
        spec = {"conn_type": "http", "host": api.url, "password": "scripted-key"}
        monkeypatch.setenv("AIRFLOW_CONN_OD_DATA_API", json.dumps(spec))
        return api

    yield start
    for api in servers:
        api.close()
