"""JobHistoryHook: the one owner of the job-history database's connections, and the door to its stores.

The hook opens (or, for a shard task's threads, shares) the connections and runs each operation in one
transaction (:meth:`JobHistoryHook.cursor`), or several operations that belong together in one
(:meth:`JobHistoryHook.transaction`); the queries live in the stores, one per group of tables
(``od_scheduler.hooks.stores``): ``hook.executions`` (job executions and dealer leases),
``hook.fingerprints`` (vehicle fingerprints and source state) and ``hook.directory`` (the dealer directory).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from od_scheduler import conn_ids
from od_scheduler.hooks.http_base import CONNECTION_LOOKUP_LOCK
from od_scheduler.hooks.stores.directory import DirectoryStore
from od_scheduler.hooks.stores.executions import ExecutionStore
from od_scheduler.hooks.stores.fingerprints import FingerprintStore

#: The job-history migrations, shipped in the package (applied in file-name order, each idempotent).
SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
#: Connections a shard task's threads share (see ``JobHistoryHook(reuse_connections=True)``).
MAX_SHARED_CONNECTIONS = 4


class JobHistoryHook(PostgresHook):
    """PostgresHook on the ``od_job_history`` connection: its connections, its schema, and its stores."""

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
        #: The cursor of the transaction this thread holds open (see :meth:`transaction`), if any.
        self._od_local = threading.local()
        #: ``job_executions`` and ``dealer_leases``.
        self.executions = ExecutionStore(self.cursor)
        #: ``vehicle_fingerprints`` and ``source_state``.
        self.fingerprints = FingerprintStore(self.cursor)
        #: ``dealer_directory`` and ``platform_listings``.
        self.directory = DirectoryStore(self.cursor)

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
    def cursor(self) -> Iterator[Any]:
        """One transaction: a cursor on a borrowed (or new) connection, committed when the block ends, rolled
        back when it raises; the connection goes back to the shared ones (or is closed) either way.

        Inside :meth:`transaction` on the same thread, the cursor of that transaction (nothing is committed
        before it ends)."""
        held = getattr(self._od_local, "cursor", None)
        if held is not None:
            yield held
            return
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

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the store operations of the block, on this thread, in one transaction: committed together
        when the block ends, none of them when it raises (writes that belong together, one round trip of
        borrowing and committing instead of one per operation). Nested, the outer transaction holds."""
        if getattr(self._od_local, "cursor", None) is not None:
            yield
            return
        with self.cursor() as cur:
            self._od_local.cursor = cur
            try:
                yield
            finally:
                self._od_local.cursor = None

    # -- schema ---------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:  # type: ignore[override]  # DbApiHook's is unannotated
        """The database answers and holds the job-history schema; never raises (Airflow's connection test).

        The UI's Test button on ``od_job_history`` (a ``postgres`` connection) runs PostgresHook's test; this
        one also says whether the schema is there.
        """
        where = f"connection {self.postgres_conn_id!r}"
        try:
            with self.cursor() as cur:
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
        with self.cursor() as cur:
            for path in sorted(sql_dir.glob("*.sql")):
                cur.execute(path.read_text())
                applied.append(path.name)
        return applied
