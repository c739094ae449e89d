"""Shared fixtures: the real sandbox over HTTP, a migrated Airflow DB, the job-history schema, dag.test(),
an S3-compatible server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.s3server import S3Server

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sandbox upstreams in a subprocess on a free loopback port; connections point at it."""
    state = tmp_path_factory.mktemp("sandbox")
    port_file = state / "port"
    log = open(state / "sandbox.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "include.sandbox",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    url = None
    while time.monotonic() < deadline and proc.poll() is None:
        if port_file.exists() and port_file.read_text().strip():
            url = f"http://127.0.0.1:{port_file.read_text().strip()}"
            try:
                if httpx.get(f"{url}/_sandbox/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"sandbox did not start: {(state / 'sandbox.log').read_text()[-2000:]}")
    from include.tools.localenv import sandbox_connections

    for conn_id, spec in sandbox_connections(url).items():
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(spec)
    # Tests run many dealers; the per-site politeness cap is tested in the client's unit tests.
    os.environ["AIRFLOW_CONN_OD_DEALER_COM"] = json.dumps(
        {"conn_type": "http", "extra": {"requests_per_second": 50}}
    )
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a loopback port for the session; its access log is in ``test-output/``."""
    server = S3Server(ROOT / "test-output" / "moto-s3.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow_db(sandbox: str) -> None:
    """Migrated metadata DB, pools and job-history schema: exactly what `make setup` does."""
    from include.tools import setup_project

    assert setup_project.main([]) == 0


def job_history_conn() -> psycopg.Connection:
    return psycopg.connect(os.environ["OD_TEST_JOB_HISTORY"], autocommit=True)


@pytest.fixture
def clean(airflow_db: None, sandbox: str) -> Iterator[httpx.Client]:
    """Empty job history and a reset sandbox before the test; a client on the sandbox's control API."""
    with job_history_conn() as db:
        db.execute(
            "TRUNCATE job_executions, source_state, dealer_leases, vehicle_fingerprints, platform_listings"
        )
    client = httpx.Client(base_url=sandbox, timeout=30)
    client.post("/_sandbox/reset").raise_for_status()
    yield client
    client.close()


@pytest.fixture(scope="session")
def dagbag(airflow_db: None):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors
    return bag


#: Every platform DAG's params at their defaults. dag.test(run_conf=...) leaves the conf of one run on the
#: DAG object for the next, so tests always pass a whole conf.
DEFAULT_CONF = {
    "dealer_id": None,
    "force": False,
    "full_refresh": False,
    "force_delist": False,
    "max_failure_rate": None,
}


def run_dag(dag, **kwargs):
    """dag.test() with a complete conf: the defaults, overridden by ``conf=``.

    dag.test() occasionally dies of a PostgreSQL deadlock on its own ``dag_run`` row (Airflow-internal,
    between its scheduling loop and the task's state update). The run is then re-run once with the same
    logical date, which is exactly an Airflow retry of that run: the tests' assertions (idempotence) hold.
    """
    from datetime import UTC, datetime

    from sqlalchemy.exc import OperationalError

    declared = {k: v for k, v in DEFAULT_CONF.items() if k in dag.params}  # an undeclared key fails a run
    conf = {**declared, **kwargs.pop("conf", {})}
    now = datetime.now(UTC)
    kwargs.setdefault("logical_date", now)
    kwargs.setdefault("run_after", kwargs["logical_date"] or now)
    # Airflow 3.3.2's dag.test() crashes marking a run with a DeadlineAlert successful (it looks the in-memory
    # alerts up as database ids). A deadline needs the scheduler anyway: tests/e2e/test_deadline_alert.py.
    deadline, dag.deadline = dag.deadline, None
    try:
        return dag.test(run_conf=conf, **kwargs)
    except OperationalError as err:
        if "deadlock detected" not in str(err):
            raise
        return dag.test(run_conf=conf, **kwargs)
    finally:
        dag.deadline = deadline


def history_rows(dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The `job_executions` rows of one DAG run, by dealer id."""
    with job_history_conn() as db:
        cur = db.execute("SELECT * FROM job_executions WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        names = [d.name for d in cur.description]
        return {row[names.index("dealer_id")]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def platform_dealers(control: httpx.Client, platform: str) -> dict[str, dict[str, Any]]:
    """Active dealers of a platform as the sandbox CMS lists them, by slug (every page)."""
    docs: list[dict[str, Any]] = []
    page = 1
    while True:
        params = {
            "limit": 100,
            "page": page,
            "where[status][equals]": "active",
            "where[platforms][contains]": platform,
        }
        body = control.get(
            "/cms/api/dealers", params=params, headers={"Authorization": "users API-Key sandbox-cms-key"}
        ).json()
        docs += body["docs"]
        if not body["hasNextPage"]:
            return {d["slug"]: d for d in docs}
        page += 1
