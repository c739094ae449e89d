"""DealersocketInventoryOperator: pull a dealer's inventory from the DealerSocket XML API."""

from __future__ import annotations

from airflow.sdk import Context

from od_scheduler.exceptions import RecordRejected
from od_scheduler.hooks.dealersocket import DealersocketHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.operators.pull import PullInventoryOperator, PullOutcome, PullStream
from od_scheduler.platforms import DEALERSOCKET


class DealersocketInventoryOperator(PullInventoryOperator):
    """Pages the dealer's XML inventory; a hostile document fails the dealer at once (``PayloadError``)."""

    platform_id = DEALERSOCKET.id

    def pull(self, dealer: Dealer, context: Context) -> PullStream:
        config = dealer.config_for(DEALERSOCKET)
        with DealersocketHook().get_client() as client:
            for raw in client.iter_inventory(config.dealer_code):
                try:
                    yield raw.to_vehicle(dealer_id=dealer.id)
                except RecordRejected as rejected:
                    yield rejected
            report = client.report
            return PullOutcome(
                complete=report.complete,
                notes=list(report.notes),
                metrics=client.stats.as_metrics(),
            )
