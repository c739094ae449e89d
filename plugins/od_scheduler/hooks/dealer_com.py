"""DealerComHook: the ``od_dealer_com`` connection -> a DealerComClient for one dealer's site.

Dealer.com has no credentials: each dealer's ``base_url`` and ``site_id`` come from its CMS config. The
connection carries the politeness settings: extra ``requests_per_second`` (default from settings, 2),
``timeout`` and ``max_attempts``. It may have no host at all.
"""

from __future__ import annotations

from od_scheduler import conn_ids
from od_scheduler.clients.dealer_com import DealerComClient
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.settings import get_settings


class DealerComHook(OdHttpHook):
    """Builds a Dealer.com widget client for one dealer site."""

    default_conn_name = conn_ids.DEALER_COM
    hook_name = "Open Dealer Dealer.com"

    def requests_per_second(self) -> float:
        """Per-site request rate cap (CONTRACTS.md §3: be polite)."""
        raw = self.extras.get("requests_per_second", get_settings().dealer_com_requests_per_second)
        try:
            rate = float(raw)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"connection {self.conn_id!r}: requests_per_second must be a number") from err
        if rate <= 0:
            raise ConfigError(f"connection {self.conn_id!r}: requests_per_second must be > 0, got {rate}")
        return rate

    def get_client(self, base_url: str) -> DealerComClient:
        """A client for the dealer site at ``base_url``."""
        return DealerComClient(
            base_url=base_url.rstrip("/"),
            requests_per_second=self.requests_per_second(),
            **self.client_kwargs(),
        )
