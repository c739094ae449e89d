"""VinsolutionsHook: the ``od_vinsolutions`` connection -> a VinsolutionsClient.

Connection (docs/contracts.md §5): host = the gateway's base URL, login = OAuth2 client id, password = client
secret, extra ``token_url`` (the token endpoint) and ``api_key`` (sent on every inventory request);
optional extras ``timeout`` and ``max_attempts``. Each dealer's VinSolutions ``dealer_id`` comes from its CMS
config. Connection type ``od_vinsolutions`` (or ``http``).

The connection test gets an access token (the client id and secret) and lists inventory without a dealer id:
the gateway checks the token and the api_key first, then answers ``400`` (dealerId is required).
"""

from __future__ import annotations

from od_scheduler.clients.vinsolutions import INVENTORY_PATH, VinsolutionsClient
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.hooks.probe import auth_probe
from od_scheduler.platforms import VINSOLUTIONS


class VinsolutionsHook(OdHttpHook):
    """Builds the VinSolutions inventory client."""

    default_conn_name = VINSOLUTIONS.conn_id
    conn_type = VINSOLUTIONS.connection_form.conn_type
    hook_name = VINSOLUTIONS.connection_form.name
    # "token_url" looks like a secret's name to the generic rule; the URL is not secret, and error messages
    # should show it.
    public_extras = ("token_url",)

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
        return VinsolutionsClient(
            base_url=str(self.base_url()),
            client_id=client_id,
            client_secret=self.secret(what="OAuth2 client secret"),
            token_url=self._required_extra("token_url", "OAuth2 token endpoint URL"),
            api_key=self._required_extra("api_key", "VinSolutions API key"),
            **self.client_kwargs(),
        )

    def probe(self) -> tuple[bool, str]:
        """A token, then one inventory request without a dealer id."""
        with self.get_client() as client:
            return auth_probe(
                self,
                client,
                "GET",
                INVENTORY_PATH,
                params={"pageNumber": 1, "pageSize": 1},
                name="VinSolutions",
                accepted=(400,),
                probe="a request without a dealerId",
                fix="the client id and secret (login, password) and the extras token_url and api_key",
            )
