"""Alerts to the ``od_alerts`` webhook through one Airflow notifier, deduplicated in the job-history database.

:class:`WebhookAlertNotifier` is used three ways:

- as a task callback: ``on_failure_callback=WebhookAlertNotifier(kind="system", platform=...)`` on
  ``list_dealers`` and on the freshness check: a run that cannot even list its dealers (PayloadCMS or the
  job-history database unreachable, a connection missing) fails *and* alerts;
- from the platform DAGs' ``DeadlineAlert``: :func:`notify_long_run` (an ``AsyncCallback``, run by the
  triggerer) alerts when a run is still going after its expected duration;
- from operators: ``send_new(conditions, build)`` in ``summarize_run`` (failure rate, inventory
  anomalies) and in ``inventory_freshness`` (one digest, also sent for the jobs it closed when nothing else
  is new); ``send(alert)`` in ``summarize_run`` when the job-history database is unreachable (a system alert
  without dedup: the dedup state lives in that database).

Dedup: every alert reports one or more :class:`~od_scheduler.models.alert.Condition` keys. The notifier
claims them in ``alert_state`` first and sends only what is new; a failed delivery releases the claim so
the next check tries again; callers *clear* a condition when a check finds it gone, so a recurrence alerts
again. When the alert state itself is unreachable (the database is down: a system alert) the alert is sent
without dedup: better twice than never. Nothing on the delivery path (``send``) needs that database.

A database error in an alert names what failed, never where: libpq's host, address, port, socket and user
(and the ``od_job_history`` connection's host, login, schema and password) are removed
(:func:`describe_database_error`).

Delivery never fails the caller: no ``od_alerts`` connection → the alert is logged at WARNING; a webhook
that is down or refuses → logged at ERROR. Payloads are scrubbed before they leave: Airflow's secrets masker
(connection passwords and every ``mask_secret`` value of this process) and the client's redaction patterns
(``token=``-style parameters, URL user-info) are applied to every string in them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx
import psycopg
from airflow.sdk import BaseHook, BaseNotifier, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from airflow.sdk.log import redact

from od_scheduler import conn_ids
from od_scheduler.clients.base import Redactor
from od_scheduler.exceptions import ConfigError, PayloadError, UpstreamError
from od_scheduler.hooks.alert_state import AlertStateHook
from od_scheduler.hooks.alerts import AlertWebhookHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.alert import (
    Alert,
    AlertDealer,
    AlertKind,
    Condition,
    ConditionKind,
    Severity,
    clean_db_error,
    clean_error,
    condition_key,
)
from od_scheduler.models.job import JobStatus

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

    def clear(self, keys: Collection[str]) -> list[str]: ...

    def clear_open(self, kinds: Collection[str], keep: Collection[str]) -> list[str]: ...


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
    """Posts alerts (Slack-compatible ``text`` + structured fields) to the ``od_alerts`` webhook.

    As a callback, ``kind`` says which alert the context becomes: ``system`` (a task failure callback) or
    ``long_run`` (the deadline callback; ``details`` carries ``expected_minutes``). ``state`` and
    ``transport`` replace the job-history dedup store and the HTTP transport in tests.
    """

    template_fields = ()

    def __init__(
        self,
        *,
        kind: AlertKind | str = AlertKind.SYSTEM,
        platform: str | None = None,
        details: Mapping[str, Any] | None = None,
        conn_id: str = conn_ids.ALERTS,
        state: AlertState | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.kind = AlertKind(kind)
        self.platform = platform
        self.details = dict(details or {})
        self.conn_id = conn_id
        self._state = state
        self._transport = transport

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
            rows = [r for r in history.run_executions(dag_id, run_id) if r.status == JobStatus.RUNNING]
            names = history.dealer_names([r.dealer_id for r in rows])
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
        """Close conditions a check found gone (they alert again if they come back)."""
        cleared = self.state.clear(keys)
        for key in cleared:
            self.log.info("Alert condition cleared: %s", key)
        return cleared

    def clear_open(self, kinds: Collection[str], keep: Collection[str]) -> list[str]:
        """Close every open condition of ``kinds`` not in ``keep``."""
        cleared = self.state.clear_open(kinds, keep)
        for key in cleared:
            self.log.info("Alert condition cleared: %s", key)
        return cleared

    # -- delivery -------------------------------------------------------------------------------------
    def send(self, alert: Alert) -> Delivery:
        """Post one alert (no dedup). Never raises for a missing connection or a failing webhook."""
        try:
            hook = AlertWebhookHook(self.conn_id)
            secrets = [str(hook.connection.password or "")]
        except AirflowNotFoundException:
            self.log.warning(
                "No %r connection, so this %s alert is only logged:\n%s",
                self.conn_id,
                alert.kind.value,
                scrub({"text": alert.text()}, ())["text"],  # the plain text: no Slack escapes in logs
            )
            return Delivery.LOGGED
        payload = scrub(alert.payload(), secrets)
        try:
            with hook.get_client(transport=self._transport) as client:
                status = client.post_alert(payload)
        except (UpstreamError, ConfigError) as err:
            self.log.error(
                "The %s alert could not be delivered to the %r webhook (%s); it is retried at the next "
                "check. The alert:\n%s",
                alert.kind.value,
                self.conn_id,
                err,
                scrub({"text": alert.text()}, secrets)["text"],
            )
            return Delivery.FAILED
        self.log.info(
            "Sent the %s alert to %r (HTTP %d): %s", alert.kind.value, self.conn_id, status, alert.title
        )
        return Delivery.SENT


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
