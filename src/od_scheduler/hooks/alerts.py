"""AlertWebhookHook: the ``od_alerts`` connection -> an AlertWebhookClient.

Connection: host = the webhook URL (e.g. a Slack incoming-webhook URL), password = optional bearer token;
extras ``timeout`` / ``max_attempts`` as for every HTTP connection of the project. The connection is
optional: without it, alerts are written to the task log at WARNING (see ``od_scheduler.notifications``).
Connection type ``od_alerts`` (or ``http``).

A webhook can only be tested by posting to it: the connection test sends one message that says it is a test.
"""

from __future__ import annotations

import httpx

from od_scheduler import conn_ids
from od_scheduler.clients.alerts import AlertWebhookClient
from od_scheduler.hooks.http_base import OdHttpHook

#: What the connection test posts to the webhook.
TEST_MESSAGE = "Open Dealer scheduler: a connection test from Airflow. No action is needed."


class AlertWebhookHook(OdHttpHook):
    """Builds the alert webhook client."""

    default_conn_name = conn_ids.ALERTS
    conn_type = "od_alerts"
    hook_name = "Open Dealer alert webhook"

    def get_client(self, *, transport: httpx.BaseTransport | None = None) -> AlertWebhookClient:
        """A configured client; the caller closes it. ``transport`` is for tests."""
        return AlertWebhookClient(
            webhook_url=str(self.base_url()),
            token=self.connection.password or None,
            transport=transport,
            **self.client_kwargs(),
        )

    def probe(self) -> tuple[bool, str]:
        """Post one message that says it is a connection test."""
        with self.get_client() as client:
            status = client.post_alert({"text": TEST_MESSAGE, "kind": "connection_test"})
        return True, f"The alert webhook accepted a test message (HTTP {status})."
