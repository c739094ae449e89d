"""``make demo``: run every platform DAG once against the sandbox and print what happened.

Steps: embedded PostgreSQL and the sandbox (reused when already running) -> ``make setup``'s steps ->
``airflow dags test <dag> --conf '{"force": true}'`` per platform DAG, with a progress line while it
runs -> a summary table read from ``job_executions``. Airflow's output for each run goes to a log file
under ``.local/logs/demo/`` whose path is printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from include.tools import localenv

#: The longest error text the summary prints (cut at a word, never inside a URL).
MAX_ERROR_CHARS = 400


def _db(env: dict[str, str], database: str) -> psycopg.Connection[Any]:
    socket_dir = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split("host=", 1)[1]
    return psycopg.connect(host=socket_dir, dbname=database, user="postgres", autocommit=True)


def _latest_run_id(meta: psycopg.Connection[Any], dag_id: str, after_id: int) -> str | None:
    row = meta.execute(
        "SELECT run_id FROM dag_run WHERE dag_id = %s AND id > %s ORDER BY id DESC LIMIT 1",
        (dag_id, after_id),
    ).fetchone()
    return row[0] if row else None


def _progress(env: dict[str, str], dag_id: str, run_id: str) -> str:
    """Dealers of the run by job status, from the job history (each dealer's row, written as it goes)."""
    with _db(env, "od_job_history") as history:
        states = dict(
            history.execute(
                "SELECT status, count(*) FROM job_executions WHERE dag_id = %s AND run_id = %s GROUP BY 1",
                (dag_id, run_id),
            ).fetchall()
        )
    if not states:
        return "listing dealers..."
    succeeded, failed = states.get("success", 0), states.get("failed", 0)
    line = f"{succeeded + failed} dealers done ({succeeded} succeeded, {failed} failed"
    if states.get("skipped"):
        line += f", {states['skipped']} skipped"
    return line + (f"), {states['running']} in progress" if states.get("running") else ")")


def run_dag(
    env: dict[str, str], dag_id: str, log_dir: Path, conf: dict[str, Any]
) -> tuple[str | None, str, Path]:
    """Run one DAG with ``airflow dags test``; returns (run_id, final state, log file)."""
    log_path = log_dir / f"{dag_id}-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    with _db(env, "airflow") as meta:
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
                line = _progress(env, dag_id, run_id) if run_id else "parsing the DAG..."
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


@dataclass(frozen=True)
class Row:
    """One dealer's job_executions row of this demo."""

    platform: str
    dealer_id: str
    status: str
    found: int
    unchanged: int | None  # -1: the source answered "not modified" (nothing was fetched)
    sent: int
    rejected: int
    work_s: float | None
    error: str | None


def history_rows(env: dict[str, str], runs: list[tuple[str, str]]) -> list[Row]:
    """This demo's job_executions rows, by platform and dealer."""
    with _db(env, "od_job_history") as history:
        rows: list[Row] = []
        for dag_id, run_id in runs:
            for record in history.execute(
                """SELECT platform, dealer_id, status, vehicles_found,
                          CASE WHEN (performance_metrics->>'unchanged')::boolean THEN -1
                               ELSE (performance_metrics->>'vehicles_unchanged')::int END,
                          vehicles_processed, vehicles_rejected,
                          ((performance_metrics->>'pull_ms')::float8
                            + coalesce((performance_metrics->>'ingest_ms')::float8, 0)) / 1000,
                          errors[array_upper(errors, 1)]
                     FROM job_executions WHERE dag_id = %s AND run_id = %s ORDER BY platform, dealer_id""",
                (dag_id, run_id),
            ).fetchall():
                rows.append(Row(*record))
    return rows


def summary_table(rows: list[Row], names: dict[str, str]) -> str:
    """The table of this demo's dealers; a failed dealer's error is a footnote below it."""
    header = ("platform", "dealer", "status", "found", "unchanged", "sent", "rejected", "work s", "error")
    lines = [header]
    notes: list[str] = []
    for row in rows:
        ref = ""
        if row.status == "failed" and row.error:
            notes.append(
                f"[{len(notes) + 1}] {names.get(row.dealer_id, row.dealer_id)} ({row.platform}): "
                + textwrap.shorten(row.error, MAX_ERROR_CHARS, placeholder=" …")
            )
            ref = f"[{len(notes)}]"
        lines.append(
            (
                row.platform,
                names.get(row.dealer_id, row.dealer_id),
                row.status,
                str(row.found),
                "-" if row.unchanged is None else "feed" if row.unchanged < 0 else str(row.unchanged),
                str(row.sent),
                str(row.rejected),
                "-" if row.work_s is None else f"{row.work_s:.1f}",
                ref,
            )
        )
    total = (
        "TOTAL",
        f"{len(rows)} dealers",
        "",
        str(sum(r.found for r in rows)),
        str(sum(max(r.unchanged or 0, 0) for r in rows)),
        str(sum(r.sent for r in rows)),
        str(sum(r.rejected for r in rows)),
        "",
        "",
    )
    lines.append(total)
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    text = "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
    return text + ("\n\nErrors (the last try's):\n" + "\n".join(notes) if notes else "")


def legend(rows: list[Row], sandbox: list[dict[str, Any]], fresh: bool) -> str:
    """What the table shows: the columns, and which sandbox dealers are broken on purpose."""
    scenario = {d["id"]: d.get("scenario") for d in sandbox}
    names = {d["id"]: d["name"] for d in sandbox}
    lines = [
        "How to read it:",
        "  found      vehicles the dealer's pull returned (valid VINs, duplicates dropped)",
        "  unchanged  of those, vehicles the Data API already has in this exact version: not sent again",
        "             ('feed': the source answered 'not modified', e.g. Cobalt's HTTP 304: nothing to fetch)",
        "  sent       new or changed vehicles posted to the Data API"
        + ("" if fresh else " (0 after an earlier demo: nothing changed since)"),
        "  rejected   records refused: an invalid VIN at the pull, or a per-VIN error from the Data API",
        "  work s     seconds the dealer's pull and ingest worked (waiting for a worker or a retry excluded)",
    ]
    failed = [r for r in rows if r.status == "failed"]
    survived = [r for r in rows if r.status == "success" and scenario.get(r.dealer_id)]
    if failed:
        lines.append("")
        lines.append(
            "Dealers that failed (the sandbox breaks some dealers on purpose; max_failure_rate is 0, so one"
            " failed dealer fails its DAG run — pass --conf '{\"max_failure_rate\": 0.5}' to allow some):"
        )
        for row in failed:
            why = scenario.get(row.dealer_id)
            lines.append(
                f"  {names.get(row.dealer_id, row.dealer_id)} ({row.platform}): "
                + (f"on purpose: {why}" if why else "NOT a deliberate sandbox fault: see its error above")
            )
    if survived:
        lines.append("")
        lines.append("Faults the pipeline rode out (retries, Retry-After, page-loop guards):")
        for row in survived:
            lines.append(
                f"  {names.get(row.dealer_id, row.dealer_id)} ({row.platform}): {scenario[row.dealer_id]}"
            )
    return "\n".join(lines)


def sandbox_dealers(sandbox_url: str) -> list[dict[str, Any]]:
    """The sandbox's dealer table (names and what each demonstrates) from its control API."""
    with urllib.request.urlopen(f"{sandbox_url}/_sandbox/dealers", timeout=10) as resp:  # noqa: S310
        return list(json.load(resp)["dealers"])


_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<index>-?\d+)")
#: The line the Task SDK logs when a task is rescheduled (it goes on in the same try).
_RESCHEDULED = "marking task as UP_FOR_RESCHEDULE"


def publish_task_logs(log_path: Path, dag_id: str, run_id: str, base_log_folder: Path) -> int:
    """Write each task try's part of ``airflow dags test``'s output where the Airflow UI reads task logs.

    ``dags test`` runs every task in its own process and prints the logs instead of writing the task log
    files, so after ``make up`` the UI would show these runs' logs empty. Each try's part begins at the
    "[DAG TEST] starting task_id=… map_index=…" line; it goes to Airflow's default log file layout
    (``[logging] log_filename_template``). A task that was rescheduled (``up_for_reschedule``: an ingest
    that ran before its pull) goes on in the same try, so its next part is added to the same file, as
    Airflow writes it. Returns the number of files written.
    """
    tries: dict[tuple[str, int], int] = {}
    rescheduled: set[tuple[str, int]] = set()
    files: dict[Path, list[str]] = {}
    current: tuple[str, int] | None = None
    lines: list[str] | None = None
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for line in log:
            match = _TASK_START.search(line)
            if match:
                current = (match["task"], int(match["index"]))
                if current in rescheduled:
                    rescheduled.discard(current)
                    attempt = tries[current]
                else:
                    attempt = tries[current] = tries.get(current, 0) + 1
                task_id, index = current
                folder = base_log_folder / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
                if index >= 0:
                    folder /= f"map_index={index}"
                lines = files.setdefault(folder / f"attempt={attempt}.log", [])
            if lines is not None:
                lines.append(line)
                if current is not None and _RESCHEDULED in line:
                    rescheduled.add(current)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(text), encoding="utf-8")
    return len(files)


def main() -> int:
    started = time.monotonic()
    env, sandbox_url = localenv.prepare()
    # A short first retry delay, so a failing dealer's retries are seen in minutes, not a quarter hour.
    if "AIRFLOW__OD_SCHEDULER__TASK_RETRY_DELAY_S" not in os.environ:
        env["AIRFLOW__OD_SCHEDULER__TASK_RETRY_DELAY_S"] = "3"
    os.environ.update(env)  # this process imports the platform registry, which reads Airflow config
    env = dict(os.environ)
    localenv.step("Setting up Airflow: migrate, connections, pools, job-history schema")
    subprocess.run(
        [sys.executable, "-m", "include.tools.setup_project", "--replace-db-connections"], env=env, check=True
    )

    from od_scheduler.platforms import PLATFORMS

    log_dir = localenv.local_dir() / "logs" / "demo"
    log_dir.mkdir(parents=True, exist_ok=True)
    base_log_folder = Path(env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    runs: list[tuple[str, str]] = []
    states: list[tuple[str, str]] = []
    fresh_marker = localenv.local_dir() / "sandbox.fresh"
    fresh = fresh_marker.exists()
    conf: dict[str, Any] = {"force": True}
    if fresh:
        # The sandbox was just started and its Data API is empty; the job history may remember what an
        # earlier sandbox received, so this time everything is sent (later demos send only changes).
        conf["full_refresh"] = True
    for platform in PLATFORMS.values():
        localenv.step(f"Running {platform.dag_id} once ({json.dumps(conf)}) with airflow dags test")
        run_id, state, log_path = run_dag(env, platform.dag_id, log_dir, conf)
        print(f"    {platform.dag_id}: run {run_id} finished {state.upper()}; Airflow log: {log_path}")
        states.append((platform.dag_id, state))
        if run_id:
            runs.append((platform.dag_id, run_id))
            publish_task_logs(log_path, platform.dag_id, run_id, base_log_folder)

    fresh_marker.unlink(missing_ok=True)
    rows = history_rows(env, runs)
    dealers = sandbox_dealers(sandbox_url)
    names = {d["id"]: d["name"] for d in dealers}
    print("\n" + summary_table(rows, names) + "\n")
    print(legend(rows, dealers, fresh) + "\n")
    print("DAG runs: " + "; ".join(f"{dag_id}: {state}" for dag_id, state in states))
    print(f"Airflow output of each run: {log_dir}; job history: table job_executions")
    print(
        "Look around:   make up  (the Airflow UI on http://127.0.0.1:8080, admin / admin, with these runs"
        " and their task logs)"
    )
    print("From a shell:  source .local/env.sh  (then e.g. airflow dags list)")
    print("Stop it all:   make down  (PostgreSQL and the sandbox keep running until then)")
    print(f"Demo finished in {time.monotonic() - started:.0f}s")
    if not any(r.status == "success" for r in rows):
        print("error: no dealer succeeded", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
