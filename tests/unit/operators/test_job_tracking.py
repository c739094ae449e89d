"""failing_job: a deferral is not a failure; every real error still ends the dealer's row failed."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from od_scheduler.exceptions import PermanentUpstreamError, TransientUpstreamError
from od_scheduler.models.job import ExecutionKey, JobStatus
from od_scheduler.operators.job_tracking import failing_job

pytestmark = pytest.mark.unit

KEY = ExecutionKey(dag_id="inventory_web_scraping", run_id="r1", dealer_id="d1", platform="web_scraping")


class History:
    """Records ``finish`` calls the way JobHistoryHook receives them."""

    def __init__(self) -> None:
        self.finished: list[tuple[JobStatus, str | None]] = []

    def finish(self, key: ExecutionKey, status: JobStatus, *, error: str | None = None) -> None:
        assert key == KEY
        self.finished.append((status, error))


def guarded(history: Any):
    return failing_job(history, KEY, what="Web scraping pull", label="Hilltop (hilltop)", try_number=1)


def test_a_deferral_passes_through_untouched_and_leaves_the_row_running() -> None:
    history = History()
    deferral = TaskDeferred(trigger=object(), method_name="execute_complete")

    with pytest.raises(TaskDeferred) as excinfo, guarded(history):
        raise deferral

    assert excinfo.value is deferral
    assert history.finished == []


def test_a_permanent_error_ends_the_row_failed_and_fails_the_task() -> None:
    history = History()

    with pytest.raises(AirflowFailException, match="run abc FAILED"), guarded(history):
        raise PermanentUpstreamError("Apify run abc FAILED")

    assert history.finished == [(JobStatus.FAILED, "try 1: PermanentUpstreamError: Apify run abc FAILED")]


def test_a_transient_error_ends_the_row_failed_and_is_re_raised_for_a_retry() -> None:
    history = History()

    with pytest.raises(TransientUpstreamError), guarded(history):
        raise TransientUpstreamError("apify 503")

    assert history.finished == [(JobStatus.FAILED, "try 1: TransientUpstreamError: apify 503")]
