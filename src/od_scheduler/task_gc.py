"""A larger young generation of the cyclic garbage collector for the length of a pull or an ingest.

Parsing a page of 100 raw records builds some 6,000 container objects (models, dicts, lists) that live
until the page has become vehicles. With CPython's default ``gc`` thresholds (700, 10, 10) a young
collection runs every 700 net container allocations, so a page outlives two of them, is promoted to the
oldest generation and is walked again by the full collections that promotions trigger; that costs about a
third of a vehicle's CPU from parse to hash (bench/README.md, "Per-vehicle CPU (issue 12)"). With a young
generation of :data:`YOUNG_THRESHOLD` objects the page is freed by reference counting before a collection
ever sees it.

Nothing changes but *when* the collector runs: every object is freed exactly as before (reference counting
frees nearly all of them; cycles are still collected, only later), so outputs are identical. The setting is
process-wide, and in Airflow 3 every task instance runs in a process of its own, so :func:`task_gc` around
a task's work affects that task only; it restores the previous thresholds when the outermost use ends, and
nested or concurrent uses (the dealers of a shard run in threads) are counted, not stacked. Memory: at most
:data:`YOUNG_THRESHOLD` more container objects wait for the collector (a few MB), and only if they form
cycles.

No Airflow import here: usable from operators, the bench and tests alike.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Young-generation threshold while a task parses and stages vehicles (CPython's default is 700).
YOUNG_THRESHOLD = 50_000

_lock = threading.Lock()
_users = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def task_gc(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Run the block with the young GC generation raised to ``young`` (never lowered), then restore.

    The first of nested or concurrent uses sets the thresholds and the last one to end restores what was
    set before the first began.
    """
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            if gc.isenabled() and young > _saved[0]:
                gc.set_threshold(young, *_saved[1:])
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
