"""DealerComClient against a fake widget endpoint with the quirks of docs/contracts.md §3."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from od_scheduler.clients.dealer_com import INVENTORY_PATH, DealerComClient
from od_scheduler.clients.retry import RetryPolicy
from od_scheduler.exceptions import PayloadError
from od_scheduler.models.vin import check_digit

from .conftest import FakeClock

pytestmark = pytest.mark.unit

SITE = "acmemotors"


def vin(n: int) -> str:
    """A valid North-American VIN with serial ``n``."""
    draft = f"1FTFW1E50PF{n:06d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def item(n: int, **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "vin": vin(n),
        "uuid": f"u{n}",
        "stockNumber": f"S{n}",
        "year": 2023,
        "make": "Ford",
        "model": "F-150",
        "link": f"/used/Ford/2023-Ford-F-150-{n}.htm",
        "type": "Used",
        "certified": False,
    }
    data.update(over)
    return data


class FakeSite:
    """The widget: per-segment inventory, pageSize capped at 100, optionally ignoring pageStart."""

    def __init__(
        self, segments: dict[str, list[dict[str, Any]]], *, ignores_page_start: bool = False
    ) -> None:
        self.segments = segments
        self.ignores_page_start = ignores_page_start
        self.calls: list[tuple[str, int, int]] = []  # (segment, pageStart, pageSize asked)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.url.path == INVENTORY_PATH
        body = json.loads(request.content)
        prefs = body["preferences"]
        segment, start, size = prefs["listing.config.id"], int(prefs["pageStart"]), int(prefs["pageSize"])
        self.calls.append((segment, start, size))
        inventory = self.segments.get(segment, [])
        if self.ignores_page_start:
            start = 0
        size = min(size, 100)
        page = inventory[start : start + size]
        return httpx.Response(
            200,
            json={
                "inventory": page,
                "pageInfo": {"totalCount": len(inventory), "pageSize": size, "pageStart": start},
            },
        )


def make_client(site: Any, clock: FakeClock, **kw: Any) -> DealerComClient:
    kw.setdefault("requests_per_second", None)
    return DealerComClient(
        base_url="https://www.acmemotors.test",
        transport=httpx.MockTransport(site),
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(max_attempts=3, jitter=False),
        **kw,
    )


def test_request_body_follows_the_contract(clock: FakeClock) -> None:
    bodies: list[dict[str, Any]] = []

    def site(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"inventory": [], "pageInfo": {"totalCount": 0}})

    assert list(make_client(site, clock).iter_inventory(SITE)) == []
    assert [b["preferences"]["listing.config.id"] for b in bodies] == [
        "auto-new",
        "auto-certified",
        "auto-used",
    ]
    assert bodies[0] == {
        "siteId": SITE,
        "locale": "en_US",
        "device": "DESKTOP",
        "pageAlias": "INVENTORY_LISTING_DEFAULT_AUTO_NEW",
        "pageId": f"{SITE}_SITEBUILDER_INVENTORY_SEARCH_RESULTS_AUTO_NEW_V1_1",
        "windowId": "inventory-data-bus1",
        "widgetName": "ws-inv-data",
        "includePricing": True,
        "inventoryParameters": {},
        "preferences": {"pageSize": "100", "pageStart": "0", "listing.config.id": "auto-new"},
    }


def test_server_page_cap_advances_by_items_returned(clock: FakeClock) -> None:
    site = FakeSite({"auto-used": [item(n) for n in range(250)]})
    client = make_client(site, clock, page_size=500, segments=("auto-used",))
    vehicles = list(client.iter_inventory(SITE))
    assert [v.vin for v in vehicles] == [vin(n) for n in range(250)]
    assert site.calls == [("auto-used", 0, 500), ("auto-used", 100, 500), ("auto-used", 200, 500)]
    assert client.report.complete
    part = client.report.segments["auto-used"]
    assert (part.pages, part.items, part.total_count, part.stop_reason) == (3, 250, 250, "total_reached")
    assert client.stats.pages == 3


def test_overlapping_segments_are_deduped_first_wins(clock: FakeClock) -> None:
    certified = [item(n, certified=True, type="Certified") for n in (10, 11)]
    site = FakeSite(
        {
            "auto-new": [item(n, type="New") for n in (1, 2, 3)],
            "auto-certified": certified,
            "auto-used": [item(n) for n in (10, 11, 20, 21, 22)],  # certified ⊂ used
        }
    )
    client = make_client(site, clock)
    vehicles = list(client.iter_inventory(SITE))
    assert [v.vin for v in vehicles] == [vin(n) for n in (1, 2, 3, 10, 11, 20, 21, 22)]
    assert [v.certified for v in vehicles if v.vin in (vin(10), vin(11))] == [True, True]
    segments = client.report.segments
    assert {name: s.total_count for name, s in segments.items()} == {
        "auto-new": 3,
        "auto-certified": 2,
        "auto-used": 5,  # never summed: the pull has 8 vehicles, not 10
    }
    assert (segments["auto-used"].items, segments["auto-used"].duplicates) == (3, 2)
    assert client.report.complete


def test_segment_counts_say_what_each_segment_listed_overlap_included(clock: FakeClock) -> None:
    # The operator compares these with the last complete pull's: an empty segment is visible here even
    # when the site answers it consistently (inventory [] and totalCount 0).
    certified = [item(n, certified=True, type="Certified") for n in (10, 11)]
    site = FakeSite(
        {
            "auto-new": [],
            "auto-certified": certified,
            "auto-used": [item(n) for n in (10, 11, 20, 21, 22)],
        }
    )
    client = make_client(site, clock)
    assert len(list(client.iter_inventory(SITE))) == 5
    assert client.segment_counts == {"auto-new": 0, "auto-certified": 2, "auto-used": 5}
    assert client.report.complete  # the client alone cannot tell: the pull base decides with the history
    site.segments["auto-new"] = [item(1, type="New")]
    list(client.iter_inventory(SITE))
    assert client.segment_counts["auto-new"] == 1  # reset per pull


def test_site_ignoring_page_start_stops_and_marks_pull_incomplete(clock: FakeClock) -> None:
    site = FakeSite({"auto-used": [item(n) for n in range(250)]}, ignores_page_start=True)
    client = make_client(site, clock, segments=("auto-new", "auto-used"))
    vehicles = list(client.iter_inventory(SITE))
    assert len(vehicles) == 100
    assert site.calls == [("auto-new", 0, 100), ("auto-used", 0, 100), ("auto-used", 100, 100)]
    assert not client.report.complete
    part = client.report.segments["auto-used"]
    assert (part.stop_reason, part.complete, part.total_count) == ("no_new_items", False, 250)
    assert client.report.segments["auto-new"].complete
    assert len(client.report.notes) == 1
    assert client.report.notes[0].startswith("auto-used: page 2 repeated only items already seen")
    assert "stopped after 100 of 250 items" in client.report.notes[0]


def test_guard_is_per_segment_a_used_page_of_certified_vins_is_progress(clock: FakeClock) -> None:
    certified = [item(n, certified=True) for n in range(100)]
    used = [item(n) for n in range(150)]  # page 1 = exactly the certified VINs, page 2 = 50 new
    site = FakeSite({"auto-certified": certified, "auto-used": used})
    client = make_client(site, clock, segments=("auto-certified", "auto-used"))
    vehicles = list(client.iter_inventory(SITE))
    assert [v.vin for v in vehicles] == [vin(n) for n in range(150)]
    assert site.calls == [("auto-certified", 0, 100), ("auto-used", 0, 100), ("auto-used", 100, 100)]
    assert client.report.complete
    used_part = client.report.segments["auto-used"]
    assert (used_part.items, used_part.duplicates, used_part.stop_reason) == (50, 100, "total_reached")


def test_vehicles_without_vin_pass_through(clock: FakeClock) -> None:
    site = FakeSite(
        {
            "auto-new": [item(1), item(2, vin=""), item(3, vin=None)],
            "auto-used": [item(4, vin="  ")],
        }
    )
    vehicles = list(make_client(site, clock).iter_inventory(SITE))
    assert [v.stock_number for v in vehicles] == ["S1", "S2", "S3", "S4"]


def test_error_string_is_a_payload_error_naming_the_site(clock: FakeClock) -> None:
    def site(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": "Invalid siteId", "inventory": []})

    with pytest.raises(PayloadError, match=f"site '{SITE}' segment 'auto-new'.*Invalid siteId"):
        list(make_client(site, clock).iter_inventory(SITE))


def test_missing_inventory_is_a_payload_error(clock: FakeClock) -> None:
    def site(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"pageInfo": {"totalCount": 3}})

    with pytest.raises(PayloadError, match="no 'inventory' list"):
        list(make_client(site, clock).iter_inventory(SITE))


def test_rate_limit_spaces_requests(clock: FakeClock) -> None:
    site = FakeSite({"auto-used": [item(n) for n in range(300)]})
    client = make_client(site, clock, requests_per_second=2.0)
    list(client.iter_inventory(SITE))
    assert len(site.calls) == 5  # new, certified, 3 x used
    assert clock.sleeps == [0.5] * 4
    assert client.stats.rate_limit_wait_s == 2.0


def test_transient_failure_mid_segment_is_retried(clock: FakeClock) -> None:
    site = FakeSite({"auto-used": [item(n) for n in range(150)]})
    failures = iter([httpx.Response(503), httpx.Response(429, headers={"Retry-After": "3"})])

    def flaky(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["preferences"]["pageStart"] == "100":
            next_failure = next(failures, None)
            if next_failure is not None:
                return next_failure
        return site(request)

    client = make_client(flaky, clock, segments=("auto-used",))
    assert len(list(client.iter_inventory(SITE))) == 150
    assert clock.sleeps == [0.5, 3.0]
    assert client.report.complete


def test_one_info_line_per_page(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    site = FakeSite({"auto-used": [item(n) for n in range(150)]})
    with caplog.at_level(logging.INFO, logger="od_scheduler.clients.dealer_com"):
        list(make_client(site, clock, segments=("auto-used",)).iter_inventory(SITE))
    pages = [r.getMessage() for r in caplog.records if "items on page" in r.getMessage()]
    assert pages == [
        f"dealer.com site {SITE} segment auto-used pageStart 0: 100 items on page, 100 vehicles so far",
        f"dealer.com site {SITE} segment auto-used pageStart 100: 50 items on page, 150 vehicles so far",
    ]


def test_base_url_without_scheme_gets_https() -> None:
    client = DealerComClient(base_url="www.acmemotors.test/")
    assert client.base_url.rstrip("/") == "https://www.acmemotors.test"
