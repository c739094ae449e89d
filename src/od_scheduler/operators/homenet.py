"""HomenetInventoryOperator: pull a dealer's HomeNet rooftop through the SOAP transformer."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import Context

from od_scheduler.exceptions import RecordRejected
from od_scheduler.hooks.homenet import HomenetHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.operators.pull import PullInventoryOperator, PullOutcome, PullStream
from od_scheduler.platforms import HOMENET


class HomenetInventoryOperator(PullInventoryOperator):
    """Reads the dealer's own rooftop with the dealer's own integration token; incremental between full pulls.

    A full pull (the whole rooftop, complete: it may delist) happens on the dealer's first pull, on
    ``full_refresh``, and at least once per ``full_pull_hours`` of data-interval time; every other run asks
    only for the vehicles changed since the start of the dealer's last *successful* pull, minus
    ``incremental_overlap_minutes`` (``updatedSince``), which makes it a partial pull: nothing is delisted
    from it. The window and the cadence live in the source state and advance only after the ingest
    succeeded (see ``od_scheduler.operators.pull``).
    """

    platform_id = HOMENET.id

    def pull(self, dealer: Dealer, context: Context) -> PullStream:
        config = dealer.config_for(HOMENET)
        # Mask the dealer's token before anything can log it.
        self.register_secret(config.integration_token)
        hook = HomenetHook()
        token, credential_source = hook.integration_token(config.integration_token)
        self.register_secret(token)
        window = self.incremental_window(context, dealer, JobHistoryHook())
        since = window.since
        self.log.info(
            "HomeNet rooftop %s: %s (%s); integration token from %s",
            config.rooftop_id,
            "full pull" if since is None else f"vehicles changed since {since.isoformat()}",
            window.reason,
            credential_source,
        )
        with hook.get_client(integration_token=token, credential_source=credential_source) as client:
            # Taken before the request: a change HomeNet stamps after this falls in the next window.
            started = datetime.now(UTC)
            for raw in client.iter_inventory(config.rooftop_id, updated_since=since):
                try:
                    yield raw.to_vehicle(dealer_id=dealer.id)
                except RecordRejected as rejected:
                    yield rejected
            if since is None:
                notes = [f"full pull: {window.reason}"]
            else:
                notes = [
                    f"partial pull: only vehicles HomeNet changed since {since.isoformat()} (updatedSince: "
                    f"{window.reason}); nothing is delisted from it"
                ]
            return PullOutcome(
                complete=since is None,
                since=since,
                notes=notes,
                state=window.state_after(started),
                metrics=client.stats.as_metrics(),
            )
