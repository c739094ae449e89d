"""Shared plumbing for the per-dealer operators: the job-history row and how errors end it.

Transient upstream errors are re-raised so Airflow retries the task; permanent ones (bad credentials,
bad config, unusable payloads) become ``AirflowFailException`` so it fails at once. Either way the
dealer's `job_executions` row ends ``failed`` with the error text before the exception leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.job import DealerRef, ExecutionKey, JobStatus

PERMANENT = (PermanentUpstreamError, ConfigError, PayloadError)


def execution_key(context: Context, dealer: DealerRef, platform: str) -> ExecutionKey:
    """The job-history key of this dealer in this DAG run."""
    return ExecutionKey(
        dag_id=context["dag"].dag_id,
        run_id=context["run_id"],
        dealer_id=dealer.dealer_id,
        platform=platform,
    )


def describe(err: BaseException) -> str:
    """One-line error text for the job history: type and message, never a traceback."""
    text = str(err).strip() or "(no message)"
    return f"{type(err).__name__}: {text}"


@contextmanager
def failing_job(
    history: JobHistoryHook,
    key: ExecutionKey,
    *,
    what: str,
    label: str,
    try_number: int,
    retries: int | None = None,
) -> Iterator[None]:
    """Run a step; on any error end the row ``failed`` with the error, then fail or retry the task.

    With ``retries`` (the task's), a transient error's text says what happens next: another try of this
    task, or — on the last try — nothing until the next run.
    """
    try:
        yield
    except TaskDeferred:
        # Not an error: the task waits in the triggerer and resumes; its row stays ``running``.
        raise
    except PERMANENT as err:
        history.finish(key, JobStatus.FAILED, error=f"try {try_number}: {describe(err)}")
        raise AirflowFailException(f"{what} failed for {label}: {describe(err)}") from err
    except AirflowFailException as err:
        history.finish(key, JobStatus.FAILED, error=f"try {try_number}: {err}")
        raise
    except BaseException as err:
        # Transient errors, timeouts, SIGTERM: record, then let Airflow decide (retry or fail).
        history.finish(
            key, JobStatus.FAILED, error=f"try {try_number}: {describe(err)}{_next(try_number, retries)}"
        )
        raise


def _next(try_number: int, retries: int | None) -> str:
    """What follows a transient failure of try ``try_number`` of a task with ``retries`` retries."""
    if retries is None:
        return ""
    if try_number <= retries:
        return f" Airflow retries the task (try {try_number + 1} of {retries + 1})."
    return " That was the last try; the next run of the DAG tries this dealer again."


def dealer_ref(value: Any) -> DealerRef:
    """Parse the mapped ``dealer`` argument (a dict from ``list_dealers``)."""
    if isinstance(value, DealerRef):
        return value
    return DealerRef.model_validate(value)
