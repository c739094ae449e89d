"""The platform registry: one entry per inventory platform, the one home of everything about it.

An entry names the platform (id, display name), how it is reached (connection id, pool, pull operator,
dealers in flight), what a dealer's CMS document holds for it (the config model; the document field follows
from the id) and when it runs (the settings holding its schedule and its expected run duration, a dealer's
default interval). ``models/dealer.py`` derives its per-platform validation from it.

A platform's operator is named by dotted path and imported on demand (the operators import this module).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from od_scheduler import conn_ids
from od_scheduler.exceptions import ConfigError
from od_scheduler.models import cobalt, dealer_com, dealersocket, homenet, vinsolutions, web_scraping
from od_scheduler.models.platform_config import PlatformConfig

if TYPE_CHECKING:
    from od_scheduler.operators.pull import PullInventoryOperator

C = TypeVar("C", bound=PlatformConfig)


@dataclass(frozen=True)
class Platform(Generic[C]):
    """One inventory platform; ``C`` is the model of its ``<platform>_config`` in a CMS dealer document."""

    id: str
    name: str
    conn_id: str
    pool: str
    #: The pull operator, by dotted path (imported on demand: the operators import this module).
    operator: str
    config_model: type[C]
    #: The setting (``Settings`` attribute, ``[od_scheduler]`` key) holding the DAG's cron schedule.
    schedule_setting: str
    #: The setting holding how long one run is expected to take (the long-run alert, the task timeouts).
    expected_run_setting: str
    #: How often a dealer is due when its CMS ``schedule`` sets no ``interval_minutes``.
    default_interval_minutes: int
    #: Dealers a shard task pulls at once (its ``pool_slots`` in the platform's pool): a Dealer.com dealer
    #: is its own site with its own rate limit, the others share one API.
    dealers_in_flight: int = 2

    @property
    def slug(self) -> str:
        """The id with ``.`` replaced by ``_``, as DAG ids and CMS fields spell it (docs/contracts.md §1)."""
        return self.id.replace(".", "_")

    @property
    def dag_id(self) -> str:
        """``inventory_<slug>``."""
        return f"inventory_{self.slug}"

    @property
    def config_field(self) -> str:
        """The dealer document's field holding this platform's config: ``<slug>_config``."""
        return f"{self.slug}_config"

    def operator_class(self) -> type[PullInventoryOperator]:
        """Import and return the platform's pull operator class."""
        module_name, _, cls_name = self.operator.rpartition(".")
        return getattr(importlib.import_module(module_name), cls_name)


DEALER_COM = Platform(
    id=dealer_com.SOURCE,
    name="Dealer.com",
    conn_id=conn_ids.DEALER_COM,
    pool="dealer_com_api",
    operator="od_scheduler.operators.dealer_com.DealerComInventoryOperator",
    config_model=dealer_com.DealerComConfig,
    schedule_setting="dealer_com_schedule",
    expected_run_setting="dealer_com_expected_run_minutes",
    default_interval_minutes=60,
    dealers_in_flight=16,
)

WEB_SCRAPING = Platform(
    id=web_scraping.SOURCE,
    name="Web scraping (Apify)",
    conn_id=conn_ids.APIFY,
    pool="apify_api",
    operator="od_scheduler.operators.web_scraping.WebScrapingInventoryOperator",
    config_model=web_scraping.WebScrapingConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
    dealers_in_flight=4,
)

HOMENET = Platform(
    id=homenet.SOURCE,
    name="HomeNet",
    conn_id=conn_ids.SOAP_TRANSFORMER,
    pool="homenet_api",
    operator="od_scheduler.operators.homenet.HomenetInventoryOperator",
    config_model=homenet.HomenetConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
)

COBALT = Platform(
    id=cobalt.SOURCE,
    name="Cobalt",
    conn_id=conn_ids.COBALT,
    pool="cobalt_api",
    operator="od_scheduler.operators.cobalt.CobaltInventoryOperator",
    config_model=cobalt.CobaltConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
)

VINSOLUTIONS = Platform(
    id=vinsolutions.SOURCE,
    name="VinSolutions",
    conn_id=conn_ids.VINSOLUTIONS,
    pool="vinsolutions_api",
    operator="od_scheduler.operators.vinsolutions.VinsolutionsInventoryOperator",
    config_model=vinsolutions.VinsolutionsConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
)

DEALERSOCKET = Platform(
    id=dealersocket.SOURCE,
    name="DealerSocket",
    conn_id=conn_ids.DEALERSOCKET,
    pool="dealersocket_api",
    operator="od_scheduler.operators.dealersocket.DealersocketInventoryOperator",
    config_model=dealersocket.DealersocketConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
)

#: Every platform by id, in the order the status page and the trigger forms list them.
PLATFORMS: dict[str, Platform[Any]] = {
    p.id: p for p in (DEALER_COM, WEB_SCRAPING, HOMENET, COBALT, VINSOLUTIONS, DEALERSOCKET)
}

DATA_API_POOL = "data_api"
PAYLOAD_CMS_POOL = "payload_cms_api"


def get_platform(platform_id: str) -> Platform[Any]:
    """The registry entry for ``platform_id``, or a ConfigError listing the known ids."""
    try:
        return PLATFORMS[platform_id]
    except KeyError:
        known = ", ".join(sorted(PLATFORMS))
        raise ConfigError(f"unknown platform {platform_id!r}; known platforms: {known}") from None
