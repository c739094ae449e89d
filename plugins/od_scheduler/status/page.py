"""The status page: one self-contained HTML document (inline CSS and SVG, no script, no external asset).

It is rendered on the server from the same queries as the API, so it needs nothing but the user's Airflow
cookie, works inside the Airflow UI's iframe, and shows the same numbers the API returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from od_scheduler.platforms import PLATFORMS
from od_scheduler.status.queries import RunSummaryRow
from od_scheduler.status.schemas import DayStats, DealerHealth

#: Sent with the page: nothing may load from anywhere, and only Airflow (same origin) may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)

#: Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), one per platform.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")

# Chart geometry, in SVG user units.
_WIDTH, _HEIGHT = 760, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 14, 12, 30

_env = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Point:
    """One day of one platform on the chart."""

    day: date
    x: float
    y: float
    rate: float
    finished: int


@dataclass
class Series:
    """One platform's line: segments break where a day had no finished execution."""

    platform: str
    name: str
    colour: str
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
    """The success-rate chart: axes, gridlines and one series per platform with data."""

    width: int
    height: int
    days: list[date]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    series: list[Series]
    plot_left: int = _LEFT
    plot_right: int = _WIDTH - _RIGHT
    plot_top: int = _TOP
    plot_bottom: int = _HEIGHT - _BOTTOM


def build_chart(series_rows: list[DayStats], *, first_day: date, days: int) -> Chart:
    """Lay out success rate per platform per day (finished executions only)."""
    day_list = [first_day + timedelta(days=i) for i in range(days)]
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    step = plot_w / max(days - 1, 1)

    def x_of(i: int) -> float:
        return round(_LEFT + i * step, 1)

    def y_of(rate: float) -> float:
        return round(_TOP + (1 - rate) * plot_h, 1)

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
    for s in by_platform.values():
        run: list[Point] = []
        for p in s.points:
            if run and index[p.day] != index[run[-1].day] + 1:
                s.segments.append(" ".join(f"{q.x},{q.y}" for q in run))
                run = []
            run.append(p)
        if run:
            s.segments.append(" ".join(f"{q.x},{q.y}" for q in run))
    label_every = 1 if days <= 16 else max(days // 10, 1)
    return Chart(
        width=_WIDTH,
        height=_HEIGHT,
        days=day_list,
        x_ticks=[(x_of(i), d.strftime("%m-%d")) for i, d in enumerate(day_list) if i % label_every == 0],
        y_ticks=[(y_of(v / 100), f"{v}%") for v in (0, 25, 50, 75, 100)],
        series=[by_platform[p] for p in sorted(by_platform)],
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


def render_page(
    *,
    user: str,
    now: datetime,
    chart: Chart,
    failing: list[DealerHealth],
    overdue: list[DealerHealth],
    runs: list[RunSummaryRow],
    hold_after_failures: int,
    overdue_factor: int,
    max_rows: int,
) -> str:
    """The whole HTML document."""
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
        hold_after_failures=hold_after_failures,
        overdue_factor=overdue_factor,
        platforms=PLATFORMS,
        age=age,
    )
