"""The status page: one self-contained HTML document (inline CSS and SVG, no script, no external asset).

It is rendered on the server from the same queries as the API, so it needs nothing but the user's Airflow
cookie, works inside the Airflow UI's iframe, and shows the same numbers the API returns. Its only form,
the Dealers search, is a plain GET back to the page itself (the CSP allows forms to this origin only).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape

from od_scheduler.platforms import PLATFORMS
from od_scheduler.status.queries import RunSummaryRow
from od_scheduler.status.schemas import DayStats, DealerHealth, DirectoryDealer, UiQuery

#: Sent with the page: nothing may load from anywhere, and only Airflow (same origin) may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)

#: Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), one per platform.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")

# Chart geometry, in SVG user units: one small panel per platform, three to a row.
_COLUMNS = 3
_PANEL_W, _PANEL_H = 320, 150  # a panel's cell, gap included
_GAP = 14
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 40, 12, 30, 22

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Point:
    """One day of one platform, in its panel's coordinates."""

    day: date
    x: float
    y: float
    rate: float
    finished: int


@dataclass
class Series:
    """One platform's panel: its line breaks where a day had no finished execution."""

    platform: str
    name: str
    colour: str
    x: int = 0
    y: int = 0
    points: list[Point] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    finished: int = 0
    success: int = 0

    @property
    def rate(self) -> float | None:
        """Success rate over the whole window."""
        return self.success / self.finished if self.finished else None


@dataclass
class Chart:
    """Success rate per platform per day, as small multiples sharing one scale."""

    width: int
    height: int
    days: list[date]
    y_ticks: list[tuple[float, str]]
    series: list[Series]
    panel_width: int = _PANEL_W - _GAP
    panel_height: int = _PANEL_H - _GAP
    plot_left: int = _PAD_LEFT
    plot_right: int = _PANEL_W - _GAP - _PAD_RIGHT
    plot_bottom: int = _PANEL_H - _GAP - _PAD_BOTTOM


def build_chart(series_rows: list[DayStats], *, first_day: date, days: int) -> Chart:
    """Lay out success rate per platform per day (finished executions only), one panel per platform."""
    day_list = [first_day + timedelta(days=i) for i in range(days)]
    plot_w = _PANEL_W - _GAP - _PAD_LEFT - _PAD_RIGHT
    plot_h = _PANEL_H - _GAP - _PAD_TOP - _PAD_BOTTOM
    step = plot_w / max(days - 1, 1)

    def x_of(i: int) -> float:
        return round(_PAD_LEFT + i * step, 1)

    def y_of(rate: float) -> float:
        return round(_PAD_TOP + (1 - rate) * plot_h, 1)

    index = {d: i for i, d in enumerate(day_list)}
    colours = {pid: _PALETTE[i % len(_PALETTE)] for i, pid in enumerate(PLATFORMS)}
    by_platform: dict[str, Series] = {}
    for row in sorted(series_rows, key=lambda r: (r.platform, r.day)):
        if row.day not in index or row.success_rate is None:
            continue
        s = by_platform.setdefault(
            row.platform,
            Series(
                platform=row.platform,
                name=PLATFORMS[row.platform].name if row.platform in PLATFORMS else row.platform,
                colour=colours.get(row.platform, "#777777"),
            ),
        )
        i = index[row.day]
        s.points.append(
            Point(
                day=row.day, x=x_of(i), y=y_of(row.success_rate), rate=row.success_rate, finished=row.finished
            )
        )
        s.finished += row.finished
        s.success += row.by_status.success
    series = [by_platform[p] for p in sorted(by_platform)]
    for n, s in enumerate(series):
        s.x, s.y = (n % _COLUMNS) * _PANEL_W, (n // _COLUMNS) * _PANEL_H
        run: list[Point] = []
        for p in s.points:
            if run and index[p.day] != index[run[-1].day] + 1:
                s.segments.append(" ".join(f"{q.x},{q.y}" for q in run))
                run = []
            run.append(p)
        if run:
            s.segments.append(" ".join(f"{q.x},{q.y}" for q in run))
    rows = max(-(-len(series) // _COLUMNS), 1)
    return Chart(
        width=_COLUMNS * _PANEL_W - _GAP,
        height=rows * _PANEL_H - _GAP,
        days=day_list,
        y_ticks=[(y_of(v / 100), f"{v}%") for v in (0, 50, 100)],
        series=series,
    )


def age(then: datetime | None, now: datetime) -> str:
    """'3 h 20 min ago', '5 d 2 h ago', or 'never'."""
    if then is None:
        return "never"
    minutes = int((now - then).total_seconds() // 60)
    if minutes < 0:
        return "in the future"
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    if d:
        return f"{d} d {h} h ago"
    if h:
        return f"{h} h {m} min ago"
    return f"{m} min ago"


@dataclass
class DirectoryPage:
    """One page of the Dealers section, with its search and the links to the pages beside it."""

    dealers: list[DirectoryDealer]
    total: int
    query: UiQuery
    first: int
    last: int
    previous: str | None
    next: str | None


def page_link(query: UiQuery, offset: int) -> str:
    """The page's own URL (query string only) with the same window and search at another ``offset``."""
    params: list[tuple[str, str | int]] = [("days", query.days)]
    if query.q:
        params.append(("q", query.q))
    if query.platform:
        params.append(("platform", query.platform))
    params.append(("offset", offset))
    return f"?{urlencode(params)}#dealers"


def directory_page(dealers: list[DirectoryDealer], total: int, *, query: UiQuery, size: int) -> DirectoryPage:
    """Lay out one page of the directory (``size`` rows) and its previous / next links."""
    offset = query.offset
    end = offset + len(dealers)
    return DirectoryPage(
        dealers=dealers,
        total=total,
        query=query,
        first=offset + 1 if dealers else 0,
        last=end,
        previous=page_link(query, max(offset - size, 0)) if offset > 0 else None,
        next=page_link(query, end) if end < total and dealers else None,
    )


def render_page(
    *,
    user: str,
    now: datetime,
    chart: Chart,
    failing: list[DealerHealth],
    overdue: list[DealerHealth],
    runs: list[RunSummaryRow],
    directory: DirectoryPage,
    hold_after_failures: int,
    overdue_factor: float,
    max_rows: int,
    readable_platforms: Collection[str] | None = None,
) -> str:
    """The whole HTML document. ``readable_platforms``: the platforms the user may read when not all (the
    page says so, and its platform search offers only those)."""
    failing = sorted(failing, key=lambda h: (-h.consecutive_failures, h.platform, h.dealer_id))
    overdue = sorted(overdue, key=lambda h: (h.last_success or h.last_run, h.platform, h.dealer_id))
    return _env.get_template("status.html").render(
        user=user,
        now=now,
        chart=chart,
        failing=failing[:max_rows],
        failing_total=len(failing),
        overdue=overdue[:max_rows],
        overdue_total=len(overdue),
        runs=runs,
        directory=directory,
        hold_after_failures=hold_after_failures,
        overdue_factor=overdue_factor,
        platforms=PLATFORMS,
        readable_platforms=readable_platforms,
        choices=[p for p in PLATFORMS if readable_platforms is None or p in readable_platforms],
        age=age,
    )
