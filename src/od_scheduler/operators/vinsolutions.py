"""VinsolutionsInventoryOperator: pull a dealer's inventory from the VinSolutions inventory gateway."""

from __future__ import annotations

from airflow.sdk import Context

from od_scheduler.exceptions import RecordRejected
from od_scheduler.hooks.vinsolutions import VinsolutionsHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.operators.pull import PullInventoryOperator, PullOutcome, PullStream
from od_scheduler.platforms import VINSOLUTIONS


class VinsolutionsInventoryOperator(PullInventoryOperator):
    """Pages the dealer's inventory with one OAuth2 token for the whole pull (refreshed once on a 401)."""

    platform_id = VINSOLUTIONS.id

    def pull(self, dealer: Dealer, context: Context) -> PullStream:
        config = dealer.config_for(VINSOLUTIONS)
        with VinsolutionsHook().get_client() as client:
            for raw in client.iter_inventory(config.dealer_id):
                try:
                    yield raw.to_vehicle(dealer_id=dealer.id)
                except RecordRejected as rejected:
                    yield rejected
            report = client.report
            return PullOutcome(
                complete=report.complete,
                notes=list(report.notes),
                metrics={**client.stats.as_metrics(), "token_requests": client.oauth.token_requests},
            )
