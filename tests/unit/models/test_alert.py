"""Alert messages: links to the DAG run and the task's log as Airflow builds them, and Slack text that stays
safe with links in it."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from od_scheduler.models.alert import (
    Alert,
    AlertDealer,
    AlertKind,
    Severity,
    slack_escape,
    slack_link,
    ui_links,
)

pytestmark = pytest.mark.unit

BASE = "https://airflow.example.test/prod"
DAG_ID = "inventory_dealer_com"
RUN_ID = "scheduled__2026-11-01T10:00:00+00:00"


def airflow_log_url(
    monkeypatch: pytest.MonkeyPatch, *, task_id: str, map_index: int, try_number: int, run_id: str = RUN_ID
) -> str:
    """The log URL Airflow itself puts in its failure e-mails (``RuntimeTaskInstance.log_url``)."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
    ti = SimpleNamespace(
        dag_id=DAG_ID, run_id=run_id, task_id=task_id, map_index=map_index, try_number=try_number
    )
    url: str = RuntimeTaskInstance.log_url.fget(ti)  # type: ignore[attr-defined]
    return url


@pytest.mark.parametrize(
    ("task_id", "map_index", "try_number"),
    [("summarize_run", -1, 1), ("shard.pull_inventory", 3, 2), ("check_freshness", -1, 0)],
    ids=["plain task", "mapped task, second try", "no try yet"],
)
def test_log_links_are_the_ones_airflow_builds(
    monkeypatch: pytest.MonkeyPatch, task_id: str, map_index: int, try_number: int
) -> None:
    run_url, log_url = ui_links(
        BASE, dag_id=DAG_ID, run_id=RUN_ID, task_id=task_id, map_index=map_index, try_number=try_number
    )

    assert log_url == airflow_log_url(
        monkeypatch, task_id=task_id, map_index=map_index, try_number=try_number
    )
    # The run id's ':' and '+' are percent-encoded, as in Airflow's own link.
    assert run_url == f"{BASE}/dags/{DAG_ID}/runs/scheduled__2026-11-01T10%3A00%3A00%2B00%3A00"
    assert log_url.startswith(f"{run_url}/tasks/{task_id}")


def test_without_a_base_url_or_a_run_there_is_no_link() -> None:
    assert ui_links(None, dag_id=DAG_ID, run_id=RUN_ID, task_id="summarize_run") == (None, None)
    assert ui_links("", dag_id=DAG_ID, run_id=RUN_ID) == (None, None)
    assert ui_links(BASE, dag_id=DAG_ID, run_id=None, task_id="summarize_run") == (None, None)
    run_url, log_url = ui_links(BASE + "/", dag_id=DAG_ID, run_id=RUN_ID)
    assert run_url is not None
    assert "//dags" not in run_url
    assert log_url is None, "no task, no log link"


def linked_alert(run_id: str = RUN_ID, title: str = "3 of 4 dealer(s) failed") -> Alert:
    run_url, log_url = ui_links(
        BASE, dag_id=DAG_ID, run_id=run_id, task_id="summarize_run", map_index=-1, try_number=2
    )
    return Alert(
        kind=AlertKind.FAILURE_RATE,
        severity=Severity.ERROR,
        title=title,
        dag_id=DAG_ID,
        run_id=run_id,
        task_id="summarize_run",
        map_index=-1,
        try_number=2,
        dag_run_url=run_url,
        log_url=log_url,
        dealers=[
            AlertDealer(
                dealer_id="d-1",
                platform="dealer.com",
                name="Hilltop <!channel> Motors",
                condition="failed",
                detail="HTTP 500 from <http://evil.test|Open Dealer status>",
            )
        ],
    )


def test_slack_text_links_the_run_and_the_log() -> None:
    alert = linked_alert()
    text = alert.slack_text()
    assert alert.dag_run_url
    assert alert.log_url

    where = text.splitlines()[1]
    assert where == (
        f"DAG {DAG_ID}, run <{alert.dag_run_url}|{RUN_ID}>, task summarize_run (<{alert.log_url}|log, try 2>)"
    )
    # The only links in the message are the two the project built; the CMS's and upstream's text is escaped.
    assert re.findall(r"<(http[^|>]*)\|", text) == [alert.dag_run_url, alert.log_url]
    assert "<!channel>" not in text
    assert "&lt;!channel&gt;" in text
    assert "HTTP 500 from &lt;&lt;url&gt; Dealer status&gt;" in text  # the group's error, escaped


def test_plain_text_spells_the_links_out_for_logs_and_plain_text_channels() -> None:
    alert = linked_alert()
    lines = alert.text().splitlines()

    assert lines[1] == f"DAG {DAG_ID}, run {RUN_ID}, task summarize_run"
    assert lines[2:4] == [f"Run: {alert.dag_run_url}", f"Log: {alert.log_url}"]
    assert "&lt;" not in alert.text(), "plain text is not escaped"


def test_without_links_the_slack_text_is_the_escaped_plain_text() -> None:
    alert = linked_alert().model_copy(update={"dag_run_url": None, "log_url": None})
    assert alert.slack_text() == slack_escape(alert.text())
    assert "Run: " not in alert.text()


def test_a_hostile_run_id_cannot_break_out_of_its_link() -> None:
    # Airflow validates run ids, but a message must stay well formed whatever it is given.
    run_id = "manual__x>|<!here>&y"
    alert = linked_alert(run_id=run_id)
    where = alert.slack_text().splitlines()[1]

    assert "<!here>" not in where
    assert (where.count("<"), where.count(">")) == (2, 2), "exactly the two links open and close"
    assert f"|{slack_escape(run_id)}>" in where
    assert slack_link("https://a.test/x|y&z", "a>b") == "<https://a.test/x%7Cy&amp;z|a&gt;b>"


def test_the_payload_carries_the_links_as_fields() -> None:
    alert = linked_alert()
    payload = alert.payload()

    assert payload["dag_run_url"] == alert.dag_run_url
    assert payload["log_url"] == alert.log_url
    assert (payload["task_id"], payload["map_index"], payload["try_number"]) == ("summarize_run", -1, 2)
    assert payload["text"] == alert.slack_text()


def test_a_mapped_task_is_named_with_its_index() -> None:
    alert = linked_alert().model_copy(update={"task_id": "shard.pull_inventory", "map_index": 4})
    assert alert.text().splitlines()[1].endswith("task shard.pull_inventory[4]")
