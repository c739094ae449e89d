"""``make demo``: run every platform DAG once against the sandbox and print what happened.

Steps: embedded PostgreSQL and the sandbox (reused when already running) -> ``make setup``'s steps ->
``airflow dags test <dag> --conf '{"force": true}'`` per platform DAG, with a progress line while it
runs -> a summary table read from ``job_executions``. Airflow's output for each run goes to a log file
under ``.local/logs/demo/`` whose path is printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from include.tools import localenv

PULL_TASK = "per_dealer.pull_inventory"


def _db(env: dict[str, str], database: str) -> psycopg.Connection[Any]:
    socket_dir = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split("host=", 1)[1]
    return psycopg.connect(host=socket_dir, dbname=database, user="postgres", autocommit=True)


def _latest_run_id(meta: psycopg.Connection[Any], dag_id: str, after_id: int) -> str | None:
    row = meta.execute(
        "SELECT run_id FROM dag_run WHERE dag_id = %s AND id > %s ORDER BY id DESC LIMIT 1",
        (dag_id, after_id),
    ).fetchone()
    return row[0] if row else None


def _progress(
    meta: psycopg.Connection[Any], history: psycopg.Connection[Any], dag_id: str, run_id: str
) -> str:
    total = meta.execute(
        "SELECT count(*) FROM task_instance"
        " WHERE dag_id = %s AND run_id = %s AND task_id = %s AND map_index >= 0",
        (dag_id, run_id, PULL_TASK),
    ).fetchone()[0]
    counts = dict(
        history.execute(
            "SELECT status, count(*) FROM job_executions WHERE dag_id = %s AND run_id = %s GROUP BY status",
            (dag_id, run_id),
        ).fetchall()
    )
    done = counts.get("success", 0) + counts.get("failed", 0)
    if not total:
        return "listing dealers..."
    return (
        f"{done}/{total} dealers done ({counts.get('success', 0)} succeeded, "
        f"{counts.get('failed', 0)} failed, {counts.get('running', 0)} in progress)"
    )


def run_dag(
    env: dict[str, str], dag_id: str, log_dir: Path, conf: dict[str, Any]
) -> tuple[str | None, str, Path]:
    """Run one DAG with ``airflow dags test``; returns (run_id, final state, log file)."""
    log_path = log_dir / f"{dag_id}-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    with _db(env, "airflow") as meta, _db(env, "od_job_history") as history:
        last_id = meta.execute("SELECT coalesce(max(id), 0) FROM dag_run").fetchone()[0]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "airflow",
                    "dags",
                    "test",
                    dag_id,
                    "--conf",
                    json.dumps(conf),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            run_id, shown, started = None, "", time.monotonic()
            while proc.poll() is None:
                time.sleep(2)
                run_id = run_id or _latest_run_id(meta, dag_id, last_id)
                line = _progress(meta, history, dag_id, run_id) if run_id else "parsing the DAG..."
                if line != shown:
                    print(f"    [{time.monotonic() - started:5.0f}s] {dag_id}: {line}", flush=True)
                    shown = line
        run_id = run_id or _latest_run_id(meta, dag_id, last_id)
        state_row = (
            meta.execute(
                "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
            ).fetchone()
            if run_id
            else None
        )
    return run_id, (state_row[0] if state_row else f"did not run (exit {proc.returncode})"), log_path


def summary_table(env: dict[str, str], runs: list[tuple[str, str]]) -> tuple[str, int]:
    """Table of this demo's job_executions rows; returns (text, number of successful dealers)."""
    with _db(env, "od_job_history") as history:
        rows = []
        for dag_id, run_id in runs:
            rows += history.execute(
                """SELECT platform, dealer_id, status, vehicles_found, vehicles_processed, vehicles_rejected,
                          (extract(epoch FROM end_time - start_time))::numeric(10,1),
                          errors[array_upper(errors, 1)]
                     FROM job_executions WHERE dag_id = %s AND run_id = %s ORDER BY platform, dealer_id""",
                (dag_id, run_id),
            ).fetchall()
    names = _dealer_names(env)
    header = ("platform", "dealer", "status", "found", "sent", "rejected", "seconds", "error")
    lines = [header]
    for platform, dealer_id, status, found, sent, rejected, seconds, error in rows:
        lines.append(
            (
                platform,
                names.get(dealer_id, dealer_id)[:32],
                status,
                str(found),
                str(sent),
                str(rejected),
                str(seconds if seconds is not None else "-"),
                (error or "")[:100] if status == "failed" else "",
            )
        )
    total = ("TOTAL", f"{len(rows)} dealers", "", *(str(sum(r[i] for r in rows)) for i in (3, 4, 5)), "", "")
    lines.append(total)
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    text = "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
    return text, sum(1 for r in rows if r[2] == "success")


def _dealer_names(env: dict[str, str]) -> dict[str, str]:
    """Dealer names from the CMS connection, for a readable table (ids if the CMS is unreachable)."""
    import urllib.request

    conns = json.loads(Path(env["OD_CONNECTIONS_FILE"]).read_text())
    cms = conns["od_payload_cms"]
    names: dict[str, str] = {}
    page = 1
    while True:
        req = urllib.request.Request(  # noqa: S310 - the local sandbox
            f"{cms['host']}/api/dealers?depth=0&limit=100&page={page}",
            headers={"Authorization": f"users API-Key {cms['password']}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                body = json.load(resp)
        except OSError:
            return names
        names.update({d["id"]: d.get("name") or d["id"] for d in body.get("docs", [])})
        if not body.get("hasNextPage"):
            return names
        page += 1


def main() -> int:
    started = time.monotonic()
    env, _sandbox = localenv.prepare()
    # A short first retry delay, so a failing dealer's retries are seen in minutes, not a quarter hour.
    if "AIRFLOW__OD_SCHEDULER__TASK_RETRY_DELAY_S" not in os.environ:
        env["AIRFLOW__OD_SCHEDULER__TASK_RETRY_DELAY_S"] = "3"
    # `airflow dags test` (Airflow 3.3.2) crashes marking a run with a DeadlineAlert successful, and without
    # a scheduler a deadline never fires anyway: the demo's runs go without the long-run alert (make up keeps
    # it).
    if "AIRFLOW__OD_SCHEDULER__LONG_RUN_ALERTS" not in os.environ:
        env["AIRFLOW__OD_SCHEDULER__LONG_RUN_ALERTS"] = "False"
    os.environ.update(env)  # this process imports the platform registry, which reads Airflow config
    env = dict(os.environ)
    sys.path.insert(0, str(localenv.ROOT / "plugins"))
    localenv.step("Setting up Airflow: migrate, connections, pools, job-history schema")
    subprocess.run(
        [sys.executable, "-m", "include.tools.setup_project", "--replace-db-connections"], env=env, check=True
    )

    from od_scheduler.platforms import PLATFORMS

    log_dir = localenv.local_dir() / "logs" / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    runs: list[tuple[str, str]] = []
    states: list[str] = []
    fresh = localenv.local_dir() / "sandbox.fresh"
    conf: dict[str, Any] = {"force": True}
    if fresh.exists():
        # The sandbox was just started and its Data API is empty; the job history may remember what an
        # earlier sandbox received, so this time everything is sent (later demos send only changes).
        conf["full_refresh"] = True
    for platform in PLATFORMS.values():
        localenv.step(f"Running {platform.dag_id} once ({json.dumps(conf)}) with airflow dags test")
        run_id, state, log_path = run_dag(env, platform.dag_id, log_dir, conf)
        print(f"    {platform.dag_id}: run {run_id} finished {state.upper()}; Airflow log: {log_path}")
        states.append(f"{platform.dag_id}: {state}")
        if run_id:
            runs.append((platform.dag_id, run_id))

    fresh.unlink(missing_ok=True)
    text, succeeded = summary_table(env, runs)
    print("\n" + text + "\n")
    print("DAG runs: " + "; ".join(states))
    print(f"Airflow task logs: {log_dir} (one file per DAG run); job history: table job_executions")
    print("Use this environment from a shell:  source .local/env.sh  (then e.g. airflow dags list)")
    print(f"Demo finished in {time.monotonic() - started:.0f}s")
    if succeeded == 0:
        print("error: no dealer succeeded", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
