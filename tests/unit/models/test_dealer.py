"""Dealer documents from the CMS: validation, per-platform configs, and what a bad document becomes."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from pydantic import ValidationError

from include.sandbox.cms import dealer_doc
from include.sandbox.dealers import DEALERS as SANDBOX_DEALERS
from od_scheduler.exceptions import ConfigError
from od_scheduler.models.cobalt import CobaltConfig
from od_scheduler.models.dealer import Dealer, DealerSchedule, InvalidDealer
from od_scheduler.models.dealer_com import DealerComConfig
from od_scheduler.models.dealersocket import DealersocketConfig
from od_scheduler.models.homenet import HomenetConfig
from od_scheduler.models.vinsolutions import VinsolutionsConfig
from od_scheduler.models.web_scraping import WebScrapingConfig
from od_scheduler.platforms import COBALT, PLATFORMS, WEB_SCRAPING

pytestmark = pytest.mark.unit

TOKEN = "hn-integration-token-123456"


def doc(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "6d1f0c8e-0000-4000-8000-000000000001",
        "name": "Acme Motors",
        "slug": "acme-motors",
        "domain": "acmemotors.test",
        "status": "active",
        "timezone": "America/Denver",
        "platforms": list(PLATFORMS),
        "schedule": {"interval_minutes": 120, "paused": False},
        "homenet_config": {"rooftop_id": "RT-1", "integration_token": TOKEN},
        "dealer_com_config": {"site_id": "acmemotors", "base_url": "https://www.acmemotors.test"},
        "web_scraping_config": {
            "actor_id": "od~cars",
            "start_urls": ["https://acmemotors.test/used"],
            "max_items": 500,
        },
        "vinsolutions_config": {"dealer_id": 4242},
        "dealersocket_config": {"dealer_code": "ACME"},
        "cobalt_config": {"dealer_code": "ACM01"},
        "updatedAt": "2025-01-01T00:00:00Z",
    }
    data.update(over)
    return data


def test_full_document() -> None:
    dealer = Dealer.model_validate(doc())
    assert dealer.schedule == DealerSchedule(interval_minutes=120, paused=False)
    assert dealer.config_for("homenet") == HomenetConfig(rooftop_id="RT-1", integration_token=TOKEN)
    assert dealer.config_for("dealer.com") == DealerComConfig(
        site_id="acmemotors", base_url="https://www.acmemotors.test"
    )
    assert dealer.config_for("web_scraping") == WebScrapingConfig(
        actor_id="od~cars", start_urls=["https://acmemotors.test/used"], max_items=500
    )
    assert dealer.config_for("vinsolutions") == VinsolutionsConfig(dealer_id="4242")  # numeric id -> str
    assert dealer.config_for("dealersocket") == DealersocketConfig(dealer_code="ACME")
    assert dealer.config_for("cobalt") == CobaltConfig(dealer_code="ACM01")
    assert dealer.config_errors == {}


def test_secrets_are_not_in_repr() -> None:
    dealer = Dealer.model_validate(doc())
    assert TOKEN not in repr(dealer)
    assert TOKEN not in str(dealer)


def test_minimal_document() -> None:
    dealer = Dealer.model_validate(
        {"id": 17, "name": "Min", "slug": "min", "status": "active", "platforms": None, "schedule": None}
    )
    assert dealer.id == "17"
    assert dealer.platforms == []
    assert dealer.schedule is None
    assert dealer.domain is None


def test_schedule_paused_null_means_not_paused() -> None:
    dealer = Dealer.model_validate(doc(schedule={"interval_minutes": None, "paused": None}))
    assert dealer.schedule == DealerSchedule()


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"id": None}, "id"),
        ({"name": "  "}, "name"),
        ({"status": None}, "status"),
        ({"schedule": {"interval_minutes": 0}}, "schedule.interval_minutes"),
    ],
)
def test_invalid_dealer_fields_fail_validation(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Dealer.model_validate(doc(**over))
    assert field in {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}


def test_missing_config_names_dealer_platform_and_field() -> None:
    dealer = Dealer.model_validate(doc(cobalt_config=None))
    with pytest.raises(ConfigError) as info:
        dealer.config_for("cobalt")
    message = str(info.value)
    assert "dealer 'Acme Motors' (id 6d1f0c8e-0000-4000-8000-000000000001, slug acme-motors)" in message
    assert "has no cobalt_config, required for platform 'cobalt'" in message


def test_broken_config_is_set_aside_not_fatal() -> None:
    dealer = Dealer.model_validate(
        doc(web_scraping_config={"actor_id": "od~cars", "start_urls": []}, homenet_config={"rooftop_id": ""})
    )
    assert dealer.config_for("cobalt") == CobaltConfig(dealer_code="ACM01")
    with pytest.raises(
        ConfigError, match=r"web_scraping_config for platform 'web_scraping' is invalid: start_urls"
    ):
        dealer.config_for("web_scraping")
    with pytest.raises(
        ConfigError, match=r"homenet_config .* invalid: rooftop_id: Value error, must not be empty"
    ):
        dealer.config_for("homenet")


def test_broken_config_error_does_not_echo_secrets() -> None:
    dealer = Dealer.model_validate(doc(homenet_config={"integration_token": TOKEN, "rooftop_id": {"x": 1}}))
    with pytest.raises(ConfigError) as info:
        dealer.config_for("homenet")
    assert TOKEN not in str(info.value)
    assert "rooftop_id" in str(info.value)


def test_unknown_platform() -> None:
    with pytest.raises(ConfigError, match="unknown platform 'dealer_com'"):
        Dealer.model_validate(doc()).config_for("dealer_com")


def test_invalid_dealer_keeps_identity() -> None:
    invalid = InvalidDealer.from_document({"id": 9, "name": " X ", "slug": ""}, "slug: required")
    assert invalid == InvalidDealer(id="9", name="X", slug=None, error="slug: required")
    assert InvalidDealer.from_document(["not", "a", "dict"], "not an object").id is None


def test_config_for_a_registry_entry_is_the_same_config_typed() -> None:
    dealer = Dealer.model_validate(doc())
    assert dealer.config_for(COBALT) is dealer.config_for("cobalt")
    assert dealer.config_for(WEB_SCRAPING).start_urls == ["https://acmemotors.test/used"]
    with pytest.raises(ConfigError, match="has no cobalt_config, required for platform 'cobalt'"):
        Dealer.model_validate(doc(cobalt_config=None)).config_for(COBALT)


def test_every_registered_platform_has_its_config_read_from_its_document_field() -> None:
    """Each platform's config, as the sandbox CMS serves it to a dealer on that platform (the other side of
    the contract: docs/contracts.md §1), is read from the document into the entry's config model."""
    for platform in PLATFORMS.values():
        documents = [
            dealer_doc(dealer, position, "http://127.0.0.1:8000")
            for position, dealer in enumerate(SANDBOX_DEALERS)
            if platform.id in dealer.platforms
        ]
        assert documents, f"no sandbox dealer is on {platform.id}"
        read = []
        for document in documents:
            assert platform.config_field in document, platform.id
            dealer = Dealer.model_validate(document)
            with contextlib.suppress(ConfigError):  # the sandbox's broken-config dealers
                read.append(dealer.config_for(platform))
        assert read, f"no sandbox dealer's {platform.config_field} is read"
        assert all(isinstance(config, platform.config_model) for config in read), platform.id
