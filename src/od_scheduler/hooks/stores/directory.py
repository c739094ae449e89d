"""DirectoryStore: who a dealer id is, as PayloadCMS last listed it, and how many dealers each platform had.

``dealer_directory`` (names and slugs beside ids on the status page and in alerts) and ``platform_listings``.
Schema: ``od_scheduler/sql/007, 011``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from od_scheduler.hooks.stores import Cursor
from od_scheduler.models.dealer import Dealer, InvalidDealer

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


class DirectoryStore:
    """The queries of ``dealer_directory`` and ``platform_listings``."""

    def __init__(self, cursor: Cursor) -> None:
        """``cursor``: the job-history hook's :meth:`JobHistoryHook.cursor` (one transaction per call)."""
        self._cursor = cursor

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
