"""AlertWebhookHook: the ``od_alerts`` connection -> an AlertWebhookClient.

Connection: host = the webhook URL (e.g. a Slack incoming-webhook URL), password = optional bearer token;
extras ``timeout`` / ``max_attempts`` as for every HTTP connection of the project. The connection is
optional: without it, alerts are written to the task log at WARNING (see ``od_scheduler.notifications``).
"""

from __future__ import annotations

from typing import Any

import httpx

from od_scheduler import conn_ids
from od_scheduler.clients.alerts import AlertWebhookClient
from od_scheduler.hooks.http_base import OdHttpHook


class AlertWebhookHook(OdHttpHook):
    """Builds the alert webhook client."""

    default_conn_name = conn_ids.ALERTS
    hook_name = "Open Dealer alert webhook"

    def get_client(self, *, transport: httpx.BaseTransport | None = None) -> AlertWebhookClient:
        """A configured client; the caller closes it. ``transport`` is for tests."""
        return AlertWebhookClient(
            webhook_url=str(self.base_url()),
            token=self.connection.password or None,
            transport=transport,
            **self.client_kwargs(),
        )

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Label the UI form for this connection type."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"host": "Webhook URL", "password": "Bearer token (optional)"},
        }
