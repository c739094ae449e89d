"""A seeded job history for the status API tests, and the expected answers computed in plain Python.

The history is deterministic (fixed random seed) and relative to ``now``: 30 days of runs of every
registry platform plus a retired one, about 4,500 executions across 40 dealers and every status, with
dealers set up to be held, overdue, never successful, stopped, or still running. The ``expected_*``
functions compute every statistic from the rows in memory, independently of the SQL under test
(percentiles with :func:`statistics.quantiles`, whose ``inclusive`` method is the linear interpolation
that ``percentile_cont`` defines).

The dealer directory (:func:`directory`) names every dealer but those in ``UNLISTED``, which PayloadCMS
never listed: the API must return their names as null.

Run times sit far from every threshold (hourly platforms ran 0.5 h + 3k h ago, daily ones 2 h + 24k h
ago, against overdue limits of 2 h and 48 h), so seconds between seeding and asserting cannot flip a result.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from od_scheduler.models.dealer import Dealer
from od_scheduler.platforms import PLATFORMS

RETIRED_PLATFORM = "legacy_feed"
HOLD_AFTER_FAILURES = 5  # the setting's default; the tests do not override it
OVERDUE_FACTOR = 2


@dataclass
class Row:
    """One seeded execution."""

    dealer_id: str
    platform: str
    status: str
    start_time: datetime
    end_time: datetime | None
    vehicles_found: int = 0
    vehicles_processed: int = 0
    vehicles_rejected: int = 0
    vehicles_delisted: int = 0
    errors: list[str] = field(default_factory=list)
    run_time: datetime | None = None
    #: insertion order, hence the order of the identity ``id`` (the API's tie-break)
    seq: int = 0

    @property
    def dag_id(self) -> str:
        spec = PLATFORMS.get(self.platform)
        return spec.dag_id if spec else f"inventory_{self.platform}"

    @property
    def run_id(self) -> str:
        assert self.run_time is not None
        return f"scheduled__{self.run_time.isoformat()}"

    @property
    def duration_ms(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds() * 1000


#: platform -> (dealers, hours between runs, first run's age in hours)
LAYOUT: dict[str, tuple[list[str], int, float]] = {
    "dealer.com": ([f"dealer-{i:02d}" for i in range(0, 12)], 3, 0.5),
    "homenet": ([f"dealer-{i:02d}" for i in range(5, 15)], 24, 2),
    "cobalt": ([f"dealer-{i:02d}" for i in range(15, 23)], 24, 2),
    "vinsolutions": ([f"dealer-{i:02d}" for i in range(25, 33)], 24, 2),
    "dealersocket": ([f"dealer-{i:02d}" for i in range(35, 43)], 24, 2),
    "web_scraping": ([f"dealer-{i:02d}" for i in range(44, 52)], 24, 2),
    RETIRED_PLATFORM: (["dealer-00", "dealer-01"], 24, 2),
}
DAYS = 30

#: (dealer, platform) -> k -> forced status, k = 0 the newest run. Named cases the tests look for.
FORCED: dict[tuple[str, str], dict[int, str]] = {
    ("dealer-03", "dealer.com"): {**dict.fromkeys(range(6), "failed"), 6: "success"},  # held, overdue
    ("dealer-12", "homenet"): {**dict.fromkeys(range(7), "failed"), 7: "success"},  # held, overdue
    ("dealer-20", "cobalt"): {0: "failed", 1: "failed", 2: "failed", 3: "success"},  # overdue, not held
    ("dealer-05", "dealer.com"): {0: "running", 1: "success"},  # running; last success 3.5 h ago: overdue
    ("dealer-06", "homenet"): {0: "running", 1: "success"},  # running; last success 26 h ago: fine
    ("dealer-08", "dealer.com"): {0: "success"},  # healthy
}
#: (dealer, platform) -> the runs (k) it took part in; every other pair ran in all of them.
ONLY_RUNS: dict[tuple[str, str], range] = {
    ("dealer-30", "vinsolutions"): range(5, DAYS),  # stopped 5 days ago: overdue, 0 failures
    ("dealer-40", "dealersocket"): range(0, 2),  # new, never succeeded, not yet overdue
    ("dealer-50", "web_scraping"): range(0, 6),  # never succeeded for 5 days: held, overdue
}
ALL_FAILED = {("dealer-40", "dealersocket"), ("dealer-50", "web_scraping")}
#: Dealers with executions that no ``list_dealers`` run recorded in the dealer directory.
UNLISTED = frozenset({"dealer-30", "dealer-50"})
_TOWNS = ("Summit", "Harbor", "Mesa", "Cedar Ridge", "Bayview", "Oakwood", "Granite", "Evergreen")
_TOWNS += ("Pinecrest", "Bluebonnet", "Old Mill", "Lakeside", "Riverbend")
_BRANDS = ("Ford", "Honda", "Kia", "Subaru")


def directory() -> list[Dealer]:
    """The CMS documents ``list_dealers`` recorded: every registry dealer of the layout but ``UNLISTED``,
    each with a unique name (``Harbor Honda``), its slug and the registry platforms it runs on."""
    platforms: dict[str, set[str]] = defaultdict(set)
    for platform, (dealers, _, _) in LAYOUT.items():
        if platform in PLATFORMS:
            for dealer in dealers:
                platforms[dealer].add(platform)
    out = []
    for dealer_id in sorted(platforms):
        if dealer_id in UNLISTED:
            continue
        n = int(dealer_id[-2:])
        name = f"{_TOWNS[n % len(_TOWNS)]} {_BRANDS[n // len(_TOWNS)]}"
        doc = {
            "id": dealer_id,
            "name": name,
            "slug": name.lower().replace(" ", "-"),
            "status": "active",
            "platforms": sorted(platforms[dealer_id]),
        }
        out.append(Dealer.model_validate(doc))
    return out


def names(dealers: Iterable[Dealer]) -> dict[str, tuple[str, str]]:
    """``{dealer_id: (name, slug)}``."""
    return {d.id: (d.name, d.slug) for d in dealers}


def search(dealers: Iterable[Dealer], *, q: str | None = None, platform: str | None = None) -> list[Dealer]:
    """``GET /api/dealers``: name, slug or id containing ``q`` (any case), on ``platform``; by name, id."""
    needle = (q or "").lower()
    found = [
        d
        for d in dealers
        if any(needle in text.lower() for text in (d.name, d.slug, d.id))
        and (platform is None or platform in d.platforms)
    ]
    return sorted(found, key=lambda d: (d.name.lower(), d.id))


def generate(now: datetime, *, seed: int = 7) -> list[Row]:
    """The whole history, oldest run first."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for platform, (dealers, every_h, first_h) in LAYOUT.items():
        runs = int(DAYS * 24 / every_h)
        for k in reversed(range(runs)):
            run_time = now - timedelta(hours=first_h + k * every_h)
            for i, dealer in enumerate(dealers):
                pair = (dealer, platform)
                if pair in ONLY_RUNS and k not in ONLY_RUNS[pair]:
                    continue
                status = FORCED.get(pair, {}).get(k)
                if status is None:
                    status = "failed" if pair in ALL_FAILED else _random_status(rng, dealer)
                start = run_time + timedelta(seconds=7 * i + rng.randint(0, 5))
                rows.append(_row(rng, dealer, platform, status, start, run_time))
    for seq, row in enumerate(rows):
        row.seq = seq
    return rows


def newest_first(rows: Iterable[Row]) -> list[Row]:
    """The API's order: start_time, then id, descending."""
    return sorted(rows, key=lambda r: (r.start_time, r.seq), reverse=True)


def _random_status(rng: random.Random, dealer: str) -> str:
    flaky = int(dealer[-2:]) % 4 == 1  # a quarter of the dealers fail more often
    r = rng.random()
    if r < (0.30 if flaky else 0.06):
        return "failed"
    if r < (0.34 if flaky else 0.10):
        return "skipped"
    return "success"


def _row(
    rng: random.Random, dealer: str, platform: str, status: str, start: datetime, run_time: datetime
) -> Row:
    row = Row(dealer_id=dealer, platform=platform, status=status, start_time=start, end_time=None)
    row.run_time = run_time
    if status == "success":
        row.end_time = start + timedelta(milliseconds=rng.randint(2_000, 900_000))
        row.vehicles_found = rng.randint(0, 250)
        row.vehicles_rejected = rng.randint(0, min(5, row.vehicles_found))
        row.vehicles_processed = row.vehicles_found - row.vehicles_rejected
        row.vehicles_delisted = rng.randint(0, 8)
    elif status == "failed":
        row.end_time = start + timedelta(milliseconds=rng.randint(1_000, 300_000))
        row.vehicles_found = rng.randint(0, 100)
        row.errors = [f"TransientUpstreamError: HTTP 503 from {platform} for {dealer} (attempt 1/5)"]
        if rng.random() < 0.5:
            row.errors.append(
                f"PermanentUpstreamError: HTTP 401 from {platform} for {dealer} at {start:%H:%M:%S}"
            )
    elif status == "skipped":
        row.end_time = start
        row.errors = [f"skipped: inventory_{platform} run holds the dealer's lease"]
    else:  # running
        row.vehicles_found = rng.randint(0, 50)
    return row


def insert(db: psycopg.Connection, rows: Iterable[Row]) -> int:
    """Replace the job history with ``rows`` (COPY) and empty the dealer directory; returns the row count."""
    db.execute("TRUNCATE job_executions, dealer_leases, source_state, dealer_directory")
    count = 0
    with (
        db.cursor() as cur,
        cur.copy(
            "COPY job_executions (job_id, dag_id, run_id, dealer_id, platform, status, start_time, end_time, "
            "vehicles_found, vehicles_processed, vehicles_rejected, vehicles_delisted, errors, "
            "performance_metrics, created_at) FROM STDIN"
        ) as copy,
    ):
        for r in rows:
            metrics = {"duration_ms": round(r.duration_ms)} if r.duration_ms is not None else {}
            copy.write_row(
                (
                    f"{r.dealer_id}_{r.platform}",
                    r.dag_id,
                    r.run_id,
                    r.dealer_id,
                    r.platform,
                    r.status,
                    r.start_time,
                    r.end_time,
                    r.vehicles_found,
                    r.vehicles_processed,
                    r.vehicles_rejected,
                    r.vehicles_delisted,
                    r.errors,
                    Jsonb(metrics),
                    r.start_time,
                )
            )
            count += 1
    return count


# -- the expected answers ---------------------------------------------------------------------------
def p95(values: list[float]) -> float | None:
    """percentile_cont(0.95): linear interpolation between closest ranks."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def aggregate(rows: list[Row]) -> dict[str, Any]:
    """Every statistic of the status endpoint for ``rows``."""
    by_status = {
        s: sum(1 for r in rows if r.status == s) for s in ("running", "success", "failed", "skipped")
    }
    finished = len(rows) - by_status["running"]
    durations = [d for r in rows if r.status in ("success", "failed") and (d := r.duration_ms) is not None]
    return {
        "total": len(rows),
        "by_status": by_status,
        "finished": finished,
        "success_rate": by_status["success"] / finished if finished else None,
        "failure_rate": by_status["failed"] / finished if finished else None,
        "avg_duration_ms": sum(durations) / len(durations) if durations else None,
        "p95_duration_ms": p95(durations),
        "vehicles": {
            "found": sum(r.vehicles_found for r in rows),
            "processed": sum(r.vehicles_processed for r in rows),
            "rejected": sum(r.vehicles_rejected for r in rows),
            "delisted": sum(r.vehicles_delisted for r in rows),
        },
    }


def last_successes(rows: list[Row]) -> list[dict[str, Any]]:
    pairs: dict[tuple[str, str], datetime | None] = {}
    for r in rows:
        key = (r.platform, r.dealer_id)
        best = pairs.get(key)
        if r.status == "success" and (best is None or r.start_time > best):
            pairs[key] = r.start_time
        else:
            pairs.setdefault(key, None)
    return [{"dealer_id": d, "platform": p, "last_success": t} for (p, d), t in sorted(pairs.items())]


def daily(rows: list[Row], *, first_day: date) -> dict[tuple[date, str], dict[str, Any]]:
    groups: dict[tuple[date, str], list[Row]] = defaultdict(list)
    for r in rows:
        day = r.start_time.astimezone(UTC).date()
        if day >= first_day:
            groups[(day, r.platform)].append(r)
    out = {}
    for key, group in groups.items():
        agg = aggregate(group)
        agg["runs"] = len({(r.dag_id, r.run_id) for r in group})
        out[key] = agg
    return out


def health(rows: list[Row], *, now: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """Per registry (platform, dealer): the scheduler's rules, written out again by hand."""
    pairs: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.platform in PLATFORMS:
            pairs[(r.platform, r.dealer_id)].append(r)
    out = {}
    for (platform, dealer), group in sorted(pairs.items()):
        group.sort(key=lambda r: r.start_time, reverse=True)
        finished = [r for r in group if r.status in ("success", "failed")]
        failures = 0
        for r in finished:
            if r.status == "success":
                break
            failures += 1
        successes = [r.start_time for r in group if r.status == "success"]
        last_success = max(successes) if successes else None
        interval = timedelta(minutes=PLATFORMS[platform].default_interval_minutes)
        # Never succeeded: overdue from the first finished execution (skipped and running rows prove nothing).
        reference = last_success or min((r.start_time for r in finished), default=None)
        held = failures >= HOLD_AFTER_FAILURES
        failed = [r for r in group if r.status == "failed"]
        out[(platform, dealer)] = {
            "last_success": last_success,
            "consecutive_failures": failures,
            "held": held,
            "overdue": reference is not None and now - reference > OVERDUE_FACTOR * interval,
            "due": not held
            and (last_success is None or now - last_success >= interval - timedelta(minutes=5)),
            "executions": len(group),
            "last_run": group[0].start_time,
            "last_status": group[0].status,
            "last_error": failed[0].errors[-1] if failed else None,
            "interval_minutes": PLATFORMS[platform].default_interval_minutes,
        }
    return out


def latest_runs(rows: list[Row], *, since: datetime, limit: int) -> list[tuple[str, str]]:
    """(dag_id, run_id) of the newest runs that started since ``since``: the page's "latest runs"."""
    started: dict[tuple[str, str], datetime] = {}
    for r in rows:
        if r.start_time >= since:
            key = (r.dag_id, r.run_id)
            started[key] = min(started.get(key, r.start_time), r.start_time)
    by_id = sorted(started)
    return sorted(by_id, key=lambda k: started[k], reverse=True)[:limit]


def select(rows: list[Row], **filters: Any) -> list[Row]:
    """The rows a status query with these filters covers (dealer_id, platform, status, since)."""
    tests: list[Callable[[Row], bool]] = []
    if filters.get("dealer_id") is not None:
        tests.append(lambda r: r.dealer_id == filters["dealer_id"])
    if filters.get("platform") is not None:
        tests.append(lambda r: r.platform == filters["platform"])
    if filters.get("status") is not None:
        tests.append(lambda r: r.status == filters["status"])
    if filters.get("since") is not None:
        tests.append(lambda r: r.start_time >= filters["since"])
    return [r for r in rows if all(t(r) for t in tests)]
