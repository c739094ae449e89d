"""VinsolutionsHook: the ``od_vinsolutions`` connection -> a VinsolutionsClient.

Connection (CONTRACTS.md §5): host = the gateway's base URL, login = OAuth2 client id, password = client
secret, extra ``token_url`` (the token endpoint) and ``api_key`` (sent on every inventory request);
optional extras ``timeout`` and ``max_attempts``. Each dealer's VinSolutions ``dealer_id`` comes from its CMS
config.
"""

from __future__ import annotations

from typing import Any

from od_scheduler import conn_ids
from od_scheduler.clients.vinsolutions import VinsolutionsClient
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.http_base import OdHttpHook


class VinsolutionsHook(OdHttpHook):
    """Builds the VinSolutions inventory client."""

    default_conn_name = conn_ids.VINSOLUTIONS
    hook_name = "Open Dealer VinSolutions"

    def _required_extra(self, key: str, what: str) -> str:
        value = str(self.extras.get(key) or "").strip()
        if not value:
            raise ConfigError(f"connection {self.conn_id!r} has no extra {key!r}: put the {what} there")
        return value

    def get_client(self) -> VinsolutionsClient:
        """A configured client; the caller closes it."""
        client_id = (self.connection.login or "").strip()
        if not client_id:
            raise ConfigError(f"connection {self.conn_id!r} has no login: put the OAuth2 client id there")
        token_url = self._required_extra("token_url", "OAuth2 token endpoint URL")
        kwargs = self.client_kwargs()
        # "token_url" looks like a secret's name to the generic rule; the URL is not secret, and
        # error messages should show it.
        kwargs["secrets"] = [s for s in kwargs["secrets"] if s != token_url]
        return VinsolutionsClient(
            base_url=str(self.base_url()),
            client_id=client_id,
            client_secret=self.secret(what="OAuth2 client secret"),
            token_url=token_url,
            api_key=self._required_extra("api_key", "VinSolutions API key"),
            **kwargs,
        )

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Label the UI form for this connection type."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {
                "host": "Gateway base URL",
                "login": "OAuth2 client id",
                "password": "Client secret",
            },
            "placeholders": {"extra": '{"token_url": "https://.../oauth/token", "api_key": "..."}'},
        }
