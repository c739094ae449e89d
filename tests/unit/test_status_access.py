"""Who reads what of the status API: the auth manager is asked per DAG; refusals are 403s with a reason.

The auth manager here is ``tests/support/scoped_auth_manager.py`` (SimpleAuthManager with users restricted to
named DAGs), or a recorder of the questions asked. No job-history database is involved: every refusal below
is decided before the status API touches it (the filtered rows themselves are checked against PostgreSQL in
``tests/integration/test_status_access.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from fastapi import HTTPException
from fastapi.testclient import TestClient

from od_scheduler.platforms import PLATFORMS
from od_scheduler.status.access import ask_auth_manager, memoized, read_scope, require_platform
from tests.support.scoped_auth_manager import ScopedAuthManager, parse_user_dags

pytestmark = pytest.mark.unit

PLATFORM_DAGS = frozenset(spec.dag_id for spec in PLATFORMS.values())
MANAGER = ScopedAuthManager(
    {"homenet_reader": {"inventory_homenet"}, "two_reader": {"inventory_homenet", "inventory_cobalt"}}
    | {"cleanup_reader": {"maintenance_cleanup"}}
)
ROUTES = ["/api/jobs/status", "/api/jobs/stats", "/api/dealers/health", "/api/dealers", "/ui"]


def user(name: str, role: str = "viewer") -> SimpleAuthManagerUser:
    return SimpleAuthManagerUser(username=name, role=role)


class Recorder:
    """An auth manager that says yes to every DAG and remembers each question."""

    def __init__(self) -> None:
        self.questions: list[dict[str, Any]] = []

    def is_authorized_dag(self, **kwargs: Any) -> bool:
        self.questions.append(kwargs)
        return True


def test_the_question_is_the_one_airflow_asks_before_listing_a_dags_runs() -> None:
    recorder = Recorder()
    reader = user("someone")
    assert ask_auth_manager(recorder, reader, PLATFORM_DAGS) == PLATFORM_DAGS  # type: ignore[arg-type]
    assert sorted(q["details"].id for q in recorder.questions) == sorted(PLATFORM_DAGS)
    for q in recorder.questions:
        assert q["method"] == "GET"
        assert q["access_entity"] is DagAccessEntity.RUN
        assert q["details"] == DagDetails(id=q["details"].id, team_name=None)  # not multi-team
        assert q["user"] is reader


def test_a_user_restricted_to_one_platform_dag_reads_that_platform_only() -> None:
    scope = read_scope(MANAGER, user("homenet_reader"))
    assert scope.platforms == {"homenet"}
    assert not scope.complete
    history = frozenset({"inventory_homenet", "inventory_cobalt", "inventory_legacy_feed"})
    assert scope.may_read(history) == {"inventory_homenet"}


def test_role_access_reads_every_dag_the_history_names_retired_ones_included() -> None:
    for name, role in (("viewer", "viewer"), ("admin", "admin")):
        scope = read_scope(MANAGER, user(name, role))
        assert scope.platforms == set(PLATFORMS)
        assert scope.complete
        assert scope.may_read(frozenset({"inventory_legacy_feed"})) == {"inventory_legacy_feed"}


def test_each_dag_is_asked_about_once_per_request() -> None:
    asked: list[frozenset[str]] = []

    def ask(dag_ids: frozenset[str]) -> frozenset[str]:
        asked.append(dag_ids)
        return frozenset(d for d in dag_ids if d.endswith("homenet"))

    may_read = memoized(ask)
    assert may_read(PLATFORM_DAGS) == {"inventory_homenet"}
    assert may_read(frozenset({"inventory_homenet", "inventory_cobalt", "inventory_legacy_feed"})) == {
        "inventory_homenet"
    }
    assert asked == [PLATFORM_DAGS, frozenset({"inventory_legacy_feed"})]


def test_a_user_who_may_read_no_platform_dag_is_refused_with_the_reason() -> None:
    with pytest.raises(HTTPException) as refused:
        read_scope(MANAGER, user("cleanup_reader"))  # may read maintenance_cleanup: not a platform DAG
    assert refused.value.status_code == 403
    assert "you may read the runs of none of them" in refused.value.detail
    for dag_id in PLATFORM_DAGS:
        assert dag_id in refused.value.detail


def test_naming_a_platform_whose_dag_is_not_readable_is_refused() -> None:
    scope = read_scope(MANAGER, user("two_reader"))
    require_platform(scope, None)
    require_platform(scope, "homenet")
    require_platform(scope, "cobalt")
    with pytest.raises(HTTPException) as refused:
        require_platform(scope, "dealer.com")
    assert refused.value.status_code == 403
    assert refused.value.detail == (
        "Forbidden: you may not read the runs of inventory_dealer_com, so not the job history of platform "
        "'dealer.com'. Platforms you may read: cobalt, homenet."
    )


def test_user_dags_setting() -> None:
    assert parse_user_dags("a = d1, d2 ;b=;") == {"a": {"d1", "d2"}, "b": frozenset()}
    with pytest.raises(ValueError, match="expected user=dag_id"):
        parse_user_dags("just-a-name")


# -- the app: refusals come before any job-history work ----------------------------------------------
@pytest.fixture
def as_user() -> Iterator[Any]:
    from airflow.api_fastapi.core_api.security import get_user

    from od_scheduler.status.app import app, require_read_runs, status_auth_manager

    def client(name: str) -> TestClient:
        app.dependency_overrides[require_read_runs] = lambda: None
        app.dependency_overrides[get_user] = lambda: user(name)
        app.dependency_overrides[status_auth_manager] = lambda: MANAGER
        return TestClient(app)

    try:
        yield client
    finally:
        app.dependency_overrides.clear()


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_another_platforms_filter(as_user: Any, path: str) -> None:
    with as_user("homenet_reader") as api:
        resp = api.get(path, params={"platform": "cobalt"})
    assert resp.status_code == 403, resp.text
    assert "you may not read the runs of inventory_cobalt" in resp.json()["detail"]


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_a_user_with_no_platform_dag(as_user: Any, path: str) -> None:
    with as_user("cleanup_reader") as api:
        resp = api.get(path)
    assert resp.status_code == 403, resp.text
    assert "you may read the runs of none of them" in resp.json()["detail"]
