"""HomenetHook: the ``od_soap_transformer`` connection -> a HomenetClient for one dealer.

Connection: host = the SOAP transformer's base URL, password = its bearer token, extra
``integration_token`` = the HomeNet integration token used for dealers whose CMS ``homenet_config`` has
none of its own (optional; ``timeout`` and ``max_attempts`` as for every HTTP connection). The dealer's own
token always wins: there is no global feed for everyone. Connection type ``od_homenet`` (or ``http``).

The transformer only serves rooftops, so the connection test asks for none: refused without the bearer
token, ``400`` (rooftop is required) with it. Integration tokens are per rooftop and are not tested.
"""

from __future__ import annotations

from od_scheduler.clients.auth import BearerAuth
from od_scheduler.clients.homenet import TRANSFORM_PATH, HomenetClient
from od_scheduler.clients.http import BaseClient
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.http_base import OdHttpHook
from od_scheduler.hooks.probe import auth_probe
from od_scheduler.models.homenet import SOURCE
from od_scheduler.platforms import HOMENET

#: The connection extra holding the fallback integration token.
INTEGRATION_TOKEN_EXTRA = "integration_token"  # noqa: S105 - a key name, not a secret


class HomenetHook(OdHttpHook):
    """Builds a HomeNet (SOAP transformer) client bound to one dealer's integration token."""

    default_conn_name = HOMENET.conn_id
    conn_type = HOMENET.connection_form.conn_type
    hook_name = HOMENET.connection_form.name

    def integration_token(self, dealer_token: str | None) -> tuple[str, str]:
        """``(token, where it came from)``: the dealer's own token, else the connection's extra."""
        if dealer_token and dealer_token.strip():
            return dealer_token.strip(), "the dealer's homenet_config"
        fallback = str(self.extras.get(INTEGRATION_TOKEN_EXTRA) or "").strip()
        if not fallback:
            raise ConfigError(
                f"no HomeNet integration token: the dealer's homenet_config has none and connection "
                f"{self.conn_id!r} has no extra {INTEGRATION_TOKEN_EXTRA!r}. "
                "Add the dealer's token in the CMS."
            )
        return fallback, f"connection {self.conn_id!r} extra {INTEGRATION_TOKEN_EXTRA!r}"

    def get_client(self, *, integration_token: str, credential_source: str) -> HomenetClient:
        """A client sending ``integration_token`` (see :meth:`integration_token`); the caller closes it."""
        return HomenetClient(
            base_url=str(self.base_url()),
            token=self.secret(what="SOAP transformer bearer token"),
            integration_token=integration_token,
            credential_source=credential_source,
            **self.client_kwargs(),
        )

    def probe(self) -> tuple[bool, str]:
        """The transform endpoint without a rooftop, with the bearer token only."""
        fallback = "set" if str(self.extras.get(INTEGRATION_TOKEN_EXTRA) or "").strip() else "not set"
        with BaseClient(
            base_url=str(self.base_url()),
            service=SOURCE,
            auth=BearerAuth(self.secret(what="SOAP transformer bearer token")),
            **self.client_kwargs(),
        ) as client:
            ok, message = auth_probe(
                self,
                client,
                "GET",
                TRANSFORM_PATH,
                name="the SOAP transformer",
                accepted=(400,),
                probe="a request without a rooftop",
                fix="the bearer token (the connection's password)",
            )
        return ok, f"{message} Fallback integration token (extra {INTEGRATION_TOKEN_EXTRA}): {fallback}."
