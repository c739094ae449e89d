"""The status page in headless Chromium, loaded from a real api-server and authenticated by Airflow.

The browser gets the same ``_token`` session cookie the Airflow UI sets at login (a JWT from the
api-server's ``POST /auth/token``), loads ``/od-scheduler/ui`` directly and through the Airflow UI's
"Inventory status" view (an iframe), and the rendered chart and tables are compared with the seeded
history, dealer names from the dealer directory included. Screenshots: ``test-output/e2e/status-page.png``
and ``status-page-in-airflow.png``. If Chromium is missing the test fails and says how to install it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import status_history as sh
from tests.e2e.browser import chromium, chromium_path
from tests.e2e.conftest import LOGS
from tests.fixtures import job_history_conn

pytestmark = pytest.mark.e2e

SCREENSHOT = LOGS / "status-page.png"
SCREENSHOT_IN_AIRFLOW = LOGS / "status-page-in-airflow.png"

READ_PAGE = r"""(() => {
  const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)];
  const text = (sel) => document.querySelector(sel) ? document.querySelector(sel).innerText : '';
  const svg = document.querySelector('#success-chart');
  return {
    title: document.title,
    header: text('header'),
    chartWidth: svg ? svg.getBoundingClientRect().width : 0,
    series: [...document.querySelectorAll('#success-chart g.series')].map(g => ({
      platform: g.dataset.platform,
      title: g.querySelector('text.title').textContent.replace(/\s+/g, ' ').trim(),
      lines: g.querySelectorAll('polyline').length,
      drawn: [...g.querySelectorAll('circle')].every(c => c.getBoundingClientRect().width > 0),
      points: Object.fromEntries([...g.querySelectorAll('circle')].map(c => [c.dataset.day, c.dataset.rate])),
    })),
    runs: rows('latest-runs').map(tr => [tr.dataset.dagId, tr.dataset.runId]),
    runCells: rows('latest-runs').length ? rows('latest-runs')[0].cells.length : 0,
    failing: rows('failing-dealers').map(tr => [tr.dataset.platform, tr.dataset.dealer]),
    failingText: text('#failing-dealers'),
    failingDealers: rows('failing-dealers').map(tr => [tr.dataset.dealer, tr.cells[0].innerText]),
    overdue: rows('overdue-dealers').map(tr => [tr.dataset.platform, tr.dataset.dealer]),
    directory: rows('dealer-directory').map(tr => [tr.dataset.directoryDealer, tr.cells[0].innerText,
                                                   tr.cells[1].innerText, tr.cells[2].innerText]),
    searchBox: !!document.querySelector('#dealers form input[name=q]'),
  };
})()"""


def test_the_status_page_renders_the_seeded_history_in_chromium(airflow, tmp_path: Path) -> None:
    chromium_path()  # fails with the install command when Chromium is missing
    now = datetime.now(UTC)
    rows = sh.generate(now)
    with job_history_conn() as db:
        sh.insert(db, rows)
    from od_scheduler.hooks.job_history import JobHistoryHook

    directory = sh.directory()
    JobHistoryHook().directory.remember_dealers(directory)
    names = sh.names(directory)
    first_day = now.date() - timedelta(days=13)
    expected_chart: dict[str, dict[str, str]] = {}
    window: dict[str, list[int]] = {}  # platform -> [success, finished] over the 14 days
    for (day, platform), agg in sh.daily(rows, first_day=first_day).items():
        if agg["success_rate"] is not None:
            expected_chart.setdefault(platform, {})[day.isoformat()] = f"{agg['success_rate']:.4f}"
            totals = window.setdefault(platform, [0, 0])
            totals[0] += agg["by_status"]["success"]
            totals[1] += agg["finished"]
    health = sh.health(rows, now=now)
    since = datetime.combine(first_day, datetime.min.time(), UTC)

    with chromium(tmp_path / "profile", LOGS / "chromium.log") as browser:
        browser.set_cookie("_token", airflow.token("admin"), airflow.base_url)
        page = browser.new_page()

        # 1. the page itself
        assert page.navigate(f"{airflow.base_url}/od-scheduler/ui") == 200
        seen = page.evaluate(READ_PAGE)
        assert seen["title"] == "Inventory status"
        assert "for admin" in seen["header"]
        assert seen["chartWidth"] > 300
        assert {s["platform"]: s["points"] for s in seen["series"]} == expected_chart
        assert all(s["drawn"] and s["lines"] >= 1 for s in seen["series"])
        assert len(seen["series"]) == 7  # six registry platforms and the retired one still in the history
        titles = {s["platform"]: s["title"] for s in seen["series"]}
        for platform, (success, finished) in window.items():
            assert titles[platform].endswith(f" {100 * success / finished:.1f}% of {finished}"), titles[
                platform
            ]
        assert titles["dealer.com"].startswith("Dealer.com ")
        assert seen["runs"] == [list(r) for r in sh.latest_runs(rows, since=since, limit=25)]
        assert seen["runCells"] == 12
        assert sorted(map(tuple, seen["failing"])) == sorted(
            k for k, h in health.items() if h["consecutive_failures"]
        )
        assert sorted(map(tuple, seen["overdue"])) == sorted(k for k, h in health.items() if h["overdue"])
        assert (
            "PermanentUpstreamError" in seen["failingText"] or "TransientUpstreamError" in seen["failingText"]
        )
        # Every failing dealer by name and slug beside its id; one the CMS never listed by its id alone.
        for dealer_id, cell in seen["failingDealers"]:
            name, slug = names.get(dealer_id, ("no name known", ""))
            assert name in cell, (dealer_id, cell)
            assert slug in cell, (dealer_id, cell)
            assert dealer_id in cell, (dealer_id, cell)
        assert any(d in sh.UNLISTED for d, _ in seen["failingDealers"])
        assert seen["searchBox"]
        assert [tuple(r) for r in seen["directory"]] == [
            (d.id, d.name, d.slug, d.id) for d in sh.search(directory)[:25]
        ]
        png = page.screenshot(SCREENSHOT)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) > 30_000

        # 2. the same page inside the Airflow UI, through the plugin's external view
        assert page.navigate(f"{airflow.base_url}/plugin/inventory-status") == 200
        src = page.wait_for(
            "(() => { const f = document.querySelector('iframe');"
            " return f && f.contentDocument && f.contentDocument.querySelector('#success-chart circle')"
            " ? f.getAttribute('src') : null; })()",
            timeout=90,
        )
        assert src.endswith("/od-scheduler/ui")
        inner = page.evaluate(
            "(() => { const d = document.querySelector('iframe').contentDocument;"
            " return { series: d.querySelectorAll('#success-chart g.series').length,"
            " runs: d.querySelectorAll('#latest-runs tbody tr').length }; })()"
        )
        assert inner == {"series": 7, "runs": 25}
        page.screenshot(SCREENSHOT_IN_AIRFLOW, height=1000)
