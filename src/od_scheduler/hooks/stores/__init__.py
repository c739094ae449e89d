"""The job-history stores: each owns the queries of its tables, on the connection of ``JobHistoryHook``.

``ExecutionStore`` (``job_executions``, ``dealer_leases``), ``FingerprintStore`` (``vehicle_fingerprints``,
``source_state``) and ``DirectoryStore`` (``dealer_directory``, ``platform_listings``); the hook exposes them
as ``hook.executions``, ``hook.fingerprints`` and ``hook.directory``. A store holds no connection of its own:
each operation runs in one transaction of ``JobHistoryHook.cursor()``, which borrows and returns the hook's
connections (or, inside ``JobHistoryHook.transaction()``, in the transaction of the operations around it).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

#: Opens one transaction on the job history and yields its cursor (``JobHistoryHook.cursor``).
Cursor = Callable[[], AbstractContextManager[Any]]
