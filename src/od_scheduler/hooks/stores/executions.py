"""ExecutionStore: the ``job_executions`` rows of every dealer x platform x run, and the dealer leases.

Every write is an upsert keyed by (dag_id, run_id, dealer_id, platform), so a task retry or a re-run of
the same DAG run updates its row and never adds one. Counts and metrics are written as they become
known, so a killed task leaves a `running` row that `summarize_run` later closes as failed. The lease
(``dealer_leases``) lets one run at a time work on a dealer x platform, from its pull to its last ingest
try; ``pull_result`` keeps what each dealer's pull staged. Schema: ``od_scheduler/sql/001, 003, 008, 010``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from od_scheduler.hooks.stores import Cursor
from od_scheduler.models.job import DealerHistory, ExecutionKey, JobExecution, JobStatus

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


#: A dealer's recent history per platform (``DealerHistory``) over its finished executions: latest success,
#: failures since it, first execution, and the status, last error and anomaly of the latest one.
#: ``{on_platform}`` is empty (every platform) or the constant ``AND platform = %(platform)s``.
_HISTORIES_SQL = """
WITH finished AS (
    SELECT platform, dealer_id, status, start_time, errors, anomaly,
           row_number() OVER (PARTITION BY platform, dealer_id ORDER BY start_time DESC, id DESC) AS rn
      FROM job_executions
     WHERE dealer_id = ANY(%(dealer_ids)s) AND status IN ('success', 'failed') {on_platform}
)
SELECT platform, dealer_id,
       max(start_time) FILTER (WHERE status = 'success') AS last_success,
       coalesce(min(rn) FILTER (WHERE status = 'success') - 1, count(*)) AS consecutive_failures,
       min(start_time) AS first_execution,
       max(status) FILTER (WHERE rn = 1) AS last_status,
       max(errors[cardinality(errors)]) FILTER (WHERE rn = 1) AS last_error,
       max(anomaly) FILTER (WHERE rn = 1) AS last_anomaly
  FROM finished
 GROUP BY platform, dealer_id
"""


@dataclass(frozen=True)
class AbandonedJob:
    """A ``running`` row :meth:`ExecutionStore.close_abandoned` closed as failed."""

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


class ExecutionStore:
    """The queries of ``job_executions`` and ``dealer_leases``: rows, leases, stale rows, retention."""

    def __init__(self, cursor: Cursor) -> None:
        """``cursor``: the job-history hook's :meth:`JobHistoryHook.cursor` (one transaction per call)."""
        self._cursor = cursor

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
        """``{dealer_id: DealerHistory}`` on ``platform`` for dealers with a finished execution there."""
        return {dealer_id: h for (_, dealer_id), h in self._histories(dealer_ids, platform).items()}

    def histories_on_every_platform(self, dealer_ids: Sequence[str]) -> dict[tuple[str, str], DealerHistory]:
        """``{(platform, dealer_id): DealerHistory}`` for each platform on which a dealer has at least one
        finished execution."""
        return self._histories(dealer_ids, None)

    def _histories(
        self, dealer_ids: Sequence[str], platform: str | None
    ) -> dict[tuple[str, str], DealerHistory]:
        if not dealer_ids:
            return {}
        sql = _HISTORIES_SQL.format(on_platform="" if platform is None else "AND platform = %(platform)s")
        with self._cursor() as cur:
            cur.execute(sql, {"dealer_ids": list(dealer_ids), "platform": platform})
            rows = cur.fetchall()
            return {
                (str(platform_id), str(dealer_id)): DealerHistory(
                    last_success=last_success,
                    consecutive_failures=int(failures),
                    first_execution=first,
                    last_status=str(status),
                    last_error=error,
                    last_anomaly=anomaly,
                )
                for platform_id, dealer_id, last_success, failures, first, status, error, anomaly in rows
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
