"""A CeleryExecutor Airflow on this machine, laid out as a small cluster would be.

- **Metadata**: its own database (``od_test_celery_airflow``, created afresh each session) on the suite's
  PostgreSQL server, so the LocalExecutor stack of ``conftest.py`` never sees its runs and a fresh DAG's
  first unpause creates exactly one scheduled run. It is copied from a template database migrated once per
  Airflow version (``airflow db migrate`` is the slowest step of the start).
- **DAGs**: a dags folder holding only ``inventory_cobalt.py`` (a copy of the project's), so the
  dag-processor parses one file before the run can start.
- **Broker**: the Redis on 127.0.0.1:6379 when it answers a PING, else a ``redis-server`` started here on
  a free port (Debian's ``redis-server`` package). Tasks go to a queue named for this session only, and
  the workers skip mingle and gossip, so other users of a shared Redis neither take nor see its tasks.
  The keys of that queue are deleted at the end.
- **Services**: api-server, scheduler and dag-processor share one ``AIRFLOW_HOME``; each of the two
  Celery workers (``worker-a``, ``worker-b``, concurrency 1) has its own working directory and its own
  ``AIRFLOW_HOME`` under it (own airflow.cfg, task logs, log-server port), as if on its own host. What
  every process must share is passed explicitly: the metadata DB, the broker, the fernet key, the JWT and
  API secrets, the connections, and the ``[od_scheduler]`` settings, staging on S3 included.

Every process runs in its own process group and is stopped (SIGTERM, then SIGKILL) in :meth:`stop`.
Service logs go to ``test-output/e2e-celery/``; the worker homes stay under ``.local/test/celery/`` until
the next session, for reading their task logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.e2e.conftest import PASSWORDS, ROOT, Airflow, free_port

LOGS = ROOT / "test-output" / "e2e-celery"
METADATA_DB = "od_test_celery_airflow"
DAG_FILE = "inventory_cobalt.py"
WORKERS = ("worker-a", "worker-b")
SHARED_REDIS_PORT = 6379


def redis_answers(port: int) -> bool:
    """Whether a Redis on 127.0.0.1:``port`` answers PING without auth."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class CeleryStack:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent; safe after a failed start)."""

    def __init__(self, *, staging_url: str, staging_conn: dict[str, Any], settings: dict[str, str]) -> None:
        self.token = secrets.token_hex(4)
        self.queue = f"od-e2e-celery-{self.token}"
        self.dir = Path(os.environ["AIRFLOW_HOME"]).parent / "celery"
        self.home = self.dir / "scheduler-home"
        self.staging_url = staging_url
        self.staging_conn = staging_conn
        self.settings = settings
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.broker_url = ""
        self.airflow: Airflow | None = None

    # -- layout --------------------------------------------------------------------------------------
    def worker_dir(self, name: str) -> Path:
        """A worker's working directory (its "host"): its AIRFLOW_HOME is ``home/`` inside it."""
        return self.dir / name

    def worker_home(self, name: str) -> Path:
        return self.worker_dir(name) / "home"

    # -- start ---------------------------------------------------------------------------------------
    def start(self) -> Airflow:
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.home.mkdir(parents=True)
        LOGS.mkdir(parents=True, exist_ok=True)
        (self.dir / "dags").mkdir()
        shutil.copy(ROOT / "dags" / DAG_FILE, self.dir / "dags" / DAG_FILE)
        self.broker_url = self._broker()
        env = self._env(self._metadata_db())
        # `make setup`'s steps (pools, the job-history schema) run beside the services' start-up: nothing
        # is scheduled before the DAG is unpaused, which waits for both.
        self._spawn(
            "setup",
            [sys.executable, "-m", "include.tools.setup_project", "--skip-migrate"],
            env,
            cwd=ROOT,
            airflow=False,
        )
        api_port = int(env["AIRFLOW__API__BASE_URL"].rsplit(":", 1)[1])
        for name, args in {
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(api_port)],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
        }.items():
            self._spawn(name, args, env, cwd=ROOT)
        for name in WORKERS:
            home = self.worker_home(name)
            home.mkdir(parents=True)
            worker_env = {
                **env,
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
            self._spawn(
                name,
                [
                    "celery",
                    "worker",
                    "--queues",
                    self.queue,
                    "--concurrency",
                    "1",
                    "--celery-hostname",
                    f"{name}@%h",
                    "--without-mingle",
                    "--without-gossip",
                ],
                worker_env,
                cwd=self.worker_dir(name),
            )
        self.airflow = Airflow(env["AIRFLOW__API__BASE_URL"], env)
        self._wait_until_ready(self.airflow)
        return self.airflow

    def _broker(self) -> str:
        if redis_answers(SHARED_REDIS_PORT):
            return f"redis://127.0.0.1:{SHARED_REDIS_PORT}/0"
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(server).exists():
            raise RuntimeError(
                "no Redis answers on 127.0.0.1:6379 and redis-server is not installed "
                "(apt-get install redis-server)"
            )
        port = free_port()
        (self.dir / "redis").mkdir()
        self._spawn(
            "redis",
            [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
            dict(os.environ),
            cwd=self.dir / "redis",
            airflow=False,
        )
        deadline = time.monotonic() + 30
        while not redis_answers(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(LOGS / 'redis.log').read_text()[-2000:]}")
            time.sleep(0.2)
        return f"redis://127.0.0.1:{port}/0"

    def _metadata_db(self) -> str:
        """A fresh metadata database on the suite's PostgreSQL server; returns its SQLAlchemy URL."""
        from airflow import __version__ as airflow_version

        template = "od_test_celery_template_" + airflow_version.replace(".", "_")
        with psycopg.connect(os.environ["OD_TEST_JOB_HISTORY"], autocommit=True) as admin:
            exists = "SELECT 1 FROM pg_database WHERE datname = %s"
            if not admin.execute(exists, (template,)).fetchone():
                # Migrated under a temporary name and renamed once complete: a half-migrated template is
                # never used.
                building = template + "_building"
                admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                admin.execute(f'CREATE DATABASE "{building}"')
                self._migrate(self._url(building))
                admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
            admin.execute(f'DROP DATABASE IF EXISTS "{METADATA_DB}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{METADATA_DB}" TEMPLATE "{template}"')
        return self._url(METADATA_DB)

    @staticmethod
    def _url(database: str) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).set(database=database)
        return url.render_as_string(hide_password=False)

    def _migrate(self, url: str) -> None:
        env = {**os.environ, "AIRFLOW_HOME": str(self.home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        (LOGS / "migrate.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed: {(proc.stdout + proc.stderr)[-3000:]}")

    def _env(self, metadata_url: str) -> dict[str, str]:
        from cryptography.fernet import Fernet

        api_port = free_port()
        base_url = f"http://127.0.0.1:{api_port}"
        (self.home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps(PASSWORDS))
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dir / "dags"),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CORE__PARALLELISM": "8",
            # Secrets every process must agree on (each worker home would otherwise generate its own).
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            # Staging on S3 through the settings and an aws connection, as on a cluster.
            "AIRFLOW__OD_SCHEDULER__STAGING_URL": self.staging_url,
            "AIRFLOW__OD_SCHEDULER__STAGING_CONN_ID": "od_staging",
            "AIRFLOW_CONN_OD_STAGING": json.dumps(self.staging_conn),
            **{f"AIRFLOW__OD_SCHEDULER__{key.upper()}": value for key, value in self.settings.items()},
            "PYTHONPATH": str(ROOT),  # include/ and tests/; od_scheduler is the installed package
        }
        env.pop("OD_STAGING_URL", None)  # the suite's local staging folder would override the setting
        return env

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str], *, cwd: Path, airflow: bool = True
    ) -> None:
        log = open(LOGS / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
        command = [sys.executable, "-m", "airflow", *args] if airflow else args
        self.procs[name] = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
        )
        log.close()

    def _wait_until_ready(self, airflow: Airflow, timeout_s: float = 180) -> None:
        """Setup is done, the api-server answers, the DAG is parsed, and both workers consume the queue."""
        deadline = time.monotonic() + timeout_s
        pending = {"setup", "api-server", "dags", *WORKERS}
        while pending and time.monotonic() < deadline:
            for name, proc in self.procs.items():
                code = proc.poll()
                if name == "setup" and code == 0:
                    pending.discard("setup")
                elif code is not None:
                    raise RuntimeError(f"{name} exited ({code}): {self.log_tail(name)}")
            if "api-server" in pending:
                try:
                    if httpx.get(f"{airflow.base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                        pending.discard("api-server")
                except httpx.HTTPError:
                    pass
            if "api-server" not in pending and "dags" in pending:
                with airflow.client() as api:
                    if api.get("/api/v2/dags/inventory_cobalt").status_code == 200:
                        pending.discard("dags")
            for name in WORKERS:
                if name in pending and b" ready." in (LOGS / f"{name}.log").read_bytes():
                    pending.discard(name)
            time.sleep(1)
        if pending:
            raise RuntimeError(f"not ready after {timeout_s:.0f}s: {sorted(pending)}")

    def log_tail(self, name: str, size: int = 3000) -> str:
        path = LOGS / f"{name}.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    # -- stop ----------------------------------------------------------------------------------------
    def stop(self) -> None:
        # Signal whole process groups, leader alive or not: an api-server's uvicorn child or a worker's
        # pool processes can outlive their parent.
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            deadline = time.monotonic() + 30
            while (proc.poll() is None or _group_alive(proc.pid)) and time.monotonic() < deadline:
                time.sleep(0.2)
            if proc.poll() is None or _group_alive(proc.pid):
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()
        if self.broker_url.endswith(f":{SHARED_REDIS_PORT}/0"):
            self._forget_queue()

    def _forget_queue(self) -> None:
        """Delete this session's keys from the shared Redis (the queue and kombu's bindings)."""
        import redis

        client = redis.Redis.from_url(self.broker_url)
        try:
            for key in client.scan_iter(match=f"*{self.token}*"):
                client.delete(key)
        finally:
            client.close()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
