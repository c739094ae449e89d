"""The platform registry: one row per inventory platform, the single source of its ids and wiring.

A platform's operator is named by dotted path and imported on demand, so this module stays import-light
and importable from anywhere (DAG files, the status API, setup tools) without cycles.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from od_scheduler import conn_ids
from od_scheduler.exceptions import ConfigError

if TYPE_CHECKING:
    from od_scheduler.operators.pull import PullInventoryOperator


@dataclass(frozen=True)
class Platform:
    """One inventory platform."""

    id: str
    name: str
    conn_id: str
    pool: str
    operator: str
    schedule_setting: str
    default_interval_minutes: int
    #: Dealers a shard task pulls at once (its ``pool_slots`` in the platform's pool): a Dealer.com dealer
    #: is its own site with its own rate limit, the others share one API.
    dealers_in_flight: int = 2

    @property
    def dag_id(self) -> str:
        """``inventory_<id>`` with ``.`` replaced by ``_`` (docs/contracts.md §1)."""
        return "inventory_" + self.id.replace(".", "_")

    def operator_class(self) -> type[PullInventoryOperator]:
        """Import and return the platform's pull operator class."""
        module_name, _, cls_name = self.operator.rpartition(".")
        return getattr(importlib.import_module(module_name), cls_name)


PLATFORMS: dict[str, Platform] = {
    p.id: p
    for p in (
        Platform(
            id="dealer.com",
            name="Dealer.com",
            conn_id=conn_ids.DEALER_COM,
            pool="dealer_com_api",
            operator="od_scheduler.operators.dealer_com.DealerComInventoryOperator",
            schedule_setting="dealer_com_schedule",
            default_interval_minutes=60,
            dealers_in_flight=16,
        ),
        Platform(
            id="web_scraping",
            name="Web scraping (Apify)",
            conn_id=conn_ids.APIFY,
            pool="apify_api",
            operator="od_scheduler.operators.web_scraping.WebScrapingInventoryOperator",
            schedule_setting="default_schedule",
            default_interval_minutes=1440,
            dealers_in_flight=4,
        ),
        Platform(
            id="homenet",
            name="HomeNet",
            conn_id=conn_ids.SOAP_TRANSFORMER,
            pool="homenet_api",
            operator="od_scheduler.operators.homenet.HomenetInventoryOperator",
            schedule_setting="default_schedule",
            default_interval_minutes=1440,
        ),
        Platform(
            id="cobalt",
            name="Cobalt",
            conn_id=conn_ids.COBALT,
            pool="cobalt_api",
            operator="od_scheduler.operators.cobalt.CobaltInventoryOperator",
            schedule_setting="default_schedule",
            default_interval_minutes=1440,
        ),
        Platform(
            id="vinsolutions",
            name="VinSolutions",
            conn_id=conn_ids.VINSOLUTIONS,
            pool="vinsolutions_api",
            operator="od_scheduler.operators.vinsolutions.VinsolutionsInventoryOperator",
            schedule_setting="default_schedule",
            default_interval_minutes=1440,
        ),
        Platform(
            id="dealersocket",
            name="DealerSocket",
            conn_id=conn_ids.DEALERSOCKET,
            pool="dealersocket_api",
            operator="od_scheduler.operators.dealersocket.DealersocketInventoryOperator",
            schedule_setting="default_schedule",
            default_interval_minutes=1440,
        ),
    )
}

DATA_API_POOL = "data_api"
PAYLOAD_CMS_POOL = "payload_cms_api"


def get_platform(platform_id: str) -> Platform:
    """The registry row for ``platform_id``, or a ConfigError listing the known ids."""
    try:
        return PLATFORMS[platform_id]
    except KeyError:
        known = ", ".join(sorted(PLATFORMS))
        raise ConfigError(f"unknown platform {platform_id!r}; known platforms: {known}") from None
