"""make demo's summary: errors cut at a word (never inside a URL), the legend names deliberate faults."""

from __future__ import annotations

import pytest

from include.tools.demo import MAX_ERROR_CHARS, Row, legend, summary_table

pytestmark = pytest.mark.unit

URL_ERROR = (
    "try 3: TransientUpstreamError: dealer.com POST "
    "http://127.0.0.1:37017/dealer-com/broken-arrow-chevrolet/api/widget/ws-inv-data/getInventory "
    "still failing after 5 attempts (last: HTTP 500)."
)


def row(dealer_id: str, status: str, error: str | None = None, unchanged: int | None = 0) -> Row:
    return Row("dealer.com", dealer_id, status, 10, unchanged, 0, 0, 0.4, error)


def test_a_long_error_is_cut_at_a_word_never_inside_its_url() -> None:
    long_error = URL_ERROR + " " + "details " * 80
    text = summary_table([row("d1", "failed", long_error)], {})
    note = text.split("Errors (the last try's):")[1]
    assert URL_ERROR.split()[4] in note
    assert note.rstrip().endswith("details …")
    assert len(note.strip()) <= len("[1] d1 (dealer.com): ") + MAX_ERROR_CHARS


def test_failed_dealers_get_their_whole_error_as_a_footnote() -> None:
    text = summary_table([row("d1", "failed", URL_ERROR), row("d2", "success")], {"d1": "Broken Arrow"})
    table, notes = text.split("Errors (the last try's):")
    assert "[1]" in table
    assert "Broken Arrow (dealer.com): " + URL_ERROR in notes


def test_an_unmodified_feed_is_shown_as_such() -> None:
    assert "  feed  " in summary_table([row("d1", "success", unchanged=-1)], {})


def test_legend_tells_deliberate_faults_from_real_failures() -> None:
    sandbox = [
        {"id": "d1", "name": "Broken Arrow", "scenario": "every request -> 500"},
        {"id": "d2", "name": "Clean Motors", "scenario": None},
        {"id": "d3", "name": "Flaky Ridge", "scenario": "every 4th request -> 503"},
    ]
    text = legend([row("d1", "failed"), row("d2", "failed"), row("d3", "success")], sandbox, fresh=False)
    assert "Broken Arrow (dealer.com): on purpose: every request -> 500" in text
    assert "Clean Motors (dealer.com): NOT a deliberate sandbox fault" in text
    assert "Flaky Ridge (dealer.com): every 4th request -> 503" in text
    assert "max_failure_rate is 0" in text


def test_task_logs_split_per_try_and_a_rescheduled_task_goes_on_in_the_same_file(tmp_path) -> None:
    from include.tools.demo import publish_task_logs

    start = "[DAG TEST] starting task_id={} map_index={}\n"
    output = tmp_path / "dags-test.log"
    output.write_text(
        start.format("shard.ingest_inventory", 0)
        + "ingest pass 1\nRescheduling task, marking task as UP_FOR_RESCHEDULE\n"
        + start.format("shard.pull_inventory", 0)
        + "pull try 1\n"
        + start.format("shard.ingest_inventory", 0)
        + "ingest pass 2\n"
        + start.format("shard.pull_inventory", 0)
        + "pull try 2\n"
    )
    assert publish_task_logs(output, "d", "r", tmp_path / "logs") == 3
    shard = tmp_path / "logs" / "dag_id=d" / "run_id=r"
    ingest = (shard / "task_id=shard.ingest_inventory" / "map_index=0" / "attempt=1.log").read_text()
    assert "ingest pass 1" in ingest
    assert "ingest pass 2" in ingest
    assert not (shard / "task_id=shard.ingest_inventory" / "map_index=0" / "attempt=2.log").exists()
    pulls = shard / "task_id=shard.pull_inventory" / "map_index=0"
    assert "pull try 2" in (pulls / "attempt=2.log").read_text()
    assert "pull try 2" not in (pulls / "attempt=1.log").read_text()
