"""An auth manager for the tests: Airflow's SimpleAuthManager, with some users restricted to named DAGs.

SimpleAuthManager grants by role only (a viewer reads every DAG), so it cannot stand for a user who may read
one platform's DAG. This subclass keeps its login, tokens and role rules, and answers "no" for the DAGs
outside a restricted user's list, the way a per-DAG permission (FAB's ``DAG:<dag_id>`` can_read) does:

- a question naming a DAG (``DagDetails(id=...)``) is allowed only for the user's DAGs;
- a question naming no DAG (a list route's guard, e.g. ``GET /api/v2/dags`` or the status API's
  ``requires_access_dag("GET", RUN)``) is answered by the role: the list is then filtered per DAG.

Restricted users come from ``OD_TEST_USER_DAGS``: ``user=dag_a,dag_b;other=dag_c`` (users not named keep
their role's access). The status API never knows about this class: it only calls the auth-manager interface.
Configure it with ``[core] auth_manager = tests.support.scoped_auth_manager.ScopedAuthManager``.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import ResourceMethod

ENV = "OD_TEST_USER_DAGS"


def parse_user_dags(text: str) -> dict[str, frozenset[str]]:
    """``"a=d1,d2;b=d3"`` -> ``{"a": {"d1", "d2"}, "b": {"d3"}}``; ``"b="`` restricts b to no DAG."""
    out: dict[str, frozenset[str]] = {}
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        user, sep, dags = entry.partition("=")
        if not sep or not user.strip():
            raise ValueError(f"{ENV}: expected user=dag_id[,dag_id...], got {entry!r}")
        out[user.strip()] = frozenset(d.strip() for d in dags.split(",") if d.strip())
    return out


class ScopedAuthManager(SimpleAuthManager):
    """SimpleAuthManager whose restricted users may read only their DAGs (see the module docstring)."""

    def __init__(self, user_dags: Mapping[str, Collection[str]] | None = None) -> None:
        super().__init__()
        self.user_dags = (
            {user: frozenset(dags) for user, dags in user_dags.items()}
            if user_dags is not None
            else parse_user_dags(os.environ.get(ENV, ""))
        )

    def is_authorized_dag(
        self,
        *,
        method: ResourceMethod,
        user: SimpleAuthManagerUser,
        access_entity: DagAccessEntity | None = None,
        details: DagDetails | None = None,
    ) -> bool:
        allowed = super().is_authorized_dag(
            method=method,
            user=user,
            access_entity=access_entity,
            details=details,
        )
        dags = self.user_dags.get(user.get_name())
        if not allowed or dags is None or details is None or details.id is None:
            return allowed
        return details.id in dags
