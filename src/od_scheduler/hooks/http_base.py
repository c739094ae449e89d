"""Shared Connection -> client plumbing for the project's HTTP upstreams.

A Connection of type ``http`` gives the base URL (``host`` as a full URL, or ``schema`` + ``host`` +
``port``), the secret in ``password``, and optional extras ``timeout`` (seconds), ``max_attempts``,
``deadline_s`` (overall bound of one request) and ``max_response_mb`` (largest body, raw and decoded).
Every secret of the connection is handed to the client's redactor, so it never reaches a log line, and
every secret the client registers (its own and those it derives: OAuth access tokens, Basic credentials)
goes to Airflow's ``mask_secret`` as well, so Airflow masks it in task logs too.
"""

from __future__ import annotations

import threading
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from od_scheduler.clients.base import RetryPolicy
from od_scheduler.exceptions import ConfigError
from od_scheduler.settings import get_settings


def metadata_db_connection(conn_id: str, not_found: Exception) -> Any:
    """Second lookup for processes where the Task SDK does not see metadata-DB connections.

    Inside tasks and the api-server ``BaseHook.get_connection`` sees every connection; a trigger run in
    line by ``airflow dags test`` (and other non-task processes) sees only environment and secrets-backend
    ones. There the core model's lookup, which includes the metadata database, is tried once; where even
    that is not allowed, the original "not found" stands.
    """
    try:
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)
    except Exception:
        raise not_found from None


#: Connection lookups go one at a time: the dealers of a shard look up from threads, and Airflow's lookup
#: through the task's supervisor is not made for concurrent callers everywhere (under ``airflow dags test``,
#: after a deferral, concurrent lookups failed as "isn't defined").
CONNECTION_LOOKUP_LOCK = threading.Lock()

SENSITIVE_EXTRA_KEYS = ("token", "api_key", "secret", "password", "integration_token", "client_secret")


class OdHttpHook(BaseHook):
    """Base for the project's HTTP hooks: resolves the connection once and builds client kwargs."""

    conn_name_attr = "conn_id"
    conn_type = "http"
    default_conn_name = ""
    hook_name = "Open Dealer HTTP upstream"

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self._conn: Any = None

    @property
    def connection(self) -> Any:
        """The Airflow Connection, fetched on first use (never at construction or parse time)."""
        if self._conn is None:
            with CONNECTION_LOOKUP_LOCK:
                try:
                    self._conn = self.get_connection(self.conn_id)
                except AirflowNotFoundException as err:
                    self._conn = metadata_db_connection(self.conn_id, err)
        return self._conn

    @property
    def extras(self) -> dict[str, Any]:
        """The connection's extra JSON as a dict."""
        return dict(self.connection.extra_dejson or {})

    def base_url(self, *, required: bool = True) -> str | None:
        """The upstream's base URL from the connection, without a trailing slash."""
        conn = self.connection
        host = (conn.host or "").strip()
        if not host:
            if required:
                raise ConfigError(
                    f"connection {self.conn_id!r} has no host: set it to the upstream's base URL"
                )
            return None
        if "://" not in host:
            schema = conn.schema or "https"
            host = f"{schema}://{host}" + (f":{conn.port}" if conn.port else "")
        return host.rstrip("/")

    def secret(self, *, what: str = "API key") -> str:
        """The connection's password (where every secret of ours lives), required."""
        password = self.connection.password
        if not password:
            raise ConfigError(f"connection {self.conn_id!r} has no password: put the {what} there")
        return str(password)

    def client_kwargs(self) -> dict[str, Any]:
        """Timeouts, retry policy and redaction shared by every client built from this connection."""
        settings = get_settings()
        extras = self.extras
        try:
            timeout = float(extras.get("timeout", settings.http_timeout_s))
            attempts = int(extras.get("max_attempts", settings.http_max_attempts))
            deadline = float(extras.get("deadline_s", settings.http_deadline_s))
            max_mb = float(extras.get("max_response_mb", settings.max_response_mb))
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"connection {self.conn_id!r}: extras timeout, max_attempts, deadline_s and max_response_mb "
                "must be numbers"
            ) from err
        if not (deadline > 0 and max_mb > 0):
            raise ConfigError(
                f"connection {self.conn_id!r}: extras deadline_s and max_response_mb must be > 0"
            )
        secrets = [self.connection.password or ""]
        secrets += [str(v) for k, v in extras.items() if any(s in k.lower() for s in SENSITIVE_EXTRA_KEYS)]
        return {
            "timeout": timeout,
            "retry": RetryPolicy(max_attempts=attempts, max_delay=settings.http_max_backoff_s),
            "secrets": [s for s in secrets if s],
            "conn_id": self.conn_id,
            "deadline_s": deadline,
            "max_response_bytes": max(1, int(max_mb * 1_000_000)),
            "on_secret": mask_secret,
        }
