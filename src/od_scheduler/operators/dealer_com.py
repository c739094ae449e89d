"""DealerComInventoryOperator: pull a dealer's inventory from its Dealer.com site widget."""

from __future__ import annotations

from airflow.sdk import Context

from od_scheduler.exceptions import RecordRejected
from od_scheduler.hooks.dealer_com import DealerComHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.operators.pull import PullInventoryOperator, PullOutcome, PullStream
from od_scheduler.platforms import DEALER_COM


class DealerComInventoryOperator(PullInventoryOperator):
    """Pages the widget's three segments (new, certified, used), deduping the overlap by VIN.

    The pull is complete only when every segment paged to its end *and* no segment that had vehicles in
    the dealer's last complete pull came back empty: the per-segment counts go to the base as
    ``PullOutcome.parts``, which compares them with the ``part_counts`` saved from the last complete pull
    (a segment answering ``inventory: []`` with ``totalCount: 0`` looks consistent, but a whole segment of
    a lot does not sell out between two hourly runs; delisting it would take real cars off the market).
    """

    platform_id = DEALER_COM.id

    def pull(self, dealer: Dealer, context: Context) -> PullStream:
        config = dealer.config_for(DEALER_COM)
        with DealerComHook().get_client(config.base_url, dealer=dealer) as client:
            for raw in client.iter_inventory(config.site_id):
                try:
                    yield raw.to_vehicle(dealer_id=dealer.id, base_url=config.base_url)
                except RecordRejected as rejected:
                    yield rejected
            report = client.report
            return PullOutcome(
                complete=report.complete,
                notes=list(report.notes),
                metrics=client.stats.as_metrics(),
                parts=dict(client.segment_counts),
            )
