"""The platform registry: what each entry derives and the settings it names."""

from __future__ import annotations

import pytest

from od_scheduler.exceptions import ConfigError
from od_scheduler.platforms import COBALT, DEALER_COM, PLATFORMS, get_platform
from od_scheduler.settings import Settings, get_settings, platform_timing

pytestmark = pytest.mark.unit


def test_dag_id_and_cms_field_follow_the_id_with_dots_as_underscores() -> None:
    assert (DEALER_COM.dag_id, DEALER_COM.config_field) == ("inventory_dealer_com", "dealer_com_config")
    assert (COBALT.dag_id, COBALT.config_field) == ("inventory_cobalt", "cobalt_config")


def test_the_registry_lists_the_six_platforms_in_the_status_page_order() -> None:
    assert list(PLATFORMS) == [
        "dealer.com",
        "web_scraping",
        "homenet",
        "cobalt",
        "vinsolutions",
        "dealersocket",
    ]
    assert all(platform_id == p.id for platform_id, p in PLATFORMS.items())


def test_an_unknown_platform_is_a_config_error_listing_the_known_ones() -> None:
    assert get_platform("cobalt") is COBALT
    with pytest.raises(
        ConfigError, match=r"unknown platform 'dealer_com'; known platforms: cobalt, dealer\.com"
    ):
        get_platform("dealer_com")


def test_every_entry_names_settings_that_exist() -> None:
    for platform in PLATFORMS.values():
        assert platform.schedule_setting in Settings.__dataclass_fields__, platform.id
        assert platform.expected_run_setting in Settings.__dataclass_fields__, platform.id


def test_expected_run_minutes_default_to_45_for_dealer_com_and_180_for_the_daily_platforms() -> None:
    assert platform_timing("dealer.com").expected_run_minutes == 45
    assert {platform_timing(p).expected_run_minutes for p in ("homenet", "cobalt", "web_scraping")} == {180}


def test_schedules_default_to_hourly_dealer_com_and_daily_0900_for_the_rest() -> None:
    assert platform_timing("dealer.com").schedule == "@hourly"
    assert {platform_timing(p).schedule for p in PLATFORMS if p != "dealer.com"} == {"0 9 * * *"}


def test_timing_follows_the_settings_the_entry_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__DEALER_COM_SCHEDULE", "*/30 * * * *")
    monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__DEFAULT_EXPECTED_RUN_MINUTES", "90")
    get_settings.cache_clear()
    try:
        assert platform_timing("dealer.com").schedule == "*/30 * * * *"
        assert platform_timing("dealer.com").expected_run_minutes == 45
        assert platform_timing("cobalt").expected_run_minutes == 90
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
