"""HomeNet inventory client, through the Open Dealer SOAP transformer (docs/contracts.md §2).

One request per rooftop: ``GET /v1/transform/homenet?rooftop=<id>[&updatedSince=<ISO-8601>]`` with the
transformer's bearer token (the connection's) and the dealer's own HomeNet integration token in
``X-HomeNet-Integration-Token``. The integration token is per dealer: the client is built for one
dealer's token, and both secrets are redacted from every line it logs and every error it raises.

Without ``updatedSince`` the answer is the whole rooftop (a full pull); with it, only the vehicles changed
since then (a partial pull, which must never delist anything). A body without a ``vehicles`` list, or one
that answers for another rooftop, is a ``PayloadError``. A 403 means HomeNet refused the integration token
for that rooftop: the error says which rooftop and where the token comes from, never the token.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from od_scheduler.clients.auth import BearerAuth
from od_scheduler.clients.http import BaseClient
from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.models.dealer import summarize_validation_error
from od_scheduler.models.homenet import SOURCE, HomenetVehicle

logger = logging.getLogger(__name__)

TRANSFORM_PATH = "/v1/transform/homenet"
INTEGRATION_HEADER = "X-HomeNet-Integration-Token"


def since_param(since: datetime) -> str:
    """``updatedSince`` as ISO-8601 UTC with a ``Z`` (a naive datetime is taken as UTC)."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since.astimezone(UTC).isoformat().replace("+00:00", "Z")


class HomenetClient(BaseClient):
    """Reads one dealer's HomeNet rooftop through the SOAP transformer, with that dealer's token.

    ``credential_source`` says where the integration token came from (for messages, e.g. ``"homenet_config"``
    or ``"connection extra integration_token"``).
    """

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        integration_token: str,
        credential_source: str = "the dealer's homenet_config",
        **kw: Any,
    ) -> None:
        if not integration_token:
            raise ConfigError("HomeNet needs an integration token (homenet_config or the connection extra)")
        kw.setdefault("service", SOURCE)
        super().__init__(
            base_url=base_url.rstrip("/"),
            auth=BearerAuth(token),
            headers={INTEGRATION_HEADER: integration_token},
            **kw,
        )
        self.redactor.add(integration_token)
        self.credential_source = credential_source

    def fetch_rooftop(
        self, rooftop_id: str, *, updated_since: datetime | None = None
    ) -> list[HomenetVehicle]:
        """Every vehicle of the rooftop (or only those changed since ``updated_since``), parsed."""
        params = {"rooftop": rooftop_id}
        if updated_since is not None:
            params["updatedSince"] = since_param(updated_since)
        where = f"homenet rooftop {rooftop_id!r}"
        try:
            body = self.get_json(TRANSFORM_PATH, params=params)
        except PermanentUpstreamError as err:
            if err.status_code == 403:
                raise PermanentUpstreamError(
                    f"{where}: HomeNet refused the integration token from {self.credential_source} for this "
                    "rooftop (HTTP 403). Check that the dealer's homenet_config holds its own, current "
                    "integration token.",
                    status_code=403,
                ) from err
            raise
        self.stats.pages += 1
        if not isinstance(body, dict):
            raise PayloadError(f"{where}: expected a JSON object, got {type(body).__name__}")
        vehicles = body.get("vehicles")
        if not isinstance(vehicles, list):
            keys = ", ".join(sorted(str(k) for k in body)[:10]) or "none"
            raise PayloadError(f"{where}: the response has no 'vehicles' list (keys: {keys})")
        answered = body.get("rooftop")
        if answered is not None and str(answered).strip() != rooftop_id:
            # Another rooftop's vehicles would be ingested for this dealer: refuse them all.
            raise PayloadError(f"{where}: the transformer answered for rooftop {str(answered)[:40]!r}")
        parsed = []
        for index, item in enumerate(vehicles):
            if not isinstance(item, dict):
                raise PayloadError(f"{where}: vehicle {index} is a {type(item).__name__}, not an object")
            try:
                parsed.append(HomenetVehicle.model_validate(item))
            except ValidationError as err:  # the model is tolerant; this means the format changed
                raise PayloadError(f"{where}: vehicle {index}: {summarize_validation_error(err)}") from err
        return parsed

    def iter_inventory(
        self, rooftop_id: str, *, updated_since: datetime | None = None
    ) -> Iterator[HomenetVehicle]:
        """The rooftop's vehicles, lazily, with one log line saying what was asked and what came back."""
        vehicles = self.fetch_rooftop(rooftop_id, updated_since=updated_since)
        logger.info(
            "homenet rooftop %s: %d vehicle(s) (%s), integration token from %s",
            rooftop_id,
            len(vehicles),
            f"changed since {since_param(updated_since)}" if updated_since else "full rooftop",
            self.credential_source,
        )
        yield from vehicles
