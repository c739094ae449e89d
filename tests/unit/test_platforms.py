"""The platform registry: what each entry derives and the settings it names."""

from __future__ import annotations

import pytest

from od_scheduler.exceptions import ConfigError
from od_scheduler.platforms import (
    COBALT,
    DATA_API_POOL,
    DEALER_COM,
    PAYLOAD_CMS_POOL,
    PLATFORMS,
    get_platform,
    platform_pools,
)
from od_scheduler.settings import Settings, get_settings, platform_timing

pytestmark = pytest.mark.unit


def test_dag_id_and_cms_field_follow_the_id_with_dots_as_underscores() -> None:
    assert (DEALER_COM.dag_id, DEALER_COM.config_field) == ("inventory_dealer_com", "dealer_com_config")
    assert (COBALT.dag_id, COBALT.config_field) == ("inventory_cobalt", "cobalt_config")


def test_the_registry_keeps_the_status_page_order() -> None:
    """The order of ``PLATFORMS`` is the status page's and the trigger forms'; a new platform goes anywhere
    without reordering these."""
    first_six = ["dealer.com", "web_scraping", "homenet", "cobalt", "vinsolutions", "dealersocket"]
    assert [platform_id for platform_id in PLATFORMS if platform_id in first_six] == first_six
    assert all(platform_id == p.id for platform_id, p in PLATFORMS.items())


def test_each_platform_has_its_own_connection_type_and_pool() -> None:
    entries = list(PLATFORMS.values())
    assert len({p.conn_id for p in entries}) == len(entries)
    assert len({p.connection_form.conn_type for p in entries}) == len(entries)
    assert len({p.pool for p in entries}) == len(entries)
    for platform in entries:
        assert platform.conn_id.startswith("od_"), platform.id
        assert platform.connection_form.conn_type.startswith("od_"), platform.id
        # A shard holds dealers_in_flight slots: a smaller pool would never run it.
        assert platform.pool_slots >= platform.dealers_in_flight, platform.id
        assert platform.pool_description, platform.id


def test_the_platform_pools_are_the_entries_pools() -> None:
    assert platform_pools()["cobalt_api"] == {
        "slots": 4,
        "description": "Cobalt CSV feeds (shared): dealers in flight; a shard takes 2",
        "include_deferred": False,
    }
    assert list(platform_pools()) == [p.pool for p in PLATFORMS.values()]
    assert {DATA_API_POOL, PAYLOAD_CMS_POOL}.isdisjoint(platform_pools())


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
