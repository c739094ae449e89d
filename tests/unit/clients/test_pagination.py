"""Paginators (page number, offset) and the pull report."""

from __future__ import annotations

import pytest

from od_scheduler.clients.pagination import OffsetPaginator, Page, PageNumberPaginator, PullReport, StopReason

pytestmark = pytest.mark.unit


# -- pagination ------------------------------------------------------------------------------------
def pages_of(items: list[int], size: int) -> dict[int, list[int]]:
    return {n + 1: items[i : i + size] for n, i in enumerate(range(0, len(items), size))}


def test_page_number_paginator_follows_has_next() -> None:
    data = pages_of(list(range(25)), 10)
    asked: list[int] = []

    def fetch(n: int) -> Page[int]:
        asked.append(n)
        return Page(items=data[n], total=25, has_next=n < 3)

    paginator = PageNumberPaginator(fetch)
    assert list(paginator) == list(range(25))
    assert asked == [1, 2, 3]
    assert paginator.stop_reason is StopReason.LAST_PAGE
    assert paginator.complete
    assert paginator.note is None


def test_page_number_paginator_max_pages_guard() -> None:
    paginator = PageNumberPaginator(lambda n: Page(items=[n], total=None, has_next=True), max_pages=4)
    assert list(paginator) == [1, 2, 3, 4]
    assert paginator.stop_reason is StopReason.MAX_PAGES
    assert not paginator.complete
    assert paginator.note == "stopped at the 4-page limit after 4 items"


def test_offset_paginator_advances_by_items_returned() -> None:
    items = list(range(250))
    asked: list[int] = []

    def fetch(offset: int) -> Page[int]:
        asked.append(offset)
        return Page(items=items[offset : offset + 100], total=250)  # server caps the page at 100

    paginator = OffsetPaginator(fetch, key=lambda i: i)
    assert list(paginator) == items
    assert asked == [0, 100, 200]
    assert paginator.stop_reason is StopReason.TOTAL_REACHED
    assert paginator.complete


def test_offset_paginator_stops_when_a_page_adds_nothing_new() -> None:
    paginator = OffsetPaginator(lambda offset: Page(items=list(range(100)), total=250), key=lambda i: i)
    assert list(paginator) == list(range(100))
    assert paginator.pages == 2
    assert paginator.stop_reason is StopReason.NO_NEW_ITEMS
    assert not paginator.complete
    assert paginator.note is not None
    assert "(the upstream ignores the paging parameter); stopped after 100 of 250 items" in paginator.note


def test_offset_paginator_dedupes_within_and_passes_keyless_items() -> None:
    pages = {0: [1, 2, None], 3: [2, 3], 5: [None, None]}
    paginator = OffsetPaginator(lambda offset: Page(items=pages.get(offset, []), total=7), key=lambda i: i)
    assert list(paginator) == [1, 2, None, 3, None, None]
    assert paginator.duplicates == 1
    assert paginator.stop_reason is StopReason.TOTAL_REACHED


def test_offset_paginator_empty_page() -> None:
    short = OffsetPaginator(lambda offset: Page(items=[] if offset else [1, 2], total=5))
    assert list(short) == [1, 2]
    assert short.stop_reason is StopReason.EMPTY_PAGE
    assert not short.complete  # total said 5, only 2 came
    unknown = OffsetPaginator(lambda offset: Page(items=[] if offset else [1, 2]))
    assert list(unknown) == [1, 2]
    assert unknown.complete
    nothing = OffsetPaginator(lambda offset: Page(items=[], total=0))
    assert list(nothing) == []
    assert nothing.complete


def test_pull_report_records_incomplete_parts() -> None:
    report = PullReport()
    good = OffsetPaginator(lambda o: Page(items=[1] if o == 0 else [], total=1))
    list(good)
    bad = OffsetPaginator(lambda o: Page(items=[1, 2], total=9), key=lambda i: i)
    list(bad)
    report.record("a", good, items=1)
    report.record("b", bad, items=2, duplicates=1)
    assert not report.complete
    assert report.notes == [f"b: {bad.note}"]
    assert report.as_dict()["segments"]["b"] == {
        "pages": 2,
        "items": 2,
        "duplicates": 1,  # the repeated page is a loop, not duplicates
        "total_count": 9,
        "stop_reason": "no_new_items",
        "complete": False,
    }
