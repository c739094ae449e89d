"""Every tunable of the project, read once from the ``[od_scheduler]`` Airflow config section.

Each value can be set in ``airflow.cfg`` (see ``airflow.cfg.example``) or as the environment variable
``AIRFLOW__OD_SCHEDULER__<KEY>``; the fallbacks below apply otherwise. ``OD_STAGING_URL`` is also read
directly, because it is shared with tools outside Airflow.

Reading config is local (no network, no database), so DAG files may call ``get_settings()`` at parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from airflow.configuration import conf

from od_scheduler.exceptions import ConfigError
from od_scheduler.platforms import get_platform

SECTION = "od_scheduler"
#: Dealers per mapped task instance (see bench/README.md for how it was chosen).
DEFAULT_DEALERS_PER_TASK = 250

#: Where alerts go (``alert_channel``): the ``od_alerts`` connection as a JSON webhook (the default), as a
#: Slack incoming webhook through Airflow's Slack provider, or through Airflow's Apprise provider.
ALERT_CHANNELS = ("webhook", "slack", "apprise")


@dataclass(frozen=True)
class Settings:
    """The project's settings; see ``airflow.cfg.example`` for what each means."""

    staging_url: str
    staging_conn_id: str | None
    max_failure_rate: float
    ingest_batch_size: int
    http_timeout_s: float
    http_max_attempts: int
    http_max_backoff_s: float
    http_deadline_s: float
    dealer_deadline_minutes: float
    max_response_mb: float
    url_allowlist: tuple[str, ...]
    dealer_com_requests_per_second: float
    dealer_com_schedule: str
    default_schedule: str
    task_retries: int
    task_retry_delay_s: int
    hold_after_failures: int
    due_grace_minutes: int
    lease_minutes: int
    dealers_per_task: int
    min_shards: int
    ingest_dealers_in_flight: int
    apify_max_wait_s: int
    apify_wait_for_finish_s: int
    retention_days: int
    keep_last_executions: int
    cleanup_batch_size: int
    cleanup_schedule: str
    metadata_cleanup_in_task: bool
    max_drop_fraction: float
    delist_after_missing_pulls: int
    max_reject_fraction: float
    alert_failure_rate: float
    long_run_alerts: bool
    dealer_com_expected_run_minutes: float
    default_expected_run_minutes: float
    freshness_schedule: str
    missing_after_intervals: float
    incremental_overlap_minutes: int
    full_pull_hours: float
    alert_channel: str = "webhook"


def _float(key: str, fallback: float, *, lo: float | None = None, hi: float | None = None) -> float:
    raw = conf.get(SECTION, key, fallback=str(fallback))
    try:
        value = float(raw)
    except ValueError as err:
        raise ConfigError(f"[{SECTION}] {key} must be a number, got {raw!r}") from err
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"[{SECTION}] {key} must be within [{lo}, {hi}], got {value}")
    return value


def _int(key: str, fallback: int, *, lo: int | None = None, hi: int | None = None) -> int:
    raw = conf.get(SECTION, key, fallback=str(fallback))
    try:
        value = int(raw)
    except ValueError as err:
        raise ConfigError(f"[{SECTION}] {key} must be an integer, got {raw!r}") from err
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"[{SECTION}] {key} must be within [{lo}, {hi}], got {value}")
    return value


def _bool(key: str, fallback: bool) -> bool:
    raw = conf.get(SECTION, key, fallback=str(fallback)).strip().lower()
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"[{SECTION}] {key} must be true or false, got {raw!r}")


def _one_of(key: str, raw: str | None, choices: tuple[str, ...]) -> str:
    """``raw`` (trimmed, lower case) when it is one of ``choices``; empty is the first choice."""
    value = (raw or "").strip().lower() or choices[0]
    if value not in choices:
        raise ConfigError(f"[{SECTION}] {key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _list(key: str) -> tuple[str, ...]:
    raw = conf.get(SECTION, key, fallback="") or ""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def default_staging_url() -> str:
    """A local folder under AIRFLOW_HOME: right for one machine, replace with ``s3://...`` in a cluster."""
    home = os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow"))
    return f"file://{os.path.abspath(home)}/staging"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per process."""
    staging = os.environ.get("OD_STAGING_URL") or conf.get(SECTION, "staging_url", fallback="")
    return Settings(
        staging_url=staging or default_staging_url(),
        staging_conn_id=conf.get(SECTION, "staging_conn_id", fallback="").strip() or None,
        max_failure_rate=_float("max_failure_rate", 0.0, lo=0.0, hi=1.0),
        ingest_batch_size=_int("ingest_batch_size", 500, lo=1, hi=500),
        http_timeout_s=_float("http_timeout_s", 30.0, lo=0.1),
        http_max_attempts=_int("http_max_attempts", 5, lo=1, hi=20),
        http_max_backoff_s=_float("http_max_backoff_s", 30.0, lo=0.0),
        http_deadline_s=_float("http_deadline_s", 300.0, lo=0.1),
        dealer_deadline_minutes=_float("dealer_deadline_minutes", 20.0, lo=0.01),
        max_response_mb=_float("max_response_mb", 50.0, lo=0.001),
        url_allowlist=_list("url_allowlist"),
        dealer_com_requests_per_second=_float("dealer_com_requests_per_second", 2.0, lo=0.01),
        dealer_com_schedule=conf.get(SECTION, "dealer_com_schedule", fallback="@hourly"),
        default_schedule=conf.get(SECTION, "default_schedule", fallback="0 9 * * *"),
        task_retries=_int("task_retries", 2, lo=0, hi=10),
        task_retry_delay_s=_int("task_retry_delay_s", 60, lo=0),
        hold_after_failures=_int("hold_after_failures", 5, lo=0),
        due_grace_minutes=_int("due_grace_minutes", 5, lo=0),
        lease_minutes=_int("lease_minutes", 180, lo=1),
        dealers_per_task=_int("dealers_per_task", DEFAULT_DEALERS_PER_TASK, lo=1),
        min_shards=_int("min_shards", 4, lo=1),
        ingest_dealers_in_flight=_int("ingest_dealers_in_flight", 1, lo=1),
        apify_max_wait_s=_int("apify_max_wait_s", 3600, lo=1),
        apify_wait_for_finish_s=_int("apify_wait_for_finish_s", 60, lo=0, hi=60),
        retention_days=_int("retention_days", 30, lo=1),
        keep_last_executions=_int("keep_last_executions", 10, lo=0),
        cleanup_batch_size=_int("cleanup_batch_size", 5000, lo=1),
        cleanup_schedule=conf.get(SECTION, "cleanup_schedule", fallback="0 2 * * *"),
        metadata_cleanup_in_task=_bool("metadata_cleanup_in_task", False),
        max_drop_fraction=_float("max_drop_fraction", 0.5, lo=0.0, hi=1.0),
        delist_after_missing_pulls=_int("delist_after_missing_pulls", 2, lo=1),
        max_reject_fraction=_float("max_reject_fraction", 0.2, lo=0.0, hi=1.0),
        alert_failure_rate=_float("alert_failure_rate", 0.2, lo=0.0, hi=1.0),
        long_run_alerts=_bool("long_run_alerts", True),
        dealer_com_expected_run_minutes=_float("dealer_com_expected_run_minutes", 45.0, lo=0.05),
        default_expected_run_minutes=_float("default_expected_run_minutes", 180.0, lo=0.05),
        freshness_schedule=conf.get(SECTION, "freshness_schedule", fallback="30 * * * *"),
        missing_after_intervals=_float("missing_after_intervals", 2.0, lo=1.0),
        incremental_overlap_minutes=_int("incremental_overlap_minutes", 60, lo=0, hi=7 * 24 * 60),
        full_pull_hours=_float("full_pull_hours", 24.0, lo=0.0),
        alert_channel=_one_of(
            "alert_channel", conf.get(SECTION, "alert_channel", fallback="webhook"), ALERT_CHANNELS
        ),
    )


@dataclass(frozen=True)
class PlatformTiming:
    """When a platform's DAG runs and how long one run is expected to take."""

    #: The DAG's schedule (cron or preset, UTC).
    schedule: str
    #: Past this, a run raises the long-run alert; twice this bounds a try of a shard task.
    expected_run_minutes: float


def platform_timing(platform_id: str) -> PlatformTiming:
    """The platform's timing: the settings its registry entry names (``schedule_setting``,
    ``expected_run_setting``), read from :func:`get_settings`."""
    platform = get_platform(platform_id)
    settings = get_settings()
    return PlatformTiming(
        schedule=str(getattr(settings, platform.schedule_setting)),
        expected_run_minutes=float(getattr(settings, platform.expected_run_setting)),
    )
