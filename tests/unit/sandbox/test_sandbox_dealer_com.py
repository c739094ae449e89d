"""The sandbox's Dealer.com widget: page cap, overlapping segments, a pageStart-ignoring site, shape, dirt."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from include.sandbox.dealers import DEALERS

pytestmark = pytest.mark.unit

Widget = Callable[..., httpx.Response]


def _truth(client: httpx.Client, slug: str) -> dict[str, Any]:
    return client.get(f"/_sandbox/truth/dealer.com/{slug}").json()


def _all_pages(widget: Widget, slug: str, segment: str) -> list[str]:
    vins: list[str] = []
    start = 0
    while True:
        body = widget(slug, segment, start).json()
        vins += [v["vin"] for v in body["inventory"]]
        start += body["pageInfo"]["pageSize"]
        if start >= body["pageInfo"]["totalCount"]:
            return vins


def test_page_size_is_capped_at_100(widget: Widget) -> None:
    body = widget("riverside-toyota", "auto-used", 0, "500").json()

    assert len(body["inventory"]) == 100
    assert body["pageInfo"] == {"totalCount": 165, "pageSize": 100, "pageStart": 0}


def test_paging_a_segment_reaches_every_vehicle_once(widget: Widget, client: httpx.Client) -> None:
    vins = _all_pages(widget, "oakwood-chevrolet", "auto-used")

    assert len(vins) == 190
    assert len(set(vins)) == 190
    assert vins == _truth(client, "oakwood-chevrolet")["segments"]["auto-used"]


def test_certified_is_a_subset_of_used_and_new_is_disjoint(widget: Widget, client: httpx.Client) -> None:
    new = set(_all_pages(widget, "riverside-toyota", "auto-new"))
    certified = set(_all_pages(widget, "riverside-toyota", "auto-certified"))
    used = set(_all_pages(widget, "riverside-toyota", "auto-used"))

    assert (len(new), len(certified), len(used)) == (60, 35, 165)
    assert certified < used
    assert not new & used
    assert new | used == set(_truth(client, "riverside-toyota")["vins"])


def test_a_site_that_ignores_page_start_returns_the_first_page_again(widget: Widget) -> None:
    first = widget("loop-road-nissan", "auto-used", 0).json()
    second = widget("loop-road-nissan", "auto-used", 100).json()

    assert first["pageInfo"]["totalCount"] == 135
    assert second["pageInfo"]["pageStart"] == 100
    assert [v["vin"] for v in second["inventory"]] == [v["vin"] for v in first["inventory"]]


def test_a_clean_site_honours_page_start(widget: Widget) -> None:
    first = widget("riverside-toyota", "auto-used", 0).json()
    second = widget("riverside-toyota", "auto-used", 100).json()

    assert len(second["inventory"]) == 65
    assert not {v["vin"] for v in first["inventory"]} & {v["vin"] for v in second["inventory"]}


def test_wrong_site_id_or_unknown_site_is_404(widget: Widget) -> None:
    wrong_site = widget("riverside-toyota", "auto-new", site_id="someoneelse")
    assert wrong_site.status_code == 404
    assert "error" in wrong_site.json()
    assert widget("no-such-dealer", "auto-new", site_id="riversidetoyotail").status_code == 404


def test_unknown_segment_answers_200_with_a_string_error(widget: Widget) -> None:
    response = widget("riverside-toyota", "auto-everything")
    assert response.status_code == 200
    assert isinstance(response.json()["error"], str)


def test_empty_lot(widget: Widget) -> None:
    for segment in ("auto-new", "auto-certified", "auto-used"):
        body = widget("vacant-lot-motors", segment).json()
        assert body["inventory"] == []
        assert body["pageInfo"]["totalCount"] == 0


VEHICLE_KEYS = {
    "vin",
    "uuid",
    "stockNumber",
    "year",
    "make",
    "model",
    "trim",
    "title",
    "link",
    "type",
    "condition",
    "certified",
    "status",
    "bodyStyle",
    "fuelType",
    "inventoryDate",
    "trackingAttributes",
    "pricing",
    "trackingPricing",
    "images",
}
TRACKING_ATTRIBUTES = [
    "driveLine",
    "odometer",
    "exteriorColor",
    "interiorColor",
    "transmission",
    "engine",
    "engineSize",
    "cityFuelEconomy",
    "highwayFuelEconomy",
]


def test_vehicle_shape_follows_the_contract(widget: Widget) -> None:
    for segment in ("auto-new", "auto-certified", "auto-used"):
        for vehicle in widget("cedar-ridge-bmw", segment).json()["inventory"]:
            assert set(vehicle) == VEHICLE_KEYS
            assert isinstance(vehicle["year"], int)
            assert 2015 <= vehicle["year"] <= 2026
            assert isinstance(vehicle["certified"], bool)
            if segment != "auto-used":  # auto-used mixes plain used and certified
                assert vehicle["certified"] == (segment == "auto-certified")
            assert vehicle["condition"] == ("new" if segment == "auto-new" else "used")
            assert re.fullmatch(r"/(new|used|certified)/[^/]+/\d{4}-[^/]+\.htm", vehicle["link"])
            assert [a["name"] for a in vehicle["trackingAttributes"]] == TRACKING_ATTRIBUTES
            odometer = next(a["value"] for a in vehicle["trackingAttributes"] if a["name"] == "odometer")
            assert re.fullmatch(r"\d{1,3}(,\d{3})*", odometer)
            assert set(vehicle["trackingPricing"]) == {"internetPrice", "salePrice", "msrp"}
            for price in vehicle["pricing"]["dprice"]:
                assert price["typeClass"] in {"internetPrice", "msrp"}
                assert re.fullmatch(r"\$\d{1,3}(,\d{3})*", price["value"])
            for image in vehicle["images"]:
                assert image["uri"].startswith("https://")


def test_used_mileage_is_plausible_and_new_is_near_zero(client: httpx.Client) -> None:
    records = _truth(client, "oakwood-chevrolet")["records"]
    assert all(r["mileage"] < 100 for r in records if r["condition"] == "new")
    used = [r["mileage"] for r in records if r["condition"] == "used"]
    assert all(1_500 <= miles < 250_000 for miles in used)


def test_real_world_dirt_is_spread_over_the_lots(client: httpx.Client) -> None:
    vehicles = [
        v
        for dealer in DEALERS
        if "dealer.com" in dealer.platforms
        for v in _truth(client, dealer.slug)["vehicles"]
    ]
    dates = [v["inventoryDate"] for v in vehicles]
    retail = [v["pricing"]["retailPrice"] for v in vehicles]

    assert any(d == "" for d in dates)
    assert any(d.startswith("00/") for d in dates)
    assert sum(
        bool(re.fullmatch(r"\d{2}/\d{2}/\d{4}", d)) and not d.startswith("00/") for d in dates
    ) > 0.9 * len(dates)
    assert "0" in retail
    assert "" in retail
    assert any(v["trackingPricing"]["salePrice"] == "0" for v in vehicles)
    assert any(not v["images"] for v in vehicles)
    wmis = {v["vin"][0] for v in vehicles}
    assert {"1", "2", "3", "5", "J", "K", "W"} <= wmis
