"""Shared Connection -> client plumbing for the project's HTTP upstreams.

A Connection of type ``http`` gives the base URL (``host`` as a full URL, or ``schema`` + ``host`` +
``port``), the secret in ``password``, and optional extras ``timeout`` (seconds) and ``max_attempts``.
Every secret of the connection is handed to the client's redactor, so it never reaches a log line.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from od_scheduler.clients.base import RetryPolicy
from od_scheduler.exceptions import ConfigError
from od_scheduler.settings import get_settings

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
            self._conn = self.get_connection(self.conn_id)
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
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"connection {self.conn_id!r}: extra timeout/max_attempts must be numbers"
            ) from err
        secrets = [self.connection.password or ""]
        secrets += [str(v) for k, v in extras.items() if any(s in k.lower() for s in SENSITIVE_EXTRA_KEYS)]
        return {
            "timeout": timeout,
            "retry": RetryPolicy(max_attempts=attempts, max_delay=settings.http_max_backoff_s),
            "secrets": [s for s in secrets if s],
            "conn_id": self.conn_id,
        }
