"""Shared Connection -> client plumbing for the project's HTTP upstreams.

A Connection of the upstream's own type (``od_cobalt``, ...; see :mod:`od_scheduler.provider_info`) or of
type ``http`` -- the hooks read the same fields whatever the type -- gives the base URL (``host`` as a full
URL, or ``schema`` + ``host`` + ``port``), the secret in ``password``, and optional extras ``timeout``
(seconds), ``max_attempts``, ``deadline_s`` (overall bound of one request) and ``max_response_mb``
(largest body, raw and decoded). An extra is read under its plain name (what Airflow 3's connection form
writes) or as ``extra__<conn type>__<name>`` (older forms); an empty one (``null``, ``""``) is unset.
Every secret of the connection is handed to the client's redactor, so it never reaches a log line, and
every secret the client registers (its own and those it derives: OAuth access tokens, Basic credentials)
goes to Airflow's ``mask_secret`` as well, so Airflow masks it in task logs too.

``test_connection()`` (the UI's Test button, where ``[core] test_connection`` is enabled) runs the hook's
:meth:`OdHttpHook.probe` with one attempt and short timeouts, and answers ``(ok, message)``; it never raises.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from od_scheduler.clients.redaction import redact_text
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.probe import TEST_DEADLINE_S, TEST_TIMEOUT_S
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


@dataclass
class _Shared:
    """What the dealers of one shard task share (:func:`shared_connections`)."""

    #: The Connections looked up, by id.
    connections: dict[str, Any] = field(default_factory=dict)
    #: Each Connection's extras as ``extra_dejson`` gave them, by id (Airflow parses and masks on each read).
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Secrets already handed to Airflow's ``mask_secret`` (each call is a round trip to the supervisor).
    masked: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_SHARED: ContextVar[_Shared | None] = ContextVar("od_shared_connections", default=None)


@contextmanager
def shared_connections() -> Iterator[None]:
    """While a shard task works on its dealers, each Connection is looked up once and shared by them all.

    Every dealer builds its own hook, and a lookup goes through the task's supervisor to the API server one
    at a time (:data:`CONNECTION_LOOKUP_LOCK`): a hundred dealers in flight queued on that lock for their
    turn, each a round trip. Reading a Connection's extras and masking its secrets are round trips to the
    supervisor too, so those are done once per shard as well. The dealers' threads run in copies of the
    task's context, so they all see what is set here. A Connection edited while the shard runs is seen by
    the next task.
    """
    token = _SHARED.set(_Shared())
    try:
        yield
    finally:
        _SHARED.reset(token)


def lookup_connection(hook: BaseHook, conn_id: str) -> Any:
    """``hook.get_connection(conn_id)``, one lookup at a time, shared inside :func:`shared_connections`."""
    shared = _SHARED.get()
    if shared is not None and conn_id in shared.connections:
        return shared.connections[conn_id]
    with CONNECTION_LOOKUP_LOCK:
        if shared is not None and conn_id in shared.connections:
            return shared.connections[conn_id]
        try:
            conn = hook.get_connection(conn_id)
        except AirflowNotFoundException as err:
            conn = metadata_db_connection(conn_id, err)
        if shared is not None:
            shared.connections[conn_id] = conn
        return conn


def raw_extras(conn_id: str, conn: Any) -> dict[str, Any]:
    """``conn.extra_dejson``, read once per shard inside :func:`shared_connections`."""
    shared = _SHARED.get()
    if shared is None:
        return dict(conn.extra_dejson or {})
    with shared.lock:
        if conn_id not in shared.extras:
            shared.extras[conn_id] = dict(conn.extra_dejson or {})
        return dict(shared.extras[conn_id])


def mask_once(secret: str) -> None:
    """Airflow's ``mask_secret``, called once per secret per shard inside :func:`shared_connections`."""
    shared = _SHARED.get()
    if shared is not None:
        with shared.lock:
            if secret in shared.masked:
                return
            shared.masked.add(secret)
    mask_secret(secret)


SENSITIVE_EXTRA_KEYS = ("token", "api_key", "secret", "password", "integration_token", "client_secret")


def connection_extras(raw: Mapping[str, Any] | None, conn_types: Iterable[str | None]) -> dict[str, Any]:
    """A connection's extras as the hooks read them: plain keys, else ``extra__<type>__<key>`` for one of
    ``conn_types``; empty values (``None``, ``""``: a form field left blank) are left out."""
    prefixes = tuple(f"extra__{t}__" for t in dict.fromkeys(conn_types) if t)
    plain: dict[str, Any] = {}
    prefixed: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        if value is None or value == "":
            continue
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            plain[key] = value
        else:
            prefixed.setdefault(key[len(prefix) :], value)
    return {**prefixed, **plain}


class OdHttpHook(BaseHook):
    """Base for the project's HTTP hooks: resolves the connection once and builds client kwargs."""

    conn_name_attr = "conn_id"
    #: Each upstream's hook has its own type (declared in provider_info); a connection of type ``http`` works
    #: as well, the type is never checked.
    conn_type = "http"
    default_conn_name = ""
    hook_name = "Open Dealer HTTP upstream"
    #: Extras whose names look like secrets' but are not (they stay readable in messages).
    public_extras: tuple[str, ...] = ()

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id or self.default_conn_name
        self._conn: Any = None
        self._testing = False

    @property
    def connection(self) -> Any:
        """The Airflow Connection, fetched on first use (never at construction or parse time)."""
        if self._conn is None:
            self._conn = lookup_connection(self, self.conn_id)
        return self._conn

    @property
    def extras(self) -> dict[str, Any]:
        """The connection's extras (see :func:`connection_extras`)."""
        return self._extras_of(raw_extras(self.conn_id, self.connection))

    def _extras_of(self, raw: Mapping[str, Any] | None) -> dict[str, Any]:
        return connection_extras(raw, (self.conn_type, getattr(self._conn, "conn_type", None)))

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
        if self._testing:
            timeout, attempts, deadline = min(timeout, TEST_TIMEOUT_S), 1, min(deadline, TEST_DEADLINE_S)
        return {
            "timeout": timeout,
            "retry": RetryPolicy(max_attempts=attempts, max_delay=settings.http_max_backoff_s),
            "secrets": self._secrets(),
            "conn_id": self.conn_id,
            "deadline_s": deadline,
            "max_response_bytes": max(1, int(max_mb * 1_000_000)),
            "on_secret": mask_once,
        }

    def _secrets(self) -> list[str]:
        """The password and every extra whose name says it is a secret."""
        secrets = [self.connection.password or ""]
        secrets += [
            str(v)
            for k, v in self.extras.items()
            if k not in self.public_extras and any(s in k.lower() for s in SENSITIVE_EXTRA_KEYS)
        ]
        return [s for s in secrets if s]

    # -- connection test --------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Airflow's connection test: ``(True, what was checked)`` or ``(False, what failed, what to fix)``.

        Runs :meth:`probe` with one attempt and short timeouts. Never raises: any failure is the message.
        """
        self._testing = True
        try:
            return self.probe()
        except Exception as err:  # the UI shows the message; a test must answer, not raise
            known = self._secrets() if self._conn is not None else []
            return False, redact_text(f"{type(err).__name__}: {err}", known)
        finally:
            self._testing = False

    def probe(self) -> tuple[bool, str]:
        """The connection test's check: one cheap request where the upstream's contract allows it (see
        :mod:`od_scheduler.hooks.probe`)."""
        raise NotImplementedError(f"{type(self).__name__} has no connection test")
