"""
### Example: a DAG scheduled on "inventory updated" (paused at creation)

Runs whenever any platform run changed the Data API: each platform DAG's `announce_changes` task emits an
event on its asset `x-od://inventory/<platform>` (skipped, so no event, when the run sent and delisted
nothing). The event's extra says what changed: `platform`, `dag_id`, `run_id`, `dealers_changed`,
`vehicles_sent`, `vehicles_delisted`.

This DAG only reports the events it was triggered by: copy it and put your own work (refresh a search
index, export a feed, notify a team) where `report_changes` is. Schedule on one platform with
`schedule=inventory_asset("homenet")`, or on all of them at once with `AssetAll(...)`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import AssetAny, dag, task

from od_scheduler.assets import InventoryChange, every_inventory_asset
from od_scheduler.dag_factory import default_args

log = logging.getLogger(__name__)


@dag(
    schedule=AssetAny(*every_inventory_asset()),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    is_paused_upon_creation=True,
    tags=["example", "inventory"],
    default_args=default_args(execution_timeout=timedelta(minutes=5)),
    doc_md=__doc__,
)
def example_inventory_updated() -> None:
    @task
    def report_changes(**context: Any) -> list[dict[str, Any]]:
        """Per triggering event: which platform run changed how many dealers and vehicles, and when."""
        changes = []
        for asset, events in context["triggering_asset_events"].items():
            for event in events:
                change = InventoryChange.model_validate(event.extra)
                log.info(
                    "%s: run %s of %s changed %d dealer(s): %d vehicle(s) sent, %d delisted",
                    asset.uri,
                    change.run_id,
                    change.dag_id,
                    change.dealers_changed,
                    change.vehicles_sent,
                    change.vehicles_delisted,
                )
                changes.append({**change.model_dump(mode="json"), "event_time": event.timestamp.isoformat()})
        return changes

    report_changes()


example_inventory_updated()
