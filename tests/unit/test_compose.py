"""docker-compose.yaml's least-privilege shape, read as Compose would (Docker is not needed to check it):
the job history has its own role and database, no service gets the metadata connection for tasks, and a
service outside the workers prunes Airflow's metadata."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
INIT_DIR = ROOT / "include" / "sql" / "docker-init"
INIT_SCRIPT = INIT_DIR / "01-job-history.sh"
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``, ``${NAME:?error}``, ``$$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, colon, kind, arg = match.groups()
        value = env.get(name)
        missing = value is None or (colon == ":" and value == "")
        if kind == "-" and missing:
            return arg
        if kind == "?" and missing:
            raise ValueError(f"{name}: {arg}")
        return value or ""

    return _VARIABLE.sub(replace, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())  # PyYAML's safe loader resolves the << merge keys


def environment(compose: dict[str, Any], service: str) -> dict[str, str]:
    env = compose["services"][service].get("environment") or {}
    assert isinstance(env, dict), f"{service}: environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def job_history_url(compose: dict[str, Any], service: str, env: Mapping[str, str]):
    return make_url(interpolate(environment(compose, service)["AIRFLOW_CONN_OD_JOB_HISTORY"], env))


def metadata_url(compose: dict[str, Any], service: str, env: Mapping[str, str]):
    return make_url(interpolate(environment(compose, service)["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], env))


def test_compose_file_has_the_project_services(compose: dict[str, Any]) -> None:
    assert {
        "postgres",
        "redis",
        "airflow-init",
        "airflow-db-clean",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    } <= set(compose["services"])


@pytest.mark.parametrize(
    "env", [{}, {"OD_JOB_HISTORY_DB_PASSWORD": "s3cret-Pw"}], ids=["default", "from-env"]
)
def test_the_job_history_has_its_own_role_and_database(compose: dict[str, Any], env: dict[str, str]) -> None:
    jobs = job_history_url(compose, "airflow-worker", env)
    metadata = metadata_url(compose, "airflow-scheduler", env)
    assert jobs.username != metadata.username, "the job history must not use the metadata DB's role"
    assert jobs.database != metadata.database
    assert jobs.host == "postgres"
    # The password the init script gives the role is the one the connection sends.
    postgres_env = environment(compose, "postgres")
    assert jobs.password == interpolate(postgres_env["OD_JOB_HISTORY_DB_PASSWORD"], env)
    assert jobs.password == env.get("OD_JOB_HISTORY_DB_PASSWORD", jobs.password)
    # ... and the role and database it creates are the ones the connection names.
    script = INIT_SCRIPT.read_text()
    assert f"OD_JOB_HISTORY_DB_USER:-{jobs.username}}}" in script
    assert f"OD_JOB_HISTORY_DB_NAME:-{jobs.database}}}" in script
    # Every Airflow service sees the same job-history connection.
    for name, service in compose["services"].items():
        if "AIRFLOW_CONN_OD_JOB_HISTORY" in (service.get("environment") or {}):
            assert job_history_url(compose, name, env) == jobs, name


def test_the_init_script_is_mounted_into_the_postgres_entrypoint(compose: dict[str, Any]) -> None:
    mounts = [str(v) for v in compose["services"]["postgres"]["volumes"]]
    source = next(m.split(":")[0] for m in mounts if ":/docker-entrypoint-initdb.d" in m)
    assert (ROOT / source).resolve() == INIT_DIR
    assert sorted(p.name for p in INIT_DIR.iterdir()) == [INIT_SCRIPT.name]


def test_no_service_gets_the_metadata_connection_for_tasks(compose: dict[str, Any]) -> None:
    for name in compose["services"]:
        env = environment(compose, name)
        assert "AIRFLOW_CONN_OD_AIRFLOW_DB" not in env, name
        assert not any("od_airflow_db" in value for value in env.values()), name
        in_task = env.get("AIRFLOW__OD_SCHEDULER__METADATA_CLEANUP_IN_TASK", "False")
        assert in_task.strip().lower() in ("false", "0", "no", "off"), name
    # The workers run tasks: their job-history connection is not the metadata database's role either.
    jobs = job_history_url(compose, "airflow-worker", {})
    assert jobs.username != metadata_url(compose, "airflow-worker", {}).username


def test_the_db_clean_service_prunes_metadata_outside_tasks(compose: dict[str, Any]) -> None:
    service = compose["services"]["airflow-db-clean"]
    scheduler = compose["services"]["airflow-scheduler"]
    assert service["image"] == scheduler["image"]
    script = "\n".join(str(part) for part in service["command"])
    assert "python -m od_scheduler.metadata_cleanup" in script
    # Airflow's own metadata connection, the one the scheduler uses; the package on the path.
    env = environment(compose, "airflow-db-clean")
    assert metadata_url(compose, "airflow-db-clean", {}) == metadata_url(compose, "airflow-scheduler", {})
    plugins_mount = next(str(v).split(":")[1] for v in service["volumes"] if str(v).startswith("./plugins:"))
    assert plugins_mount in env["PYTHONPATH"].split(":")
    assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert service["healthcheck"]["test"]
    assert service["restart"] == "always"
