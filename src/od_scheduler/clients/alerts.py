"""Alert webhook client: posts one JSON alert to a webhook URL (a Slack incoming webhook or any receiver).

The URL (its path and query) is treated as a secret (a Slack webhook URL is its own credential), so logs,
errors and httpx's own request log show only the scheme and host; the hook also hands it to Airflow's
``mask_secret``. An optional token is sent as ``Authorization: Bearer <token>``. Retries,
timeouts and redaction are the base client's. Posting an alert is not idempotent (a repeat is a second
message), so a POST that may have reached the receiver (a timeout after sending, a 5xx) is not re-sent:
the notifier logs it and the alert is owed to the next check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from od_scheduler.clients.auth import BearerAuth
from od_scheduler.clients.http import BaseClient
from od_scheduler.exceptions import ConfigError

#: Statuses a webhook answers an accepted message with (Slack: 200 "ok").
ACCEPTED = (200, 201, 202, 204)


class AlertWebhookClient(BaseClient):
    """Posts alert payloads to one webhook URL."""

    def __init__(self, *, webhook_url: str, token: str | None = None, **kw: Any) -> None:
        parts = urlsplit(webhook_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                "the alert webhook URL must be an absolute http(s) URL (the od_alerts connection's host)"
            )
        kw.setdefault("service", "alerts_webhook")
        path = parts.path.strip("/")
        secrets = [
            *kw.pop("secrets", ()),
            webhook_url,
            *([path] if path else []),
            *([parts.query] if parts.query else []),
        ]
        super().__init__(
            base_url=f"{parts.scheme}://{parts.netloc}",
            auth=BearerAuth(token) if token else None,
            secrets=secrets,
            **kw,
        )
        self.webhook_url = webhook_url

    def post_alert(self, payload: dict[str, Any]) -> int:
        """POST ``payload`` as JSON; returns the HTTP status (raises the base client's errors otherwise).

        Not idempotent: retried only when the receiver certainly did not get it (no connection, a 429).
        """
        return self.request("POST", self.webhook_url, json=payload, ok=ACCEPTED, idempotent=False).status_code
