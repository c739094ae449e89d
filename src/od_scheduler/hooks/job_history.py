"""JobHistoryHook: the project's only door to the `job_executions` table.

Every write is an upsert keyed by (dag_id, run_id, dealer_id, platform), so a task retry or a re-run of
the same DAG run updates its row and never adds one. Counts and metrics are written as they become
known, so a killed task leaves a `running` row that `summarize_run` later closes as failed.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from od_scheduler import conn_ids
from od_scheduler.delta import Fingerprint
from od_scheduler.hooks.http_base import CONNECTION_LOOKUP_LOCK
from od_scheduler.models.dealer import Dealer, InvalidDealer
from od_scheduler.models.job import ExecutionKey, JobExecution, JobStatus
from od_scheduler.scheduling import DealerHistory

#: The job-history migrations, shipped in the package (applied in file-name order, each idempotent).
SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
#: Connections a shard task's threads share (see ``JobHistoryHook(reuse_connections=True)``).
MAX_SHARED_CONNECTIONS = 4
#: How many of the runs that counted a VIN's misses are remembered (see ``count_missing``).
MAX_MISSING_RUNS = 32

_COLUMNS = (
    "id, job_id, dag_id, run_id, try_number, dealer_id, platform, status, start_time, end_time, "
    "vehicles_found, vehicles_processed, vehicles_rejected, vehicles_delisted, errors, "
    "performance_metrics, created_at, pull_result, anomaly"
)

_START_SQL = """
INSERT INTO job_executions (job_id, dag_id, run_id, dealer_id, platform, status, try_number, start_time)
VALUES (%(job_id)s, %(dag_id)s, %(run_id)s, %(dealer_id)s, %(platform)s, 'running', %(try_number)s, now())
ON CONFLICT (dag_id, run_id, dealer_id, platform) DO UPDATE
   SET status = 'running',
       try_number = EXCLUDED.try_number,
       end_time = NULL,
       pull_result = NULL,
       anomaly = NULL,
       updated_at = now()
RETURNING id
"""

_PROGRESS_SQL = """
UPDATE job_executions
   SET vehicles_found = COALESCE(%(found)s, vehicles_found),
       vehicles_processed = COALESCE(%(processed)s, vehicles_processed),
       vehicles_rejected = COALESCE(%(rejected)s, vehicles_rejected),
       vehicles_delisted = COALESCE(%(delisted)s, vehicles_delisted),
       performance_metrics = performance_metrics || %(metrics)s::jsonb,
       updated_at = now()
 WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s AND dealer_id = %(dealer_id)s AND platform = %(platform)s
"""

_FINISH_SQL = """
UPDATE job_executions
   SET status = %(status)s,
       end_time = now(),
       errors = CASE WHEN %(error)s::text IS NULL THEN errors ELSE array_append(errors, %(error)s::text) END,
       anomaly = %(anomaly)s,
       performance_metrics = performance_metrics
           || jsonb_build_object('duration_ms', (extract(epoch FROM now() - start_time) * 1000)::bigint),
       updated_at = now()
 WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s AND dealer_id = %(dealer_id)s AND platform = %(platform)s
"""

_FAIL_UNSTARTED_SQL = """
INSERT INTO job_executions (job_id, dag_id, run_id, dealer_id, platform, status, try_number,
                            start_time, end_time, errors)
VALUES (%(job_id)s, %(dag_id)s, %(run_id)s, %(dealer_id)s, %(platform)s, 'failed', %(try_number)s,
        now(), now(), ARRAY[%(error)s::text])
ON CONFLICT (dag_id, run_id, dealer_id, platform) DO UPDATE
   SET status = 'failed', end_time = now(), errors = array_append(job_executions.errors, %(error)s::text),
       updated_at = now()
"""


_RELEASE_SQL = (
    "DELETE FROM dealer_leases WHERE dealer_id = %s AND platform = %s AND dag_id = %s AND run_id = %s"
)

_ACQUIRE_SQL = """
INSERT INTO dealer_leases (dealer_id, platform, dag_id, run_id, expires_at)
VALUES (%(dealer_id)s, %(platform)s, %(dag_id)s, %(run_id)s, now() + make_interval(mins => %(minutes)s))
ON CONFLICT (dealer_id, platform) DO UPDATE
   SET dag_id = EXCLUDED.dag_id, run_id = EXCLUDED.run_id, acquired_at = now(),
       expires_at = EXCLUDED.expires_at
 WHERE dealer_leases.expires_at < now()
    OR (dealer_leases.dag_id = EXCLUDED.dag_id AND dealer_leases.run_id = EXCLUDED.run_id)
RETURNING run_id
"""

#: Like acquiring, but a lease this run holds keeps its ``acquired_at`` (the start of the run's pull).
_RENEW_SQL = """
INSERT INTO dealer_leases (dealer_id, platform, dag_id, run_id, expires_at)
VALUES (%(dealer_id)s, %(platform)s, %(dag_id)s, %(run_id)s, now() + make_interval(mins => %(minutes)s))
ON CONFLICT (dealer_id, platform) DO UPDATE
   SET dag_id = EXCLUDED.dag_id, run_id = EXCLUDED.run_id, expires_at = EXCLUDED.expires_at,
       acquired_at = CASE
           WHEN (dealer_leases.dag_id, dealer_leases.run_id) = (EXCLUDED.dag_id, EXCLUDED.run_id)
           THEN dealer_leases.acquired_at ELSE now() END
 WHERE dealer_leases.expires_at < now()
    OR (dealer_leases.dag_id = EXCLUDED.dag_id AND dealer_leases.run_id = EXCLUDED.run_id)
RETURNING run_id
"""

_HOLDER_SQL = """
SELECT dag_id, run_id, expires_at FROM dealer_leases
 WHERE dealer_id = %s AND platform = %s AND expires_at >= now() AND NOT (dag_id = %s AND run_id = %s)
"""

#: This run's pull start: its latest pull try, else (rows from before the column) the row's first start.
_LATER_SUCCESS_SQL = """
SELECT other.dag_id, other.run_id, other.end_time
  FROM job_executions me
  JOIN job_executions other ON other.dealer_id = me.dealer_id AND other.platform = me.platform
 WHERE me.dag_id = %(dag_id)s AND me.run_id = %(run_id)s
   AND me.dealer_id = %(dealer_id)s AND me.platform = %(platform)s
   AND other.status = 'success'
   AND NOT (other.dag_id = me.dag_id AND other.run_id = me.run_id)
   AND other.end_time > COALESCE(me.pull_started_at, me.start_time)
 ORDER BY other.end_time DESC
 LIMIT 1
"""


@dataclass(frozen=True)
class OtherRun:
    """Another DAG run of a dealer x platform: its lease holder (``at`` = the lease's expiry), or a run that
    ingested it after this run's pull began (``at`` = when that ingest succeeded)."""

    dag_id: str
    run_id: str
    at: datetime | None

    def __str__(self) -> str:
        return f"{self.dag_id}/{self.run_id}"


def _holder(cur: Any, key: ExecutionKey) -> OtherRun | None:
    """The run other than ``key``'s holding the unexpired lease of ``key``'s dealer x platform."""
    cur.execute(_HOLDER_SQL, (key.dealer_id, key.platform, key.dag_id, key.run_id))
    row = cur.fetchone()
    return OtherRun(dag_id=str(row[0]), run_id=str(row[1]), at=row[2]) if row else None


#: Rows older than the cutoff, except ``running`` ones and each dealer x platform's last ``keep_last``
#: executions and latest success, which are kept whatever their age.
_PRUNABLE_SQL = """
SELECT id FROM job_executions j
 WHERE start_time < %(cutoff)s
   AND status <> 'running'
   AND NOT EXISTS (
       SELECT 1 FROM (
           SELECT id, status,
                  row_number() OVER (ORDER BY start_time DESC, id DESC) AS recent,
                  row_number() OVER (PARTITION BY status = 'success'
                                     ORDER BY start_time DESC, id DESC) AS of_kind
             FROM job_executions
            WHERE dealer_id = j.dealer_id AND platform = j.platform
       ) ranked
        WHERE ranked.id = j.id
          AND (ranked.recent <= %(keep_last)s OR (ranked.status = 'success' AND ranked.of_kind = 1))
   )
"""


#: One statement for a whole CMS listing (thousands of dealers): the rows travel as one JSON array.
_REMEMBER_DEALERS_SQL = """
INSERT INTO dealer_directory AS d (dealer_id, name, slug, platforms, cms_error, listed_at)
SELECT x.dealer_id, x.name, x.slug, x.platforms, x.cms_error, now()
  FROM jsonb_to_recordset(%s::jsonb)
       AS x(dealer_id text, name text, slug text, platforms text[], cms_error text)
 ORDER BY x.dealer_id
ON CONFLICT (dealer_id) DO UPDATE
   SET name = COALESCE(EXCLUDED.name, d.name),
       slug = COALESCE(EXCLUDED.slug, d.slug),
       platforms = CASE WHEN EXCLUDED.cms_error IS NULL THEN EXCLUDED.platforms
                        ELSE ARRAY(SELECT DISTINCT p FROM unnest(d.platforms || EXCLUDED.platforms) AS p
                                    ORDER BY p) END,
       cms_error = EXCLUDED.cms_error,
       listed_at = EXCLUDED.listed_at
"""

#: Rows ``running`` with no update for longer than the lease and no unexpired lease of their run (a task that
#: renews its lease is alive): their run died without a summary. One statement, at most ``limit`` rows, oldest
#: first; rows a live transaction holds are skipped. The expired leases of the rows it closes are released.
_CLOSE_ABANDONED_SQL = """
WITH stuck AS (
    SELECT j.id, j.updated_at AS last_update,
           floor(extract(epoch FROM now() - j.updated_at) / 60)::bigint AS idle_minutes
      FROM job_executions j
     WHERE j.status = 'running'
       AND j.updated_at < now() - make_interval(mins => %(lease_minutes)s::int)
       AND NOT EXISTS (
           SELECT 1 FROM dealer_leases l
            WHERE l.dealer_id = j.dealer_id AND l.platform = j.platform
              AND l.dag_id = j.dag_id AND l.run_id = j.run_id AND l.expires_at >= now())
     ORDER BY j.updated_at, j.id
     LIMIT %(limit)s
       FOR UPDATE OF j SKIP LOCKED
), closed AS (
    UPDATE job_executions j
       SET status = 'failed',
           end_time = GREATEST(j.start_time, j.updated_at),
           errors = array_append(j.errors, format(
               'left running by run %%s: no update for %%s minutes; closed by %%s',
               j.run_id, stuck.idle_minutes, %(closed_by)s::text)),
           updated_at = now()
      FROM stuck
     WHERE j.id = stuck.id AND j.status = 'running'
    RETURNING j.dag_id, j.run_id, j.dealer_id, j.platform, stuck.last_update, stuck.idle_minutes,
              j.errors[cardinality(j.errors)] AS error
), released AS (
    DELETE FROM dealer_leases l USING closed c
     WHERE l.dealer_id = c.dealer_id AND l.platform = c.platform
       AND l.dag_id = c.dag_id AND l.run_id = c.run_id AND l.expires_at < now()
    RETURNING l.dag_id, l.run_id, l.dealer_id, l.platform
)
SELECT c.dag_id, c.run_id, c.dealer_id, c.platform, c.last_update, c.idle_minutes, c.error,
       EXISTS (SELECT 1 FROM released r
                WHERE (r.dag_id, r.run_id, r.dealer_id, r.platform)
                    = (c.dag_id, c.run_id, c.dealer_id, c.platform)) AS lease_released
  FROM closed c
 ORDER BY c.dag_id, c.run_id, c.dealer_id, c.platform
"""


@dataclass(frozen=True)
class AbandonedJob:
    """A ``running`` row :meth:`JobHistoryHook.close_abandoned` closed as failed."""

    dag_id: str
    run_id: str
    dealer_id: str
    platform: str
    last_update: datetime
    idle_minutes: int
    error: str
    lease_released: bool


#: Characters of one error kept in ``job_executions.errors``: the message and a short upstream excerpt fit.
MAX_STORED_ERROR_CHARS = 2000
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def stored_error(error: str | None) -> str | None:
    """An error as ``job_executions`` keeps it: control characters (NUL, which PostgreSQL text cannot
    hold) replaced and at most :data:`MAX_STORED_ERROR_CHARS` characters, whatever an upstream put in it."""
    if error is None:
        return None
    text = _UNSTORABLE.sub("?", error)
    return text if len(text) <= MAX_STORED_ERROR_CHARS else text[: MAX_STORED_ERROR_CHARS - 1] + "…"


class JobHistoryHook(PostgresHook):
    """PostgresHook on the ``od_job_history`` connection with the job-history operations."""

    conn_name_attr = "postgres_conn_id"
    default_conn_name = conn_ids.JOB_HISTORY
    conn_type = "postgres"
    hook_name = "Open Dealer job history"

    def __init__(
        self,
        *args: Any,
        reuse_connections: bool = False,
        max_connections: int = MAX_SHARED_CONNECTIONS,
        **kwargs: Any,
    ) -> None:
        """``reuse_connections``: keep up to ``max_connections`` connections open, shared by the threads of
        a shard task, until :meth:`close` (a shard's dealers make thousands of small statements; a new
        connection for each would cost more than the statement, and one per thread would exhaust the
        server's ``max_connections`` once a few shards run at once). Without it every operation opens and
        closes its own connection, which suits one-off callers."""
        kwargs.setdefault("postgres_conn_id", conn_ids.JOB_HISTORY)
        super().__init__(*args, **kwargs)
        self._od_reuse = reuse_connections
        self._od_lock = threading.Lock()
        self._od_open: list[Any] = []
        self._od_idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._od_slots = threading.BoundedSemaphore(max(1, max_connections))

    def close(self) -> None:
        """Close the connections kept by ``reuse_connections`` (a no-op otherwise)."""
        with self._od_lock:
            conns, self._od_open = self._od_open, []
        for conn in conns:
            if not conn.closed:
                conn.close()

    def _borrow(self) -> Any:
        """An idle shared connection, or a new one while fewer than ``max_connections`` exist (else wait)."""
        self._od_slots.acquire()
        try:
            conn = self._od_idle.get_nowait()
        except queue.Empty:
            conn = None
        if conn is None or conn.closed:
            try:
                conn = self._open_connection()
            except BaseException:
                self._od_slots.release()
                raise
            with self._od_lock:
                self._od_open.append(conn)
        return conn

    def _open_connection(self) -> Any:
        """A new database connection; the Airflow Connection is looked up once, one lookup at a time."""
        if self._connection is None:
            with CONNECTION_LOOKUP_LOCK:
                _ = self.connection
        return self.get_conn()

    def _give_back(self, conn: Any) -> None:
        if not conn.closed:
            self._od_idle.put(conn)
        self._od_slots.release()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        conn: Any = self._borrow() if self._od_reuse else self._open_connection()
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException:
            if not conn.closed:
                try:
                    conn.rollback()
                except Exception:  # a broken connection: drop it, the next operation opens a new one
                    conn.close()
            raise
        finally:
            if self._od_reuse:
                self._give_back(conn)
            else:
                conn.close()

    # -- schema ---------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:  # type: ignore[override]  # DbApiHook's is unannotated
        """The database answers and holds the job-history schema; never raises (Airflow's connection test).

        The UI's Test button on ``od_job_history`` (a ``postgres`` connection) runs PostgresHook's test; this
        one also says whether the schema is there.
        """
        where = f"connection {self.postgres_conn_id!r}"
        try:
            with self._cursor() as cur:
                cur.execute("SELECT to_regclass('job_executions') IS NOT NULL")
                has_schema = bool(cur.fetchone()[0])
        except Exception as err:  # a test must answer, not raise
            return False, f"{where}: {type(err).__name__}: {err}".strip()
        if not has_schema:
            return False, (
                f"{where} reaches PostgreSQL, but the job-history schema is missing (no job_executions "
                "table): run `make setup` (or JobHistoryHook().apply_schema())."
            )
        return True, f"{where}: PostgreSQL answers and the job-history schema is in place."

    def apply_schema(self, sql_dir: Path = SQL_DIR) -> list[str]:
        """Apply every ``*.sql`` file in order; each is idempotent. Returns the file names applied."""
        applied = []
        with self._cursor() as cur:
            for path in sorted(sql_dir.glob("*.sql")):
                cur.execute(path.read_text())
                applied.append(path.name)
        return applied

    # -- writes ---------------------------------------------------------------------------------
    def start(self, key: ExecutionKey, *, try_number: int) -> int:
        """Mark the dealer's job ``running`` (insert, or reset on retry). Returns the row id."""
        with self._cursor() as cur:
            cur.execute(_START_SQL, {**key.model_dump(), "job_id": key.job_id, "try_number": try_number})
            return int(cur.fetchone()[0])

    def progress(
        self,
        key: ExecutionKey,
        *,
        found: int | None = None,
        processed: int | None = None,
        rejected: int | None = None,
        delisted: int | None = None,
        metrics: Mapping[str, Any] | None = None,
    ) -> None:
        """Record counts and measured metrics as they become known (``None`` leaves a count as is)."""
        params = {
            **key.model_dump(),
            "found": found,
            "processed": processed,
            "rejected": rejected,
            "delisted": delisted,
            "metrics": json.dumps(dict(metrics or {}), default=str),
        }
        with self._cursor() as cur:
            cur.execute(_PROGRESS_SQL, params)

    def finish(
        self,
        key: ExecutionKey,
        status: JobStatus,
        *,
        error: str | None = None,
        release: bool = True,
        anomaly: str | None = None,
    ) -> None:
        """End the dealer's job with its final status and, on failure, the error text.

        ``anomaly``: the inventory anomaly the job failed for (its row's ``anomaly``; None clears it).

        ``release`` (the default) also releases this run's lease on the dealer: on success and on a final
        failure. A failure Airflow will retry passes ``release=False``, so the retry still holds the lease
        and no other run pulls or ingests the dealer in between.
        """
        error = stored_error(error)
        with self._cursor() as cur:
            if release:
                cur.execute(_RELEASE_SQL, (key.dealer_id, key.platform, key.dag_id, key.run_id))
            cur.execute(
                _FINISH_SQL, {**key.model_dump(), "status": status.value, "error": error, "anomaly": anomaly}
            )
            if cur.rowcount == 0:
                # The row was never started (the task died before its first write): record the failure anyway.
                cur.execute(
                    _FAIL_UNSTARTED_SQL,
                    {**key.model_dump(), "job_id": key.job_id, "try_number": 1, "error": error or status},
                )

    def record_pull(self, key: ExecutionKey, result: Mapping[str, Any]) -> None:
        """Keep what the dealer's pull staged on its row: the ingest of its shard reads it from here, and a
        retried pull knows the dealer was already pulled in this run."""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE job_executions SET pull_result = %(result)s::jsonb, updated_at = now() "
                "WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s AND dealer_id = %(dealer_id)s "
                "AND platform = %(platform)s",
                {**key.model_dump(), "result": json.dumps(dict(result), default=str)},
            )

    def shard_rows(
        self, dag_id: str, run_id: str, platform: str, dealer_ids: Sequence[str]
    ) -> dict[str, JobExecution]:
        """This run's rows of a shard's dealers, by dealer id (one statement for the whole shard)."""
        if not dealer_ids:
            return {}
        rows = self._select(
            f"SELECT {_COLUMNS} FROM job_executions "
            "WHERE dag_id = %s AND run_id = %s AND platform = %s AND dealer_id = ANY(%s)",
            (dag_id, run_id, platform, list(dealer_ids)),
        )
        return {r.dealer_id: r for r in rows}

    def close_stale(self, dag_id: str, run_id: str, message: str) -> int:
        """Fail rows of this run still ``running`` (their task was killed before it could report)."""
        sql = """
        UPDATE job_executions
           SET status = 'failed', end_time = now(), errors = array_append(errors, %(message)s::text),
               performance_metrics = performance_metrics
                   || jsonb_build_object('duration_ms',
                                         (extract(epoch FROM now() - start_time) * 1000)::bigint),
               updated_at = now()
         WHERE dag_id = %(dag_id)s AND run_id = %(run_id)s AND status = 'running'
        """
        with self._cursor() as cur:
            cur.execute(sql, {"dag_id": dag_id, "run_id": run_id, "message": message})
            return int(cur.rowcount)

    def close_abandoned(self, *, lease_minutes: int, closed_by: str, limit: int) -> list[AbandonedJob]:
        """Fail the rows left ``running`` by runs that died without a summary, in one bounded statement.

        A row qualifies when it had no update for more than ``lease_minutes`` and its run holds no unexpired
        lease on the dealer (a live task renews its lease). Its error says which run left it and for how
        long: ``left running by run <run_id>: no update for N minutes; closed by <closed_by>``; its
        ``end_time`` is its last update (the job did not work until now). The expired leases those runs
        still hold are released. At most ``limit`` rows, oldest first (the next call closes the rest).
        """
        params = {"lease_minutes": lease_minutes, "closed_by": closed_by, "limit": limit}
        with self._cursor() as cur:
            cur.execute(_CLOSE_ABANDONED_SQL, params)
            return [
                AbandonedJob(
                    dag_id=str(dag_id),
                    run_id=str(run_id),
                    dealer_id=str(dealer_id),
                    platform=str(platform),
                    last_update=last_update,
                    idle_minutes=int(idle),
                    error=str(error),
                    lease_released=bool(released),
                )
                for dag_id, run_id, dealer_id, platform, last_update, idle, error, released in cur.fetchall()
            ]

    def last_success(self, dealer_id: str, platform: str) -> JobExecution | None:
        """The dealer's latest successful execution on ``platform``, if any."""
        rows = self._select(
            f"SELECT {_COLUMNS} FROM job_executions WHERE dealer_id = %s AND platform = %s "
            "AND status = 'success' ORDER BY start_time DESC LIMIT 1",
            (dealer_id, platform),
        )
        return rows[0] if rows else None

    def dealer_histories(self, platform: str, dealer_ids: Sequence[str]) -> dict[str, DealerHistory]:
        """Per dealer: start of the latest success, and how many finished executions failed since it."""
        if not dealer_ids:
            return {}
        sql = """
        WITH finished AS (
            SELECT dealer_id, status, start_time,
                   row_number() OVER (PARTITION BY dealer_id ORDER BY start_time DESC, id DESC) AS rn
              FROM job_executions
             WHERE platform = %s AND dealer_id = ANY(%s) AND status IN ('success', 'failed')
        )
        SELECT dealer_id,
               max(start_time) FILTER (WHERE status = 'success') AS last_success,
               coalesce(min(rn) FILTER (WHERE status = 'success') - 1, count(*)) AS consecutive_failures
          FROM finished
         GROUP BY dealer_id
        """
        with self._cursor() as cur:
            cur.execute(sql, (platform, list(dealer_ids)))
            return {
                str(dealer_id): DealerHistory(last_success=last, consecutive_failures=int(failures))
                for dealer_id, last, failures in cur.fetchall()
            }

    # -- leases: one run at a time per dealer x platform, from its pull to its last ingest try ------------
    def acquire_lease(self, key: ExecutionKey, *, minutes: int) -> str | None:
        """Lease the dealer for this run's pull. Returns None when acquired, else the run holding it.

        Acquired when the lease is free, expired, or already this run's (a pull retry); ``acquired_at`` is
        then this pull's start. The holder is named ``dag_id/run_id``.
        """
        with self._cursor() as cur:
            cur.execute(_ACQUIRE_SQL, {**key.model_dump(), "minutes": minutes})
            if cur.fetchone() is not None:
                return None
            holder = _holder(cur, key)
            return str(holder) if holder else "another run"

    def renew_lease(self, key: ExecutionKey, *, minutes: int) -> OtherRun | None:
        """Extend this run's lease to ``minutes`` from now. Returns None when held, else the holding run.

        A lease nobody holds (expired, or released after a final failure) is taken back: no other run wrote
        the dealer meanwhile unless it also *succeeded*, which :meth:`later_success` catches.
        """
        with self._cursor() as cur:
            cur.execute(_RENEW_SQL, {**key.model_dump(), "minutes": minutes})
            if cur.fetchone() is not None:
                return None
            return _holder(cur, key) or OtherRun(dag_id="?", run_id="?", at=None)

    def lease_holder(self, key: ExecutionKey) -> OtherRun | None:
        """The run other than ``key``'s that holds the dealer's unexpired lease, if any."""
        with self._cursor() as cur:
            return _holder(cur, key)

    def mark_pull_start(self, key: ExecutionKey) -> None:
        """Record that this run's pull of the dealer (a new try) begins now (see :meth:`later_success`)."""
        with self._cursor() as cur:
            cur.execute(
                "UPDATE job_executions SET pull_started_at = now(), updated_at = now() "
                "WHERE dag_id = %s AND run_id = %s AND dealer_id = %s AND platform = %s",
                (key.dag_id, key.run_id, key.dealer_id, key.platform),
            )

    def later_success(self, key: ExecutionKey) -> OtherRun | None:
        """Another run whose ingest of the dealer succeeded after this run's pull began, if any.

        Its vehicles are newer than this run's staged ones: ingesting them now would re-send stale content
        (re-listing sold cars) and move the source state backwards. ``at`` is when that ingest succeeded.
        """
        with self._cursor() as cur:
            cur.execute(_LATER_SUCCESS_SQL, key.model_dump())
            row = cur.fetchone()
            return OtherRun(dag_id=str(row[0]), run_id=str(row[1]), at=row[2]) if row else None

    def release_lease(self, key: ExecutionKey) -> None:
        """Release this run's lease on the dealer (no-op when another run holds it)."""
        with self._cursor() as cur:
            cur.execute(_RELEASE_SQL, (key.dealer_id, key.platform, key.dag_id, key.run_id))

    def release_run_leases(self, dag_id: str, run_id: str) -> int:
        """Release every lease a run still holds (its summary runs after all its dealers ended)."""
        with self._cursor() as cur:
            cur.execute("DELETE FROM dealer_leases WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
            return int(cur.rowcount)

    def skip(self, key: ExecutionKey, *, try_number: int, reason: str) -> None:
        """Record that this run did not pull the dealer, and why."""
        sql = """
        INSERT INTO job_executions (job_id, dag_id, run_id, dealer_id, platform, status, try_number,
                                    start_time, end_time, errors)
        VALUES (%(job_id)s, %(dag_id)s, %(run_id)s, %(dealer_id)s, %(platform)s, 'skipped', %(try_number)s,
                now(), now(), ARRAY[%(reason)s::text])
        ON CONFLICT (dag_id, run_id, dealer_id, platform) DO UPDATE
           SET status = 'skipped', end_time = now(),
               errors = array_append(job_executions.errors, %(reason)s::text), updated_at = now()
        """
        with self._cursor() as cur:
            cur.execute(
                sql, {**key.model_dump(), "job_id": key.job_id, "try_number": try_number, "reason": reason}
            )

    # -- retention ----------------------------------------------------------------------------------
    def count_prunable(self, *, cutoff: datetime, keep_last: int) -> int:
        """Rows the retention would delete now (see ``_PRUNABLE_SQL`` for what is always kept)."""
        with self._cursor() as cur:
            cur.execute(
                f"SELECT count(*) FROM ({_PRUNABLE_SQL}) p", {"cutoff": cutoff, "keep_last": keep_last}
            )
            return int(cur.fetchone()[0])

    def delete_prunable(self, *, cutoff: datetime, keep_last: int, batch: int) -> int:
        """Delete at most ``batch`` prunable rows in one transaction; returns how many."""
        with self._cursor() as cur:
            cur.execute(
                f"DELETE FROM job_executions WHERE id IN ({_PRUNABLE_SQL} ORDER BY id LIMIT %(batch)s)",
                {"cutoff": cutoff, "keep_last": keep_last, "batch": batch},
            )
            return int(cur.rowcount)

    # -- fingerprints: what the Data API holds, and what it rejected ------------------------------------
    def fingerprints(self, dealer_id: str, platform: str) -> dict[str, Fingerprint]:
        """Every VIN the job history knows for a dealer on a platform (accepted, delisted or rejected)."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT vin, content_hash, hash_version, content_hash IS NOT NULL AND delisted_at IS NULL, "
                "revision, rejected_hash, rejected_hash_version, rejected_reason, missing_pulls, "
                "missing_runs, delist_unconfirmed FROM vehicle_fingerprints "
                "WHERE dealer_id = %s AND platform = %s",
                (dealer_id, platform),
            )
            return {
                str(vin): Fingerprint(
                    content_hash=None if h is None else str(h),
                    hash_version=None if ver is None else int(ver),
                    live=bool(live),
                    revision=int(rev),
                    rejected_hash=None if rh is None else str(rh),
                    rejected_hash_version=None if rver is None else int(rver),
                    rejected_reason=None if reason is None else str(reason),
                    missing_pulls=int(misses),
                    missing_runs=tuple(str(r) for r in runs or ()),
                    delist_unconfirmed=bool(unconfirmed),
                )
                for vin, h, ver, live, rev, rh, rver, reason, misses, runs, unconfirmed in cur.fetchall()
            }

    def record_accepted(
        self, dealer_id: str, platform: str, hashes: Mapping[str, str], *, hash_version: int
    ) -> None:
        """Upsert fingerprints of vehicles the Data API accepted (re-listing any that were delisted).

        An accepted version ends any standing rejection of the VIN and any doubt of an unconfirmed delist,
        and moves its ``revision`` on.
        """
        if not hashes:
            return
        with self._cursor() as cur:
            cur.executemany(
                """INSERT INTO vehicle_fingerprints
                          (dealer_id, platform, vin, content_hash, hash_version, revision)
                   VALUES (%s, %s, %s, %s, %s, 1)
                   ON CONFLICT (dealer_id, platform, vin) DO UPDATE
                      SET content_hash = EXCLUDED.content_hash, hash_version = EXCLUDED.hash_version,
                          last_seen = now(), delisted_at = NULL, delist_unconfirmed = false,
                          revision = vehicle_fingerprints.revision + 1,
                          rejected_hash = NULL, rejected_hash_version = NULL, rejected_reason = NULL,
                          rejected_at = NULL""",
                [(dealer_id, platform, vin, h, hash_version) for vin, h in hashes.items()],
            )

    def record_rejected(
        self, dealer_id: str, platform: str, rejected: Mapping[str, tuple[str, str]], *, hash_version: int
    ) -> None:
        """Remember vehicles the Data API rejected: ``{vin: (content_hash, reason)}``.

        What the Data API holds for the VIN (an older accepted version, if any) is left as it is.
        ``rejected_at`` is when this content was first rejected.
        """
        if not rejected:
            return
        with self._cursor() as cur:
            cur.executemany(
                """INSERT INTO vehicle_fingerprints AS f (dealer_id, platform, vin, rejected_hash,
                                                     rejected_hash_version, rejected_reason, rejected_at)
                   VALUES (%s, %s, %s, %s, %s, %s, now())
                   ON CONFLICT (dealer_id, platform, vin) DO UPDATE
                      SET rejected_at = CASE
                              WHEN (f.rejected_hash, f.rejected_hash_version) IS NOT DISTINCT FROM
                                   (EXCLUDED.rejected_hash, EXCLUDED.rejected_hash_version)
                              THEN f.rejected_at ELSE now() END,
                          rejected_hash = EXCLUDED.rejected_hash,
                          rejected_hash_version = EXCLUDED.rejected_hash_version,
                          rejected_reason = EXCLUDED.rejected_reason,
                          last_seen = now()""",
                [
                    (dealer_id, platform, vin, h, hash_version, reason)
                    for vin, (h, reason) in rejected.items()
                ],
            )

    def clear_rejections(self, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
        """End the standing rejections of these VINs (their content is now accepted, or they left the lot).

        A row that held nothing but the rejection is removed.
        """
        if not vins:
            return
        params = (dealer_id, platform, list(vins))
        with self._cursor() as cur:
            cur.execute(
                "DELETE FROM vehicle_fingerprints WHERE dealer_id = %s AND platform = %s AND vin = ANY(%s) "
                "AND content_hash IS NULL",
                params,
            )
            cur.execute(
                "UPDATE vehicle_fingerprints SET rejected_hash = NULL, rejected_hash_version = NULL, "
                "rejected_reason = NULL, rejected_at = NULL "
                "WHERE dealer_id = %s AND platform = %s AND vin = ANY(%s) AND rejected_hash IS NOT NULL",
                params,
            )

    def touch_seen(self, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
        """Mark vehicles as seen in this pull (unchanged ones, and those whose rejection still stands)."""
        if not vins:
            return
        with self._cursor() as cur:
            cur.execute(
                "UPDATE vehicle_fingerprints SET last_seen = now() "
                "WHERE dealer_id = %s AND platform = %s AND vin = ANY(%s)",
                (dealer_id, platform, list(vins)),
            )

    def mark_delisted(self, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
        """Record that these vehicles were delisted at the Data API (moves their ``revision`` on).

        Their miss count is kept (it says why they were delisted) and reset when they come back.
        """
        if not vins:
            return
        with self._cursor() as cur:
            cur.execute(
                "UPDATE vehicle_fingerprints SET delisted_at = now(), revision = revision + 1, "
                "delist_unconfirmed = false "
                "WHERE dealer_id = %s AND platform = %s AND vin = ANY(%s) AND delisted_at IS NULL "
                "AND content_hash IS NOT NULL",
                (dealer_id, platform, list(vins)),
            )

    def mark_delist_unconfirmed(self, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
        """These live vehicles were sent to delist and the answer did not confirm it (a short count).

        They stay live (the next complete pull that misses them sends the delist again), but their content
        is no longer taken as held, so a vehicle that comes back is sent again; ``revision`` moves on.
        """
        if not vins:
            return
        with self._cursor() as cur:
            cur.execute(
                "UPDATE vehicle_fingerprints SET delist_unconfirmed = true, revision = revision + 1 "
                "WHERE dealer_id = %s AND platform = %s AND vin = ANY(%s) AND delisted_at IS NULL "
                "AND content_hash IS NOT NULL AND NOT delist_unconfirmed",
                (dealer_id, platform, list(vins)),
            )

    def count_missing(self, dealer_id: str, platform: str, vins: Sequence[str], *, run: str) -> None:
        """Count one miss of these live VINs for ``run`` (``<dag_id>/<run_id>``), once per run.

        Idempotent: a VIN whose ``missing_runs`` already holds ``run`` is left as it is, so a retry or a
        re-run of the same DAG run never counts twice. ``missing_runs`` keeps the most recent runs only.
        """
        if not vins:
            return
        with self._cursor() as cur:
            cur.execute(
                "UPDATE vehicle_fingerprints SET missing_pulls = missing_pulls + 1, "
                "missing_runs = (missing_runs || %(run)s::text)"
                f"[greatest(1, cardinality(missing_runs) + 2 - {MAX_MISSING_RUNS}):] "
                "WHERE dealer_id = %(dealer_id)s AND platform = %(platform)s AND vin = ANY(%(vins)s) "
                "AND delisted_at IS NULL AND content_hash IS NOT NULL AND NOT (%(run)s = ANY(missing_runs))",
                {"dealer_id": dealer_id, "platform": platform, "vins": list(vins), "run": run},
            )

    def reset_missing(self, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
        """These VINs were seen by a pull: their miss count starts again from 0."""
        if not vins:
            return
        with self._cursor() as cur:
            cur.execute(
                "UPDATE vehicle_fingerprints SET missing_pulls = 0, missing_runs = '{}' "
                "WHERE dealer_id = %s AND platform = %s AND vin = ANY(%s) "
                "AND (missing_pulls <> 0 OR cardinality(missing_runs) <> 0)",
                (dealer_id, platform, list(vins)),
            )

    # -- per-source state -----------------------------------------------------------------------
    def get_state(self, dealer_id: str, platform: str) -> dict[str, str]:
        """Per-source state of a dealer (e.g. ``{"etag": ...}``)."""
        with self._cursor() as cur:
            cur.execute(
                "SELECT key, value FROM source_state WHERE dealer_id = %s AND platform = %s",
                (dealer_id, platform),
            )
            return {str(k): str(v) for k, v in cur.fetchall()}

    def set_state(self, dealer_id: str, platform: str, state: Mapping[str, str]) -> None:
        """Upsert per-source state keys (call only once the dealer's data is safely ingested)."""
        with self._cursor() as cur:
            for key, value in state.items():
                cur.execute(
                    """INSERT INTO source_state (dealer_id, platform, key, value) VALUES (%s, %s, %s, %s)
                       ON CONFLICT (dealer_id, platform, key)
                       DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
                    (dealer_id, platform, key, value),
                )

    # -- dealer directory: who a dealer id is, as PayloadCMS last listed it ---------------------------
    def last_listing(self, platform: str) -> int | None:
        """How many dealers the CMS listed for ``platform`` last time (None: never listed)."""
        with self._cursor() as cur:
            cur.execute("SELECT dealers FROM platform_listings WHERE platform = %s", (platform,))
            row = cur.fetchone()
        return int(row[0]) if row else None

    def record_listing(self, platform: str, dealers: int) -> None:
        """Remember how many dealers the CMS listed for ``platform`` now."""
        with self._cursor() as cur:
            cur.execute(
                "INSERT INTO platform_listings (platform, dealers) VALUES (%s, %s) ON CONFLICT (platform) "
                "DO UPDATE SET dealers = EXCLUDED.dealers, listed_at = now()",
                (platform, dealers),
            )

    def remember_dealers(
        self, dealers: Sequence[Dealer | InvalidDealer], *, platform: str | None = None
    ) -> int:
        """Upsert the name, slug and platforms of the dealers the CMS listed, in one statement.

        A valid document replaces the row (its ``platforms`` is the CMS's whole list). A document that failed
        validation keeps the row's name and slug where it lacks them and adds ``platform`` (the platform it
        was listed for) to the known platforms; one without an id cannot be recorded. Rows are locked in id
        order, so two platforms' runs listing the same dealers at once cannot deadlock. Returns the row count.
        """
        rows: dict[str, dict[str, Any]] = {}
        for doc in dealers:
            if isinstance(doc, Dealer):
                rows[doc.id] = {
                    "dealer_id": doc.id,
                    "name": doc.name,
                    "slug": doc.slug,
                    "platforms": sorted(set(doc.platforms)),
                    "cms_error": None,
                }
            elif doc.id:
                rows[doc.id] = {
                    "dealer_id": doc.id,
                    "name": doc.name,
                    "slug": doc.slug,
                    "platforms": [platform] if platform else [],
                    "cms_error": doc.error,
                }
        if not rows:
            return 0
        with self._cursor() as cur:
            cur.execute(_REMEMBER_DEALERS_SQL, (json.dumps([rows[k] for k in sorted(rows)]),))
            return int(cur.rowcount)

    def dealer_names(self, dealer_ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
        """``{dealer_id: (name, slug)}`` from the dealer directory; ids it does not know are absent."""
        if not dealer_ids:
            return {}
        with self._cursor() as cur:
            cur.execute(
                "SELECT dealer_id, name, slug FROM dealer_directory WHERE dealer_id = ANY(%s)",
                (sorted(set(dealer_ids)),),
            )
            return {str(i): (name, slug) for i, name, slug in cur.fetchall()}

    # -- reads ----------------------------------------------------------------------------------
    def run_executions(self, dag_id: str, run_id: str) -> list[JobExecution]:
        """All rows of one DAG run, by dealer."""
        return self._select(
            f"SELECT {_COLUMNS} FROM job_executions WHERE dag_id = %s AND run_id = %s ORDER BY dealer_id",
            (dag_id, run_id),
        )

    def get(self, key: ExecutionKey) -> JobExecution | None:
        """The row for ``key``, if any."""
        rows = self._select(
            f"SELECT {_COLUMNS} FROM job_executions "
            "WHERE dag_id = %s AND run_id = %s AND dealer_id = %s AND platform = %s",
            (key.dag_id, key.run_id, key.dealer_id, key.platform),
        )
        return rows[0] if rows else None

    def _select(self, sql: str, params: Sequence[Any]) -> list[JobExecution]:
        with self._cursor() as cur:
            cur.execute(sql, params)
            names = [d[0] for d in cur.description]
            return [JobExecution.model_validate(dict(zip(names, row, strict=True))) for row in cur.fetchall()]
