"""JobHistoryHook.test_connection against real PostgreSQL: it says whether the job-history schema is there."""

from __future__ import annotations

import json
import os

import pytest

from od_scheduler.hooks.job_history import JobHistoryHook

pytestmark = pytest.mark.integration


def test_the_schema_make_setup_applied_passes(airflow_db: None) -> None:
    ok, message = JobHistoryHook().test_connection()
    assert ok, message
    assert "job-history schema is in place" in message


def test_a_database_without_the_schema_fails_and_says_what_to_run(
    airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = json.loads(os.environ["AIRFLOW_CONN_OD_JOB_HISTORY"])
    monkeypatch.setenv("AIRFLOW_CONN_OD_JOB_HISTORY", json.dumps({**spec, "schema": "postgres"}))
    ok, message = JobHistoryHook().test_connection()
    assert not ok
    assert "job-history schema is missing" in message
    assert "make setup" in message
