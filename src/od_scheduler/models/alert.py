"""Alerts: the conditions the project alerts on and the one message shape the webhook receives.

A :class:`Condition` is one thing that is wrong (``missing:dealer.com:<dealer id>``); its ``key`` is what
deduplication remembers, so the same condition alerts once until a check finds it gone. An :class:`Alert` is
one message: a Slack-compatible ``text`` plus structured fields (kind, severity, DAG run, platform, dealers
grouped by error, counts) for any other receiver. No Airflow imports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

#: Dealers named per group in the ``text``; the structured ``dealers`` field always lists every one.
MAX_DEALERS_IN_TEXT = 15
#: Characters of an error kept in an alert (errors are one line; a longer one is cut).
MAX_ERROR_CHARS = 500

_TRY_PREFIX = re.compile(r"^try \d+: ")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>)]+", re.IGNORECASE)
_QUERY = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?'\"<>)]+)\?[^\s'\"<>)]*", re.IGNORECASE)
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
#: Where libpq says it tried to connect: ``connection to server at "host" (ip), port 5432 failed: `` or
#: ``connection to server on socket "/path/.s.PGSQL.5432" failed: ``.
_PG_SERVER = re.compile(
    r'connection to server (?:at "[^"]*"(?: \([^)]*\))?, port \d+|on socket "[^"]*") failed: ', re.IGNORECASE
)
#: What libpq quotes: host names, user names, database names, socket paths.
_PG_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')
_IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_PORT = re.compile(r"\bport \d+\b", re.IGNORECASE)


class AlertKind(StrEnum):
    """What an alert is about (one message kind each)."""

    FAILURE_RATE = "failure_rate"
    ANOMALY = "anomaly"
    LONG_RUN = "long_run"
    FRESHNESS = "freshness"
    SYSTEM = "system"


class ConditionKind(StrEnum):
    """What one deduplicated condition is (the first part of its key)."""

    FAILURE_RATE = "failure_rate"
    ANOMALY = "anomaly"
    MISSING = "missing"
    HELD = "held"
    LONG_RUN = "long_run"
    SYSTEM = "system"


class Severity(StrEnum):
    """How urgent: ``warning`` (look today), ``error`` (a run failed), ``critical`` (nothing runs)."""

    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


def slack_escape(text: str) -> str:
    """``text`` safe to post as Slack message text: ``&``, ``<`` and ``>`` as ``&amp;``, ``&lt;``, ``&gt;``.

    Those three are all Slack's escaping rules name: once escaped, text from a dealer's CMS document or an
    upstream's error can no longer form a control sequence (``<!channel>``, ``<!here>``, ``<@U123>``) or a
    link with a spoofed label (``<http://evil|Open Dealer status>``). Idempotence is not wanted: escape once.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def condition_key(kind: ConditionKind | str, *parts: str) -> str:
    """``<kind>:<part>:<part>``, e.g. ``missing:dealer.com:<dealer id>`` or ``failure_rate:<dag id>``."""
    return ":".join([str(kind), *parts])


def clean_error(text: str | None) -> str:
    """An error as an alert shows it: one line, no ``try N:`` prefix, URLs without query, <= 500 chars."""
    line = _QUERY.sub(r"\1?…", " ".join(_TRY_PREFIX.sub("", (text or "").strip()).split()))
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


def clean_db_error(text: str | None, hide: Sequence[str] = ()) -> str:
    """A database driver's error as an alert shows it: what went wrong, not where the database is.

    libpq names the host, address, port, socket and user it tried (``connection to server at "db.internal"
    (10.0.0.5), port 5432 failed: FATAL: password authentication failed for user "airflow"``); all of that
    is removed or masked, and so is every value of ``hide`` (the connection's host, login, schema,
    password). Only the first line is kept (libpq's second one is a generic hint).
    """
    lines = (text or "").strip().splitlines()
    line = _PG_SERVER.sub("", lines[0] if lines else "")
    line = _PG_QUOTED.sub('"***"', line)
    line = _PORT.sub("port ***", _IPV4.sub("***", line))
    for value in sorted({v for v in hide if v and len(v) >= 3}, key=len, reverse=True):
        line = line.replace(value, "***")
    return clean_error(line)


def error_group(text: str | None) -> str:
    """The part of an error that dealers failing the same way share: URLs and ids replaced."""
    return _UUID.sub("<id>", _URL.sub("<url>", clean_error(text))) or "(no error text)"


def dealer_label(dealer_id: str, name: str | None, slug: str | None) -> str:
    """How alerts and run logs name a dealer: ``Name (slug, id <id>)`` as operators know it, beside the id a
    re-run's ``dealer_id`` takes; the id alone when neither name nor slug is known (never a made-up name)."""
    who = name or slug
    if who is None:
        return dealer_id
    inner = ", ".join(part for part in (slug if name else None, f"id {dealer_id}") if part)
    return f"{who} ({inner})"


class AlertDealer(BaseModel):
    """One dealer named in an alert, with what is wrong with it (``name``/``slug`` ``None``: not known)."""

    dealer_id: str
    platform: str | None = None
    name: str | None = None
    slug: str | None = None
    #: ``failed``, ``anomaly``, ``missing``, ``held`` or ``running``.
    condition: str | None = None
    detail: str | None = None

    @property
    def label(self) -> str:
        """``Name (slug, id <id>)``, or the id alone: see :func:`dealer_label`."""
        return dealer_label(self.dealer_id, self.name, self.slug)


class Condition(BaseModel):
    """One alerting condition: its dedup key, its kind and, for per-dealer conditions, the dealer."""

    key: str
    kind: ConditionKind
    dealer: AlertDealer | None = None
    detail: str | None = None


class Alert(BaseModel):
    """One message to the webhook."""

    kind: AlertKind
    severity: Severity
    title: str
    dag_id: str | None = None
    run_id: str | None = None
    platform: str | None = None
    task_id: str | None = None
    dealers: list[AlertDealer] = Field(default_factory=list)
    counts: dict[str, int | float] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    #: The dedup keys this message reports.
    conditions: list[str] = Field(default_factory=list)
    #: One-line facts beside the dealers (e.g. runs whose jobs were closed), one bullet each in the text.
    notes: list[str] = Field(default_factory=list)

    def groups(self) -> list[dict[str, Any]]:
        """Dealers grouped by (condition, platform, error), largest group first."""
        grouped: dict[tuple[str, str, str], list[AlertDealer]] = {}
        for dealer in self.dealers:
            key = (dealer.condition or "", dealer.platform or "", error_group(dealer.detail))
            grouped.setdefault(key, []).append(dealer)
        ordered = sorted(grouped.items(), key=lambda item: (-len(item[1]), item[0]))
        return [
            {
                "condition": condition or None,
                "platform": platform or None,
                "error": error,
                "count": len(dealers),
                "dealers": [d.dealer_id for d in dealers],
            }
            for (condition, platform, error), dealers in ordered
        ]

    def text(self) -> str:
        """Slack-compatible text: a headline, where it happened, then one bullet per group of dealers.

        Plain text, as logs show it; :meth:`payload` posts it escaped for Slack (:func:`slack_escape`):
        dealer names, errors and notes come from the CMS and upstreams and must not mention ``@channel``
        or smuggle a link.
        """
        lines = [f"[{self.severity.value.upper()}] {self.title}"]
        where = [f"{name} {value}" for name, value in (("DAG", self.dag_id), ("run", self.run_id)) if value]
        if self.task_id:
            where.append(f"task {self.task_id}")
        if where:
            lines.append(", ".join(where))
        by_id = {d.dealer_id: d for d in self.dealers}
        for group in self.groups():
            names = [by_id[i].label for i in group["dealers"][:MAX_DEALERS_IN_TEXT]]
            more = group["count"] - len(names)
            prefix = " ".join(
                p for p in (group["condition"], group["platform"] and f"on {group['platform']}") if p
            )
            lines.append(
                f"• {prefix + ' ' if prefix else ''}({group['count']}): {group['error']}\n"
                f"    {', '.join(names)}{f' and {more} more' if more > 0 else ''}"
            )
        lines += [f"• {note}" for note in self.notes]
        error = self.details.get("error")
        if error:
            lines.append(f"Error: {error}")
        return "\n".join(lines)

    def payload(self, *, sent_at: datetime | None = None) -> dict[str, Any]:
        """The JSON body posted to the webhook."""
        return {
            "text": slack_escape(self.text()),
            "source": "od-scheduler",
            "kind": self.kind.value,
            "severity": self.severity.value,
            "title": self.title,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "platform": self.platform,
            "task_id": self.task_id,
            "dealers": [d.model_dump(mode="json") for d in self.dealers],
            "groups": self.groups(),
            "counts": dict(self.counts),
            "details": dict(self.details),
            "conditions": list(self.conditions),
            "notes": list(self.notes),
            "sent_at": (sent_at or datetime.now(UTC)).isoformat(timespec="seconds"),
        }
