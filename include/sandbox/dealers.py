"""The dealer table: every dealer the sandbox CMS knows, its lot and its seeded fault profile.

Adding a dealer is adding a row. Adding a platform's dealer is a row whose ``platforms`` names the
platform with its static CMS config (per-request parts such as Dealer.com's ``base_url`` are filled
in by the platform module). Lots are generated from ``(seed, slug)``; a dealer on two platforms
shows the same cars on both (each platform's copy is mutated independently).

Seeded faults (Dealer.com widget; the fault target is the dealer):

| slug                    | fault                                                                |
|-------------------------|----------------------------------------------------------------------|
| broken-arrow-chevrolet  | every request -> 500 (a permanently failing site)                    |
| loop-road-nissan        | ignores ``pageStart`` (always page 1); 135 used, so > 100            |
| rush-hour-hyundai       | first 2 of every 10 requests -> 429, Retry-After 1 s then HTTP-date  |
| slow-creek-subaru       | 0.2 s latency on every request                                       |
| flaky-ridge-kia         | every 4th request -> 503                                             |
| glitch-point-mazda      | first request -> 200 with a truncated JSON body                      |
| vacant-lot-motors       | clean, but the lot is empty                                          |
| bargain-barn-autos      | (Apify) every 3rd request -> 429 rate-limit-exceeded, Retry-After 1 s |
| canyon-creek-autos      | (Apify) every actor run ends FAILED                                  |
| prairie-wind-motors     | (Apify) every actor run ends TIMED-OUT (Apify's own timeout)         |
| endless-acres-auto      | (Apify) runs never finish; its CMS max_wait_s is 3 s, so we abort    |
| northgate-subaru        | (HomeNet) every odd request -> 503: each pull succeeds on its retry  |
| bluegrass-gmc           | (Cobalt) every odd request -> 429 with Retry-After 1 s               |
| hourglass-honda         | (VinSolutions) a token expires after 2 requests: page 3 of 3 -> 401  |
| trojan-horse-motors     | (DealerSocket) every page is a billion-laughs XML document           |

Every other dealer is clean; data dirt ("0" prices, malformed dates) is spread over all lots.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from include.sandbox.faults import FaultProfile

PLATFORM_IDS: tuple[str, ...] = (
    "homenet",
    "dealer.com",
    "web_scraping",
    "vinsolutions",
    "dealersocket",
    "cobalt",
)
"""Platform ids exactly as the CMS spells them (CONTRACTS §1)."""

DEALER_NAMESPACE = uuid.UUID("6f1c2a4e-0d5b-5c57-9a37-0e2f1b7d9c11")
"""Namespace of the deterministic dealer ids: ``uuid5(DEALER_NAMESPACE, slug)``."""


def config_key(platform: str) -> str:
    """The CMS field holding a platform's config: ``dealer.com`` -> ``dealer_com_config``."""
    return platform.replace(".", "_") + "_config"


@dataclass(frozen=True)
class LotSpec:
    """How many vehicles of each condition the dealer's lot starts with.

    ``used`` counts used vehicles that are not certified; Dealer.com's ``auto-used`` segment
    shows ``used + certified``.
    """

    new: int = 0
    used: int = 0
    certified: int = 0

    @property
    def total(self) -> int:
        return self.new + self.used + self.certified


@dataclass(frozen=True)
class Schedule:
    """The CMS ``schedule`` group."""

    interval_minutes: int
    paused: bool = False


@dataclass(frozen=True)
class DealerSpec:
    """One row of the dealer table."""

    slug: str
    name: str
    platforms: Mapping[str, Mapping[str, Any]]
    lot: LotSpec
    makes: tuple[str, ...] = ()
    status: str = "active"
    timezone: str | None = "America/Chicago"
    schedule: Schedule | None = None
    fault: FaultProfile | None = None
    city: str = "Springfield"
    state: str = "IL"
    domain: str = field(default="")
    #: What this dealer demonstrates, when it is not a fault profile (e.g. how its Apify runs end).
    note: str = ""

    def __post_init__(self) -> None:
        unknown = [p for p in self.platforms if p not in PLATFORM_IDS]
        if unknown:
            raise ValueError(f"dealer {self.slug}: unknown platform(s) {unknown}")
        object.__setattr__(
            self, "platforms", MappingProxyType({k: dict(v) for k, v in self.platforms.items()})
        )
        if not self.domain:
            object.__setattr__(self, "domain", f"www.{self.slug.replace('-', '')}.com")

    @property
    def id(self) -> str:
        return str(uuid.uuid5(DEALER_NAMESPACE, self.slug))


def _ddc(site_id: str) -> dict[str, Mapping[str, Any]]:
    return {"dealer.com": {"site_id": site_id}}


DEALERS: tuple[DealerSpec, ...] = (
    # --- 20 active Dealer.com dealers -------------------------------------------------------------
    DealerSpec(
        "riverside-toyota",
        "Riverside Toyota",
        _ddc("riversidetoyotail"),
        LotSpec(new=60, used=130, certified=35),
        makes=("Toyota",),
        schedule=Schedule(60),
        city="Rockford",
    ),
    DealerSpec(
        "lakeside-honda",
        "Lakeside Honda",
        {
            "dealer.com": {"site_id": "lakesidehondaoh"},
            "homenet": {"rooftop_id": "HN-20417", "integration_token": "hn-int-lakeside-7c1e9b"},
        },
        LotSpec(new=45, used=70, certified=20),
        makes=("Honda",),
        timezone="America/New_York",
        schedule=Schedule(120),
        city="Sandusky",
        state="OH",
    ),
    DealerSpec(
        "summit-ford",
        "Summit Ford",
        _ddc("summitfordco"),
        LotSpec(new=80, used=80, certified=10),
        makes=("Ford",),
        timezone="America/Denver",
        city="Frisco",
        state="CO",
    ),
    DealerSpec(
        "broken-arrow-chevrolet",
        "Broken Arrow Chevrolet",
        _ddc("brokenarrowchevrolet"),
        LotSpec(new=30, used=40, certified=5),
        makes=("Chevrolet",),
        fault=FaultProfile(status_code=500),
        city="Broken Arrow",
        state="OK",
    ),
    DealerSpec(
        "loop-road-nissan",
        "Loop Road Nissan",
        _ddc("looproadnissan"),
        LotSpec(new=25, used=120, certified=15),
        makes=("Nissan",),
        timezone="America/New_York",
        fault=FaultProfile(ignore_page_start=True),
        city="Charlotte",
        state="NC",
    ),
    DealerSpec(
        "rush-hour-hyundai",
        "Rush Hour Hyundai",
        _ddc("rushhourhyundai"),
        LotSpec(new=40, used=50, certified=12),
        makes=("Hyundai",),
        timezone="America/Los_Angeles",
        fault=FaultProfile(first_n_of_every=(2, 10), retry_after="1", retry_after_format="alternate"),
        city="Riverside",
        state="CA",
    ),
    DealerSpec(
        "slow-creek-subaru",
        "Slow Creek Subaru",
        _ddc("slowcreeksubaru"),
        LotSpec(new=20, used=25, certified=8),
        makes=("Subaru",),
        timezone="America/Denver",
        fault=FaultProfile(latency_s=0.2),
        city="Boulder",
        state="CO",
    ),
    DealerSpec(
        "flaky-ridge-kia",
        "Flaky Ridge Kia",
        _ddc("flakyridgekia"),
        LotSpec(new=35, used=45, certified=10),
        makes=("Kia",),
        timezone="America/Phoenix",
        fault=FaultProfile(every_nth=4, status_code=503),
        city="Mesa",
        state="AZ",
    ),
    DealerSpec(
        "glitch-point-mazda",
        "Glitch Point Mazda",
        _ddc("glitchpointmazda"),
        LotSpec(new=15, used=20, certified=6),
        makes=("Mazda",),
        timezone="America/New_York",
        fault=FaultProfile(malformed_first_n=1),
        city="Glen Burnie",
        state="MD",
    ),
    DealerSpec(
        "vacant-lot-motors",
        "Vacant Lot Motors",
        _ddc("vacantlotmotors"),
        LotSpec(),
        city="Peoria",
        note="the lot is empty (a clean site with nothing for sale)",
    ),
    DealerSpec(
        "cedar-ridge-bmw",
        "Cedar Ridge BMW",
        _ddc("cedarridgebmw"),
        LotSpec(new=50, used=60, certified=30),
        makes=("BMW",),
        timezone="America/New_York",
        schedule=Schedule(60),
        city="Cedar Rapids",
        state="IA",
    ),
    DealerSpec(
        "harbor-volkswagen",
        "Harbor Volkswagen",
        _ddc("harborvw"),
        LotSpec(new=30, used=40, certified=10),
        makes=("Volkswagen",),
        timezone="America/Los_Angeles",
        city="Long Beach",
        state="CA",
    ),
    DealerSpec(
        "prairie-cdjr",
        "Prairie Chrysler Dodge Jeep Ram",
        _ddc("prairiecdjr"),
        LotSpec(new=70, used=100, certified=20),
        makes=("Jeep", "Ram", "Dodge", "Chrysler"),
        schedule=Schedule(180),
        city="Wichita",
        state="KS",
    ),
    DealerSpec(
        "pinecrest-buick-gmc",
        "Pinecrest Buick GMC",
        _ddc("pinecrestbuickgmc"),
        LotSpec(new=40, used=35, certified=8),
        makes=("GMC", "Buick"),
        timezone="America/Detroit",
        city="Traverse City",
        state="MI",
    ),
    DealerSpec(
        "sunset-lexus",
        "Sunset Lexus",
        _ddc("sunsetlexus"),
        LotSpec(new=35, used=30, certified=25),
        makes=("Lexus",),
        timezone="America/Los_Angeles",
        schedule=Schedule(90),
        city="Santa Monica",
        state="CA",
    ),
    DealerSpec(
        "oakwood-chevrolet",
        "Oakwood Chevrolet",
        _ddc("oakwoodchevy"),
        LotSpec(new=70, used=160, certified=30),
        makes=("Chevrolet",),
        timezone="America/Indiana/Indianapolis",
        schedule=Schedule(60),
        city="Indianapolis",
        state="IN",
    ),
    DealerSpec(
        "granite-state-subaru",
        "Granite State Subaru",
        _ddc("granitestatesubaru"),
        LotSpec(new=25, used=30, certified=12),
        makes=("Subaru",),
        timezone="America/New_York",
        schedule=Schedule(60, paused=True),
        city="Concord",
        state="NH",
    ),
    DealerSpec(
        "mesa-honda",
        "Mesa Honda",
        _ddc("mesahonda"),
        LotSpec(new=40, used=55, certified=15),
        makes=("Honda",),
        timezone="America/Phoenix",
        city="Mesa",
        state="AZ",
    ),
    DealerSpec(
        "bluebonnet-ford",
        "Bluebonnet Ford",
        _ddc("bluebonnetford"),
        LotSpec(new=55, used=65),
        makes=("Ford",),
        schedule=Schedule(1440),
        city="New Braunfels",
        state="TX",
    ),
    DealerSpec(
        "evergreen-kia",
        "Evergreen Kia",
        _ddc("evergreenkia"),
        LotSpec(new=3, used=4, certified=1),
        makes=("Kia",),
        timezone=None,
        city="Olympia",
        state="WA",
    ),
    # --- 2 inactive Dealer.com dealers ------------------------------------------------------------
    DealerSpec(
        "old-mill-chrysler",
        "Old Mill Chrysler",
        _ddc("oldmillchrysler"),
        LotSpec(new=10, used=15),
        makes=("Chrysler", "Jeep"),
        status="inactive",
        city="Joliet",
    ),
    DealerSpec(
        "shuttered-pines-buick",
        "Shuttered Pines Buick",
        _ddc("shutteredpinesbuick"),
        LotSpec(new=8, used=12, certified=2),
        makes=("Buick",),
        status="inactive",
        timezone="America/Detroit",
        city="Flint",
        state="MI",
    ),
    # --- other platforms (in the CMS now; served by later modules) --------------------------------
    DealerSpec(
        "bayview-auto-group",
        "Bayview Auto Group",
        {"homenet": {"rooftop_id": "HN-10482", "integration_token": "hn-int-bayview-3f8a2d"}},
        LotSpec(used=80, certified=10),
        timezone="America/Los_Angeles",
        schedule=Schedule(1440),
        city="San Mateo",
        state="CA",
    ),
    DealerSpec(
        "hilltop-used-cars",
        "Hilltop Used Cars",
        {
            "web_scraping": {
                "actor_id": "opendealer~dealer-inventory-scraper",
                "start_urls": ["https://www.hilltopusedcars.com/used-inventory/"],
                "max_items": 500,
            }
        },
        LotSpec(used=60),
        city="Dubuque",
        state="IA",
    ),
    DealerSpec(
        "metro-nissan",
        "Metro Nissan",
        {"vinsolutions": {"dealer_id": "21457"}},
        LotSpec(new=30, used=40, certified=10),
        makes=("Nissan",),
        timezone="America/New_York",
        city="Newark",
        state="NJ",
    ),
    DealerSpec(
        "coastal-mazda",
        "Coastal Mazda",
        {"dealersocket": {"dealer_code": "CSTMZD01"}},
        LotSpec(new=20, used=30, certified=5),
        makes=("Mazda",),
        timezone="America/New_York",
        city="Savannah",
        state="GA",
    ),
    DealerSpec(
        "heritage-chevrolet",
        "Heritage Chevrolet",
        {"cobalt": {"dealer_code": "HERCHEV"}},
        LotSpec(new=50, used=60, certified=10),
        makes=("Chevrolet",),
        schedule=Schedule(1440),
        city="Lexington",
        state="KY",
    ),
    DealerSpec(
        "twin-rivers-auto",
        "Twin Rivers Auto",
        {
            "homenet": {"rooftop_id": "HN-33190"},
            "web_scraping": {
                "actor_id": "opendealer~dealer-inventory-scraper",
                "start_urls": [
                    "https://www.twinriversauto.com/inventory/",
                    "https://www.twinriversauto.com/inventory/?page=2",
                ],
            },
        },
        LotSpec(used=45),
        timezone="America/Chicago",
        city="Cedar Falls",
        state="IA",
    ),
    # --- web scraping (Apify): how their runs end is scripted in platforms/web_scraping.py -------------
    DealerSpec(
        "canyon-creek-autos",
        "Canyon Creek Autos",
        {
            "web_scraping": {
                "actor_id": "opendealer~dealer-inventory-scraper",
                "start_urls": ["https://www.canyoncreekautos.com/inventory/"],
            }
        },
        LotSpec(used=30),
        timezone="America/Phoenix",
        city="Flagstaff",
        state="AZ",
        note="every Apify actor run ends FAILED",
    ),
    DealerSpec(
        "prairie-wind-motors",
        "Prairie Wind Motors",
        {
            "web_scraping": {
                "actor_id": "opendealer~dealer-inventory-scraper",
                "start_urls": ["https://www.prairiewindmotors.com/used-cars/"],
            }
        },
        LotSpec(used=25),
        city="Salina",
        state="KS",
        note="every Apify actor run ends TIMED-OUT (Apify's own timeout)",
    ),
    DealerSpec(
        "endless-acres-auto",
        "Endless Acres Auto",
        {
            "web_scraping": {
                "actor_id": "opendealer~dealer-inventory-scraper",
                "start_urls": ["https://www.endlessacresauto.com/inventory/"],
                "max_wait_s": 3,
            }
        },
        LotSpec(used=40),
        city="Ames",
        state="IA",
        note="Apify runs never finish; its CMS max_wait_s is 3 s, so the run is aborted",
    ),
    DealerSpec(
        "bargain-barn-autos",
        "Bargain Barn Autos",
        {
            "web_scraping": {
                "actor_id": "opendealer~dealer-inventory-scraper",
                "start_urls": ["https://www.bargainbarnautos.com/inventory/"],
                "max_items": 500,
            }
        },
        LotSpec(used=70),
        fault=FaultProfile(every_nth=3, status_code=429, retry_after="1"),
        city="Joplin",
        state="MO",
    ),
    DealerSpec(
        "capitol-hyundai",
        "Capitol Hyundai",
        {"vinsolutions": {"dealer_id": "30982"}, "cobalt": {"dealer_code": "CAPHYUN"}},
        LotSpec(new=25, used=35, certified=8),
        makes=("Hyundai",),
        timezone="America/New_York",
        city="Annapolis",
        state="MD",
    ),
    DealerSpec(
        "northgate-subaru",
        "Northgate Subaru",
        {"homenet": {"rooftop_id": "HN-41876", "integration_token": "hn-int-northgate-92d4e1"}},
        LotSpec(new=20, used=35, certified=5),
        makes=("Subaru",),
        fault=FaultProfile(first_n_of_every=(1, 2), status_code=503),
        city="Duluth",
        state="MN",
    ),
    DealerSpec(
        "bluegrass-gmc",
        "Bluegrass GMC",
        {"cobalt": {"dealer_code": "BLUGMC"}},
        LotSpec(new=30, used=40, certified=6),
        makes=("GMC",),
        timezone="America/New_York",
        fault=FaultProfile(first_n_of_every=(1, 2), retry_after="1"),
        city="Frankfort",
        state="KY",
    ),
    DealerSpec(
        "beltway-toyota",
        "Beltway Toyota",
        {"vinsolutions": {"dealer_id": "27735"}},
        LotSpec(new=70, used=110, certified=25),
        makes=("Toyota",),
        timezone="America/New_York",
        city="Bethesda",
        state="MD",
    ),
    DealerSpec(
        "hourglass-honda",
        "Hourglass Honda",
        {"vinsolutions": {"dealer_id": "44610"}},
        LotSpec(new=45, used=140, certified=30),
        makes=("Honda",),
        timezone="America/New_York",
        fault=FaultProfile(token_expires_after=2),
        city="Dayton",
        state="OH",
    ),
    DealerSpec(
        "magnolia-ford",
        "Magnolia Ford",
        {"dealersocket": {"dealer_code": "MAGFRD22"}},
        LotSpec(new=40, used=75, certified=15),
        makes=("Ford",),
        city="Jackson",
        state="MS",
    ),
    DealerSpec(
        "trojan-horse-motors",
        "Trojan Horse Motors",
        {"dealersocket": {"dealer_code": "TRJHRS07"}},
        LotSpec(used=15, certified=3),
        timezone="America/New_York",
        fault=FaultProfile(hostile_xml="billion_laughs"),
        city="Troy",
        state="NY",
    ),
)


def fleet_dealers(count: int, *, vehicles: int = 30, latency_s: float = 0.0) -> tuple[DealerSpec, ...]:
    """``count`` generated Dealer.com dealers (``fleet-00001`` …) for benchmarks: same shape as the table's,
    ``vehicles`` each, every request to their sites delayed by ``latency_s``."""
    new, used = vehicles // 3, vehicles // 2
    lot = LotSpec(new=new, used=used, certified=vehicles - new - used)
    fault = FaultProfile(latency_s=latency_s) if latency_s else None
    return tuple(
        DealerSpec(
            f"fleet-{i:05d}",
            f"Fleet Motors {i:05d}",
            _ddc(f"fleetmotors{i:05d}"),
            lot,
            makes=("Ford", "Toyota", "Honda"),
            fault=fault,
        )
        for i in range(1, count + 1)
    )


def _index(dealers: tuple[DealerSpec, ...]) -> dict[str, DealerSpec]:
    index: dict[str, DealerSpec] = {}
    for dealer in dealers:
        for key in (dealer.slug, dealer.id):
            if key in index:
                raise ValueError(f"duplicate dealer key {key}")
            index[key] = dealer
    return index


DEALERS_BY_KEY: dict[str, DealerSpec] = _index(DEALERS)
"""Every dealer by slug and by id."""


def find_dealer(key: str) -> DealerSpec | None:
    """The dealer whose slug or id is ``key``."""
    return DEALERS_BY_KEY.get(key)
