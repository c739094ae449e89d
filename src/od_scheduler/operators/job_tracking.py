"""Shared plumbing for the per-dealer operators: the job-history row and how errors end it.

Transient upstream errors are re-raised so Airflow retries the task; permanent ones (bad credentials,
bad config, unusable payloads) become ``AirflowFailException`` so it fails at once. Either way the
dealer's `job_executions` row ends ``failed`` with the error text before the exception leaves.

The dealer's lease (``dealer_leases``) lasts from the run's pull to its last ingest try: it is renewed at
every try's start, during long work and at every resume from a deferral, kept across a failure Airflow
retries, and released on success, on a final failure, or by ``summarize_run``. A try that finds another
run holding it (this run's lease expired and that run took it) writes nothing and fails naming that run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.hooks.stores.executions import ExecutionStore, OtherRun
from od_scheduler.models.job import DealerRef, ExecutionKey, JobStatus
from od_scheduler.settings import get_settings

PERMANENT = (PermanentUpstreamError, ConfigError, PayloadError)

#: Set when a shard task is being stopped (killed, timed out) while its dealers' threads still work: each
#: dealer stops at its next lease check instead of running on after its task has ended.
TASK_STOPPING = threading.Event()


class TaskStopping(Exception):
    """The dealer's task is being stopped (killed or timed out): its work ends here."""


class InventoryAnomaly(AirflowFailException):
    """Fails the dealer now for an inventory anomaly; :func:`failing_job` records ``anomaly`` on its job row
    (the field the anomaly alerts read)."""

    def __init__(self, message: str, *, anomaly: str) -> None:
        super().__init__(message)
        self.anomaly = anomaly


def execution_key(context: Context, dealer: DealerRef) -> ExecutionKey:
    """The job-history key of this dealer in this DAG run."""
    return dealer.key(dag_id=context["dag"].dag_id, run_id=context["run_id"])


def describe(err: BaseException) -> str:
    """One-line error text for the job history: type and message, never a traceback."""
    text = str(err).strip() or "(no message)"
    return f"{type(err).__name__}: {text}"


class DealerLease:
    """This run's lease on one dealer x platform, kept from its pull to its last ingest try.

    ``hold()`` renews it to ``lease_minutes`` from now (re-taking it if nobody holds it) and, when another
    run holds it — this run's lease expired and that run took it — raises ``AirflowFailException`` naming
    that run, before anything is written. ``keep()`` is the cheap form for loops: it renews only once a
    sixth of the lease has passed since the last renewal.
    """

    def __init__(
        self, executions: ExecutionStore, key: ExecutionKey, *, label: str, what: str, held: bool = False
    ) -> None:
        self.executions = executions
        self.key = key
        self.label = label
        self.what = what
        self.minutes = get_settings().lease_minutes
        #: monotonic time of the last renewal; None: not renewed by this process yet.
        self.renewed: float | None = time.monotonic() if held else None

    def hold(self) -> None:
        """Renew the lease now, or fail naming the run that holds it."""
        holder = self.renew()
        if holder is not None:
            raise self.lost(holder)

    def renew(self) -> OtherRun | None:
        """Renew the lease now; returns the run that holds it instead (then nothing is renewed), or None.

        For a caller that commits what it already did before refusing to go on (:meth:`lost`)."""
        holder = self.executions.renew_lease(self.key, minutes=self.minutes)
        if holder is None:
            self.renewed = time.monotonic()
        return holder

    def lost(self, holder: OtherRun) -> AirflowFailException:
        """The error that refuses to go on once ``holder`` holds the lease."""
        return AirflowFailException(lease_lost(self.label, self.what, holder))

    def keep(self) -> None:
        """Renew the lease when a sixth of its length passed since the last renewal (or none was made).

        Also where a dealer's work notices that its task is being stopped (``TASK_STOPPING``)."""
        if TASK_STOPPING.is_set():
            raise TaskStopping(f"{self.what} of {self.label} stopped: its task is being killed or timed out")
        if self.renewed is None or time.monotonic() - self.renewed >= self.minutes * 60 / 6:
            self.hold()


def lease_lost(label: str, what: str, holder: OtherRun) -> str:
    """Why a step that lost its dealer's lease refuses to go on."""
    return (
        f"{what} refused for {label}: this run no longer holds the dealer's lease — it expired and run "
        f"{holder} (dag_id {holder.dag_id}, run_id {holder.run_id}) holds it now. Nothing was written by "
        "this try; that run pulls and ingests the dealer, or re-run this dealer once it has finished."
    )


def stale_pull(label: str, later: OtherRun) -> str:
    """Why an ingest of a pull older than another run's successful ingest refuses."""
    at = f" at {later.at.isoformat(timespec='seconds')}" if later.at else ""
    return (
        f"Data API ingest refused for {label}: a later run ({later.dag_id}, run_id {later.run_id}) already "
        f"ingested this dealer{at}; this pull is stale — re-run the whole dealer, not only its ingest. "
        "Nothing was written."
    )


@contextmanager
def failing_job(
    executions: ExecutionStore,
    key: ExecutionKey,
    *,
    what: str,
    label: str,
    try_number: int,
    max_tries: int | None = None,
    lease: DealerLease | None = None,
) -> Iterator[None]:
    """Run a step; on any error end the row ``failed`` with the error, then fail or retry the task.

    ``max_tries`` is the task instance's (``context["ti"].max_tries``: Airflow raises it when a task is
    cleared), so a transient error's text says what really happens next: another try of this task, or —
    on the last try — nothing until the next run. The dealer's lease is released on a final failure only:
    a try Airflow retries keeps it, so no other run pulls or ingests the dealer before the retry. Unknown
    ``max_tries`` keeps it too (``summarize_run`` releases the run's leases, else they expire).

    With ``lease``, the lease is renewed (or found lost: the step fails at once) before the step begins.
    """
    try:
        if lease is not None:
            lease.keep()
        yield
    except TaskDeferred:
        # Not an error: the task waits in the triggerer and resumes; its row stays ``running``.
        raise
    except PERMANENT as err:
        executions.finish(key, JobStatus.FAILED, error=f"try {try_number}: {describe(err)}")
        raise AirflowFailException(f"{what} failed for {label}: {describe(err)}") from err
    except InventoryAnomaly as err:
        executions.finish(key, JobStatus.FAILED, error=f"try {try_number}: {err}", anomaly=err.anomaly)
        raise
    except AirflowFailException as err:
        executions.finish(key, JobStatus.FAILED, error=f"try {try_number}: {err}")
        raise
    except BaseException as err:
        # Transient errors, timeouts, SIGTERM: record, then let Airflow decide (retry or fail).
        final = max_tries is not None and try_number > max_tries
        executions.finish(
            key,
            JobStatus.FAILED,
            error=f"try {try_number}: {describe(err)}{_next(try_number, max_tries)}",
            release=final,
        )
        raise


def _next(try_number: int, max_tries: int | None) -> str:
    """What follows a transient failure of try ``try_number`` of a task instance with ``max_tries``.

    Airflow retries while ``try_number <= max_tries``; clearing a task raises its ``max_tries``, so the
    tries of a cleared task go on counting from where they were.
    """
    if max_tries is None:
        return ""
    if try_number <= max_tries:
        return f" Airflow retries the task (try {try_number + 1} of {max_tries + 1})."
    return " That was the last try; the next run of the DAG tries this dealer again."


def ti_max_tries(context: Context) -> int | None:
    """The task instance's real ``max_tries`` (raised by a clear), or None when Airflow did not say."""
    value = getattr(context["ti"], "max_tries", None)
    return int(value) if isinstance(value, int) else None
