"""Pagination written once: page-number and offset paginators with their guards, and the pull report.

A platform client gives a paginator a ``fetch`` callback returning a :class:`Page`; the paginator fetches
lazily, drops items whose key it has already yielded, stops on the last page, the announced total, an empty
page, a page of only known keys (the upstream ignores the paging parameter) or ``max_pages``, and says
whether it saw everything (:attr:`complete`). :class:`PullReport` collects that per part of a pull: an
incomplete pull is partial, and nothing may be delisted from it. No Airflow imports.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class StopReason(StrEnum):
    """Why a paginator stopped. ``complete`` pulls end with the first three."""

    LAST_PAGE = "last_page"  # the response said there is no next page
    TOTAL_REACHED = "total_reached"  # offset reached the announced total
    EMPTY_PAGE = "empty_page"  # an empty page (complete only if the total was reached or unknown)
    NO_NEW_ITEMS = "no_new_items"  # a page's keyed items were all seen before: the upstream ignores paging
    MAX_PAGES = "max_pages"  # the page guard tripped


@dataclass(frozen=True)
class Page(Generic[T]):
    """What a fetch callback returns: the page's items, the announced total and whether more follow.

    ``has_next`` ``None`` means the upstream does not say (offset paging then relies on ``total``).
    """

    items: Sequence[T]
    total: int | None = None
    has_next: bool | None = None


@dataclass(frozen=True)
class FetchedPage(Generic[T]):
    """One page as the paginator saw it: ``items`` are only those with keys new to this paginator."""

    number: int
    offset: int
    returned: int
    items: list[T]
    total: int | None


class _Paginator(Generic[T]):
    """Shared loop state and guards; subclasses say how the next request is addressed."""

    def __init__(
        self,
        fetch: Callable[[int], Page[T]],
        *,
        key: Callable[[T], Hashable | None] | None = None,
        max_pages: int = 1000,
    ) -> None:
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages}")
        self._fetch = fetch
        self._key = key
        self.max_pages = max_pages
        self.pages = 0
        self.fetched = 0  # items the upstream returned, duplicates included
        self.items = 0  # items yielded
        self.duplicates = 0  # items dropped because their key was already yielded by this paginator
        self.total: int | None = None
        self.stop_reason: StopReason | None = None
        self._seen: set[Hashable] = set()

    @property
    def complete(self) -> bool:
        """True when the pagination ended because the upstream had no more, not because a guard tripped."""
        if self.stop_reason in (StopReason.LAST_PAGE, StopReason.TOTAL_REACHED):
            return True
        if self.stop_reason is StopReason.EMPTY_PAGE:
            return self.total is None or self.fetched >= self.total
        return False

    @property
    def note(self) -> str | None:
        """A sentence explaining an incomplete pagination, for the pull report; ``None`` when complete."""
        if self.complete or self.stop_reason is None:
            return None
        of_total = f"{self.items} of {self.total}" if self.total is not None else f"{self.items}"
        if self.stop_reason is StopReason.NO_NEW_ITEMS:
            return (
                f"page {self.pages} repeated only items already seen (the upstream ignores the paging "
                f"parameter); stopped after {of_total} items"
            )
        if self.stop_reason is StopReason.MAX_PAGES:
            return f"stopped at the {self.max_pages}-page limit after {of_total} items"
        return f"empty page after {of_total} items: the announced total was not reached"

    def _stop(self, reason: StopReason) -> None:
        self.stop_reason = reason

    def _take(self, page: Page[T], number: int, offset: int) -> FetchedPage[T] | None:
        """Account for one page; ``None`` when it ends the pagination without items to yield."""
        self.pages += 1
        if page.total is not None:
            self.total = page.total
        if not page.items:
            self._stop(StopReason.EMPTY_PAGE)
            return None
        self.fetched += len(page.items)
        if self._key is None:
            fresh = list(page.items)
        else:
            fresh = []
            new_keys = repeated_keys = 0
            for item in page.items:
                k = self._key(item)
                if k is None:
                    fresh.append(item)  # no key: cannot dedupe, and proves nothing either way
                elif k in self._seen:
                    repeated_keys += 1
                else:
                    self._seen.add(k)
                    new_keys += 1
                    fresh.append(item)
            if new_keys == 0 and repeated_keys > 0:
                self._stop(StopReason.NO_NEW_ITEMS)
                return None
            self.duplicates += repeated_keys
        self.items += len(fresh)
        return FetchedPage(
            number=number, offset=offset, returned=len(page.items), items=fresh, total=self.total
        )

    def iter_pages(self) -> Iterator[FetchedPage[T]]:
        """Fetch lazily and yield each page; ``stop_reason`` is set when the iterator ends."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.items


class PageNumberPaginator(_Paginator[T]):
    """``page=1, 2, ...`` while the response says there is a next page (``Page.has_next``).

    ``fetch(page_number)`` returns a :class:`Page`. Stops on ``has_next`` False, an empty page, a page
    of only known keys (when ``key`` is given) or ``max_pages``. With ``has_next`` unknown, it goes on
    until the announced total is reached or a page comes back empty.
    """

    def __init__(
        self,
        fetch: Callable[[int], Page[T]],
        *,
        key: Callable[[T], Hashable | None] | None = None,
        max_pages: int = 1000,
    ) -> None:
        super().__init__(fetch, key=key, max_pages=max_pages)

    def iter_pages(self) -> Iterator[FetchedPage[T]]:
        """Fetch lazily and yield each page; ``stop_reason`` is set when the iterator ends."""
        number = 1
        while True:
            if self.pages >= self.max_pages:
                self._stop(StopReason.MAX_PAGES)
                return
            offset = self.fetched
            page = self._fetch(number)
            taken = self._take(page, number=number, offset=offset)
            if taken is None:
                return
            yield taken
            if page.has_next is False:
                self._stop(StopReason.LAST_PAGE)
                return
            if page.has_next is None and self.total is not None and self.fetched >= self.total:
                self._stop(StopReason.TOTAL_REACHED)
                return
            number += 1


class OffsetPaginator(_Paginator[T]):
    """``offset = 0, n1, n1 + n2, ...``: advances by the number of items actually returned.

    Advancing by what came back (not by what was asked) survives servers that cap the page size.
    ``fetch(offset)`` returns a :class:`Page`. Stops at the announced total, ``has_next`` False, an empty
    page, a page whose keyed items were all seen before (``key`` given: the server ignores the offset;
    items whose key is ``None`` are yielded but prove nothing) or ``max_pages``.
    """

    def __init__(
        self,
        fetch: Callable[[int], Page[T]],
        *,
        start: int = 0,
        key: Callable[[T], Hashable | None] | None = None,
        max_pages: int = 1000,
    ) -> None:
        super().__init__(fetch, key=key, max_pages=max_pages)
        self.start = start

    def iter_pages(self) -> Iterator[FetchedPage[T]]:
        """Fetch lazily and yield each page; ``stop_reason`` is set when the iterator ends."""
        offset = self.start
        while True:
            if self.pages >= self.max_pages:
                self._stop(StopReason.MAX_PAGES)
                return
            page = self._fetch(offset)
            taken = self._take(page, number=self.pages + 1, offset=offset)
            if taken is None:
                return
            yield taken
            offset += len(page.items)
            if page.has_next is False:
                self._stop(StopReason.LAST_PAGE)
                return
            if self.total is not None and offset >= self.total:
                self._stop(StopReason.TOTAL_REACHED)
                return


@dataclass
class SegmentReport:
    """One part of a pull (a Dealer.com segment, a feed, ...): what its pagination saw."""

    pages: int = 0
    items: int = 0  # yielded by this segment (new to the whole pull)
    duplicates: int = 0  # skipped: key already yielded (earlier in this part or in an earlier part)
    total_count: int | None = None  # as announced by the upstream, never summed across segments
    stop_reason: str | None = None
    complete: bool = True


@dataclass
class PullReport:
    """Whether a pull saw everything: ``complete`` is False when any part stopped on a guard.

    An incomplete pull still delivers what it got, but must be treated as partial (never delist from it).
    ``notes`` say why, one sentence per problem.
    """

    complete: bool = True
    notes: list[str] = field(default_factory=list)
    segments: dict[str, SegmentReport] = field(default_factory=dict)

    def record(
        self, name: str, paginator: _Paginator[Any], *, items: int, duplicates: int = 0
    ) -> SegmentReport:
        """Record one finished pagination under ``name``; marks the pull incomplete if it was.

        ``items`` is what the part contributed to the pull; ``duplicates`` what the caller dropped on top
        of the paginator's own duplicates (for example keys already yielded by an earlier part).
        """
        segment = SegmentReport(
            pages=paginator.pages,
            items=items,
            duplicates=duplicates + paginator.duplicates,
            total_count=paginator.total,
            stop_reason=paginator.stop_reason.value if paginator.stop_reason else None,
            complete=paginator.complete,
        )
        self.segments[name] = segment
        if not paginator.complete:
            self.complete = False
            self.notes.append(f"{name}: {paginator.note}")
        return segment

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form for XCom summaries and logs."""
        return asdict(self)
