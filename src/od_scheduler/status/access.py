"""Who may read which part of the job history: Airflow's auth manager decides, per DAG.

Every ``job_executions`` row was written by a run of one DAG (its ``dag_id``; each platform has its own DAG,
see ``platforms.py``). A user reads a row when the auth manager lets them read that DAG's runs: the question
Airflow itself asks for ``GET /api/v2/dags/{dag_id}/dagRuns`` (``is_authorized_dag``, method ``GET``, access
entity ``RUN``, the DAG's id and, in multi-team mode, its team). Only the public ``BaseAuthManager`` interface
is used, so FAB roles (``DAG:inventory_homenet`` can_read), Keycloak, AWS or any other auth manager decide
with their own rules.

- The platform DAGs are asked about on every request, before any job-history query. A user who may read
  none of them gets 403: the page and the API would be empty, and an empty answer would look like "no
  history" rather than "not yours".
- A request naming a platform (``?platform=``) whose DAG the user may not read is 403 with the reason.
- A ``dealer_id`` is not a DAG: it filters within the readable rows (a dealer with no readable row answers
  like an unknown dealer; a 403 would tell that it has rows on another platform).
- Rows of a DAG that is not a current platform's (a retired platform's history, say) are decided the same
  way, by their ``dag_id``: the auth manager answers for ids it has never seen (a role-based manager by the
  role, a per-DAG one with "no" unless it names the DAG).
- The dealer directory has no DAG: it shows the dealers listed for a readable platform, with those platforms
  only; entries naming no registry platform are shown only to users who may read every platform's DAG.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.configuration import conf
from fastapi import HTTPException, status

from od_scheduler.platforms import PLATFORMS
from od_scheduler.status.queries import ReadScope

log = logging.getLogger(__name__)


def _team_names(dag_ids: frozenset[str]) -> dict[str, str | None]:
    """The team owning each DAG, as ``requires_access_dag`` looks it up (teams exist in multi-team mode)."""
    if not dag_ids or not conf.getboolean("core", "multi_team", fallback=False):
        return {}
    from airflow.models.dag import DagModel

    return DagModel.get_dag_id_to_team_name_mapping(sorted(dag_ids))


def ask_auth_manager(
    auth_manager: BaseAuthManager, user: BaseUser, dag_ids: frozenset[str]
) -> frozenset[str]:
    """The ``dag_ids`` whose runs ``user`` may read, each decided by ``is_authorized_dag``."""
    teams = _team_names(dag_ids)
    return frozenset(
        dag_id
        for dag_id in dag_ids
        if auth_manager.is_authorized_dag(
            method="GET",
            access_entity=DagAccessEntity.RUN,
            details=DagDetails(id=dag_id, team_name=teams.get(dag_id)),
            user=user,
        )
    )


def memoized(ask: Callable[[frozenset[str]], frozenset[str]]) -> Callable[[frozenset[str]], frozenset[str]]:
    """``ask``, asking about each DAG id at most once (one request asks about the platform DAGs, then about
    every DAG id of the job history)."""
    known: dict[str, bool] = {}

    def may_read(dag_ids: frozenset[str]) -> frozenset[str]:
        new = frozenset(dag_ids - known.keys())
        if new:
            readable = ask(new)
            known.update((dag_id, dag_id in readable) for dag_id in new)
        return frozenset(dag_id for dag_id in dag_ids if known[dag_id])

    return may_read


def read_scope(auth_manager: BaseAuthManager, user: BaseUser) -> ReadScope:
    """The request's scope; 403 when the user may read no platform's DAG."""
    may_read = memoized(lambda dag_ids: ask_auth_manager(auth_manager, user, dag_ids))
    by_dag = {spec.dag_id: platform for platform, spec in PLATFORMS.items()}
    platforms = frozenset(by_dag[dag_id] for dag_id in may_read(frozenset(by_dag)))
    if not platforms:
        log.info("status API: %s may read none of the platform DAGs", user.get_name())
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Forbidden: the job history is shown by platform DAG, and you may read the runs of none of "
            f"them ({', '.join(sorted(by_dag))}). Ask an Airflow admin for read access to one.",
        )
    return ReadScope(platforms=platforms, may_read=may_read)


def require_platform(scope: ReadScope, platform: str | None) -> None:
    """403 when the request names a platform whose DAG the user may not read."""
    if platform is None or platform in scope.platforms:
        return
    dag_id = PLATFORMS[platform].dag_id
    readable = ", ".join(sorted(scope.platforms))
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"Forbidden: you may not read the runs of {dag_id}, so not the job history of platform "
        f"{platform!r}. Platforms you may read: {readable}.",
    )
