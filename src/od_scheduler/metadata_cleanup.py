"""Airflow's own metadata pruned by retention, outside tasks: ``python -m od_scheduler.metadata_cleanup``.

Runs ``airflow db clean`` for the run history Airflow keeps (DAG runs, task instances and their history,
XCom, the audit log, jobs, triggers, callbacks, deadlines, import errors, ...) older than
``[od_scheduler] retention_days``, without archive tables, on the metadata database Airflow itself is
configured with (``[database] sql_alchemy_conn``). Run it where the scheduler runs — the compose file's
``airflow-db-clean`` service, a cron job or a Kubernetes CronJob (docs/metadata-retention.md) — never in a
task: Airflow 3 keeps the metadata database's credentials away from tasks, and so does this project unless
``[od_scheduler] metadata_cleanup_in_task`` is switched on (then ``maintenance_cleanup``'s
``prune_airflow_metadata`` task runs the same command with the ``od_airflow_db`` connection).

    python -m od_scheduler.metadata_cleanup [--retention-days N] [--dry-run]

Exit status 0 when every table was cleaned (``--error-on-cleanup-failure``: a table that failed fails the
command, so cron or Kubernetes notice). Idempotent: a second run finds nothing more to delete.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: Tables given to ``airflow db clean --tables`` (Airflow 3.3's names; ``airflow db clean --help`` lists
#: them). Airflow adds the tables that depend on them itself (``dag_run`` takes its task instances,
#: deadlines and task state with it) and always keeps each DAG's latest scheduled run, so a schedule's
#: continuity is never lost. Left out on purpose: ``dag`` and ``dag_version`` (DAG definitions, not
#: history: Airflow manages them from the DAG files), ``_xcom_archive`` (a one-off table of the Airflow 2
#: to 3 migration; ``airflow db drop-archived`` removes it) and ``session`` (FAB's web sessions, absent
#: with the default auth manager). The Celery result tables are included for deployments that keep Celery's
#: results in the metadata database (the default result backend); a table that does not exist is skipped
#: with a warning. The compose file keeps them in a database of their own, pruned by its airflow-db-clean.
TABLES: tuple[str, ...] = (
    "asset_event",
    "callback",
    "celery_taskmeta",
    "celery_tasksetmeta",
    "connection_test_request",
    "dag_run",
    "deadline",
    "import_error",
    "job",
    "log",
    "partitioned_asset_key_log",
    "revoked_token",
    "task_instance",
    "task_instance_history",
    "task_reschedule",
    "task_state_store",
    "trigger",
    "xcom",
)

#: What the task supervisor puts in a task's ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` (Airflow 3).
TASK_DB_PLACEHOLDER = "airflow-db-not-allowed"

_FOUND = re.compile(r"Checking table (\w+)\s+Found (\d+) rows")


@dataclass(frozen=True)
class CleanResult:
    """What one ``airflow db clean`` found (and, unless a dry run, deleted): rows per table."""

    cutoff: datetime
    dry_run: bool
    rows: dict[str, int]

    def summary(self) -> dict[str, object]:
        """The JSON-able summary a task returns and the command prints."""
        return {"cutoff": self.cutoff.isoformat(), "dry_run": self.dry_run, "rows": self.rows}


class MetadataCleanupError(RuntimeError):
    """``airflow db clean`` failed; the message carries its exit status and the end of its output."""


def cutoff_before(now: datetime, retention_days: int) -> datetime:
    """The timestamp before which metadata is deleted: ``retention_days`` before ``now`` (UTC)."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC) - timedelta(days=retention_days)


def clean_command(
    cutoff: datetime,
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
) -> list[str]:
    """The ``airflow db clean`` command line (run with this interpreter, so the same Airflow)."""
    cmd = [
        sys.executable,
        "-m",
        "airflow",
        "db",
        "clean",
        "--clean-before-timestamp",
        cutoff.isoformat(),
        "--tables",
        ",".join(TABLES),
        "--skip-archive",
        "--error-on-cleanup-failure",
    ]
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    cmd.append("--dry-run" if dry_run else "--yes")
    return cmd


def found_rows(output: str) -> dict[str, int]:
    """Rows per table from ``airflow db clean``'s output ("Checking table x" / "Found N rows ...")."""
    return {table: int(found) for table, found in _FOUND.findall(output)}


def run_clean(
    cutoff: datetime,
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 3600,
) -> CleanResult:
    """Run ``airflow db clean``; raise :class:`MetadataCleanupError` with its output when it fails."""
    cmd = clean_command(cutoff, dry_run=dry_run, batch_size=batch_size)
    proc = subprocess.run(  # noqa: S603 - a fixed command line
        cmd,
        env=dict(env if env is not None else os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    if proc.returncode != 0:
        raise MetadataCleanupError(
            f"airflow db clean failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-1500:]}"
        )
    return CleanResult(cutoff=cutoff, dry_run=dry_run, rows=found_rows(proc.stdout))


def main(argv: list[str] | None = None) -> int:
    """The command: prune with the retention setting (or ``--retention-days``) relative to now."""
    from airflow.configuration import conf

    from od_scheduler.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m od_scheduler.metadata_cleanup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--retention-days",
        type=int,
        default=settings.retention_days,
        help="delete metadata older than this many days (default: [od_scheduler] retention_days = "
        f"{settings.retention_days})",
    )
    parser.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    args = parser.parse_args(argv)
    if args.retention_days < 1:
        parser.error(f"--retention-days must be at least 1, got {args.retention_days}")
    metadata_db = conf.get("database", "sql_alchemy_conn", fallback="") or ""
    if metadata_db.startswith(TASK_DB_PLACEHOLDER):
        print(
            "error: this process runs inside an Airflow task, which has no metadata database. Run the "
            "command where the scheduler runs (docs/metadata-retention.md), or switch on [od_scheduler] "
            "metadata_cleanup_in_task to use maintenance_cleanup's prune_airflow_metadata task.",
            file=sys.stderr,
        )
        return 2
    cutoff = cutoff_before(datetime.now(UTC), args.retention_days)
    mode = "dry run, " if args.dry_run else ""
    print(
        f"==> airflow db clean: {mode}metadata older than {cutoff.isoformat()} ({args.retention_days} days) "
        f"from {', '.join(TABLES)}",
        flush=True,
    )
    try:
        result = run_clean(cutoff, dry_run=args.dry_run, batch_size=settings.cleanup_batch_size)
    except MetadataCleanupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    found = {table: n for table, n in result.rows.items() if n}
    verb = "would delete" if args.dry_run else "deleted"
    detail = ", ".join(f"{table} {n}" for table, n in sorted(found.items())) or "nothing"
    print(f"==> {verb} rows older than {cutoff.isoformat()}: {detail}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
