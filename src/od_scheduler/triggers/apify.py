"""ApifyRunTrigger: wait for an Apify actor run in the triggerer, so no worker slot is held while it scrapes.

It long-polls the run (:class:`~od_scheduler.clients.apify.ApifyRunWatcher`) until our deadline and fires
one event, ``finished``, ``timeout`` or ``error``, carrying ``run_id``, request counters and the operator's
``carry``; :class:`ApifyShardTrigger` watches a shard's runs at once. The abort of a run whose task was
cleared or marked is in ``on_kill``, which first checks that the task is no longer deferred. Why:
docs/design.md, "Web scraping (Apify runs)".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from od_scheduler.clients.apify import MAX_WAIT_FOR_FINISH_S, ApifyRunWatcher, WatchResult
from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError, TransientUpstreamError
from od_scheduler.hooks.apify import ApifyHook
from od_scheduler.platforms import WEB_SCRAPING

FINISHED = "finished"
TIMEOUT = "timeout"
ERROR = "error"
#: Airflow gives ``on_kill`` a bounded time (``[triggerer] on_kill_timeout``, 30 s): the abort fits in it.
ABORT_TIMEOUT_S = 10.0
ABORT_ATTEMPTS = 2
#: The task instance state of a task that still waits for a trigger.
DEFERRED = "deferred"


class ApifyRunTrigger(BaseTrigger):
    """Fires once the Apify run ``run_id`` is terminal, or when ``deadline`` (epoch seconds) has passed."""

    def __init__(
        self,
        *,
        run_id: str,
        deadline: float,
        dealer: str = "",
        conn_id: str = WEB_SCRAPING.conn_id,
        wait_for_finish_s: int = MAX_WAIT_FOR_FINISH_S,
        poll_interval_s: float = 1.0,
        carry: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.deadline = float(deadline)
        self.dealer = dealer
        self.conn_id = conn_id
        self.wait_for_finish_s = int(wait_for_finish_s)
        self.poll_interval_s = float(poll_interval_s)
        self.carry = dict(carry or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Importable classpath and the kwargs that rebuild this trigger in the triggerer (no secrets)."""
        cls = type(self)
        return (
            f"{cls.__module__}.{cls.__qualname__}",
            {
                "run_id": self.run_id,
                "deadline": self.deadline,
                "dealer": self.dealer,
                "conn_id": self.conn_id,
                "wait_for_finish_s": self.wait_for_finish_s,
                "poll_interval_s": self.poll_interval_s,
                "carry": self.carry,
            },
        )

    async def make_watcher(
        self, *, timeout: float | None = None, max_attempts: int | None = None
    ) -> ApifyRunWatcher:
        """The watcher on the trigger's connection (tests substitute the HTTP transport here)."""
        return await ApifyHook(self.conn_id).aget_watcher(timeout=timeout, max_attempts=max_attempts)

    async def task_state(self) -> str | None:
        """The deferred task instance's current state from the Airflow API (``None``: no state, e.g. cleared).

        Raises ``LookupError`` when the trigger has no task instance or Airflow does not list it.
        """
        ti = self.task_instance
        if ti is None:
            raise LookupError("the trigger has no task instance")
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        raw_index = getattr(ti, "map_index", None)
        map_index = -1 if raw_index is None else int(raw_index)
        states = await asyncio.to_thread(
            RuntimeTaskInstance.get_task_states,
            dag_id=ti.dag_id,
            task_ids=[ti.task_id],
            run_ids=[ti.run_id],
            map_index=map_index if map_index >= 0 else None,
        )
        # Airflow keys a mapped instance's state as "<task_id>_<map_index>".
        key = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
        of_run = states.get(ti.run_id) or {}
        if key not in of_run:
            raise LookupError(f"Airflow lists no task instance {ti.dag_id}/{ti.run_id}/{key}")
        state = of_run[key]
        return None if state is None else str(getattr(state, "value", state))

    async def on_kill(self) -> None:
        """The task was cleared, marked failed or succeeded while deferred: abort its Apify run.

        Aborts only when the task is really no longer waiting for this run (see the module docstring).
        Errors are logged, never raised: Airflow ignores them, and the run id is in the message so it can
        be aborted in the Apify console.
        """
        of = f" of {self.dealer}" if self.dealer else ""
        try:
            state = await self.task_state()
        except Exception as err:  # unknown state: never abort a run that a task may still wait for
            self.log.warning(
                "Apify run %s%s: trigger cancelled, but the task's state could not be read (%s: %s); "
                "not aborting. If the task was cleared or marked failed, abort the run in the Apify console.",
                self.run_id,
                of,
                type(err).__name__,
                err,
            )
            return
        if state == DEFERRED:
            self.log.info(
                "Apify run %s%s: trigger cancelled while its task is still deferred (it moved to another "
                "triggerer, or a new try waits for the same run); the run goes on",
                self.run_id,
                of,
            )
            return
        self.log.warning(
            "Apify run %s%s: its task was cleared or marked %s while deferred; aborting the run",
            self.run_id,
            of,
            state or "(no state)",
        )
        try:
            watcher = await self.make_watcher(timeout=ABORT_TIMEOUT_S, max_attempts=ABORT_ATTEMPTS)
            async with watcher:
                run = await watcher.abort_run(self.run_id)
        except (
            TransientUpstreamError,
            PermanentUpstreamError,
            PayloadError,
            ConfigError,
            AirflowNotFoundException,
        ) as err:
            self.log.error(
                "Apify run %s: the abort failed (%s); abort it in the Apify console", self.run_id, err
            )
            return
        self.log.warning("Apify run %s: abort accepted, now %s", self.run_id, run.status)

    def _event(self, status: str, watcher: ApifyRunWatcher | None, **fields: Any) -> TriggerEvent:
        metrics: dict[str, Any] = watcher.stats.as_metrics() if watcher is not None else {}
        metrics.pop("pages", None)  # pages are the dataset's, counted on the worker
        return TriggerEvent(
            {
                "status": status,
                "run_id": self.run_id,
                "dealer": self.dealer,
                "run": None,
                "error": None,
                "permanent": False,
                "metrics": metrics,
                "carry": self.carry,
                **fields,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch the run and yield one event (see the module docstring)."""
        watcher: ApifyRunWatcher | None = None
        result: WatchResult | None = None
        failure: tuple[str, bool] | None = None
        self.log.info(
            "Waiting for Apify run %s%s (deferred; polls of up to %ds, deadline in %.0fs)",
            self.run_id,
            f" of {self.dealer}" if self.dealer else "",
            self.wait_for_finish_s,
            self.deadline - time.time(),
        )
        try:
            watcher = await self.make_watcher()
            async with watcher:
                result = await watcher.wait_until_finished(
                    self.run_id,
                    deadline=self.deadline,
                    wait_for_finish_s=self.wait_for_finish_s,
                    min_interval_s=self.poll_interval_s,
                )
        except asyncio.CancelledError:
            # Not ours to abort here: a shutdown or a move to another triggerer cancels too (see on_kill).
            self.log.info("Stopped watching Apify run %s: the trigger was cancelled", self.run_id)
            raise
        except (PermanentUpstreamError, PayloadError, ConfigError, AirflowNotFoundException) as err:
            failure = (f"{type(err).__name__}: {err}", True)
        except TransientUpstreamError as err:
            # Only from building the watcher: a failing poll is retried until the deadline.
            failure = (f"{type(err).__name__}: {err}", False)
        # Yield only after the watcher is closed: the consumer may never resume this generator.
        if failure is not None:
            self.log.error("Apify run %s could not be watched: %s", self.run_id, failure[0])
            yield self._event(ERROR, watcher, error=failure[0], permanent=failure[1])
            return
        assert result is not None
        fields: dict[str, Any] = {
            "run": result.run.model_dump(mode="json", by_alias=True) if result.run else None,
            "polls": result.polls,
            "waited_s": round(result.waited_s, 3),
            "poll_failures": result.poll_failures,
        }
        if result.finished:
            assert result.run is not None
            self.log.info("Apify %s after %d poll(s)", result.run.describe(), result.polls)
            yield self._event(FINISHED, watcher, **fields)
        else:
            last = result.run.status if result.run else "unknown"
            self.log.warning(
                "Apify run %s still %s at the deadline, after %d poll(s) and %.0fs",
                self.run_id,
                last,
                result.polls,
                result.waited_s,
            )
            yield self._event(TIMEOUT, watcher, **fields)


class ApifyShardTrigger(BaseTrigger):
    """Watches the Apify runs of a shard's dealers at once and fires one event when every run is terminal
    or past its deadline: ``{"events": [<an ApifyRunTrigger event per run>, ...]}``.

    Each run is watched exactly as :class:`ApifyRunTrigger` watches it (its own deadline, polls, errors);
    the shard task resumes once, with every dealer's outcome. ``runs`` holds one ``ApifyRunTrigger``'s
    kwargs per dealer. ``on_kill`` (the task was cleared or marked while deferred) aborts every run.
    """

    def __init__(self, *, runs: list[dict[str, Any]]) -> None:
        super().__init__()
        self.runs = [dict(run) for run in runs]

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Importable classpath and the kwargs that rebuild this trigger in the triggerer (no secrets)."""
        cls = type(self)
        return (f"{cls.__module__}.{cls.__qualname__}", {"runs": self.runs})

    def watchers(self) -> list[ApifyRunTrigger]:
        """One single-run trigger per run, sharing this trigger's task instance (for ``on_kill``)."""
        triggers = [ApifyRunTrigger(**run) for run in self.runs]
        for trigger in triggers:
            trigger.task_instance = self.task_instance
        return triggers

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch every run concurrently; one event with all their events."""

        async def first_event(trigger: ApifyRunTrigger) -> dict[str, Any]:
            async for event in trigger.run():
                return dict(event.payload)
            raise RuntimeError(f"the watch of Apify run {trigger.run_id} ended without an event")

        self.log.info("Waiting for %d Apify run(s) of this shard", len(self.runs))
        events = await asyncio.gather(*(first_event(t) for t in self.watchers()))
        yield TriggerEvent({"events": list(events)})

    async def on_kill(self) -> None:
        """The task was cleared or marked while deferred: abort each run (each checks the task's state)."""
        for trigger in self.watchers():
            await trigger.on_kill()
