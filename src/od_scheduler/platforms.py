"""The platform registry: one entry per inventory platform, the one home of everything about it.

An entry names the platform (id, display name, the paragraph its DAG's documentation opens with), how it is
reached (connection id and the UI's form for its connection type, pool and its size, dealers in flight),
what a dealer's CMS document holds for it (the config model; the document field follows from the id) and
when it runs (the settings holding its schedule and its expected run duration, a dealer's default
interval). The DAG id, the CMS field, the DAG's ``doc_md``, the ``Dealer`` model's per-platform validation,
the trigger forms' choices, the provider's connection type and the pool the setup step creates are all
derived from it.

Only low-level modules are imported here (connection_forms, exceptions, the pydantic models), never Airflow,
a hook or an operator: ``models/dealer.py`` and ``provider_info`` build on this registry, and each platform's
hook and operator name its entry. How to add a platform: docs/adding-a-platform.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from od_scheduler.connection_forms import NO_SCHEMA_PORT, ConnectionForm, number_field, text_field
from od_scheduler.exceptions import ConfigError
from od_scheduler.models import cobalt, dealer_com, dealersocket, homenet, vinsolutions, web_scraping
from od_scheduler.models.platform_config import PlatformConfig

C = TypeVar("C", bound=PlatformConfig)


@dataclass(frozen=True)
class Platform(Generic[C]):
    """One inventory platform; ``C`` is the model of its ``<platform>_config`` in a CMS dealer document."""

    id: str
    name: str
    #: What is particular to this platform, in Markdown: the opening of its DAG's ``doc_md``.
    doc: str
    #: The connection its hook reads (``AIRFLOW_CONN_<CONN_ID>``, ...): the only place it is spelled.
    conn_id: str
    #: The hook's connection type and the UI's form for it (``provider_info`` declares it to Airflow).
    connection_form: ConnectionForm
    #: The Airflow pool every request to the upstream holds a slot of (the setup step creates it).
    pool: str
    #: The pool's size: how many dealers all runs together pull at once (at least ``dealers_in_flight``).
    pool_slots: int
    #: The pool's description in Airflow (what its slots stand for).
    pool_description: str
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


DEALER_COM = Platform(
    id=dealer_com.SOURCE,
    name="Dealer.com",
    doc=(
        "Pulls every active Dealer.com dealer's inventory from its site widget (new, certified and used "
        "segments), normalizes it to the canonical vehicle, stages it, and ingests it into the Open Dealer "
        "Data API."
    ),
    conn_id="od_dealer_com",
    connection_form=ConnectionForm(
        "od_dealer_com",
        "dealer_com.DealerComHook",
        "Open Dealer Dealer.com",
        # No credentials and no fixed host: each dealer's site and id come from the CMS.
        hidden=(*NO_SCHEMA_PORT, "host", "login", "password"),
        relabeling={},
        placeholders={},
        fields={
            "requests_per_second": number_field(
                "Requests per second per site",
                "Politeness cap for each dealer site. Empty: [od_scheduler] dealer_com_requests_per_second "
                "(2).",
                minimum=0.01,
            )
        },
    ),
    pool="dealer_com_api",
    pool_slots=64,
    pool_description=(
        "Dealer.com site widgets: dealers in flight at once. Every dealer is its own site with its own "
        "2 req/s limit, so many can be in flight; a shard takes 16 slots (16 dealers at once)"
    ),
    config_model=dealer_com.DealerComConfig,
    schedule_setting="dealer_com_schedule",
    expected_run_setting="dealer_com_expected_run_minutes",
    default_interval_minutes=60,
    dealers_in_flight=16,
)

WEB_SCRAPING = Platform(
    id=web_scraping.SOURCE,
    name="Web scraping (Apify)",
    doc=(
        "Scrapes every active web-scraping dealer's website with the dealer's Apify actor, normalizes the "
        "scraped vehicles to the canonical vehicle, stages them, and ingests them into the Open Dealer Data "
        "API.\n\n"
        "`shard.pull_inventory` starts each dealer's actor run, then **defers** once for the shard: the "
        "triggerer waits for the runs, so no worker slot is held while the scrapers work. Only a SUCCEEDED "
        "run is pulled; FAILED, TIMED-OUT and ABORTED runs fail the dealer with the run id and status. A "
        "run still going after the dealer's `max_wait_s` (else the `apify_max_wait_s` setting, 1 hour) is "
        "aborted and the dealer fails. Scraped items without a valid VIN are rejected and counted by reason "
        "in `performance_metrics.rejects`."
    ),
    conn_id="od_apify",
    connection_form=ConnectionForm(
        "od_apify",
        "apify.ApifyHook",
        "Open Dealer Apify",
        hidden=(*NO_SCHEMA_PORT, "login"),
        relabeling={"host": "Apify API base URL", "password": "API token"},
        placeholders={"host": "https://api.apify.com"},
        fields={
            "items_page_size": number_field(
                "Dataset items per request",
                "Items read per dataset request. Empty: 1000.",
                integer=True,
                minimum=1,
            )
        },
    ),
    pool="apify_api",
    pool_slots=8,
    pool_description=(
        "Apify actor run starts and dataset reads: dealers in flight; a shard takes 4 (deferred waits "
        "hold no slot)"
    ),
    config_model=web_scraping.WebScrapingConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
    dealers_in_flight=4,
)

HOMENET = Platform(
    id=homenet.SOURCE,
    name="HomeNet",
    doc=(
        "Pulls every active HomeNet dealer's rooftop through the Open Dealer SOAP transformer, each with "
        "the dealer's own rooftop id and integration token, normalizes it to the canonical vehicle, stages "
        "it, and ingests it into the Open Dealer Data API. A dealer's first pull (and any `full_refresh` "
        "run) reads the whole rooftop; later runs ask only for vehicles changed since the run's "
        "`data_interval_start`: a partial pull, from which nothing is delisted."
    ),
    conn_id="od_soap_transformer",
    connection_form=ConnectionForm(
        "od_homenet",
        "homenet.HomenetHook",
        "Open Dealer HomeNet (SOAP transformer)",
        hidden=(*NO_SCHEMA_PORT, "login"),
        relabeling={"host": "SOAP transformer base URL", "password": "Bearer token"},
        placeholders={"host": "https://transformer.example.com"},
        fields={
            "integration_token": text_field(
                "Fallback integration token",
                "HomeNet integration token for dealers whose CMS homenet_config has none (a dealer's own "
                "token always wins). Optional.",
                secret=True,
            )
        },
    ),
    pool="homenet_api",
    pool_slots=4,
    pool_description=(
        "HomeNet through the Open Dealer SOAP transformer (one shared service): dealers in flight; a "
        "shard takes 2"
    ),
    config_model=homenet.HomenetConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
)

COBALT = Platform(
    id=cobalt.SOURCE,
    name="Cobalt",
    doc=(
        "Pulls every active Cobalt dealer's CSV inventory feed, normalizes it to the canonical vehicle, "
        "stages it, and ingests it into the Open Dealer Data API. The feed is fetched conditionally on the "
        "ETag of the dealer's last successful pull: when it has not changed (HTTP 304) nothing is fetched "
        "or sent and the job succeeds as `unchanged`. `full_refresh` fetches and sends everything."
    ),
    conn_id="od_cobalt",
    connection_form=ConnectionForm(
        "od_cobalt",
        "cobalt.CobaltHook",
        "Open Dealer Cobalt feeds",
        hidden=NO_SCHEMA_PORT,
        relabeling={
            "host": "Feed server base URL",
            "login": "Basic-auth user",
            "password": "Basic-auth password",
        },
        placeholders={"host": "https://feeds.cobalt.example.com"},
    ),
    pool="cobalt_api",
    pool_slots=4,
    pool_description="Cobalt CSV feeds (shared): dealers in flight; a shard takes 2",
    config_model=cobalt.CobaltConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
)

VINSOLUTIONS = Platform(
    id=vinsolutions.SOURCE,
    name="VinSolutions",
    doc=(
        "Pulls every active VinSolutions dealer's inventory from the VinSolutions inventory gateway (OAuth2 "
        "client credentials; one token per dealer pull, refreshed once when it expires mid-pagination), "
        "normalizes it to the canonical vehicle, stages it, and ingests it into the Open Dealer Data API."
    ),
    conn_id="od_vinsolutions",
    connection_form=ConnectionForm(
        "od_vinsolutions",
        "vinsolutions.VinsolutionsHook",
        "Open Dealer VinSolutions",
        hidden=NO_SCHEMA_PORT,
        relabeling={
            "host": "Gateway base URL",
            "login": "OAuth2 client id",
            "password": "OAuth2 client secret",
        },
        placeholders={"host": "https://api.vinsolutions.example.com"},
        fields={
            "token_url": text_field(
                "Token URL", "The OAuth2 token endpoint (client-credentials grant).", url=True
            ),
            "api_key": text_field(
                "API key", "Sent as the api_key header on every inventory request.", secret=True
            ),
        },
    ),
    pool="vinsolutions_api",
    pool_slots=4,
    pool_description=(
        "VinSolutions inventory API (shared, partner rate limits): dealers in flight; a shard takes 2"
    ),
    config_model=vinsolutions.VinsolutionsConfig,
    schedule_setting="default_schedule",
    expected_run_setting="default_expected_run_minutes",
    default_interval_minutes=1440,
)

DEALERSOCKET = Platform(
    id=dealersocket.SOURCE,
    name="DealerSocket",
    doc=(
        "Pulls every active DealerSocket dealer's inventory from the DealerSocket XML API (paged; parsed "
        "with a hardened XML parser, so a hostile document fails its dealer alone), normalizes it to the "
        "canonical vehicle, stages it, and ingests it into the Open Dealer Data API."
    ),
    conn_id="od_dealersocket",
    connection_form=ConnectionForm(
        "od_dealersocket",
        "dealersocket.DealersocketHook",
        "Open Dealer DealerSocket",
        hidden=(*NO_SCHEMA_PORT, "login"),
        relabeling={"host": "Inventory API base URL", "password": "API key (X-Api-Key)"},
        placeholders={"host": "https://api.dealersocket.example.com"},
    ),
    pool="dealersocket_api",
    pool_slots=4,
    pool_description="DealerSocket inventory API (shared): dealers in flight; a shard takes 2",
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


def platform_pools() -> dict[str, dict[str, Any]]:
    """Every platform's pool, in ``include/pools.json``'s format (that file holds the shared pools)."""
    return {
        p.pool: {"slots": p.pool_slots, "description": p.pool_description, "include_deferred": False}
        for p in PLATFORMS.values()
    }


def get_platform(platform_id: str) -> Platform[Any]:
    """The registry entry for ``platform_id``, or a ConfigError listing the known ids."""
    try:
        return PLATFORMS[platform_id]
    except KeyError:
        known = ", ".join(sorted(PLATFORMS))
        raise ConfigError(f"unknown platform {platform_id!r}; known platforms: {known}") from None
