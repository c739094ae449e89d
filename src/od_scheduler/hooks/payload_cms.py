"""PayloadCmsHook: the ``od_payload_cms`` connection -> a PayloadCmsClient.

Connection: host = CMS base URL, password = API key, extra ``{"auth_collection": "users"}``.
"""

from __future__ import annotations

from typing import Any

from od_scheduler import conn_ids
from od_scheduler.clients.payload_cms import PayloadCmsClient
from od_scheduler.hooks.http_base import OdHttpHook


class PayloadCmsHook(OdHttpHook):
    """Builds the PayloadCMS client for dealer configuration."""

    default_conn_name = conn_ids.PAYLOAD_CMS
    hook_name = "Open Dealer PayloadCMS"

    def get_client(self) -> PayloadCmsClient:
        """A configured client; the caller closes it (it is a context manager)."""
        return PayloadCmsClient(
            base_url=str(self.base_url()),
            api_key=self.secret(what="PayloadCMS API key"),
            auth_collection=str(self.extras.get("auth_collection", "users")),
            **self.client_kwargs(),
        )

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's "Test" button: one small authenticated read."""
        with self.get_client() as client:
            return client.test_connection()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Label the UI form for this connection type."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"host": "CMS base URL", "password": "API key"},
        }
