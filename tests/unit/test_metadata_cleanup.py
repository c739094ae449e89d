"""The metadata-retention command's parts: the cutoff from the retention, the `airflow db clean` command
line, its output, and the in-task path's default skip (the real command against a real metadata database,
and the check that Airflow knows every table, are in tests/integration/test_cleanup.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from od_scheduler import metadata_cleanup
from od_scheduler.metadata_cleanup import CleanResult, clean_command, cutoff_before, found_rows

pytestmark = pytest.mark.unit

#: What issue 14 asks to prune by retention.
NAMED_IN_THE_ISSUE = {
    "dag_run",
    "task_instance",
    "log",
    "job",
    "trigger",
    "callback",
    "deadline",
    "import_error",
    "xcom",
}


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from od_scheduler.settings import get_settings

    def set_options(**options: str) -> None:
        for key, value in options.items():
            monkeypatch.setenv(f"AIRFLOW__OD_SCHEDULER__{key.upper()}", value)
        get_settings.cache_clear()

    yield set_options
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_cutoff_is_the_retention_before_now_in_utc() -> None:
    now = datetime(2026, 3, 31, 2, 0, tzinfo=UTC)
    assert cutoff_before(now, 30) == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    other_zone = now.astimezone(datetime.now().astimezone().tzinfo)
    assert cutoff_before(other_zone, 30) == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="at least 1"):
        cutoff_before(now, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        cutoff_before(now.replace(tzinfo=None), 30)


def test_the_command_cleans_the_run_history_tables_without_archives_and_without_a_prompt() -> None:
    cutoff = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    cmd = clean_command(cutoff, batch_size=5000)
    assert cmd[1:5] == ["-m", "airflow", "db", "clean"]
    assert cmd[cmd.index("--clean-before-timestamp") + 1] == "2026-03-01T02:00:00+00:00"
    tables = set(cmd[cmd.index("--tables") + 1].split(","))
    assert tables >= NAMED_IN_THE_ISSUE
    assert not tables & {"dag", "dag_version"}, "DAG definitions are not history"
    assert cmd[cmd.index("--batch-size") + 1] == "5000"
    assert {"--skip-archive", "--error-on-cleanup-failure", "--yes"} <= set(cmd)
    assert "--dry-run" not in cmd

    dry = clean_command(cutoff, dry_run=True)
    assert "--dry-run" in dry
    assert "--yes" not in dry
    assert "--batch-size" not in dry


def test_rows_per_table_are_read_from_the_output() -> None:
    output = (
        "\nChecking table xcom\nFound 12 rows meeting deletion criteria.\nPerforming Delete...\n"
        "Finished Performing Delete\n\nChecking table log\nFound 0 rows meeting deletion criteria.\n"
    )
    assert found_rows(output) == {"xcom": 12, "log": 0}


def test_the_command_takes_the_retention_from_the_settings(
    settings: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings(retention_days="12", cleanup_batch_size="700")
    calls: list[dict[str, Any]] = []

    def fake_run_clean(cutoff: datetime, **kwargs: Any) -> CleanResult:
        calls.append({"cutoff": cutoff, **kwargs})
        return CleanResult(cutoff=cutoff, dry_run=kwargs["dry_run"], rows={"xcom": 3, "log": 0})

    monkeypatch.setattr(metadata_cleanup, "run_clean", fake_run_clean)
    before = datetime.now(UTC)
    assert metadata_cleanup.main([]) == 0
    after = datetime.now(UTC)
    (call,) = calls
    assert before - timedelta(days=12) <= call["cutoff"] <= after - timedelta(days=12)
    assert call["dry_run"] is False
    assert call["batch_size"] == 700
    assert "deleted rows older than" in capsys.readouterr().out

    assert metadata_cleanup.main(["--retention-days", "90", "--dry-run"]) == 0
    assert calls[1]["dry_run"] is True
    assert calls[1]["cutoff"] <= datetime.now(UTC) - timedelta(days=90)
    assert "would delete rows older than" in capsys.readouterr().out


def test_the_command_refuses_to_run_inside_a_task(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Airflow's task supervisor hands tasks this placeholder instead of the metadata database.
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    monkeypatch.setattr(metadata_cleanup, "run_clean", lambda *_a, **_k: pytest.fail("must not run"))
    assert metadata_cleanup.main([]) == 2
    assert "where the scheduler runs" in capsys.readouterr().err


def test_the_metadata_task_skips_by_default_and_says_where_the_cleanup_runs(settings: Any) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    from od_scheduler.operators.cleanup import PruneAirflowMetadataOperator

    settings(metadata_cleanup_in_task="False")
    task = PruneAirflowMetadataOperator(task_id="prune_airflow_metadata", retention_days=30)
    # No context and no od_airflow_db connection are needed: nothing is read before the skip.
    with pytest.raises(AirflowSkipException) as skipped:
        task.execute({})  # type: ignore[arg-type]
    message = str(skipped.value)
    assert "metadata_cleanup_in_task" in message
    assert "python -m od_scheduler.metadata_cleanup" in message
    assert "AIRFLOW__OD_SCHEDULER__METADATA_CLEANUP_IN_TASK=True" in message


def test_the_setting_is_off_unless_switched_on(settings: Any) -> None:
    from od_scheduler.settings import get_settings

    settings()
    assert get_settings().metadata_cleanup_in_task is False
    settings(metadata_cleanup_in_task="True")
    assert get_settings().metadata_cleanup_in_task is True
