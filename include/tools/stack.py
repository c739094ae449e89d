"""``make up`` / ``make down``: the whole local Airflow on the embedded pieces.

``up`` starts embedded PostgreSQL and the sandbox, runs setup, then the api-server (UI on
http://127.0.0.1:8080, users admin/admin and viewer/viewer), scheduler, dag-processor and triggerer, each
in its own process group with its log under ``.local/logs/``. ``down`` stops all of them, the sandbox and
PostgreSQL. Airflow's api-server leaves a uvicorn child behind when only its parent is killed, so whole
process groups are signalled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from include.tools import localenv

SERVICES = {
    "api-server": ["-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", "8080"],
    "scheduler": ["-m", "airflow", "scheduler"],
    "dag-processor": ["-m", "airflow", "dag-processor"],
    "triggerer": ["-m", "airflow", "triggerer"],
}


def _pid_dir() -> Path:
    path = localenv.local_dir() / "pids"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def up() -> int:
    env, _sandbox = localenv.prepare()
    env = {**os.environ, **env}
    localenv.step("Setting up Airflow: migrate, connections, pools, job-history schema")
    subprocess.run(
        [sys.executable, "-m", "include.tools.setup_project", "--replace-db-connections"], env=env, check=True
    )
    home = Path(env["AIRFLOW_HOME"])
    passwords = home / "simple_auth_manager_passwords.json.generated"
    if not passwords.exists():
        passwords.write_text(json.dumps({"admin": "admin", "viewer": "viewer"}))
    logs = localenv.local_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for name, cmd in SERVICES.items():
        pid_file = _pid_dir() / f"{name}.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            print(f"    {name} already running (pid {pid_file.read_text()})")
            continue
        with open(logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - fixed airflow commands
                [sys.executable, *cmd], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        pid_file.write_text(str(proc.pid))
        print(f"    started {name} (pid {proc.pid}, log .local/logs/{name}.log)")
    localenv.step("Waiting for the api-server")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8080/api/v2/monitor/health", timeout=2):
                break
        except OSError:
            time.sleep(1)
    else:
        print(
            "error: the api-server did not answer within 120 s; see .local/logs/api-server.log",
            file=sys.stderr,
        )
        return 1
    print("Airflow UI: http://127.0.0.1:8080  (admin / admin)")
    print("From a shell:  source .local/env.sh && airflow dags list")
    return 0


def down() -> int:
    for pid_file in sorted(_pid_dir().glob("*.pid")):
        pid = int(pid_file.read_text())
        if _alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not _alive(pid):
                    break
                time.sleep(0.2)
            else:
                os.killpg(pid, signal.SIGKILL)
            print(f"    stopped {pid_file.stem} (pid {pid})")
        pid_file.unlink()
    (localenv.local_dir() / "sandbox.port").unlink(missing_ok=True)
    localenv.stop_postgres()
    print("    stopped embedded PostgreSQL")
    return 0


if __name__ == "__main__":
    sys.exit({"up": up, "down": down}[sys.argv[1]]())
