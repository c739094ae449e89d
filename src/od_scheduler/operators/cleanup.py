"""maintenance_cleanup: keep the job history, the staging area and Airflow's metadata small.

Three independent operators, each reporting true counts in its log and XCom, each honouring ``dry_run``
and each idempotent (a second run deletes nothing more):

- ``PruneJobHistoryOperator`` deletes `job_executions` rows older than the retention in bounded batches,
  but always keeps each dealer x platform's latest success and last N executions, and never touches
  ``running`` rows, however old: a job still within its lease may be working. A row its run left
  ``running`` (no update for longer than ``lease_minutes``) is closed as failed by ``inventory_freshness``
  first, and from then on ages out like any failed execution;
- ``PruneStagingOperator`` deletes staged files older than the retention;
- ``PruneAirflowMetadataOperator`` prunes Airflow's own metadata only when ``[od_scheduler]
  metadata_cleanup_in_task`` is on; by default it skips, saying where that cleanup runs instead. Airflow 3
  keeps the metadata database's credentials away from tasks, and a task that held them could rewrite any
  run's state, so the metadata is pruned outside tasks by ``python -m od_scheduler.metadata_cleanup``
  (the compose file's ``airflow-db-clean`` service, cron, a Kubernetes CronJob). The in-task path, for
  one-machine setups such as ``make up``, runs that same ``airflow db clean`` with the database from the
  ``od_airflow_db`` connection (``make setup`` creates it from ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``
  only while the setting is on).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseHook, BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from od_scheduler import conn_ids
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.metadata_cleanup import MetadataCleanupError, run_clean
from od_scheduler.models.job import as_flag, optional_text
from od_scheduler.settings import get_settings
from od_scheduler.staging import staging_root


def _cutoff(context: Context, retention_days: Any) -> datetime:
    """Retention cutoff relative to the run (``run_after``; manual runs have no data interval)."""
    try:
        days = int(str(retention_days))
    except ValueError as err:
        raise AirflowFailException(f"retention_days must be an integer, got {retention_days!r}") from err
    if days < 1:
        raise AirflowFailException(f"retention_days must be at least 1, got {days}")
    dag_run = context["dag_run"]
    anchor = getattr(dag_run, "run_after", None) or datetime.now(UTC)
    return anchor - timedelta(days=days)


class _CleanupOperator(BaseOperator):
    template_fields = ("retention_days", "dry_run_only")
    ui_color = "#fbeee6"

    def __init__(self, *, retention_days: Any = None, dry_run_only: Any = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retention_days = retention_days
        self.dry_run_only = dry_run_only

    def retention_cutoff(self, context: Context) -> datetime:
        value = self.retention_days
        if optional_text(value) is None:
            value = get_settings().retention_days
        return _cutoff(context, value)


class PruneJobHistoryOperator(_CleanupOperator):
    """Delete old `job_executions` rows in bounded batches, keeping what operators still need."""

    def execute(self, context: Context) -> dict[str, Any]:
        settings = get_settings()
        cutoff, dry_run = self.retention_cutoff(context), as_flag(self.dry_run_only)
        keep_last = settings.keep_last_executions
        hook = JobHistoryHook()
        deleted = batches = 0
        eligible = hook.executions.count_prunable(cutoff=cutoff, keep_last=keep_last)
        if not dry_run:
            while True:
                count = hook.executions.delete_prunable(
                    cutoff=cutoff, keep_last=keep_last, batch=settings.cleanup_batch_size
                )
                if count == 0:
                    break
                deleted += count
                batches += 1
                self.log.info("Deleted batch %d: %d row(s), %d so far", batches, count, deleted)
        result = {
            "cutoff": cutoff.isoformat(),
            "dry_run": dry_run,
            "eligible": eligible,
            "deleted": deleted,
            "batches": batches,
            "keep_last": settings.keep_last_executions,
        }
        self.log.info(
            "job_executions older than %s: %d eligible (keeping each dealer x platform's last %d and latest "
            "success, and running rows); %s",
            cutoff.isoformat(),
            eligible,
            settings.keep_last_executions,
            "dry run: nothing deleted" if dry_run else f"deleted {deleted} in {batches} batch(es)",
        )
        return result


class PruneStagingOperator(_CleanupOperator):
    """Delete staged vehicle files older than the retention."""

    def execute(self, context: Context) -> dict[str, Any]:
        cutoff, dry_run = self.retention_cutoff(context), as_flag(self.dry_run_only)
        root = staging_root()
        eligible = deleted = kept = 0
        freed = 0
        if root.exists():
            for path in root.rglob("*.jsonl.gz"):
                info = path.stat()
                modified = _modified(info)
                if modified is None or modified >= cutoff:
                    kept += 1
                    continue
                eligible += 1
                size = int(
                    getattr(info, "st_size", 0) or (info.get("size", 0) if isinstance(info, dict) else 0)
                )
                if not dry_run:
                    path.unlink()
                    deleted += 1
                    freed += size
        result = {
            "cutoff": cutoff.isoformat(),
            "dry_run": dry_run,
            "root": str(root),
            "eligible": eligible,
            "deleted": deleted,
            "kept": kept,
            "bytes_freed": freed,
        }
        self.log.info(
            "Staged files under %s older than %s: %d eligible, %d kept; %s",
            root,
            cutoff.isoformat(),
            eligible,
            kept,
            "dry run: nothing deleted" if dry_run else f"deleted {deleted} ({freed} bytes)",
        )
        return result


def _modified(info: Any) -> datetime | None:
    """Modification time from a local ``os.stat_result`` or an fsspec info dict (s3: ``LastModified``)."""
    mtime = getattr(info, "st_mtime", None)
    if mtime is None and isinstance(info, dict):
        mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified")
    if isinstance(mtime, datetime):
        return mtime if mtime.tzinfo else mtime.replace(tzinfo=UTC)
    if isinstance(mtime, int | float):
        return datetime.fromtimestamp(mtime, UTC)
    return None


#: Why ``prune_airflow_metadata`` skips by default; the task log and the UI's skip show it.
SKIP_MESSAGE = (
    "Airflow's metadata is not pruned in a task: [od_scheduler] metadata_cleanup_in_task is off (the "
    "default), so no task holds the metadata database's credentials. Prune it where the scheduler runs: "
    "`python -m od_scheduler.metadata_cleanup` (docker-compose.yaml's airflow-db-clean service runs it "
    "daily; cron and Kubernetes CronJob examples in docs/metadata-retention.md). To prune from this task "
    "instead (one-machine setups; `make up` does), set AIRFLOW__OD_SCHEDULER__METADATA_CLEANUP_IN_TASK=True "
    "and define the od_airflow_db connection."
)


class PruneAirflowMetadataOperator(_CleanupOperator):
    """``airflow db clean`` of Airflow's run history older than the retention, only when
    ``[od_scheduler] metadata_cleanup_in_task`` is on (otherwise the task skips and says why)."""

    def execute(self, context: Context) -> dict[str, Any]:
        if not get_settings().metadata_cleanup_in_task:
            raise AirflowSkipException(SKIP_MESSAGE)
        cutoff, dry_run = self.retention_cutoff(context), as_flag(self.dry_run_only)
        env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db_url()}
        try:
            result = run_clean(cutoff, dry_run=dry_run, batch_size=get_settings().cleanup_batch_size, env=env)
        except MetadataCleanupError as err:
            raise AirflowFailException(str(err)) from err
        self.log.info(
            "Airflow metadata older than %s: %s; %s",
            cutoff.isoformat(),
            {table: n for table, n in result.rows.items() if n} or "no rows",
            "dry run: nothing deleted" if dry_run else "deleted",
        )
        return result.summary()


def metadata_db_url() -> str:
    """SQLAlchemy URL of Airflow's metadata database from the ``od_airflow_db`` connection."""
    from sqlalchemy.engine import URL

    try:
        conn = BaseHook.get_connection(conn_ids.AIRFLOW_DB)
    except Exception as err:  # AirflowNotFoundException: say what to do
        raise AirflowFailException(
            f"connection {conn_ids.AIRFLOW_DB!r} is not defined: with metadata_cleanup_in_task on, it names "
            "Airflow's metadata database for `airflow db clean` (run `make setup` with the setting on, or "
            "define AIRFLOW_CONN_OD_AIRFLOW_DB)"
        ) from err
    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    host = conn.host or ""
    socket = host.startswith("/")
    return URL.create(
        str(extra.get("driver", "postgresql+psycopg2")),
        username=conn.login or None,
        password=conn.password or None,
        host=None if socket else host or None,
        port=conn.port or None,
        database=conn.schema or "airflow",
        query={"host": host} if socket else {},
    ).render_as_string(hide_password=False)
