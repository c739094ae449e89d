"""DataApiHook: the ``od_data_api`` connection -> a DataApiClient.

Connection: host = Data API base URL, password = API key (sent as ``X-API-Key``).
"""

from __future__ import annotations

from od_scheduler import conn_ids
from od_scheduler.clients.data_api import BATCH_PATH, DataApiClient
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.hooks.probe import auth_probe


class DataApiHook(OdHttpHook):
    """Builds the Open Dealer Data API ingestion client."""

    default_conn_name = conn_ids.DATA_API
    conn_type = "od_data_api"
    hook_name = "Open Dealer Data API"

    def get_client(self) -> DataApiClient:
        """A configured client; the caller closes it."""
        return DataApiClient(
            base_url=str(self.base_url()),
            api_key=self.secret(what="Data API key"),
            **self.client_kwargs(),
        )

    def probe(self) -> tuple[bool, str]:
        """Nothing to read: an empty batch, refused without the key (401), as invalid with it (400/422)."""
        with self.get_client() as client:
            return auth_probe(
                self,
                client,
                "POST",
                BATCH_PATH,
                json={},
                name="the Data API",
                accepted=(400, 422),
                probe="an empty batch, which applies nothing",
                fix="the API key (the connection's password)",
            )
