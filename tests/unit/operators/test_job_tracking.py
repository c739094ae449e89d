"""failing_job: a deferral is not a failure; every real error still ends the dealer's row failed; only a
final failure releases the dealer's lease; ``_next`` counts tries by the task instance's real max_tries."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from od_scheduler.exceptions import PermanentUpstreamError, TransientUpstreamError
from od_scheduler.models.job import ExecutionKey, JobStatus
from od_scheduler.operators.job_tracking import InventoryAnomaly, _next, failing_job

pytestmark = pytest.mark.unit

KEY = ExecutionKey(dag_id="inventory_web_scraping", run_id="r1", dealer_id="d1", platform="web_scraping")


class History:
    """Records ``finish`` calls the way JobHistoryHook receives them."""

    def __init__(self) -> None:
        self.finished: list[tuple[JobStatus, str | None]] = []
        self.released: list[bool] = []
        self.anomalies: list[str | None] = []

    def finish(
        self,
        key: ExecutionKey,
        status: JobStatus,
        *,
        error: str | None = None,
        release: bool = True,
        anomaly: str | None = None,
    ) -> None:
        assert key == KEY
        self.finished.append((status, error))
        self.released.append(release)
        self.anomalies.append(anomaly)


def guarded(history: Any, *, try_number: int = 1, max_tries: int | None = None):
    return failing_job(
        history,
        KEY,
        what="Web scraping pull",
        label="Hilltop (hilltop)",
        try_number=try_number,
        max_tries=max_tries,
    )


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


def test_an_inventory_anomaly_fails_the_task_and_is_recorded_as_data_on_the_row() -> None:
    history = History()
    why = "inventory anomaly: the pull returned 0 vehicles but 80 are live at the Data API"

    with pytest.raises(AirflowFailException, match="nothing was delisted"), guarded(history):
        raise InventoryAnomaly(f"{why}; nothing was delisted", anomaly=why)

    assert history.finished == [(JobStatus.FAILED, f"try 1: {why}; nothing was delisted")]
    assert (history.anomalies, history.released) == ([why], [True])


def test_other_failures_record_no_anomaly() -> None:
    history = History()
    with pytest.raises(AirflowFailException), guarded(history):
        raise AirflowFailException("too many rejected vehicles")
    with pytest.raises(TransientUpstreamError), guarded(history):
        raise TransientUpstreamError("data api 503")

    assert history.anomalies == [None, None]


def test_a_transient_error_ends_the_row_failed_and_is_re_raised_for_a_retry() -> None:
    history = History()

    with pytest.raises(TransientUpstreamError), guarded(history):
        raise TransientUpstreamError("apify 503")

    assert history.finished == [(JobStatus.FAILED, "try 1: TransientUpstreamError: apify 503")]


def test_a_failure_airflow_retries_keeps_the_lease_and_the_last_one_releases_it() -> None:
    history = History()
    with pytest.raises(TransientUpstreamError), guarded(history, try_number=1, max_tries=1):
        raise TransientUpstreamError("data api 503")
    with pytest.raises(TransientUpstreamError), guarded(history, try_number=2, max_tries=1):
        raise TransientUpstreamError("data api 503")
    with pytest.raises(AirflowFailException), guarded(history, try_number=1, max_tries=3):
        raise PermanentUpstreamError("401 from the Data API")

    assert history.released == [False, True, True], "retry keeps it; last try and permanent release it"
    assert history.finished[0][1] == (
        "try 1: TransientUpstreamError: data api 503 Airflow retries the task (try 2 of 2)."
    )
    assert history.finished[1][1].endswith(
        "That was the last try; the next run of the DAG tries this dealer again."
    )


def test_next_counts_by_the_task_instances_max_tries_which_a_clear_raises() -> None:
    # retries=2: tries 1-3 ran and failed; a manual clear raised max_tries to 3 + 2 = 5 for tries 4-6.
    assert _next(3, 2) == " That was the last try; the next run of the DAG tries this dealer again."
    assert _next(4, 5) == " Airflow retries the task (try 5 of 6)."
    assert _next(6, 5) == " That was the last try; the next run of the DAG tries this dealer again."
    assert _next(1, None) == ""
