"""DealersocketHook: the ``od_dealersocket`` connection -> a DealersocketClient.

Connection (CONTRACTS.md §6): host = the inventory API's base URL, password = the ``X-Api-Key`` value;
optional extras ``timeout`` and ``max_attempts``. Each dealer's ``dealer_code`` comes from its CMS config.
"""

from __future__ import annotations

from typing import Any

from od_scheduler import conn_ids
from od_scheduler.clients.dealersocket import DealersocketClient
from od_scheduler.hooks.http_base import OdHttpHook


class DealersocketHook(OdHttpHook):
    """Builds the DealerSocket inventory client."""

    default_conn_name = conn_ids.DEALERSOCKET
    hook_name = "Open Dealer DealerSocket"

    def get_client(self) -> DealersocketClient:
        """A configured client; the caller closes it."""
        return DealersocketClient(
            base_url=str(self.base_url()),
            api_key=self.secret(what="DealerSocket API key (sent as X-Api-Key)"),
            **self.client_kwargs(),
        )

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Label the UI form for this connection type."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"host": "Inventory API base URL", "password": "API key (X-Api-Key)"},
        }
