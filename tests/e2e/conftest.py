"""End-to-end fixtures: a real Airflow (api-server, scheduler with LocalExecutor, dag-processor, triggerer).

The services share the test suite's environment (metadata DB, connections pointing at the sandbox), run in
their own process groups, log to ``test-output/e2e/``, and are stopped at the end of the session.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "test-output" / "e2e"
PASSWORDS = {
    "admin": "admin-e2e",
    "viewer": "viewer-e2e",
    "homenet_reader": "homenet-e2e",
    "cleanup_reader": "cleanup-e2e",
}
#: Users the auth manager restricts to named DAGs (viewers otherwise): tests/support/scoped_auth_manager.py.
#: admin and viewer keep their role's access to every DAG.
USER_DAGS = "homenet_reader=inventory_homenet;cleanup_reader=maintenance_cleanup"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Airflow:
    """Handle on the running services: base URL, a token helper and the CLI."""

    def __init__(self, base_url: str, env: dict[str, str]) -> None:
        self.base_url = base_url
        self.env = env

    def token(self, user: str = "admin") -> str:
        resp = httpx.post(
            f"{self.base_url}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=30
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def client(self, user: str = "admin") -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.token(user)}"}, timeout=60
        )

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
            timeout=300,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        return proc

    def delete_runs(self, dag_id: str) -> None:
        """Remove every run of ``dag_id`` (the dag.test() suites leave hundreds: the API pages by 100)."""
        with self.client() as api:
            while True:
                runs = api.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100}).json()["dag_runs"]
                if not runs:
                    return
                for run in runs:
                    url = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
                    if run["state"] not in (
                        "success",
                        "failed",
                    ):  # a live run cannot be deleted: end it first
                        api.patch(url, json={"state": "failed"})
                    api.delete(url).raise_for_status()

    def wait_for_runs(self, dag_id: str, count: int, *, timeout_s: float = 600) -> list[dict]:
        """Wait until ``count`` runs of ``dag_id`` have finished; returns them."""
        deadline = time.monotonic() + timeout_s
        with self.client() as api:
            while time.monotonic() < deadline:
                runs = api.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100}).json()["dag_runs"]
                done = [r for r in runs if r["state"] in ("success", "failed")]
                if len(done) >= count and all(r["state"] in ("success", "failed") for r in runs):
                    return runs
                time.sleep(3)
        raise AssertionError(f"{dag_id}: {count} finished runs not seen within {timeout_s}s: {runs}")


def _end_leftover_runs() -> None:
    """Fail runs that earlier dag.test() sessions left queued (e.g. runs inventory_run_all triggered):
    the live scheduler would otherwise execute them beside what the e2e tests start."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        for run in session.query(DagRun).filter(DagRun.state.in_([DagRunState.QUEUED, DagRunState.RUNNING])):
            run.state = DagRunState.FAILED


@pytest.fixture(scope="session")
def airflow(airflow_db: None, sandbox: str) -> Iterator[Airflow]:
    from airflow.configuration import conf

    port = free_port()
    home = Path(os.environ["AIRFLOW_HOME"])
    (home / "simple_auth_manager_passwords.json.generated").write_text(__import__("json").dumps(PASSWORDS))
    env = {
        **os.environ,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            ["admin:admin", "viewer:viewer", "homenet_reader:viewer", "cleanup_reader:viewer"]
        ),
        # SimpleAuthManager grants by role only; this subclass also restricts USER_DAGS' users to their DAGs,
        # which the status API's per-DAG filtering needs to be tested against (test_status_api.py).
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.support.scoped_auth_manager.ScopedAuthManager",
        "OD_TEST_USER_DAGS": USER_DAGS,
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # test_deadline_alert.py: a daily platform's run overruns its expected duration after 6 s, so its
        # DeadlineAlert fires mid-run (a deadline only alerts; it never changes a run's outcome).
        "AIRFLOW__OD_SCHEDULER__DEFAULT_EXPECTED_RUN_MINUTES": "0.1",
        # test_shard_pools.py: the sandbox's 19 Dealer.com dealers in five shards of 4 (4 in flight each).
        "AIRFLOW__OD_SCHEDULER__DEALERS_PER_TASK": "4",
        "AIRFLOW__CORE__FERNET_KEY": conf.get("core", "fernet_key", fallback="") or "",
        "PYTHONPATH": str(ROOT),
    }
    LOGS.mkdir(parents=True, exist_ok=True)
    _end_leftover_runs()
    handle = Airflow(f"http://127.0.0.1:{port}", env)
    handle.cli("dags", "reserialize")
    procs = []
    for name, args in {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port)],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer"],
    }.items():
        log = open(LOGS / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{handle.base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        pytest.fail(f"api-server did not start: {(LOGS / 'api-server.log').read_text()[-3000:]}")
    yield handle
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
