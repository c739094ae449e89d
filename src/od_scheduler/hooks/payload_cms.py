"""PayloadCmsHook: the ``od_payload_cms`` connection -> a PayloadCmsClient.

Connection (type ``od_payload_cms``, or ``http``): host = CMS base URL, password = API key, extra
``{"auth_collection": "users"}``. The connection test reads one dealer document. Every task reads its
dealers through :meth:`PayloadCmsHook.read_dealers` or :meth:`PayloadCmsHook.get_dealers` (one client
per read, closed after it).
"""

from __future__ import annotations

from collections.abc import Sequence

from od_scheduler import conn_ids
from od_scheduler.clients.payload_cms import DealerListing, PayloadCmsClient
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.models.dealer import Dealer, InvalidDealer


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

    def read_dealers(self, *, platform: str | None, dealer_id: str | None = None) -> DealerListing:
        """The active dealers on ``platform`` (``None``: any platform), or only ``dealer_id``, read whole."""
        with self.get_client() as client:
            return DealerListing.of(client.iter_dealers(platform=platform, dealer_id=dealer_id), client.stats)

    def get_dealers(self, *, platform: str, dealer_ids: Sequence[str]) -> dict[str, Dealer | InvalidDealer]:
        """The current documents of the active ``platform`` dealers among ``dealer_ids``, by id."""
        with self.get_client() as client:
            return client.get_dealers(platform=platform, dealer_ids=dealer_ids)

    def probe(self) -> tuple[bool, str]:
        """One small authenticated read: the first dealer document."""
        with self.get_client() as client:
            return client.test_connection()
