"""CobaltHook: the ``od_cobalt`` connection -> a CobaltClient.

Connection: host = the feed server's base URL, login + password = its HTTP Basic credentials (optional
extras ``timeout`` and ``max_attempts``). Each dealer's ``dealer_code`` comes from its CMS config.
"""

from __future__ import annotations

from od_scheduler.clients.cobalt import CobaltClient, feed_path
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.hooks.probe import PROBE_ID, auth_probe
from od_scheduler.platforms import COBALT


class CobaltHook(OdHttpHook):
    """Builds the Cobalt inventory-feed client."""

    default_conn_name = COBALT.conn_id
    conn_type = COBALT.connection_form.conn_type
    hook_name = COBALT.connection_form.name

    def get_client(self) -> CobaltClient:
        """A configured client; the caller closes it."""
        login = (self.connection.login or "").strip()
        if not login:
            raise ConfigError(
                f"connection {self.conn_id!r} has no login: put the feed's Basic-auth user there"
            )
        return CobaltClient(
            base_url=str(self.base_url()),
            login=login,
            password=self.secret(what="feed's Basic-auth password"),
            **self.client_kwargs(),
        )

    def probe(self) -> tuple[bool, str]:
        """Every feed is a dealer's: that of a code no dealer has (401 without credentials, 404 with)."""
        with self.get_client() as client:
            return auth_probe(
                self,
                client,
                "GET",
                feed_path(PROBE_ID),
                name="Cobalt",
                accepted=(404,),
                probe=f"the unknown dealer code {PROBE_ID!r}",
                fix="the Basic-auth user and password (the connection's login and password)",
            )
