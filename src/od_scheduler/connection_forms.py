"""The connection form of each ``od_*`` connection type, as plain data (no Airflow, no hook imported).

A :class:`ConnectionForm` says which standard fields the UI's connection form shows and what they are
called, their placeholders, and the extras the hook reads, as form fields; ``provider_info`` hands the forms
to Airflow. A platform's form is part of its registry entry (:mod:`od_scheduler.platforms`), the shared
connections' (CMS, Data API, alerts) are in ``provider_info``. Form fields are stored in the connection's
extra as plain keys (Airflow 3's UI) or as ``extra__<type>__<key>`` (older forms); the hooks read both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Standard fields the forms never use: every base URL is a full URL in ``host``.
NO_SCHEMA_PORT = ("schema", "port")


def number_field(
    label: str, description: str, *, integer: bool = False, minimum: float = 0
) -> dict[str, Any]:
    """An optional numeric extra. No default: an empty field falls back to the ``[od_scheduler]``
    setting named in the description (a default here would be written into the extra and outlive a
    change of that setting)."""
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["integer" if integer else "number", "null"], "minimum": minimum},
    }


def text_field(
    label: str, description: str, *, secret: bool = False, url: bool = False, default: str | None = None
) -> dict[str, Any]:
    """An optional text extra; ``secret`` ones are masked in the form and in the API's answers."""
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    elif url:
        schema["format"] = "url"
    if default is not None:
        schema["default"] = default
    return {"label": label, "description": description, "schema": schema}


#: The extras every HTTP connection of the project reads (``OdHttpHook.client_kwargs``).
HTTP_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": number_field(
        "Request timeout (s)",
        "Seconds one HTTP request may take. Empty: [od_scheduler] http_timeout_s (30).",
        minimum=0.1,
    ),
    "max_attempts": number_field(
        "Attempts per request",
        "Tries for transient errors (timeouts, 429, 5xx). Empty: [od_scheduler] http_max_attempts (5).",
        integer=True,
        minimum=1,
    ),
    "deadline_s": number_field(
        "Request deadline (s)",
        "Overall bound of one request, all attempts and waits included. "
        "Empty: [od_scheduler] http_deadline_s (300).",
        minimum=0.1,
    ),
    "max_response_mb": number_field(
        "Largest response (MB)",
        "Largest response body read, raw and decoded. Empty: [od_scheduler] max_response_mb (50).",
        minimum=0.001,
    ),
}


@dataclass(frozen=True, eq=False)
class ConnectionForm:
    """One ``od_*`` connection type: its hook and the UI's form for it.

    The hook class (``hook``, relative to ``od_scheduler.hooks``) declares the same ``conn_type`` and
    ``hook_name``; it reads them from here (tests/unit/test_provider_info.py checks both ways). Compared
    and hashed by identity: each form is declared once."""

    conn_type: str
    #: ``<module>.<class>`` under ``od_scheduler.hooks``.
    hook: str
    #: The hook's display name (``hook_name``), shown in the UI's connection-type list.
    name: str
    hidden: tuple[str, ...]
    relabeling: dict[str, str]
    placeholders: dict[str, str]
    #: The extras the hook reads besides :data:`HTTP_FIELDS`.
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)

    def provider_info(self) -> dict[str, Any]:
        """The entry of ``connection-types`` in :func:`od_scheduler.provider_info.get_provider_info`."""
        return {
            "connection-type": self.conn_type,
            "hook-class-name": f"od_scheduler.hooks.{self.hook}",
            "hook-name": self.name,
            "ui-field-behaviour": {
                "hidden-fields": list(self.hidden),
                "relabeling": dict(self.relabeling),
                "placeholders": dict(self.placeholders),
            },
            "conn-fields": {**self.fields, **HTTP_FIELDS},
        }
