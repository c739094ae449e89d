"""The ingest of a shard runs beside its pull: each dealer is ingested as soon as its pull has staged it.

A shard's ``ingest_inventory`` task does not wait for its ``pull_inventory`` task to end (it has no edge from
it: Airflow allows no trigger rule that starts a task before its upstream ends inside a mapped group). It
reads its dealers' rows of this run again and again and hands on each dealer whose pull staged
(:func:`ready_ids`), while it asks Airflow for the pull task's state (:class:`TaskPhase`) to know when no
more will come. So the Data API is busy from the first staged dealer of a run, not from the end of the first
wave of pull tasks.

The rules, each for a reason:

- A dealer is handed on when its row is ``running`` with a ``pull_result`` (staged, waiting for its ingest),
  or is ``success`` (nothing to do: already ingested in this run). A ``failed`` row that still holds a
  ``pull_result`` (its ingest failed in an earlier try) is handed on only once the pull task has ended:
  before that the pull's next try would pull it again, and the two must never work on one dealer at once.
- Once the pull task has ended (``success``, ``failed``, ...), every dealer not handed on yet is handed on,
  and the ingest classifies it as it always did (nothing staged: nothing to do).
- While nothing is ready and no dealer is at work, the ingest does not sit on its ``data_api`` slot for
  long: after :data:`IDLE_RELEASE_S` of that (its pull waiting for its pool, for a retry, deferred, or
  staging nothing) it is rescheduled (``up_for_reschedule``, as a sensor in reschedule mode) and comes back
  after :func:`reschedule_delay_s`. Dealers already ingested are ``success`` in the job history, so the next
  pass passes over them. Once a dealer failed in this pass the ingest stays until the pull has ended, so
  that the pass's verdict (and its Airflow retry) covers that failure.
- The first wait is :data:`FIRST_RESCHEDULE_S` (30 s), not less: Airflow 3.3's scheduler fails a task
  whose previous execution's "finished" event it processes after it has queued the task again (the two
  executions share their try number; seen with a 5 s wait and an event 6 s late). Under ``dag.test()`` and
  ``airflow dags test`` (:func:`runs_in_process`: one task at a time, in this process, no executor) an
  ingest that runs before its pull could never see it start: it asks for the pull's state once, and is
  rescheduled at once (for :data:`IN_PROCESS_RESCHEDULE_S`) unless the pull has ended.
- A pass is bounded: after ``stop_after_s`` (half the task's ``execution_timeout``) it hands on no more
  dealers, lets those at work end and ends: rescheduled, or failed (retried) when a dealer failed, so a pull
  that stages for longer than a task may run never gets its ingest killed by the timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from od_scheduler.models.job import DealerRef, JobExecution, JobStatus

#: How often the rows are read again while a worker of the ingest is free and the pull goes on (seconds).
POLL_S = 0.5
#: How long the ingest waits, holding its slot, for a running pull to stage a dealer before it lets the slot
#: go and comes back later (seconds).
IDLE_RELEASE_S = 20.0
#: The first wait of a rescheduled ingest (seconds); it doubles with each reschedule of the same try, up to
#: :data:`MAX_RESCHEDULE_S`. Never short (see the module docstring).
FIRST_RESCHEDULE_S = 30
MAX_RESCHEDULE_S = 120
#: The wait of an ingest rescheduled under ``dag.test()`` (one task at a time: the pull runs meanwhile).
IN_PROCESS_RESCHEDULE_S = 1


class TaskPhase(StrEnum):
    """Where a task of the shard is (its pull, as the ingest sees it, or its ingest, as the pull sees it)."""

    #: Not running yet: no state, ``scheduled`` (or waiting for its pool).
    NOT_STARTED = "not started"
    #: Queued or running: it may stage a dealer any moment.
    WORKING = "working"
    #: Between tries, rescheduled or deferred: nothing will be staged for a while.
    PAUSED = "paused"
    #: Ended (``success``, ``failed``, ``upstream_failed``, ``skipped``, ``removed``): nothing more comes.
    ENDED = "ended"

    @classmethod
    def of(cls, state: str | None) -> TaskPhase:
        """The phase of an Airflow task-instance state (None: no state yet)."""
        if state in (None, "scheduled"):
            return cls.NOT_STARTED
        if state in ("queued", "running", "restarting"):
            return cls.WORKING
        if state in ("success", "failed", "upstream_failed", "skipped", "removed"):
            return cls.ENDED
        return cls.PAUSED


def runs_in_process() -> bool:
    """Whether this task runs in the process of its runner, one task at a time (``dag.test()``, ``airflow dags
    test``): the Task SDK's in-process supervisor, not an executor's."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.supervisor import InProcessSupervisorComms

    return isinstance(getattr(task_runner, "SUPERVISOR_COMMS", None), InProcessSupervisorComms)


def sibling_state(context: Mapping[str, Any], task_id: str) -> str | None:
    """The Airflow state of ``task_id`` in this task's run, at this task's map index (None: no state yet).

    Asked through the task's supervisor (the Task SDK's ``get_task_states``), as any task may.
    """
    ti = context["ti"]
    states = ti.get_task_states(
        dag_id=ti.dag_id, map_index=ti.map_index, task_ids=[task_id], run_ids=[ti.run_id]
    )
    key = task_id if ti.map_index is None or ti.map_index < 0 else f"{task_id}_{ti.map_index}"
    state = states.get(ti.run_id, {}).get(key)
    return None if state is None else str(state)


#: Why an idle ingest lets its slot go, by its pull's phase (an ended pull never lets it go).
_WHY = {
    TaskPhase.NOT_STARTED: "its pull has not started yet",
    TaskPhase.PAUSED: "its pull is waiting (for a retry, or deferred)",
    TaskPhase.WORKING: f"its pull staged no dealer for {IDLE_RELEASE_S:.0f}s",
}


def ready_ids(rows: Mapping[str, JobExecution], waiting: Sequence[str], *, pull_ended: bool) -> list[str]:
    """The dealers of ``waiting`` (in that order) whose ingest can begin now (see the module docstring)."""
    if pull_ended:
        return list(waiting)
    ready = []
    for dealer_id in waiting:
        row = rows.get(dealer_id)
        if row is None:
            continue
        if row.status == JobStatus.SUCCESS or (
            row.status == JobStatus.RUNNING and row.pull_result is not None
        ):
            ready.append(dealer_id)
    return ready


def reschedule_delay_s(reschedules: int) -> int:
    """How long a rescheduled ingest waits: :data:`FIRST_RESCHEDULE_S`, doubled per earlier reschedule of
    this try, at most :data:`MAX_RESCHEDULE_S`."""
    return int(min(MAX_RESCHEDULE_S, FIRST_RESCHEDULE_S * 2 ** min(max(reschedules, 0), 8)))


class StagedFeed:
    """The dealers of a shard in the order their pulls stage them (for :func:`~.shard.run_dealers`).

    ``read_rows(dealer_ids)`` reads this run's rows of those dealers; ``pull_state()`` the pull task's
    Airflow state. Iterating yields each dealer once; :meth:`row` is the row it was handed on with. The
    dealers' work reports its end with :meth:`finished`. When the feed stops early to let the slot go,
    :attr:`reschedule_at` says until when (and the dealers not handed on are :attr:`waiting`).
    """

    def __init__(
        self,
        dealers: Sequence[DealerRef],
        *,
        read_rows: Callable[[Sequence[str]], Mapping[str, JobExecution]],
        pull_state: Callable[[], str | None],
        workers: int,
        reschedules: int = 0,
        stop_after_s: float | None = None,
        in_process: bool = False,
        poll_s: float = POLL_S,
        idle_release_s: float = IDLE_RELEASE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refs = {ref.dealer_id: ref for ref in dealers}
        self.waiting: list[str] = list(self._refs)
        self._rows: dict[str, JobExecution] = {}
        self._read_rows = read_rows
        self._pull_state = pull_state
        self._workers = max(1, workers)
        self._reschedules = reschedules
        self._stop_after_s = stop_after_s
        self._in_process = in_process
        self._poll_s = poll_s
        self._idle_release_s = idle_release_s
        self._clock = clock
        self._changed = threading.Condition()
        self._at_work = 0
        self._failed = False
        self.reschedule_at: datetime | None = None
        #: Why the feed let its slot go (for the task log).
        self.reason: str | None = None

    def row(self, dealer_id: str) -> JobExecution | None:
        """The dealer's row as it was when the dealer was handed on."""
        return self._rows.get(dealer_id)

    def finished(self, *, failed: bool) -> None:
        """A dealer handed on has ended (``failed``: its ingest failed)."""
        with self._changed:
            self._at_work -= 1
            self._failed = self._failed or failed
            self._changed.notify_all()

    def _wait_for_a_worker(self) -> None:
        with self._changed:
            while self._at_work >= self._workers:
                self._changed.wait()

    def _idle(self) -> bool:
        with self._changed:
            return self._at_work == 0

    def _let_go(self, reason: str, *, first: bool = False) -> None:
        self.reason = reason
        if self._in_process:
            delay = IN_PROCESS_RESCHEDULE_S
        else:
            delay = reschedule_delay_s(0 if first else self._reschedules)
        self.reschedule_at = datetime.now(UTC) + timedelta(seconds=delay)

    def _one_task_at_a_time(self) -> Iterator[DealerRef]:
        """Under ``dag.test()``: the pull has either ended or not started, and nothing runs beside this task.

        The pull's state is asked once, before any dealer's thread exists: the in-process supervisor of
        ``dag.test()`` is not thread-safe (while it answers one request, ``SUPERVISOR_COMMS`` is missing for
        every other thread of the process).
        """
        phase = TaskPhase.of(self._pull_state())
        if phase is not TaskPhase.ENDED:
            self._let_go(_WHY[phase])
            return
        rows = self._read_rows(self.waiting)
        yield from self._hand_on(ready_ids(rows, self.waiting, pull_ended=True), rows)

    def _hand_on(self, dealer_ids: list[str], rows: Mapping[str, JobExecution]) -> Iterator[DealerRef]:
        for dealer_id in dealer_ids:
            self._wait_for_a_worker()
            self.waiting.remove(dealer_id)
            if dealer_id in rows:
                self._rows[dealer_id] = rows[dealer_id]
            with self._changed:
                self._at_work += 1
            yield self._refs[dealer_id]

    def __iter__(self) -> Iterator[DealerRef]:
        if self._in_process:
            yield from self._one_task_at_a_time()
            return
        began = idle_since = self._clock()
        while self.waiting:
            self._wait_for_a_worker()
            if self._stop_after_s is not None and self._clock() - began >= self._stop_after_s:
                # Bounded: a pull that stages for longer than this task may run must not take it past its
                # execution_timeout; the dealers at work end, the rest are for the next pass.
                self._let_go(f"this pass has run for {self._stop_after_s:.0f}s", first=True)
                return
            rows = self._read_rows(self.waiting)
            ready = ready_ids(rows, self.waiting, pull_ended=False)
            if ready:
                yield from self._hand_on(ready, rows)
                idle_since = self._clock()
                continue
            phase = TaskPhase.of(self._pull_state())
            if phase is TaskPhase.ENDED:
                # Read once more: the pull may have staged its last dealers just before it ended.
                rows = self._read_rows(self.waiting)
                yield from self._hand_on(ready_ids(rows, self.waiting, pull_ended=True), rows)
                return
            if not self._idle():
                with self._changed:
                    self._changed.wait(self._poll_s)
                idle_since = self._clock()
                continue
            if not self._failed and self._clock() - idle_since >= self._idle_release_s:
                self._let_go(_WHY[phase])
                return
            time.sleep(self._poll_s)
