"""PayloadCmsHook: the ``od_payload_cms`` connection -> a PayloadCmsClient.

Connection (type ``od_payload_cms``, or ``http``): host = CMS base URL, password = API key, extra
``{"auth_collection": "users"}``. The connection test reads one dealer document.
"""

from __future__ import annotations

from od_scheduler import conn_ids
from od_scheduler.clients.payload_cms import PayloadCmsClient
from od_scheduler.hooks.http_base import OdHttpHook


class PayloadCmsHook(OdHttpHook):
    """Builds the PayloadCMS client for dealer configuration."""

    default_conn_name = conn_ids.PAYLOAD_CMS
    conn_type = "od_payload_cms"
    hook_name = "Open Dealer PayloadCMS"

    def get_client(self) -> PayloadCmsClient:
        """A configured client; the caller closes it (it is a context manager)."""
        return PayloadCmsClient(
            base_url=str(self.base_url()),
            api_key=self.secret(what="PayloadCMS API key"),
            auth_collection=str(self.extras.get("auth_collection", "users")),
            **self.client_kwargs(),
        )

    def probe(self) -> tuple[bool, str]:
        """One small authenticated read: the first dealer document."""
        with self.get_client() as client:
            return client.test_connection()
