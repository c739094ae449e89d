"""Alerts through one Airflow notifier, deduplicated in the job-history database, delivered to ``od_alerts``.

:class:`WebhookAlertNotifier` serves as a task callback (system alerts), from the platform DAGs'
``DeadlineAlert`` (:func:`notify_long_run`) and from operators (``send_new``, ``send``, ``send_resolved``).
It claims condition keys in ``alert_state`` before sending, sends one ``resolved`` message per check, links
each alert to its run and log, delivers by ``[od_scheduler] alert_channel`` (webhook, Slack, Apprise),
scrubs secrets from every message and never fails its caller. The rules and why: docs/design.md, "Alerts".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import psycopg
from airflow.configuration import conf
from airflow.sdk import BaseHook, BaseNotifier, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from airflow.sdk.log import mask_secret, redact

from od_scheduler import conn_ids
from od_scheduler.alert_rules import resolved_alert
from od_scheduler.clients.redaction import Redactor
from od_scheduler.exceptions import ConfigError, PayloadError, TransientUpstreamError, UpstreamError
from od_scheduler.hooks.alert_state import AlertStateHook
from od_scheduler.hooks.alerts import AlertWebhookHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.alert import (
    Alert,
    AlertDealer,
    AlertKind,
    ClearedCondition,
    Condition,
    ConditionKind,
    Severity,
    TaskRef,
    clean_db_error,
    clean_error,
    condition_key,
    ui_links,
)
from od_scheduler.models.job import JobStatus
from od_scheduler.settings import get_settings

log = logging.getLogger(__name__)

#: DAG run states after which a missed deadline is no longer news.
FINISHED_STATES = ("success", "failed")


def _unreachable_errors() -> tuple[type[Exception], ...]:
    """The drivers' "cannot talk to the database" errors: connection refused, timed out, authentication
    failed, the server shut down or the connection broke (PostgresHook uses psycopg 3, or psycopg2)."""
    errors: list[type[Exception]] = [psycopg.OperationalError, psycopg.InterfaceError]
    try:
        import psycopg2
    except ImportError:  # psycopg2 is optional: PostgresHook uses psycopg 3 with SQLAlchemy 2
        pass
    else:
        errors += [psycopg2.OperationalError, psycopg2.InterfaceError]
    return tuple(errors)


#: Errors meaning the job-history database cannot be reached (as opposed to a bad query).
DATABASE_UNREACHABLE: tuple[type[Exception], ...] = _unreachable_errors()


def database_error(exc: BaseException | None) -> BaseException | None:
    """The database-unreachable error in ``exc``'s chain of causes, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DATABASE_UNREACHABLE):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def describe_database_error(err: BaseException, conn_id: str = conn_ids.JOB_HISTORY) -> str:
    """``<ErrorType>: <what failed>`` without where the database is (see ``clean_db_error``)."""
    hide: list[str] = []
    try:
        conn = BaseHook.get_connection(conn_id)
        hide = [str(v) for v in (conn.host, conn.login, conn.schema, conn.password) if v]
    except Exception:  # no connection to read: libpq's own wording is still masked
        hide = []
    return f"{type(err).__name__}: {clean_db_error(str(err), hide)}"


class Delivery(StrEnum):
    """What became of an alert."""

    SENT = "sent"
    LOGGED = "logged"  # no od_alerts connection: written to the log at WARNING
    FAILED = "failed"  # the webhook is down or refused it: logged at ERROR, to be retried


class AlertState(Protocol):
    """The dedup store (``AlertStateHook``; an in-memory one in unit tests)."""

    def claim(self, conditions: Sequence[Condition]) -> list[str]: ...

    def release(self, keys: Sequence[str]) -> None: ...

    def clear(self, keys: Collection[str]) -> list[ClearedCondition]: ...

    def clear_open(self, kinds: Collection[str], keep: Collection[str]) -> list[ClearedCondition]: ...


# -- links to the Airflow UI -------------------------------------------------------------------------------
#: What this process already said about ``[api] base_url`` (it is said once, not in every alert).
_BASE_URL_WARNED: set[str] = set()


def _warn_once(message: str, *args: Any) -> None:
    if message not in _BASE_URL_WARNED:
        _BASE_URL_WARNED.add(message)
        log.warning(message, *args)


def ui_base_url() -> str | None:
    """Airflow's ``[api] base_url`` (what Airflow builds its own UI links from), or None when it is unset or
    not an absolute http(s) URL: alerts then carry no links rather than links to a guessed host."""
    raw = (conf.get("api", "base_url", fallback=None) or "").strip()
    if not raw:
        _warn_once(
            "[api] base_url is not set, so alerts carry no links to their DAG run and log in the Airflow UI: "
            "set it (AIRFLOW__API__BASE_URL) to the address people open Airflow at"
        )
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        _warn_once(
            "[api] base_url %r is not an absolute http(s) URL, so alerts carry no links to the Airflow UI",
            raw,
        )
        return None
    return raw.rstrip("/")


def task_ref(context: Mapping[str, Any]) -> TaskRef | None:
    """The task instance of a task context (or a task callback's), for the alert's log link."""
    ti = context.get("ti")
    dag_id, run_id = _ids(context)
    task_id = getattr(ti, "task_id", None)
    if ti is None or not (dag_id and run_id and task_id):
        return None
    map_index = getattr(ti, "map_index", None)
    try_number = getattr(ti, "try_number", None)
    return TaskRef(
        dag_id=getattr(ti, "dag_id", None) or dag_id,
        run_id=getattr(ti, "run_id", None) or run_id,
        task_id=task_id,
        map_index=map_index if isinstance(map_index, int) else -1,
        try_number=try_number if isinstance(try_number, int) else None,
    )


# -- channels ---------------------------------------------------------------------------------------------
class AlertChannel(StrEnum):
    """Where alerts go (``[od_scheduler] alert_channel``)."""

    WEBHOOK = "webhook"
    SLACK = "slack"
    APPRISE = "apprise"


#: The pip package each optional channel needs.
CHANNEL_PACKAGES = {
    AlertChannel.SLACK: "apache-airflow-providers-slack",
    AlertChannel.APPRISE: "apache-airflow-providers-apprise",
}


class Channel(Protocol):
    """One way to deliver an alert, configured from the ``od_alerts`` connection."""

    #: How the log names the receiver (``webhook``, ``Slack webhook``, ``Apprise``).
    name: str

    def secrets(self) -> list[str]:
        """Read the connection (raising ``AirflowNotFoundException`` when there is none) and return every
        credential in it, to be kept out of what is sent and logged."""
        ...

    def deliver(self, alert: Alert, secrets: Sequence[str]) -> str:
        """Send ``alert`` (scrubbed of ``secrets``); returns what the receiver answered, for the log. Raises
        ``UpstreamError`` (or ``ConfigError``) when it was not delivered."""
        ...


class WebhookChannel:
    """The JSON payload (Slack-compatible ``text`` + structured fields) to the ``od_alerts`` webhook."""

    name = "webhook"

    def __init__(self, conn_id: str, transport: httpx.BaseTransport | None = None) -> None:
        self.hook = AlertWebhookHook(conn_id)
        self.transport = transport

    def secrets(self) -> list[str]:
        return [str(self.hook.connection.password or "")]

    def deliver(self, alert: Alert, secrets: Sequence[str]) -> str:
        with self.hook.get_client(transport=self.transport) as client:
            return f"HTTP {client.post_alert(scrub(alert.payload(), secrets))}"


class SlackChannel:
    """The Slack text (links as ``<url|label>``) through the Slack provider's ``SlackWebhookHook`` — what its
    ``SlackWebhookNotifier`` sends with. ``od_alerts`` of type ``slack_webhook``: password = the webhook
    token (``T000/B000/XXXX``) or the whole webhook URL; host = the endpoint (default
    ``https://hooks.slack.com/services``)."""

    name = "Slack webhook"

    def __init__(self, conn_id: str) -> None:
        try:
            from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
        except ImportError as err:
            raise _missing_provider(AlertChannel.SLACK) from err
        self.conn_id = conn_id
        self.hook = SlackWebhookHook(slack_webhook_conn_id=conn_id)

    def secrets(self) -> list[str]:
        conn = AlertWebhookHook(self.conn_id).connection
        token = (conn.password or "").strip()
        if not token:
            raise ConfigError(
                f"the {self.conn_id!r} connection (type slack_webhook) has no password: put the Slack "
                "webhook token (T000/B000/XXXX) or the whole webhook URL there"
            )
        # The token, and the secret at its end alone (the part a URL-encoded or truncated echo would show).
        last = urlsplit(token).path.rstrip("/").rsplit("/", 1)[-1]
        secrets = [token, *([last] if len(last) >= 8 and last != token else [])]
        for secret in secrets:
            mask_secret(secret)  # slack_sdk logs the full webhook URL when it retries
        return secrets

    def deliver(self, alert: Alert, secrets: Sequence[str]) -> str:
        text = scrub({"text": alert.slack_text()}, secrets)["text"]
        try:
            response = self.hook.send(text=text, unfurl_links=False, unfurl_media=False)
        except Exception as err:  # AirflowException for a refusal, urllib/OSError and slack_sdk errors else
            raise TransientUpstreamError(
                f"Slack webhook: {type(err).__name__}: {scrub({'e': str(err)}, secrets)['e']}"
            ) from err
        return f"HTTP {response.status_code}"


class AppriseChannel:
    """The plain text (URLs spelled out) through the Apprise provider: ``AppriseHook`` reads the services
    from ``od_alerts`` (type apprise, extra ``config``: ``{"path": "<apprise URL>", "tag": ...}`` or a list
    of them) and Apprise sends it to each."""

    name = "Apprise"

    def __init__(self, conn_id: str) -> None:
        try:
            import apprise
            from airflow.providers.apprise.hooks.apprise import AppriseHook
        except ImportError as err:
            raise _missing_provider(AlertChannel.APPRISE) from err
        self.apprise = apprise
        self.conn_id = conn_id
        self.hook = AppriseHook(apprise_conn_id=conn_id)
        self._conn: Any = None

    def secrets(self) -> list[str]:
        self._conn = AlertWebhookHook(self.conn_id).connection
        try:
            config = self.hook.get_config_from_conn(self._conn)
        except (KeyError, ValueError) as err:
            raise ConfigError(
                f'the {self.conn_id!r} connection (type apprise) needs the extra "config": '
                '{"path": "<apprise URL>"} or a list of them'
            ) from err
        paths = [
            c.get("path") for c in (config if isinstance(config, list) else [config]) if isinstance(c, dict)
        ]
        secrets = [str(p) for p in paths if p]
        for secret in secrets:
            mask_secret(secret)  # an Apprise URL holds its service's credentials
        return secrets

    def deliver(self, alert: Alert, secrets: Sequence[str]) -> str:
        notify_type = {
            Severity.INFO: self.apprise.NotifyType.SUCCESS,
            Severity.WARNING: self.apprise.NotifyType.WARNING,
        }.get(alert.severity, self.apprise.NotifyType.FAILURE)
        lines = alert.text().splitlines()
        message = scrub({"title": alert.headline, "body": "\n".join(lines[1:]) or lines[0]}, secrets)
        sender = self.apprise.Apprise()
        try:
            self.hook.set_config_from_conn(conn=self._conn, apprise_obj=sender)
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"the {self.conn_id!r} connection's Apprise config is not usable: {err}"
            ) from err
        if len(sender) == 0:
            raise ConfigError(f"the {self.conn_id!r} connection's Apprise config names no usable service")
        sent = sender.notify(
            body=message["body"],
            title=message["title"],
            notify_type=notify_type,
            body_format=self.apprise.NotifyFormat.TEXT,
        )
        if not sent:
            raise TransientUpstreamError(
                f"Apprise could not deliver to every service of {self.conn_id!r} (see Apprise's log lines)"
            )
        return f"{len(sender)} service(s)"


def _missing_provider(channel: AlertChannel) -> ConfigError:
    package = CHANNEL_PACKAGES[channel]
    return ConfigError(
        f"[od_scheduler] alert_channel = {channel.value} needs Airflow's {channel.value.title()} provider, "
        f"which is not installed: pip install {package} (or set alert_channel = webhook)"
    )


def alert_channel(
    channel: AlertChannel | str, conn_id: str = conn_ids.ALERTS, transport: httpx.BaseTransport | None = None
) -> Channel:
    """The channel ``[od_scheduler] alert_channel`` names; ``ConfigError`` when its provider is missing."""
    match AlertChannel(channel):
        case AlertChannel.SLACK:
            return SlackChannel(conn_id)
        case AlertChannel.APPRISE:
            return AppriseChannel(conn_id)
        case _:
            return WebhookChannel(conn_id, transport)


def is_refusal(exc: BaseException | None) -> bool:
    """A task that refused the run on purpose (unknown conf key, unknown ``dealer_id``): not a system error.

    Operators refuse with ``AirflowFailException``; one that wraps an upstream failure (the CMS answered 401
    or garbage) is still a system error.
    """
    return isinstance(exc, AirflowFailException) and not isinstance(
        exc.__cause__, UpstreamError | PayloadError
    )


def _ids(context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(dag_id, run_id) from a task context or from the deadline's simple context."""
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    if isinstance(dag_run, Mapping):  # the deadline's context: DAGRunResponse as JSON
        return dag_run.get("dag_id"), dag_run.get("dag_run_id") or dag_run.get("run_id")
    dag_id = getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", None)
    return dag_id, context.get("run_id") or getattr(dag_run, "run_id", None)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


class WebhookAlertNotifier(BaseNotifier):
    """Sends alerts to ``od_alerts`` through the configured channel (the JSON webhook by default).

    As a callback, ``kind`` says which alert the context becomes: ``system`` (a task failure callback) or
    ``long_run`` (the deadline callback; ``details`` carries ``expected_minutes``). ``task`` is the task
    instance an operator alerts from (:func:`task_ref`): alerts of its run without a task of their own get
    its log link. ``channel`` overrides ``[od_scheduler] alert_channel``; ``state`` and ``transport`` replace
    the job-history dedup store and the webhook's HTTP transport in tests.
    """

    template_fields = ()

    def __init__(
        self,
        *,
        kind: AlertKind | str = AlertKind.SYSTEM,
        platform: str | None = None,
        details: Mapping[str, Any] | None = None,
        conn_id: str = conn_ids.ALERTS,
        task: TaskRef | None = None,
        channel: AlertChannel | str | None = None,
        state: AlertState | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.kind = AlertKind(kind)
        self.platform = platform
        self.details = dict(details or {})
        self.conn_id = conn_id
        self.task = task
        self.channel = AlertChannel(channel) if channel is not None else None
        self._state = state
        self._transport = transport
        #: Conditions this notifier's clears closed since the last ``send_resolved``.
        self._cleared: list[ClearedCondition] = []

    @property
    def state(self) -> AlertState:
        """The dedup store, created on first use (never at DAG parse time)."""
        if self._state is None:
            self._state = AlertStateHook()
        return self._state

    # -- as an Airflow callback ------------------------------------------------------------------------
    def notify(self, context: Context) -> None:
        """Turn a callback's context into this notifier's alert and send it, once per open condition."""
        alert = self.alert_from_context(context)
        if alert is None:
            return
        kind = ConditionKind.SYSTEM if self.kind == AlertKind.SYSTEM else ConditionKind.LONG_RUN
        condition = Condition(key=alert.conditions[0], kind=kind, detail=alert.title)
        self.send_new([condition], lambda _new: alert)

    async def async_notify(self, context: Context) -> None:
        """The same, off the event loop (the triggerer runs deadline callbacks)."""
        await asyncio.to_thread(self.notify, context)

    def alert_from_context(self, context: Mapping[str, Any]) -> Alert | None:
        """The alert a callback context describes, or None when there is nothing to alert on."""
        if self.kind == AlertKind.SYSTEM:
            return self._system_alert(context)
        if self.kind == AlertKind.LONG_RUN:
            return self._long_run_alert(context)
        raise ConfigError(f"WebhookAlertNotifier(kind={self.kind.value!r}) cannot be used as a callback")

    def _system_alert(self, context: Mapping[str, Any]) -> Alert | None:
        dag_id, run_id = _ids(context)
        exc = context.get("exception")
        ti = context.get("ti")
        task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", None)
        if is_refusal(exc if isinstance(exc, BaseException) else None):
            self.log.info("%s refused the run on purpose (%s): not a system error, no alert", task_id, exc)
            return None
        ref = task_ref(context)
        db_error = database_error(exc if isinstance(exc, BaseException) else None)
        if db_error is not None:
            error = describe_database_error(db_error)
        elif exc is not None:
            error = clean_error(f"{type(exc).__name__}: {exc}")
        else:
            error = "see the task log"
        return Alert(
            kind=AlertKind.SYSTEM,
            severity=Severity.CRITICAL,
            title=(
                f"{dag_id}: {task_id or 'a task'} failed, so the run could do nothing "
                "(PayloadCMS, the job-history database or a connection is failing)"
            ),
            dag_id=dag_id,
            run_id=run_id,
            platform=self.platform,
            task_id=task_id,
            map_index=ref.map_index if ref else None,
            try_number=ref.try_number if ref else None,
            details={"error": error, **self.details},
            conditions=[condition_key(ConditionKind.SYSTEM, dag_id or "unknown")],
        )

    def _long_run_alert(self, context: Mapping[str, Any]) -> Alert | None:
        dag_id, run_id = _ids(context)
        dag_run = context.get("dag_run")
        dag_run = dag_run if isinstance(dag_run, Mapping) else {}
        if dag_run.get("state") in FINISHED_STATES:
            # Airflow 3.3 prunes a run's deadlines only when it succeeds, so a run that failed early still
            # misses its deadline later: it was not a long run (its failure alerted through summarize_run).
            self.log.info(
                "Run %s of %s already ended %s: no long-run alert", run_id, dag_id, dag_run["state"]
            )
            return None
        deadline = context.get("deadline")
        deadline = deadline if isinstance(deadline, Mapping) else {}
        queued_at = _parse_time(dag_run.get("queued_at"))
        now = datetime.now(UTC)
        elapsed = round((now - queued_at).total_seconds() / 60, 1) if queued_at else None
        expected = self.details.get("expected_minutes")
        dealers: list[AlertDealer] = []
        if dag_id and run_id:
            dealers = self._running_dealers(dag_id, run_id)
        return Alert(
            kind=AlertKind.LONG_RUN,
            severity=Severity.WARNING,
            title=(
                f"{dag_id}: run still going {elapsed if elapsed is not None else '?'} min after it was "
                f"queued (expected at most {expected} min); {len(dealers)} dealer(s) still running"
            ),
            dag_id=dag_id,
            run_id=run_id,
            platform=self.platform,
            dealers=dealers,
            counts={"elapsed_minutes": elapsed or 0.0, "expected_minutes": float(expected or 0)},
            details={
                "queued_at": dag_run.get("queued_at"),
                "start_date": dag_run.get("start_date"),
                "state": dag_run.get("state"),
                "deadline_time": str(deadline.get("deadline_time"))
                if deadline.get("deadline_time")
                else None,
            },
            conditions=[condition_key(ConditionKind.LONG_RUN, dag_id or "unknown")],
        )

    def _running_dealers(self, dag_id: str, run_id: str) -> list[AlertDealer]:
        """The run's dealers still ``running`` in the job history, named from the dealer directory (best
        effort: the alert goes out anyway)."""
        try:
            history = JobHistoryHook()
            rows = [
                r for r in history.executions.run_executions(dag_id, run_id) if r.status == JobStatus.RUNNING
            ]
            names = history.directory.dealer_names([r.dealer_id for r in rows])
        except Exception as err:  # any database trouble only costs the alert this detail
            self.log.warning("Could not read the run's job history for the long-run alert: %s", err)
            return []
        return [
            AlertDealer(
                dealer_id=row.dealer_id,
                platform=row.platform,
                name=names.get(row.dealer_id, (None, None))[0],
                slug=names.get(row.dealer_id, (None, None))[1],
                condition="running",
                detail=f"running since {row.start_time.astimezone(UTC):%H:%M:%S} UTC",
            )
            for row in rows
        ]

    # -- dedup ----------------------------------------------------------------------------------------
    def send_new(
        self,
        conditions: Sequence[Condition],
        build: Callable[[list[Condition]], Alert],
        *,
        send_anyway: bool = False,
    ) -> Alert | None:
        """Send ``build(new)`` for the conditions not alerted yet; returns that alert (None: nothing new).

        ``send_anyway``: the alert carries one-time news of its own (the jobs a check closed), so it is sent
        even when no condition is new (``build([])``).
        """
        wanted = list({c.key: c for c in conditions}.values())
        if not wanted and not send_anyway:
            return None
        claimed: set[str] = set()
        deduplicated = True
        if wanted:
            try:
                claimed = set(self.state.claim(wanted))
            except Exception as err:  # the dedup store is down (maybe the very system error)
                self.log.warning("Alert state unavailable (%s): sending without deduplication", err)
                claimed, deduplicated = {c.key for c in wanted}, False
        new = [c for c in wanted if c.key in claimed]
        for known in (c for c in wanted if c.key not in claimed):
            self.log.info("Already alerted, still open: %s", known.key)
        if not new and not send_anyway:
            return None
        alert = build(new)
        if self.send(alert) == Delivery.FAILED and deduplicated and new:
            self.state.release([c.key for c in new])
        return alert

    def clear(self, keys: Collection[str]) -> list[str]:
        """Close conditions a check found gone (they alert again if they come back); returns their keys.

        Those that were alerted go into the check's resolved message (:meth:`send_resolved`).
        """
        return self._closed(self.state.clear(keys))

    def clear_open(self, kinds: Collection[str], keep: Collection[str]) -> list[str]:
        """Close every open condition of ``kinds`` not in ``keep``; returns their keys (see :meth:`clear`)."""
        return self._closed(self.state.clear_open(kinds, keep))

    def _closed(self, cleared: list[ClearedCondition]) -> list[str]:
        for item in cleared:
            self.log.info(
                "Alert condition cleared: %s%s",
                item.key,
                "" if item.alerted else " (its alert was never delivered: no resolved message for it)",
            )
        self._cleared += cleared
        return [item.key for item in cleared]

    def send_resolved(self, *, dag_id: str, run_id: str, platform: str | None = None) -> Alert | None:
        """Send ONE ``resolved`` message for the alerted conditions this check's clears closed (None: none).

        Call once per check, after its clears. A delivery that fails is only logged: the conditions are
        closed, so nothing sends it again.
        """
        resolved = [c for c in self._cleared if c.alerted]
        self._cleared = []
        if not resolved:
            return None
        alert = resolved_alert(
            resolved, dag_id=dag_id, run_id=run_id, platform=platform, now=datetime.now(UTC)
        )
        self.send(alert)  # a failure is logged there, and not retried: the conditions are closed
        return alert

    # -- delivery -------------------------------------------------------------------------------------
    def linked(self, alert: Alert) -> Alert:
        """``alert`` with the notifier's task filled in where it has none of its own (same run), and the
        links to its DAG run and the task's log in the Airflow UI (none when ``[api] base_url`` is unset)."""
        update: dict[str, Any] = {}
        task = self.task
        if (
            task is not None
            and alert.dag_id in (None, task.dag_id)
            and alert.run_id in (None, task.run_id)
            and alert.task_id in (None, task.task_id)
        ):
            update = {"dag_id": task.dag_id, "run_id": task.run_id, "task_id": task.task_id}
            if alert.map_index is None:
                update["map_index"] = task.map_index
            if alert.try_number is None:
                update["try_number"] = task.try_number
        alert = alert.model_copy(update=update)
        run_url, log_url = ui_links(
            ui_base_url(),
            dag_id=alert.dag_id,
            run_id=alert.run_id,
            task_id=alert.task_id,
            map_index=alert.map_index,
            try_number=alert.try_number,
        )
        return alert.model_copy(
            update={"dag_run_url": alert.dag_run_url or run_url, "log_url": alert.log_url or log_url}
        )

    def send(self, alert: Alert) -> Delivery:
        """Deliver one alert (no dedup) with its links. Never raises for a missing connection, a missing
        provider or a failing receiver."""
        alert = self.linked(alert)
        name = self.channel or AlertChannel(get_settings().alert_channel)
        secrets: Sequence[str] = ()
        try:
            channel = alert_channel(name, self.conn_id, self._transport)
            secrets = channel.secrets()
        except AirflowNotFoundException:
            self.log.warning(
                "No %r connection, so this %s alert is only logged:\n%s",
                self.conn_id,
                alert.kind.value,
                scrub({"text": alert.text()}, ())["text"],  # the plain text: no Slack escapes in logs
            )
            return Delivery.LOGGED
        except ConfigError as err:
            return self._failed(alert, name, err, secrets)
        try:
            answer = channel.deliver(alert, secrets)
        except (UpstreamError, ConfigError) as err:
            return self._failed(alert, channel.name, err, secrets)
        self.log.info(
            "Sent the %s alert to %r (%s, %s): %s",
            alert.kind.value,
            self.conn_id,
            channel.name,
            answer,
            scrub({"title": alert.title}, secrets)["title"],
        )
        return Delivery.SENT

    def _failed(self, alert: Alert, channel: str, err: Exception, secrets: Sequence[str]) -> Delivery:
        self.log.error(
            "The %s alert could not be delivered to %r (%s): %s. %s The alert:\n%s",
            alert.kind.value,
            self.conn_id,
            channel,
            scrub({"e": str(err)}, secrets)["e"],
            "It is not retried: its conditions are closed."
            if alert.kind == AlertKind.RESOLVED
            else "It is retried at the next check.",
            scrub({"text": alert.text()}, secrets)["text"],
        )
        return Delivery.FAILED


def scrub(payload: dict[str, Any], secrets: Sequence[str]) -> dict[str, Any]:
    """``payload`` with every secret Airflow knows and every secret-looking URL part masked."""
    redactor = Redactor(secrets)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return redactor.redact(value)
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return value

    masked: dict[str, Any] = walk(redact(payload))
    return masked


async def notify_long_run(
    *, platform: str, expected_minutes: float, context: dict[str, Any] | None = None
) -> None:
    """``AsyncCallback`` target of the platform DAGs' deadline: the run is taking longer than expected."""
    notifier = WebhookAlertNotifier(
        kind=AlertKind.LONG_RUN, platform=platform, details={"expected_minutes": expected_minutes}
    )
    await notifier.async_notify(context or {})  # type: ignore[arg-type]
