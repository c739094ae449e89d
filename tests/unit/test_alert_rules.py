"""Alert rules: which dealers are missing executions, held or anomalous, and which run conditions alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from od_scheduler.alert_rules import (
    MAX_STUCK_RUNS_IN_TEXT,
    FreshnessReport,
    anomaly_conditions,
    check_freshness,
    database_down_alert,
    dealer_deadline_s,
    failure_rate_alert,
    failure_rate_condition,
    freshness_alert,
    stuck_runs,
)
from od_scheduler.hooks.stores.executions import AbandonedJob
from od_scheduler.models.alert import (
    AlertDealer,
    AlertKind,
    Condition,
    ConditionKind,
    Severity,
    clean_db_error,
    clean_error,
    error_group,
)
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerHistory, DealerRef, JobExecution, RunSummary, dealer_label

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 29, 11, 30, tzinfo=UTC)


def dealer(dealer_id: str, platforms: tuple[str, ...] = ("dealer.com",), **schedule: object) -> Dealer:
    return Dealer.model_validate(
        {
            "id": dealer_id,
            "name": dealer_id.title(),
            "slug": dealer_id,
            "status": "active",
            "platforms": list(platforms),
            "schedule": schedule or None,
        }
    )


def history(
    *,
    last_success: timedelta | None = None,
    failures: int = 0,
    first: timedelta = timedelta(days=30),
    status: str = "success",
    error: str | None = None,
    anomaly: str | None = None,
) -> DealerHistory:
    return DealerHistory(
        last_success=NOW - last_success if last_success is not None else None,
        consecutive_failures=failures,
        first_execution=NOW - first,
        last_status=status,
        last_error=error,
        last_anomaly=anomaly,
    )


def check(dealers, histories, hold: int = 5):
    return check_freshness(dealers, histories, now=NOW, hold_after_failures=hold, missing_after_intervals=2)


def keys(report) -> dict[str, str]:
    return {c.key: c.detail for c in report.conditions}


def test_a_dealer_is_missing_after_twice_its_interval() -> None:
    report = check(
        [dealer("fresh"), dealer("edge"), dealer("stale")],
        {
            ("dealer.com", "fresh"): history(last_success=timedelta(minutes=50)),
            ("dealer.com", "edge"): history(last_success=timedelta(minutes=120)),
            ("dealer.com", "stale"): history(last_success=timedelta(minutes=185)),
        },
    )
    assert keys(report) == {
        "missing:dealer.com:stale": "last success 3 h 05 min ago; interval 60 min, alert after 120 min"
    }


def test_the_cms_interval_and_the_platform_default_set_the_limit() -> None:
    report = check(
        [dealer("daily", interval_minutes=1440), dealer("homenet-one", ("homenet",))],
        {
            ("dealer.com", "daily"): history(last_success=timedelta(hours=40)),
            ("homenet", "homenet-one"): history(last_success=timedelta(hours=49)),
        },
    )
    assert list(keys(report)) == ["missing:homenet:homenet-one"]


def test_a_dealer_that_never_succeeded_is_missing_once_its_first_execution_is_old() -> None:
    report = check(
        [dealer("new"), dealer("old")],
        {
            ("dealer.com", "new"): history(failures=1, first=timedelta(minutes=30), status="failed"),
            ("dealer.com", "old"): history(failures=2, first=timedelta(hours=3), status="failed"),
        },
    )
    assert keys(report) == {
        "missing:dealer.com:old": (
            "no success since its first execution 3 h 00 min ago; interval 60 min, alert after 120 min"
        )
    }


def test_held_dealers_are_reported_as_held_not_missing() -> None:
    report = check(
        [dealer("failing"), dealer("wobbly")],
        {
            ("dealer.com", "failing"): history(
                last_success=timedelta(hours=9), failures=5, status="failed", error="try 1: HTTP 500"
            ),
            ("dealer.com", "wobbly"): history(
                last_success=timedelta(minutes=40), failures=4, status="failed", error="HTTP 500"
            ),
        },
    )
    assert keys(report) == {
        "held:dealer.com:failing": (
            "held back from scheduled runs: the last 5 executions failed (hold_after_failures 5); "
            "last error: HTTP 500"
        )
    }
    assert check(
        [dealer("failing")], {("dealer.com", "failing"): history(failures=5, status="failed")}, hold=0
    )


def test_paused_and_never_run_dealers_are_not_judged() -> None:
    report = check(
        [dealer("paused", paused=True, interval_minutes=60), dealer("brand-new")],
        {("dealer.com", "paused"): history(last_success=timedelta(hours=30), failures=6, status="failed")},
    )
    assert report.conditions == []
    assert (report.checked, report.paused, report.never_run) == (2, 1, 1)


def test_an_anomaly_in_the_latest_execution_is_reported_and_a_success_ends_it() -> None:
    why = "inventory anomaly: the pull returned 3 vehicles but 80 are live at the Data API"
    error = f"try 1: {why}; nothing was delisted (re-run with force_delist=true if real)"
    report = check(
        [dealer("shrunk"), dealer("recovered")],
        {
            ("dealer.com", "shrunk"): history(
                last_success=timedelta(minutes=70), failures=1, status="failed", error=error, anomaly=why
            ),
            ("dealer.com", "recovered"): history(last_success=timedelta(minutes=10)),
        },
    )
    assert keys(report) == {"anomaly:dealer.com:shrunk": clean_error(error)}
    assert report.cleared_anomalies == ["anomaly:dealer.com:recovered"]


def test_the_digest_counts_each_kind() -> None:
    report = check(
        [dealer("a"), dealer("b"), dealer("c")],
        {
            ("dealer.com", "a"): history(last_success=timedelta(hours=5)),
            ("dealer.com", "b"): history(failures=7, status="failed"),
            ("dealer.com", "c"): history(
                last_success=timedelta(minutes=65),
                status="failed",
                failures=1,
                error="inventory anomaly: 0",
                anomaly="inventory anomaly: 0",
            ),
        },
    )
    alert = freshness_alert(report.conditions, report, dag_id="inventory_freshness", run_id="r")
    assert alert.title == (
        "Inventory freshness: 1 dealer(s) missing executions, 1 held back after repeated failures, "
        "1 inventory anomaly(ies)"
    )
    assert alert.counts == {"missing": 1, "held": 1, "anomaly": 1, "checked": 3, "open": 3, "stuck_closed": 0}
    assert sorted(d.condition or "" for d in alert.dealers) == ["anomaly", "held", "missing"]
    # Each dealer by the name and slug the CMS gave it, with the id a re-run's dealer_id takes.
    assert {(d.dealer_id, d.name, d.slug) for d in alert.dealers} == {
        ("a", "A", "a"),
        ("b", "B", "b"),
        ("c", "C", "c"),
    }
    text = alert.text()
    for line in ("A (a, id a)", "B (b, id b)", "C (c, id c)"):
        assert f"    {line}" in text, text


@pytest.mark.parametrize(
    ("name", "slug", "label"),
    [
        ("Harbor Volkswagen", "harbor-volkswagen", "Harbor Volkswagen (harbor-volkswagen, id 7f3c)"),
        ("Harbor Volkswagen", None, "Harbor Volkswagen (id 7f3c)"),
        (None, "harbor-volkswagen", "harbor-volkswagen (id 7f3c)"),
        (None, None, "7f3c"),  # nothing known: the id alone, never a made-up name
    ],
)
def test_an_alert_names_a_dealer_beside_its_id(name: str | None, slug: str | None, label: str) -> None:
    assert AlertDealer(dealer_id="7f3c", name=name, slug=slug).label == label
    assert dealer_label("7f3c", name, slug) == label


def test_an_anomaly_is_the_rows_anomaly_field_not_words_in_its_error() -> None:
    report = check(
        [dealer("suspect")],
        {
            ("dealer.com", "suspect"): history(
                last_success=timedelta(minutes=70),
                failures=1,
                status="failed",
                error="try 1: inventory anomaly",
            )
        },
    )
    assert report.of_kind(ConditionKind.ANOMALY) == []


def test_the_failure_rate_condition_needs_dealers_and_a_rate_above_the_threshold() -> None:
    def run(dealers: int, failed: int) -> RunSummary:
        return RunSummary(
            dag_id="d", run_id="r", platform="dealer.com", dealers=dealers, succeeded=dealers - failed,
            failed=failed, running=0, skipped=0, failure_rate=failed / dealers if dealers else 0.0,
            max_failure_rate=0, vehicles_found=0, vehicles_processed=0, vehicles_rejected=0,
        )  # fmt: skip

    assert failure_rate_condition(run(10, 3), 0.2)[0] is not None
    assert failure_rate_condition(run(10, 2), 0.2) == (None, "failure_rate:d")  # at the threshold: fine
    assert failure_rate_condition(run(0, 0), 0.2) == (None, "failure_rate:d")


def test_a_failure_rate_alert_names_each_dealer_as_the_run_listed_it() -> None:
    run = RunSummary(
        dag_id="d", run_id="r", platform="homenet", dealers=2, succeeded=0, failed=2, running=0, skipped=0,
        failure_rate=1.0, max_failure_rate=0, vehicles_found=0, vehicles_processed=0, vehicles_rejected=0,
        failed_dealers={"listed": "try 1: HTTP 500", "gone": "try 2: HTTP 404"},
    )  # fmt: skip
    refs = {"listed": DealerRef(dealer_id="listed", platform="homenet", name="Listed Kia", slug="listed-kia")}
    alert = failure_rate_alert(run, refs, 0.2)
    assert [(d.dealer_id, d.platform, d.label, d.condition, d.detail) for d in alert.dealers] == [
        ("gone", "homenet", "gone", "failed", "HTTP 404"),  # not in the run's list: its id, no made-up name
        ("listed", "homenet", "Listed Kia (listed-kia, id listed)", "failed", "HTTP 500"),
    ]


def test_anomaly_conditions_of_a_run() -> None:
    def row(dealer_id: str, status: str, error: str | None, anomaly: str | None = None) -> JobExecution:
        return JobExecution.model_validate(
            {
                "id": 1, "job_id": f"{dealer_id}_dealer.com", "dag_id": "d", "run_id": "r", "try_number": 1,
                "dealer_id": dealer_id, "platform": "dealer.com", "status": status, "start_time": NOW,
                "end_time": NOW, "vehicles_found": 0, "vehicles_processed": 0, "vehicles_rejected": 0,
                "vehicles_delisted": 0, "errors": [error] if error else [], "created_at": NOW,
                "anomaly": anomaly,
            }
        )  # fmt: skip

    shrunk = "inventory anomaly: the pull returned 0 vehicles but 8 are live"
    present, over = anomaly_conditions(
        [
            row("shrunk", "failed", f"try 1: {shrunk}", shrunk),
            row("broken", "failed", "try 1: HTTP 500"),
            row("worded", "failed", "try 1: inventory anomaly suspected"),
            row("fine", "success", None),
        ],
        {
            "shrunk": DealerRef(
                dealer_id="shrunk", platform="dealer.com", name="Shrunk Motors", slug="shrunk-motors"
            )
        },
    )
    assert [(c.key, c.kind, c.dealer and c.dealer.label) for c in present] == [
        ("anomaly:dealer.com:shrunk", ConditionKind.ANOMALY, "Shrunk Motors (shrunk-motors, id shrunk)")
    ]
    assert over == ["anomaly:dealer.com:fine"]


def test_error_groups_ignore_urls_and_ids_and_the_try_prefix() -> None:
    a = "try 1: GET https://a.test/x/1b4e28ba-2fa1-11d2-883f-0016d3cca427 returned HTTP 404"
    b = "try 2: GET https://b.test/y/9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d returned HTTP 404"
    assert error_group(a) == error_group(b) == "GET <url> returned HTTP 404"
    assert len(clean_error("x" * 1000)) == 500


def test_a_dealers_deadline_is_the_setting_never_longer_than_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from od_scheduler.settings import get_settings

    assert dealer_deadline_s("homenet") == 20 * 60, "the default: 20 minutes"
    monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__DEALER_DEADLINE_MINUTES", "90")
    get_settings.cache_clear()
    try:
        assert dealer_deadline_s("homenet") == 90 * 60
        monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__DEALER_DEADLINE_MINUTES", "120")
        get_settings.cache_clear()
        assert dealer_deadline_s("dealer.com") == 90 * 60, "capped by its task's timeout: 2 x 45 minutes"
        monkeypatch.setenv("AIRFLOW__OD_SCHEDULER__DEFAULT_EXPECTED_RUN_MINUTES", "0.1")
        get_settings.cache_clear()
        assert dealer_deadline_s("homenet") == 10 * 60, "a task has at least 10 minutes, so has its dealer"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


# -- jobs left running, closed by the freshness check -----------------------------------------------------
def abandoned(dag_id: str, run_id: str, dealer_id: str, idle: int, *, released: bool = False) -> AbandonedJob:
    return AbandonedJob(
        dag_id=dag_id,
        run_id=run_id,
        dealer_id=dealer_id,
        platform="homenet" if "homenet" in dag_id else "dealer.com",
        last_update=NOW - timedelta(minutes=idle),
        idle_minutes=idle,
        error=f"left running by run {run_id}: no update for {idle} minutes; closed by inventory_freshness",
        lease_released=released,
    )


def test_closed_jobs_are_grouped_by_run_the_largest_first() -> None:
    runs = stuck_runs(
        [
            abandoned("inventory_homenet", "scheduled__a", "d1", 200, released=True),
            abandoned("inventory_dealer_com", "scheduled__b", "d2", 190),
            abandoned("inventory_dealer_com", "scheduled__b", "d3", 250, released=True),
        ]
    )
    assert [(r.dag_id, r.run_id, r.jobs, r.max_idle_minutes, r.leases_released) for r in runs] == [
        ("inventory_dealer_com", "scheduled__b", 2, 250, 1),
        ("inventory_homenet", "scheduled__a", 1, 200, 1),
    ]
    assert runs[0].note == (
        "2 job(s) of inventory_dealer_com run scheduled__b (dealer.com) left running, no update for up to "
        "250 min: closed as failed, 1 expired lease(s) released"
    )
    assert stuck_runs([]) == []


def test_the_digest_reports_closed_jobs_alone_or_beside_new_conditions() -> None:
    report = FreshnessReport(checked=12)
    stuck = stuck_runs([abandoned("inventory_dealer_com", "scheduled__b", f"d{i}", 190) for i in range(3)])

    alone = freshness_alert(
        [], report, dag_id="inventory_freshness", run_id="r", stuck=stuck, lease_minutes=180
    )
    assert alone.kind == AlertKind.FRESHNESS
    assert alone.title == (
        "Inventory freshness: 3 job(s) left running by 1 run(s) closed as failed "
        "(no update for more than 180 min, the lease)"
    )
    assert alone.counts["stuck_closed"] == 3
    assert alone.conditions == []
    assert alone.details["stuck_runs"][0]["jobs"] == 3
    assert "• 3 job(s) of inventory_dealer_com run scheduled__b (dealer.com) left running" in alone.text()
    assert alone.payload()["notes"] == [stuck[0].note]

    missing = Condition(
        key="missing:dealer.com:x",
        kind=ConditionKind.MISSING,
        dealer=AlertDealer(
            dealer_id="x", platform="dealer.com", condition="missing", detail="last success 5 h"
        ),
    )
    both = freshness_alert([missing], report, dag_id="inventory_freshness", run_id="r", stuck=stuck)
    assert both.title == (
        "Inventory freshness: 1 dealer(s) missing executions, "
        "3 job(s) left running by 1 run(s) closed as failed"
    )
    assert both.conditions == ["missing:dealer.com:x"]
    nothing_closed = freshness_alert([missing], report, dag_id="inventory_freshness", run_id="r")
    assert nothing_closed.counts["stuck_closed"] == 0
    assert (nothing_closed.notes, nothing_closed.details) == ([], {})


def test_a_digest_of_many_runs_names_the_first_ones_and_counts_the_rest() -> None:
    stuck = stuck_runs([abandoned("inventory_dealer_com", f"run-{i:02d}", "d", 190) for i in range(14)])
    alert = freshness_alert([], FreshnessReport(), dag_id="f", run_id="r", stuck=stuck)
    assert len(alert.notes) == MAX_STUCK_RUNS_IN_TEXT + 1
    assert alert.notes[-1] == "and 4 more run(s) (see details.stuck_runs)"
    assert len(alert.details["stuck_runs"]) == 14


# -- the job-history database is unreachable --------------------------------------------------------------
def test_a_database_down_alert_names_the_platform_the_run_and_the_error() -> None:
    alert = database_down_alert(
        dag_id="inventory_cobalt",
        run_id="scheduled__2026-11-29T09:00:00+00:00",
        platform="cobalt",
        task_id="summarize_run",
        error="OperationalError: connection failed: Connection refused",
        dealers=7,
    )
    assert (alert.kind, alert.severity) == (AlertKind.SYSTEM, Severity.CRITICAL)
    assert alert.conditions == ["system:inventory_cobalt"]
    assert alert.details == {
        "error": "OperationalError: connection failed: Connection refused",
        "deduplicated": False,
    }
    text = alert.text()
    assert text.splitlines()[0] == (
        "[CRITICAL] inventory_cobalt: the job-history database is unreachable, so this run of cobalt "
        "cannot be summarized: its 7 listed dealer(s) are not judged and their history may be missing"
    )
    assert "run scheduled__2026-11-29T09:00:00+00:00, task summarize_run" in text
    assert text.endswith("Error: OperationalError: connection failed: Connection refused")


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        (
            'connection failed: connection to server at "127.0.0.1", port 5999 failed: Connection refused\n'
            "\tIs the server running on that host and accepting TCP/IP connections?",
            "connection failed: Connection refused",
        ),
        (
            'connection failed: connection to server at "db.internal" (10.0.0.5), port 5432 failed: FATAL:  '
            'password authentication failed for user "od_app"',
            'connection failed: FATAL: password authentication failed for user "***"',
        ),
        (
            'connection is bad: connection to server on socket "/run/pg/.s.PGSQL.5432" failed: No such file',
            "connection is bad: No such file",
        ),
        (
            "failed to resolve host 'db.internal': [Errno -2] Name or service not known",
            'failed to resolve host "***": [Errno -2] Name or service not known',
        ),
        ("could not connect to 10.1.2.3 on port 6432", "could not connect to *** on port ***"),
        ("server closed the connection unexpectedly", "server closed the connection unexpectedly"),
    ],
)
def test_a_database_error_says_what_failed_not_where_the_database_is(raw: str, cleaned: str) -> None:
    assert clean_db_error(raw) == cleaned


def test_the_connection_s_own_values_are_masked_too() -> None:
    raw = "timeout expired talking to pg-primary.example.internal as od_app"
    assert (
        clean_db_error(raw, ["pg-primary.example.internal", "od_app", ""])
        == "timeout expired talking to *** as ***"
    )


# -- resolved ----------------------------------------------------------------------------------------------
def test_a_resolved_message_names_each_condition_its_dealer_and_since_when() -> None:
    from od_scheduler.alert_rules import resolved_alert
    from od_scheduler.models.alert import MAX_DEALERS_IN_TEXT, ClearedCondition

    def gone(
        kind: ConditionKind, platform: str, dealer_id: str, name: str | None, hours: int
    ) -> ClearedCondition:
        dealer = AlertDealer(dealer_id=dealer_id, platform=platform, name=name, slug=name and name.lower())
        return ClearedCondition(
            key=f"{kind.value}:{platform}:{dealer_id}",
            kind=kind,
            since=NOW - timedelta(hours=hours),
            alerted=True,
            dealer=dealer if name else None,
        )

    stale = [gone(ConditionKind.MISSING, "dealer.com", f"d{i:02d}", f"Dealer{i:02d}", 3) for i in range(17)]
    cleared = [
        *stale,
        gone(ConditionKind.ANOMALY, "homenet", "d-unnamed", None, 26),
        ClearedCondition(
            key="failure_rate:inventory_homenet",
            kind=ConditionKind.FAILURE_RATE,
            since=NOW - timedelta(minutes=75),
            alerted=True,
            detail="3 of 4 dealer(s) failed",
        ),
        ClearedCondition(key="long_run:inventory_cobalt", kind=ConditionKind.LONG_RUN, alerted=True),
    ]

    alert = resolved_alert(cleared, dag_id="inventory_freshness", run_id="r1", now=NOW)

    assert (alert.kind, alert.severity) == (AlertKind.RESOLVED, Severity.INFO)
    assert alert.title == (
        "Resolved: failure rate of inventory_homenet, long run of inventory_cobalt, "
        "1 inventory anomaly(ies), 17 dealer(s) no longer missing executions"
    )
    assert alert.conditions[0] == "failure_rate:inventory_homenet"
    assert len(alert.conditions) == 20
    assert alert.counts == {"resolved": 20}
    text = alert.text()
    assert text.splitlines()[0] == f"[RESOLVED] {alert.title}"
    assert (
        "• failure rate of inventory_homenet: open since 2026-11-29 10:15 UTC (1 h 15 min); "
        "was: 3 of 4 dealer(s) failed"
    ) in text
    assert "• long run of inventory_cobalt: over" in text, "since when is not known: not made up"
    assert (
        "• inventory anomaly on homenet (1): d-unnamed (open since 2026-11-28 09:30 UTC (26 h 00 min))"
        in text
    )
    assert "• missing executions on dealer.com (17): Dealer00 (dealer00, id d00) (open since " in text
    assert f"Dealer{MAX_DEALERS_IN_TEXT - 1:02d} (" in text
    assert f"Dealer{MAX_DEALERS_IN_TEXT:02d} (" not in text, "the text names at most 15 per group"
    assert "and 2 more (see details.resolved)" in text
    records = {r["key"]: r for r in alert.details["resolved"]}
    assert len(records) == 20, "the structured list has every one"
    assert records["missing:dealer.com:d16"] == {
        "key": "missing:dealer.com:d16",
        "kind": "missing",
        "since": "2026-11-29T08:30:00+00:00",
        "detail": None,
        "platform": "dealer.com",
        "dealer_id": "d16",
        "name": "Dealer16",
        "slug": "dealer16",
    }
    assert records["failure_rate:inventory_homenet"]["dag_id"] == "inventory_homenet"
