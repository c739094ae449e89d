"""Count what one dealer's ingest asks of the job history: transactions and SQL statements, on the real store.

``count_ingest_round_trips`` (a fixture) wraps every connection ``JobHistoryHook`` opens, so each commit
(one per ``JobHistoryHook.cursor()`` block, i.e. one connection borrow) and each statement the server runs
is counted; ``executemany`` counts one statement per parameter set (what the server executes). Only work
done inside ``DataApiIngestOperator.ingest_dealer`` is counted, per dealer, on the thread that runs it: a
pull task, or the shard's own statements (``shard_rows``), are left out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class RoundTrips:
    """What one dealer's ingest asked of the job history."""

    transactions: int = 0
    statements: int = 0
    #: The first words of each statement, in order (what a failing pin prints).
    log: list[str] = field(default_factory=list)

    def as_pair(self) -> tuple[int, int]:
        """(statements, transactions)."""
        return self.statements, self.transactions


_active = threading.local()


def _current() -> RoundTrips | None:
    return getattr(_active, "counter", None)


def _words(sql: Any) -> str:
    text = " ".join(str(sql).split())
    return " ".join(text.split(" ")[:4])


class _CountingCursor:
    """A DB-API cursor that counts the statements it runs for the ingest running on this thread."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        counter = _current()
        if counter is not None:
            counter.statements += 1
            counter.log.append(_words(sql))
        return self._cursor.execute(sql, *args, **kwargs)

    def executemany(self, sql: Any, params: Any, *args: Any, **kwargs: Any) -> Any:
        rows = list(params)
        counter = _current()
        if counter is not None:
            counter.statements += len(rows)
            counter.log.extend([_words(sql)] * len(rows))
        return self._cursor.executemany(sql, rows, *args, **kwargs)

    def __enter__(self) -> _CountingCursor:
        self._cursor.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._cursor.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _CountingConnection:
    """A DB-API connection whose cursors count statements and whose commits count transactions."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def cursor(self, *args: Any, **kwargs: Any) -> _CountingCursor:
        return _CountingCursor(self._conn.cursor(*args, **kwargs))

    def commit(self) -> None:
        counter = _current()
        if counter is not None:
            counter.transactions += 1
            counter.log.append("COMMIT")
        self._conn.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def count_ingest_round_trips(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[RoundTrips]]:
    """``{dealer_id: [RoundTrips of each ingest of the dealer, in order]}`` for the rest of the test."""
    from od_scheduler.hooks.job_history import JobHistoryHook
    from od_scheduler.operators.ingest import DataApiIngestOperator

    counts: dict[str, list[RoundTrips]] = {}
    open_connection: Callable[..., Any] = JobHistoryHook._open_connection
    ingest_dealer: Callable[..., Any] = DataApiIngestOperator.ingest_dealer

    def counting_open(self: JobHistoryHook) -> Any:
        return _CountingConnection(open_connection(self))

    def counted_ingest_dealer(self: DataApiIngestOperator, context: Any, ref: Any, *args: Any) -> Any:
        counter = RoundTrips()
        counts.setdefault(ref.dealer_id, []).append(counter)
        _active.counter = counter
        try:
            return ingest_dealer(self, context, ref, *args)
        finally:
            _active.counter = None

    monkeypatch.setattr(JobHistoryHook, "_open_connection", counting_open)
    monkeypatch.setattr(DataApiIngestOperator, "ingest_dealer", counted_ingest_dealer)
    return counts
