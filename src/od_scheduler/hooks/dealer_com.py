"""DealerComHook: the ``od_dealer_com`` connection -> a DealerComClient for one dealer's site.

Dealer.com has no credentials: each dealer's ``base_url`` and ``site_id`` come from its CMS config. The
connection carries the politeness settings: extra ``requests_per_second`` (default from settings, 2),
``timeout`` and ``max_attempts``. It may have no host at all. Connection type ``od_dealer_com`` (or
``http``). With nothing to call, the connection test checks these settings and says so.

The ``base_url`` comes from the CMS, so it is checked before the client is built
(:func:`~od_scheduler.clients.url_guard.check_base_url`: https, no user-info/query/fragment, public
addresses only unless allowlisted in ``[od_scheduler] url_allowlist``), and every connection the client
opens is checked again against the address really reached.
"""

from __future__ import annotations

from od_scheduler.clients.dealer_com import DealerComClient
from od_scheduler.clients.url_guard import Resolver, check_base_url, peer_checker
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.platforms import DEALER_COM
from od_scheduler.settings import get_settings

BASE_URL_FIELD = "dealer_com_config.base_url"


class DealerComHook(OdHttpHook):
    """Builds a Dealer.com widget client for one dealer site."""

    default_conn_name = DEALER_COM.conn_id
    conn_type = DEALER_COM.connection_form.conn_type
    hook_name = DEALER_COM.connection_form.name

    def requests_per_second(self) -> float:
        """Per-site request rate cap (docs/contracts.md §3: be polite)."""
        raw = self.extras.get("requests_per_second", get_settings().dealer_com_requests_per_second)
        try:
            rate = float(raw)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"connection {self.conn_id!r}: requests_per_second must be a number") from err
        if rate <= 0:
            raise ConfigError(f"connection {self.conn_id!r}: requests_per_second must be > 0, got {rate}")
        return rate

    def probe(self) -> tuple[bool, str]:
        """No request: Dealer.com needs no credentials and each dealer's site comes from the CMS."""
        rate = self.requests_per_second()
        self.client_kwargs()  # the shared extras must be valid numbers too
        return True, (
            f"Dealer.com needs no credentials and has no fixed host (each dealer's site comes from the CMS), "
            f"so nothing was sent. The settings are valid: {rate:g} requests per second per site."
        )

    def get_client(
        self, base_url: str, *, dealer: Dealer | str | None = None, resolver: Resolver | None = None
    ) -> DealerComClient:
        """A client for the dealer site at ``base_url`` (from ``dealer``'s CMS config), checked first.

        Raises ``ConfigError`` naming the dealer and the field for a URL that is refused; nothing is sent.
        ``resolver`` (``socket.getaddrinfo``'s signature) is for tests.
        """
        who = dealer.described if isinstance(dealer, Dealer) else dealer or "(unnamed)"
        allowlist = get_settings().url_allowlist
        checked = check_base_url(
            base_url,
            dealer=who,
            field=BASE_URL_FIELD,
            allowlist=allowlist,
            **({"resolver": resolver} if resolver is not None else {}),
        )
        return DealerComClient(
            base_url=checked,
            requests_per_second=self.requests_per_second(),
            peer_check=peer_checker(dealer=who, field=BASE_URL_FIELD, allowlist=allowlist),
            **self.client_kwargs(),
        )
