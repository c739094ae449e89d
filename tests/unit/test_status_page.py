"""The status page's dealer cells, rendered without a database: each dealer as its ``DealerRef`` says."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from od_scheduler.status.page import build_chart, directory_page, render_page
from od_scheduler.status.schemas import DealerHealth, UiQuery

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def health(dealer_id: str, name: str | None, slug: str | None) -> DealerHealth:
    return DealerHealth(
        dealer_id=dealer_id, dealer_name=name, dealer_slug=slug, platform="cobalt", interval_minutes=1440,
        last_success=None, consecutive_failures=6, held=True, held_reason="held: last 6 executions failed",
        overdue=True, due=False, executions=6, last_run=NOW - timedelta(days=3), last_status="failed",
        last_failure=NOW - timedelta(days=3), last_error="HTTP 500",
    )  # fmt: skip


def cells(rows: list[DealerHealth]) -> dict[str, str]:
    """``{dealer_id: its dealer cell}`` of the failing-dealers table."""
    html = render_page(
        user="tester",
        now=NOW,
        chart=build_chart([], first_day=date(2026, 11, 24), days=14),
        failing=rows,
        overdue=[],
        runs=[],
        directory=directory_page([], 0, query=UiQuery(), size=25),
        hold_after_failures=5,
        overdue_factor=2,
        max_rows=50,
    )
    table = html.split('id="failing-dealers"', 1)[1].split("</table>", 1)[0]
    found = re.findall(
        r'<tr data-dealer="([^"]+)" data-platform="cobalt">\s*<td class="dealer">(.*?)</td>', table
    )
    return dict(found)


def test_a_dealer_cell_shows_the_name_the_slug_and_the_id_a_run_takes() -> None:
    named = health("d-1", "Acme Ford", "acme-ford")
    assert named.dealer.full_label == "Acme Ford (acme-ford, id d-1)"
    got = cells([named, health("d-2", None, None), health("d-3", None, "only-slug")])
    assert (
        got["d-1"]
        == '<span class="name">Acme Ford</span> <span class="muted">acme-ford</span><br><code>d-1</code>'
    )
    assert "no name known" in got["d-2"]
    assert got["d-2"].endswith("<br><code>d-2</code>")
    assert got["d-3"] == '<span class="name"></span> <span class="muted">only-slug</span><br><code>d-3</code>'


def test_the_health_json_keeps_its_fields_the_dealer_is_only_read_by_the_page() -> None:
    dumped = health("d-1", "Acme Ford", "acme-ford").model_dump(mode="json")
    assert "dealer" not in dumped
    assert (dumped["dealer_id"], dumped["dealer_name"], dumped["dealer_slug"]) == (
        "d-1",
        "Acme Ford",
        "acme-ford",
    )
