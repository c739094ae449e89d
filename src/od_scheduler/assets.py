"""The assets the project's DAGs update: one per platform, ``x-od://inventory/<platform>``.

A platform run emits an event on its asset when it changed something at the Data API (vehicles sent or
delisted), so a downstream DAG can be scheduled on "inventory updated" (``schedule=inventory_asset(...)``)
and OpenLineage sees what each run changed. The event's ``extra``: the run id, the dealers changed and the
vehicles sent and delisted (``InventoryChange``).
"""

from __future__ import annotations

from airflow.sdk import Asset
from pydantic import BaseModel, ConfigDict

from od_scheduler.platforms import PLATFORMS, get_platform

#: Airflow's prefix for a scheme no provider normalises: any other scheme makes each ``Asset(...)`` ask the
#: providers manager for a normaliser, which imports every provider's asset handlers (boto3 with the amazon
#: provider's) in every process that parses a DAG file: about 0.4 s of CPU per task and per DAG parse.
SCHEME = "x-od"


def inventory_asset(platform_id: str) -> Asset:
    """The asset of one platform's inventory at the Data API."""
    platform = get_platform(platform_id)
    return Asset(
        uri=f"{SCHEME}://inventory/{platform.id}", name=f"od_inventory_{platform.id}", group="inventory"
    )


def every_inventory_asset() -> list[Asset]:
    """One asset per platform, in the registry's order."""
    return [inventory_asset(platform_id) for platform_id in PLATFORMS]


class InventoryChange(BaseModel):
    """What one platform run changed at the Data API: the ``extra`` of its asset event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str
    dag_id: str
    run_id: str
    dealers_changed: int
    vehicles_sent: int
    vehicles_delisted: int
