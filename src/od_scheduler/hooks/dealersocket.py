"""DealersocketHook: the ``od_dealersocket`` connection -> a DealersocketClient.

Connection (docs/contracts.md §6): host = the inventory API's base URL, password = the ``X-Api-Key`` value;
optional extras ``timeout`` and ``max_attempts``. Each dealer's ``dealer_code`` comes from its CMS config.
"""

from __future__ import annotations

from od_scheduler.clients.dealersocket import DealersocketClient, vehicles_path
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.hooks.probe import PROBE_ID, auth_probe
from od_scheduler.platforms import DEALERSOCKET


class DealersocketHook(OdHttpHook):
    """Builds the DealerSocket inventory client."""

    default_conn_name = DEALERSOCKET.conn_id
    conn_type = DEALERSOCKET.connection_form.conn_type
    hook_name = DEALERSOCKET.connection_form.name

    def get_client(self) -> DealersocketClient:
        """A configured client; the caller closes it."""
        return DealersocketClient(
            base_url=str(self.base_url()),
            api_key=self.secret(what="DealerSocket API key (sent as X-Api-Key)"),
            **self.client_kwargs(),
        )

    def probe(self) -> tuple[bool, str]:
        """Every path is a dealer's: page 1 of a dealer code no dealer has (401 without the key, 404 with)."""
        with self.get_client() as client:
            return auth_probe(
                self,
                client,
                "GET",
                vehicles_path(PROBE_ID),
                params={"page": 1},
                name="DealerSocket",
                accepted=(404,),
                probe=f"the unknown dealer code {PROBE_ID!r}",
                fix="the API key (the connection's password, sent as X-Api-Key)",
            )
