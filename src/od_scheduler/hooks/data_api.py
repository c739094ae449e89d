"""DataApiHook: the ``od_data_api`` connection -> a DataApiClient.

Connection: host = Data API base URL, password = API key (sent as ``X-API-Key``).
"""

from __future__ import annotations

from od_scheduler import conn_ids
from od_scheduler.clients.data_api import DataApiClient
from od_scheduler.hooks.http_base import OdHttpHook


class DataApiHook(OdHttpHook):
    """Builds the Open Dealer Data API ingestion client."""

    default_conn_name = conn_ids.DATA_API
    hook_name = "Open Dealer Data API"

    def get_client(self) -> DataApiClient:
        """A configured client; the caller closes it."""
        return DataApiClient(
            base_url=str(self.base_url()),
            api_key=self.secret(what="Data API key"),
            **self.client_kwargs(),
        )
