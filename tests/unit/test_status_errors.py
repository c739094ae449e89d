"""The status API's 503 says the job-history database is unavailable, never where it is or who logs in."""

from __future__ import annotations

import json

import psycopg
import pytest
from starlette.requests import Request

from od_scheduler.status.app import _database_error

pytestmark = pytest.mark.unit

LIBPQ = (
    'connection to server at "jobs-db.internal.example" (10.20.30.40), port 5432 failed: FATAL:  '
    'password authentication failed for user "od_reader"\n'
    'connection to server at "jobs-db.internal.example" (10.20.30.40), port 5432 failed: '
    "FATAL:  no pg_hba.conf"
)


def test_the_503_shows_neither_the_database_host_nor_its_user() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/api/jobs/status", "headers": []})
    response = _database_error(request, psycopg.OperationalError(LIBPQ))
    assert response.status_code == 503
    detail = json.loads(bytes(response.body))["detail"]
    assert detail.startswith("job-history database unavailable: OperationalError:")
    assert "password authentication failed" in detail
    for leaked in ("jobs-db.internal.example", "10.20.30.40", "od_reader", "5432"):
        assert leaked not in detail
