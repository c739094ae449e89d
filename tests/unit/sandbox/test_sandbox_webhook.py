"""The sandbox alert webhook: stores what it receives, lists it, forgets it on reset, and can be down."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.unit


def received(client: httpx.Client) -> list[dict]:
    return client.get("/_sandbox/webhook/alerts").json()["alerts"]


def test_messages_are_stored_in_order_and_answered_like_slack(client: httpx.Client) -> None:
    first = client.post("/webhook/alerts", json={"text": "one", "kind": "system"})
    client.post("/webhook/alerts", json={"text": "two", "kind": "freshness", "dealers": [{"dealer_id": "x"}]})
    assert (first.status_code, first.text) == (200, "ok")
    assert received(client) == [
        {"text": "one", "kind": "system"},
        {"text": "two", "kind": "freshness", "dealers": [{"dealer_id": "x"}]},
    ]
    log = client.get("/_sandbox/requests", params={"service": "webhook"}).json()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in log] == [("POST", "/webhook/alerts", 200)] * 2


def test_reset_forgets_the_messages(client: httpx.Client) -> None:
    client.post("/webhook/alerts", json={"text": "one"})
    client.post("/_sandbox/reset").raise_for_status()
    assert received(client) == []


def test_a_body_that_is_not_a_json_object_is_refused(client: httpx.Client) -> None:
    assert client.post("/webhook/alerts", content=b"not json").status_code == 400
    assert client.post("/webhook/alerts", json=["a", "list"]).status_code == 400
    assert received(client) == []


def test_the_webhook_can_be_made_to_fail(client: httpx.Client) -> None:
    client.put("/_sandbox/faults/webhook", json={"status_code": 503}).raise_for_status()
    assert client.post("/webhook/alerts", json={"text": "lost"}).status_code == 503
    client.delete("/_sandbox/faults/webhook").raise_for_status()
    assert client.post("/webhook/alerts", json={"text": "kept"}).status_code == 200
    assert received(client) == [{"text": "kept"}]
