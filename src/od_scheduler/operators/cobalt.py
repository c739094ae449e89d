"""CobaltInventoryOperator: pull a dealer's Cobalt CSV feed, conditionally on the last pull's ETag."""

from __future__ import annotations

from airflow.sdk import Context

from od_scheduler.exceptions import RecordRejected
from od_scheduler.hooks.cobalt import CobaltHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.operators.pull import PullInventoryOperator, PullOutcome, PullStream
from od_scheduler.platforms import COBALT


class CobaltInventoryOperator(PullInventoryOperator):
    """Fetches the feed with ``If-None-Match: <ETag of the last successful pull>``.

    ``304 Not Modified`` ends the pull as unchanged: nothing is fetched, staged or sent, and the job still
    succeeds. A ``200`` is parsed row by row and its ``ETag`` becomes the dealer's state once the ingest has
    succeeded. ``full_refresh`` fetches unconditionally. Malformed rows make the pull partial, so vehicles
    whose row could not be read are never delisted.
    """

    platform_id = COBALT.id

    def pull(self, dealer: Dealer, context: Context) -> PullStream:
        config = dealer.config_for(COBALT)
        etag: str | None = None
        if self.wants_full_refresh():
            self.log.info("Cobalt feed %s: full_refresh, fetching unconditionally", config.dealer_code)
        else:
            etag = JobHistoryHook().fingerprints.get_state(dealer.id, self.platform_id).get("etag")
            self.log.info(
                "Cobalt feed %s: %s",
                config.dealer_code,
                f"conditional GET, If-None-Match {etag}" if etag else "no ETag saved yet, full fetch",
            )
        with CobaltHook().get_client() as client:
            for raw in client.iter_inventory(config.dealer_code, etag=etag):
                try:
                    yield raw.to_vehicle(dealer_id=dealer.id)
                except RecordRejected as rejected:
                    yield rejected
            feed = client.feed
            metrics = {**client.stats.as_metrics(), "http_status": feed.status}
            if feed.not_modified:
                return PullOutcome(
                    complete=True,
                    unchanged=True,
                    notes=[f"feed not modified since ETag {etag} (HTTP 304): nothing fetched or sent"],
                    metrics=metrics,
                )
            notes = []
            if feed.malformed_rows:
                notes.append(
                    f"{feed.malformed_rows} malformed row(s) (field count differs from the header): "
                    "nothing is delisted from this pull"
                )
            if not feed.etag:
                notes.append("the feed sent no ETag: the next pull fetches it again")
            return PullOutcome(
                complete=feed.malformed_rows == 0,
                state={"etag": feed.etag} if feed.etag else {},
                notes=notes,
                metrics=metrics,
            )
