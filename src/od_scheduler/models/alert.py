"""Alerts: the conditions the project alerts on and the one message shape the webhook receives.

A :class:`Condition` is one thing that is wrong (``missing:dealer.com:<dealer id>``); its ``key`` is what
deduplication remembers, so the same condition alerts once until a check finds it gone; the check that
finds it gone reports it as a :class:`ClearedCondition` (one ``resolved`` message per check). An
:class:`Alert` is one message: a Slack-compatible ``text`` plus structured fields (kind, severity, DAG run,
platform, dealers grouped by error, counts, links to the DAG run and the task's log in the Airflow UI) for
any other receiver. No Airflow imports: :func:`ui_links` builds the links the way Airflow's own
``TaskInstance.log_url`` does, from the ``[api] base_url`` the caller read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field

from od_scheduler.models.job import DealerRef, dealer_label

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
    #: Conditions a check found over (conditions that were alerted only).
    RESOLVED = "resolved"


class ConditionKind(StrEnum):
    """What one deduplicated condition is (the first part of its key)."""

    FAILURE_RATE = "failure_rate"
    ANOMALY = "anomaly"
    MISSING = "missing"
    HELD = "held"
    LONG_RUN = "long_run"
    SYSTEM = "system"


class Severity(StrEnum):
    """How urgent: ``info`` (good news: something resolved), ``warning`` (look today), ``error`` (a run
    failed), ``critical`` (nothing runs)."""

    INFO = "info"
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


def slack_link(url: str, label: str) -> str:
    """A Slack link ``<url|label>`` whose label shows ``label`` as is and cannot end the link early.

    Both parts are escaped (:func:`slack_escape`: Slack reads ``&amp;``/``&lt;``/``&gt;`` back in links
    too); a ``|`` in the URL is percent-encoded, since the first one separates URL from label.
    """
    return f"<{slack_escape(url.replace('|', '%7C'))}|{slack_escape(label)}>"


def ui_links(
    base_url: str | None,
    *,
    dag_id: str | None,
    run_id: str | None,
    task_id: str | None = None,
    map_index: int | None = None,
    try_number: int | None = None,
) -> tuple[str | None, str | None]:
    """(URL of the DAG run, URL of the task instance's log) in the Airflow UI; None where not known.

    The paths are Airflow 3's own: ``TaskInstance.log_url`` and ``build_airflow_dagrun_url`` give
    ``<base>/dags/<dag_id>/runs/<run_id>`` and ``.../tasks/<task_id>[/mapped/<map_index>][?try_number=N]``.
    Each part is percent-encoded (a run id holds ``:`` and ``+``). No ``base_url`` (``[api] base_url`` unset):
    no links, rather than links to a guessed host.
    """
    if not base_url or not dag_id or not run_id:
        return None, None
    run_url = f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    if not task_id:
        return run_url, None
    mapped = f"/mapped/{map_index}" if map_index is not None and map_index >= 0 else ""
    attempt = f"?try_number={try_number}" if try_number is not None and try_number > 0 else ""
    return run_url, f"{run_url}/tasks/{quote(task_id, safe='')}{mapped}{attempt}"


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


class AlertDealer(BaseModel):
    """One dealer named in an alert, with what is wrong with it (``name``/``slug`` ``None``: not known)."""

    dealer_id: str
    platform: str | None = None
    name: str | None = None
    slug: str | None = None
    #: ``failed``, ``anomaly``, ``missing``, ``held`` or ``running``.
    condition: str | None = None
    detail: str | None = None

    @classmethod
    def of(cls, ref: DealerRef, *, condition: str, detail: str | None = None) -> AlertDealer:
        """The dealer ``ref`` identifies (its id, platform, name and slug), as an alert names it."""
        return cls(
            dealer_id=ref.dealer_id,
            platform=ref.platform,
            name=ref.name,
            slug=ref.slug,
            condition=condition,
            detail=detail,
        )

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


class ClearedCondition(BaseModel):
    """A condition a check found over, as the dedup state knew it."""

    key: str
    kind: ConditionKind
    #: When the condition was opened (``None``: not known).
    since: datetime | None = None
    #: Whether its alert went out (sent, or logged without a connection). A condition whose alert was
    #: never delivered is closed quietly: nobody was told it began, so nobody is told it ended.
    alerted: bool = False
    dealer: AlertDealer | None = None
    detail: str | None = None


class TaskRef(BaseModel):
    """The task instance an alert comes from: whose log explains it (``map_index`` -1: not mapped)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int | None = None


class Alert(BaseModel):
    """One message to the webhook."""

    kind: AlertKind
    severity: Severity
    title: str
    dag_id: str | None = None
    run_id: str | None = None
    platform: str | None = None
    task_id: str | None = None
    #: The task instance's map index (-1 or None: not mapped) and try, for its log link.
    map_index: int | None = None
    try_number: int | None = None
    #: The DAG run and the task's log in the Airflow UI (None: ``[api] base_url`` unset, or no task).
    dag_run_url: str | None = None
    log_url: str | None = None
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

    @property
    def headline(self) -> str:
        """``[SEVERITY] title`` (``[RESOLVED] title`` for a resolved message)."""
        label = "RESOLVED" if self.kind == AlertKind.RESOLVED else self.severity.value.upper()
        return f"[{label}] {self.title}"

    def text(self) -> str:
        """Plain text, as logs and plain-text channels show it: a headline, where it happened (with the run's
        and the log's URLs when known), then one bullet per group of dealers.

        :meth:`slack_text` is what Slack-compatible receivers get.
        """
        return "\n".join(self._lines(slack=False))

    def slack_text(self) -> str:
        """The text for Slack: everything escaped (:func:`slack_escape`), the run and the log as links.

        Dealer names, errors and notes come from the CMS and upstreams and must not mention ``@channel`` or
        smuggle a link; the only links are the two this project builds (:func:`slack_link`).
        """
        return "\n".join(self._lines(slack=True))

    def _where(self, *, slack: bool) -> str | None:
        """``DAG <dag>, run <run>, task <task>``; for Slack the run and the log are links."""
        task = self.task_id
        if task and self.map_index is not None and self.map_index >= 0:
            task = f"{task}[{self.map_index}]"
        if not slack:
            where = [
                f"{name} {value}" for name, value in (("DAG", self.dag_id), ("run", self.run_id)) if value
            ]
            return ", ".join([*where, *([f"task {task}"] if task else [])]) or None
        where = [f"DAG {slack_escape(self.dag_id)}"] if self.dag_id else []
        if self.run_id:
            run = slack_link(self.dag_run_url, self.run_id) if self.dag_run_url else slack_escape(self.run_id)
            where.append(f"run {run}")
        if task:
            log = ""
            if self.log_url:
                attempt = f", try {self.try_number}" if self.try_number else ""
                log = f" ({slack_link(self.log_url, 'log' + attempt)})"
            where.append(f"task {slack_escape(task)}{log}")
        return ", ".join(where) or None

    def _lines(self, *, slack: bool) -> list[str]:
        escape = slack_escape if slack else str
        lines = [escape(self.headline)]
        where = self._where(slack=slack)
        if where:
            lines.append(where)
        if not slack:
            lines += [
                f"{name}: {url}" for name, url in (("Run", self.dag_run_url), ("Log", self.log_url)) if url
            ]
        by_id = {d.dealer_id: d for d in self.dealers}
        for group in self.groups():
            names = [by_id[i].label for i in group["dealers"][:MAX_DEALERS_IN_TEXT]]
            more = group["count"] - len(names)
            prefix = " ".join(
                p for p in (group["condition"], group["platform"] and f"on {group['platform']}") if p
            )
            lines.append(
                escape(
                    f"• {prefix + ' ' if prefix else ''}({group['count']}): {group['error']}\n"
                    f"    {', '.join(names)}{f' and {more} more' if more > 0 else ''}"
                )
            )
        lines += [escape(f"• {note}") for note in self.notes]
        error = self.details.get("error")
        if error:
            lines.append(escape(f"Error: {error}"))
        return lines

    def payload(self) -> dict[str, Any]:
        """The JSON body posted to the webhook."""
        return {
            "text": self.slack_text(),
            "source": "od-scheduler",
            "kind": self.kind.value,
            "severity": self.severity.value,
            "title": self.title,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "platform": self.platform,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "try_number": self.try_number,
            "dag_run_url": self.dag_run_url,
            "log_url": self.log_url,
            "dealers": [d.model_dump(mode="json") for d in self.dealers],
            "groups": self.groups(),
            "counts": dict(self.counts),
            "details": dict(self.details),
            "conditions": list(self.conditions),
            "notes": list(self.notes),
            "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
