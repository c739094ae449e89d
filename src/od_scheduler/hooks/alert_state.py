"""AlertStateHook: alert deduplication (the ``alert_state`` table), on the job history's connection.

A condition is *claimed* before its alert is sent: the claim succeeds only when the condition is new (no
row, or a cleared one) or its earlier alert was never delivered, so two checks racing on one condition
send one message. A failed delivery *releases* the claim (the next check tries again); a check that finds
the condition gone *clears* it, so a recurrence alerts again. Clearing returns what was open (since when,
whether its alert went out, its dealer): the notifier reports those that were alerted as resolved, and
``cleared_at IS NULL`` in the update makes each condition cleared, so reported, once.
Schema: ``od_scheduler/sql/005_alerts.sql``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.alert import AlertDealer, ClearedCondition, Condition, ConditionKind

#: Inserts or re-opens the condition and takes the right to send it. ``now()`` is the transaction's start
#: time, so ``last_sent = now()`` in RETURNING is true exactly when this statement set it (the row was new,
#: cleared, or still owed an alert); a condition already alerted keeps its older ``last_sent``.
_CLAIM_SQL = """
INSERT INTO alert_state AS s (key, kind, details, last_sent)
VALUES (%(key)s, %(kind)s, %(details)s::jsonb, now())
ON CONFLICT (key) DO UPDATE
   SET first_seen = CASE WHEN s.cleared_at IS NULL THEN s.first_seen ELSE now() END,
       last_seen = now(),
       details = EXCLUDED.details,
       last_sent = CASE WHEN s.cleared_at IS NULL AND s.last_sent IS NOT NULL THEN s.last_sent ELSE now() END,
       cleared_at = NULL
RETURNING last_sent = now()
"""

#: What a cleared condition was: RETURNING sees the row as updated (``last_sent`` untouched: NULL while its
#: alert was never delivered).
_CLEARED_COLUMNS = "key, kind, first_seen, last_sent IS NOT NULL, details"


class AlertStateHook:
    """The alert-state operations, each in one transaction of the job history's connection (``history``)."""

    def __init__(self, history: JobHistoryHook | None = None) -> None:
        """``history``: the job-history hook whose connection this uses (default: a new one)."""
        self.history = history if history is not None else JobHistoryHook()

    def claim(self, conditions: Sequence[Condition]) -> list[str]:
        """Record each condition as seen; return the keys this call may (and must) alert on."""
        claimed: list[str] = []
        with self.history.cursor() as cur:
            for condition in conditions:
                details: dict[str, Any] = {"detail": condition.detail}
                if condition.dealer is not None:
                    details["dealer"] = condition.dealer.model_dump(mode="json")
                cur.execute(
                    _CLAIM_SQL,
                    {"key": condition.key, "kind": condition.kind.value, "details": json.dumps(details)},
                )
                if cur.fetchone()[0]:
                    claimed.append(condition.key)
        return claimed

    def release(self, keys: Sequence[str]) -> None:
        """The alert for these keys was not delivered: the next check claims them again."""
        if not keys:
            return
        with self.history.cursor() as cur:
            cur.execute("UPDATE alert_state SET last_sent = NULL WHERE key = ANY(%s)", (list(keys),))

    def clear(self, keys: Collection[str]) -> list[ClearedCondition]:
        """Close these conditions (a check found them gone); returns those that were open, by key."""
        if not keys:
            return []
        with self.history.cursor() as cur:
            cur.execute(
                "UPDATE alert_state SET cleared_at = now() WHERE key = ANY(%s) AND cleared_at IS NULL "
                f"RETURNING {_CLEARED_COLUMNS}",
                (list(keys),),
            )
            return _cleared(cur.fetchall())

    def clear_open(self, kinds: Collection[str], keep: Collection[str]) -> list[ClearedCondition]:
        """Close every open condition of ``kinds`` whose key is not in ``keep``; returns them, by key."""
        with self.history.cursor() as cur:
            cur.execute(
                "UPDATE alert_state SET cleared_at = now() "
                "WHERE kind = ANY(%s) AND cleared_at IS NULL AND NOT (key = ANY(%s)) "
                f"RETURNING {_CLEARED_COLUMNS}",
                (list(kinds), list(keep)),
            )
            return _cleared(cur.fetchall())


def _cleared(rows: Sequence[Sequence[Any]]) -> list[ClearedCondition]:
    """RETURNING rows (``_CLEARED_COLUMNS``) as cleared conditions, by key."""
    cleared = []
    for key, kind, first_seen, alerted, details in sorted(rows, key=lambda row: str(row[0])):
        details = details if isinstance(details, dict) else json.loads(details or "{}")
        dealer = details.get("dealer")
        cleared.append(
            ClearedCondition(
                key=str(key),
                kind=ConditionKind(kind),
                since=first_seen,
                alerted=bool(alerted),
                dealer=AlertDealer.model_validate(dealer) if isinstance(dealer, dict) else None,
                detail=details.get("detail"),
            )
        )
    return cleared
