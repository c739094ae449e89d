"""FingerprintStore: what the Data API holds of each vehicle, what it rejected, and each source's state.

``vehicle_fingerprints`` (content hash, revision, standing rejection, consecutive misses per VIN) and
``source_state`` (per dealer x platform keys such as an ETag or an incremental window). Schema:
``od_scheduler/sql/002, 004, 006, 009``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from od_scheduler.delta import Fingerprint
from od_scheduler.hooks.stores import Cursor

#: How many of the runs that counted a VIN's misses are remembered (see ``count_missing``).
MAX_MISSING_RUNS = 32


class FingerprintStore:
    """The queries of ``vehicle_fingerprints`` and ``source_state``."""

    def __init__(self, cursor: Cursor) -> None:
        """``cursor``: the job-history hook's :meth:`JobHistoryHook.cursor` (one transaction per call)."""
        self._cursor = cursor

    # -- fingerprints: what the Data API holds, and what it rejected ------------------------------------
    def for_dealer(self, dealer_id: str, platform: str) -> dict[str, Fingerprint]:
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

    def record_answer(
        self,
        dealer_id: str,
        platform: str,
        accepted: Mapping[str, str],
        rejected: Mapping[str, tuple[str, str]],
        *,
        hash_version: int,
    ) -> None:
        """Record what one Data API answer confirmed, in one transaction: the fingerprints of the vehicles
        it ``accepted`` (``{vin: content_hash}``, see :meth:`record_accepted`) and the vehicles it
        ``rejected`` (``{vin: (content_hash, reason)}``, see :meth:`record_rejected`)."""
        if not accepted and not rejected:
            return
        with self._cursor() as cur:
            _upsert_accepted(cur, dealer_id, platform, accepted, hash_version=hash_version)
            _upsert_rejected(cur, dealer_id, platform, rejected, hash_version=hash_version)

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
            _upsert_accepted(cur, dealer_id, platform, hashes, hash_version=hash_version)

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
            _upsert_rejected(cur, dealer_id, platform, rejected, hash_version=hash_version)

    def clear_rejections(self, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
        """End the standing rejections of these VINs (their content is now accepted, or they left the lot).

        A row that held nothing but the rejection is removed.
        """
        if not vins:
            return
        with self._cursor() as cur:
            _clear_rejections(cur, dealer_id, platform, vins)

    def record_pull(
        self,
        dealer_id: str,
        platform: str,
        *,
        seen: Sequence[str] = (),
        rejections_over: Sequence[str] = (),
        reset: Sequence[str] = (),
        missing: Sequence[str] = (),
        run: str,
    ) -> None:
        """Record what one pull says of the dealer's VINs it did not send, in one transaction: ``seen``
        (:meth:`touch_seen`), rejections that are over (:meth:`clear_rejections`), miss counts to ``reset``
        (:meth:`reset_missing`) and ``missing`` VINs whose miss ``run`` counts (:meth:`count_missing`)."""
        if not (seen or rejections_over or reset or missing):
            return
        with self._cursor() as cur:
            if seen:
                _touch_seen(cur, dealer_id, platform, seen)
            if rejections_over:
                _clear_rejections(cur, dealer_id, platform, rejections_over)
            if reset:
                _reset_missing(cur, dealer_id, platform, reset)
            if missing:
                _count_missing(cur, dealer_id, platform, missing, run=run)

    def touch_seen(self, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
        """Mark vehicles as seen in this pull (unchanged ones, and those whose rejection still stands)."""
        if not vins:
            return
        with self._cursor() as cur:
            _touch_seen(cur, dealer_id, platform, vins)

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
            _count_missing(cur, dealer_id, platform, vins, run=run)

    def reset_missing(self, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
        """These VINs were seen by a pull: their miss count starts again from 0."""
        if not vins:
            return
        with self._cursor() as cur:
            _reset_missing(cur, dealer_id, platform, vins)

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
        if not state:
            return
        with self._cursor() as cur:
            cur.execute(
                """INSERT INTO source_state (dealer_id, platform, key, value)
                   SELECT %s, %s, s.key, s.value FROM unnest(%s::text[], %s::text[]) AS s(key, value)
                   ON CONFLICT (dealer_id, platform, key)
                   DO UPDATE SET value = EXCLUDED.value, updated_at = now()""",
                (dealer_id, platform, list(state), list(state.values())),
            )


# -- the statements, on the cursor of the caller's transaction: one per kind of write, whatever the VINs ---
def _upsert_accepted(
    cur: Any, dealer_id: str, platform: str, hashes: Mapping[str, str], *, hash_version: int
) -> None:
    if not hashes:
        return
    cur.execute(
        """INSERT INTO vehicle_fingerprints (dealer_id, platform, vin, content_hash, hash_version, revision)
           SELECT %(dealer_id)s, %(platform)s, a.vin, a.content_hash, %(hash_version)s, 1
             FROM unnest(%(vins)s::text[], %(hashes)s::text[]) AS a(vin, content_hash)
           ON CONFLICT (dealer_id, platform, vin) DO UPDATE
              SET content_hash = EXCLUDED.content_hash, hash_version = EXCLUDED.hash_version,
                  last_seen = now(), delisted_at = NULL, delist_unconfirmed = false,
                  revision = vehicle_fingerprints.revision + 1,
                  rejected_hash = NULL, rejected_hash_version = NULL, rejected_reason = NULL,
                  rejected_at = NULL""",
        {
            "dealer_id": dealer_id,
            "platform": platform,
            "hash_version": hash_version,
            "vins": list(hashes),
            "hashes": list(hashes.values()),
        },
    )


def _upsert_rejected(
    cur: Any, dealer_id: str, platform: str, rejected: Mapping[str, tuple[str, str]], *, hash_version: int
) -> None:
    if not rejected:
        return
    cur.execute(
        """INSERT INTO vehicle_fingerprints AS f (dealer_id, platform, vin, rejected_hash,
                                                 rejected_hash_version, rejected_reason, rejected_at)
           SELECT %(dealer_id)s, %(platform)s, r.vin, r.rejected_hash, %(hash_version)s, r.reason, now()
             FROM unnest(%(vins)s::text[], %(hashes)s::text[], %(reasons)s::text[])
                  AS r(vin, rejected_hash, reason)
           ON CONFLICT (dealer_id, platform, vin) DO UPDATE
              SET rejected_at = CASE
                      WHEN (f.rejected_hash, f.rejected_hash_version) IS NOT DISTINCT FROM
                           (EXCLUDED.rejected_hash, EXCLUDED.rejected_hash_version)
                      THEN f.rejected_at ELSE now() END,
                  rejected_hash = EXCLUDED.rejected_hash,
                  rejected_hash_version = EXCLUDED.rejected_hash_version,
                  rejected_reason = EXCLUDED.rejected_reason,
                  last_seen = now()""",
        {
            "dealer_id": dealer_id,
            "platform": platform,
            "hash_version": hash_version,
            "vins": list(rejected),
            "hashes": [h for h, _ in rejected.values()],
            "reasons": [reason for _, reason in rejected.values()],
        },
    )


def _clear_rejections(cur: Any, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
    params = (dealer_id, platform, list(vins))
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


def _touch_seen(cur: Any, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
    cur.execute(
        "UPDATE vehicle_fingerprints SET last_seen = now() "
        "WHERE dealer_id = %s AND platform = %s AND vin = ANY(%s)",
        (dealer_id, platform, list(vins)),
    )


def _count_missing(cur: Any, dealer_id: str, platform: str, vins: Sequence[str], *, run: str) -> None:
    cur.execute(
        "UPDATE vehicle_fingerprints SET missing_pulls = missing_pulls + 1, "
        "missing_runs = (missing_runs || %(run)s::text)"
        f"[greatest(1, cardinality(missing_runs) + 2 - {MAX_MISSING_RUNS}):] "
        "WHERE dealer_id = %(dealer_id)s AND platform = %(platform)s AND vin = ANY(%(vins)s) "
        "AND delisted_at IS NULL AND content_hash IS NOT NULL AND NOT (%(run)s = ANY(missing_runs))",
        {"dealer_id": dealer_id, "platform": platform, "vins": list(vins), "run": run},
    )


def _reset_missing(cur: Any, dealer_id: str, platform: str, vins: Sequence[str]) -> None:
    cur.execute(
        "UPDATE vehicle_fingerprints SET missing_pulls = 0, missing_runs = '{}' "
        "WHERE dealer_id = %s AND platform = %s AND vin = ANY(%s) "
        "AND (missing_pulls <> 0 OR cardinality(missing_runs) <> 0)",
        (dealer_id, platform, list(vins)),
    )
