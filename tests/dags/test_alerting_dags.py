"""Alert wiring in the DAGs: a long-run deadline per platform, the system alert, the freshness check."""

from __future__ import annotations

import inspect
from datetime import timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.dags

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_platform_dag_alerts_when_a_run_outlasts_its_expected_duration(dagbag) -> None:
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DagRunQueuedAtDeadline

    from od_scheduler.platforms import PLATFORMS
    from od_scheduler.settings import platform_timing

    for platform in PLATFORMS.values():
        [deadline] = dagbag.dags[platform.dag_id].deadline
        assert isinstance(deadline.reference, DagRunQueuedAtDeadline), platform.id
        minutes = platform_timing(platform.id).expected_run_minutes
        assert deadline.interval == timedelta(minutes=minutes)
        assert isinstance(deadline.callback, AsyncCallback), "runs in the triggerer"
        assert deadline.callback.path == "od_scheduler.notifications.notify_long_run"
        assert deadline.callback.kwargs == {
            "platform": platform.id,
            "expected_minutes": minutes,
        }


def test_the_deadline_callback_is_importable_and_awaitable() -> None:
    from airflow.sdk._shared.module_loading import import_string

    callback = import_string("od_scheduler.notifications.notify_long_run")
    assert inspect.iscoroutinefunction(callback)
    assert "context" in inspect.signature(callback).parameters


def test_list_dealers_sends_a_system_alert_when_it_fails(dagbag) -> None:
    from od_scheduler.models.alert import AlertKind
    from od_scheduler.notifications import WebhookAlertNotifier
    from od_scheduler.platforms import PLATFORMS

    for platform in PLATFORMS.values():
        task = dagbag.dags[platform.dag_id].task_dict["list_dealers"]
        [notifier] = task.on_failure_callback
        assert isinstance(notifier, WebhookAlertNotifier)
        assert (notifier.kind, notifier.platform) == (AlertKind.SYSTEM, platform.id)


def test_inventory_freshness_is_one_hourly_check_that_alerts_when_it_cannot_run(dagbag) -> None:
    from od_scheduler.notifications import WebhookAlertNotifier

    dag = dagbag.dags["inventory_freshness"]
    assert list(dag.task_dict) == ["check_freshness"]
    assert dag.timetable.expression == "30 * * * *"
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert (dag.catchup, dag.max_active_runs) == (False, 1)
    assert dag.doc_md
    task = dag.task_dict["check_freshness"]
    assert task.pool == "payload_cms_api"
    [notifier] = task.on_failure_callback
    assert isinstance(notifier, WebhookAlertNotifier)
