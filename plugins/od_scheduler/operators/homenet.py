"""HomenetInventoryOperator: pull a dealer's HomeNet rooftop through the SOAP transformer."""

from __future__ import annotations

from airflow.sdk import Context

from od_scheduler.exceptions import RecordRejected
from od_scheduler.hooks.homenet import HomenetHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.dealer import Dealer, HomenetConfig
from od_scheduler.operators.pull import PullInventoryOperator, PullOutcome, PullStream


class HomenetInventoryOperator(PullInventoryOperator):
    """Reads the dealer's own rooftop with the dealer's own integration token; incremental after a success.

    The first pull of a dealer (no success yet) and ``full_refresh`` runs read the whole rooftop; every
    other run asks only for vehicles changed since the run's ``data_interval_start`` (``updatedSince``),
    which makes it a partial pull: nothing is delisted from it.
    """

    platform_id = "homenet"

    def pull(self, dealer: Dealer, context: Context) -> PullStream:
        config = dealer.config_for(self.platform_id)
        assert isinstance(config, HomenetConfig)
        # Mask the dealer's token before anything can log it.
        self.register_secret(config.integration_token)
        hook = HomenetHook()
        token, credential_source = hook.integration_token(config.integration_token)
        self.register_secret(token)
        since = self.incremental_since(context, dealer, JobHistoryHook())
        self.log.info(
            "HomeNet rooftop %s: %s; integration token from %s",
            config.rooftop_id,
            "full pull" if since is None else f"vehicles changed since {since.isoformat()}",
            credential_source,
        )
        with hook.get_client(integration_token=token, credential_source=credential_source) as client:
            for raw in client.iter_inventory(config.rooftop_id, updated_since=since):
                try:
                    yield raw.to_vehicle(dealer_id=dealer.id)
                except RecordRejected as rejected:
                    yield rejected
            notes = []
            if since is not None:
                notes.append(
                    f"partial pull: only vehicles HomeNet changed since {since.isoformat()} (updatedSince); "
                    "nothing is delisted from it"
                )
            return PullOutcome(
                complete=since is None, since=since, notes=notes, metrics=client.stats.as_metrics()
            )
