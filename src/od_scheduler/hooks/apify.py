"""ApifyHook: the ``od_apify`` connection -> an ApifyClient (worker) or an ApifyRunWatcher (triggerer).

Connection: host = the Apify API base URL (default ``https://api.apify.com``), password = the API token
(sent only as ``Authorization: Bearer``), optional extras ``items_page_size`` (dataset items per request,
default 1000), ``timeout`` and ``max_attempts`` as for every HTTP connection. Connection type ``od_apify``
(or ``http``).

The connection test reads a run that does not exist: Apify checks the token first (401 for a bad one),
then answers ``404 record-not-found``.

The watcher is built from async code (the trigger): its connection is read with ``aget_connection`` and
its extras with ``aextra_dejson``, because the synchronous calls block the triggerer's event loop.

Both builders take an optional tighter ``timeout`` / ``max_attempts`` than the connection's: an abort sent
while a task is being killed must finish before Airflow stops waiting for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
from airflow.sdk.exceptions import AirflowNotFoundException

from od_scheduler.clients.apify import (
    DEFAULT_BASE_URL,
    DEFAULT_PAGE_SIZE,
    RUN_PATH,
    ApifyClient,
    ApifyRunWatcher,
)
from od_scheduler.clients.redaction import excerpt
from od_scheduler.exceptions import ConfigError
from od_scheduler.hooks.http_base import OdHttpHook, metadata_db_connection
from od_scheduler.hooks.probe import ANY_STATUS, PROBE_ID
from od_scheduler.platforms import WEB_SCRAPING

PAGE_SIZE_EXTRA = "items_page_size"


class ApifyHook(OdHttpHook):
    """Builds Apify clients from the ``od_apify`` connection."""

    default_conn_name = WEB_SCRAPING.conn_id
    conn_type = WEB_SCRAPING.connection_form.conn_type
    hook_name = WEB_SCRAPING.connection_form.name

    def __init__(self, conn_id: str | None = None) -> None:
        super().__init__(conn_id)
        self._async_extras: dict[str, Any] | None = None

    @property
    def extras(self) -> dict[str, Any]:
        """The connection's extras (read asynchronously first when the hook serves a trigger)."""
        if self._async_extras is not None:
            return self._extras_of(self._async_extras)
        return super().extras

    def api_url(self) -> str:
        """The connection's host, else Apify's public API."""
        return self.base_url(required=False) or DEFAULT_BASE_URL

    def page_size(self) -> int:
        """Dataset items per request (extra ``items_page_size``)."""
        raw = self.extras.get(PAGE_SIZE_EXTRA, DEFAULT_PAGE_SIZE)
        try:
            size = int(raw)
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"connection {self.conn_id!r}: {PAGE_SIZE_EXTRA} must be a whole number"
            ) from err
        if size < 1:
            raise ConfigError(f"connection {self.conn_id!r}: {PAGE_SIZE_EXTRA} must be >= 1, got {size}")
        return size

    def bounded_client_kwargs(
        self, *, timeout: float | None = None, max_attempts: int | None = None
    ) -> dict[str, Any]:
        """The connection's client settings, with ``timeout`` / ``max_attempts`` capped when given."""
        kwargs = self.client_kwargs()
        if timeout is not None:
            kwargs["timeout"] = min(float(kwargs["timeout"]), timeout)
        if max_attempts is not None:
            retry = kwargs["retry"]
            kwargs["retry"] = dataclasses.replace(retry, max_attempts=min(retry.max_attempts, max_attempts))
        return kwargs

    def get_client(self, *, timeout: float | None = None, max_attempts: int | None = None) -> ApifyClient:
        """A client for starting, aborting and reading runs; the caller closes it."""
        return ApifyClient(
            base_url=self.api_url(),
            token=self.secret(what="Apify API token"),
            page_size=self.page_size(),
            **self.bounded_client_kwargs(timeout=timeout, max_attempts=max_attempts),
        )

    def probe(self) -> tuple[bool, str]:
        """Read a run that does not exist: a valid token gets Apify's ``404 record-not-found``."""
        with self.get_client() as client:
            url = client.redactor.redact(f"{client.base_url.rstrip('/')}{RUN_PATH.format(run_id=PROBE_ID)}")
            response = client.request("GET", RUN_PATH.format(run_id=PROBE_ID), ok=ANY_STATUS)
            answer = f"HTTP {response.status_code}: {excerpt(response.content, client.redactor, 120)}"
        if response.status_code in (401, 403):
            return (
                False,
                f"Apify refused the API token (GET {url}: {answer}). Check the connection's password.",
            )
        if response.status_code == 404 and _error_type(response) == "record-not-found":
            return True, f"Apify is reachable and accepted the API token (GET {url}: 404 record-not-found)."
        return False, (
            f"Apify: GET {url} answered {answer}; expected Apify's 404 record-not-found. "
            "Check that the host is the Apify API base URL (https://api.apify.com)."
        )

    async def aget_watcher(
        self,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
    ) -> ApifyRunWatcher:
        """An async run watcher, built without blocking the event loop; the caller closes it."""
        try:
            conn = await self.aget_connection(self.conn_id)
            extras = await conn.aextra_dejson()
        except AirflowNotFoundException as err:
            conn = await asyncio.to_thread(metadata_db_connection, self.conn_id, err)
            extras = conn.extra_dejson
        self._conn = conn
        self._async_extras = dict(extras or {})
        kwargs = self.bounded_client_kwargs(timeout=timeout, max_attempts=max_attempts)
        # The async watcher's polls are small and bounded by their own timeouts and the watch deadline.
        kwargs.pop("deadline_s", None)
        kwargs.pop("max_response_bytes", None)
        return ApifyRunWatcher(
            base_url=self.api_url(),
            token=self.secret(what="Apify API token"),
            transport=transport,
            **kwargs,
        )


def _error_type(response: httpx.Response) -> str | None:
    """``error.type`` of an Apify error body, if the body is one."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("type")) if isinstance(error, dict) else None
