"""What Airflow learns about the package through its ``apache_airflow_provider`` entry point.

``get_provider_info()`` declares one connection type per upstream (the UI's connection form: which
standard fields show and what they are called, placeholders, and the extras each hook reads, as form
fields) and the ``[od_scheduler]`` configuration section with every key's description, type and default
(``airflow config list`` shows them; the defaults are the ones :mod:`od_scheduler.settings` falls back to).

Everything here is plain data, read without importing a hook or Airflow: Airflow loads it in every process
that looks at providers or reads a config key it does not find elsewhere. A platform's connection type is
its registry entry's ``connection_form`` (:mod:`od_scheduler.platforms`, which imports the pydantic config
models); the shared connections' forms are below.

Connection types are ``od_*``; the job history stays a ``postgres`` connection (``od_job_history``), and a
connection of type ``http``, as every connection was defined before these types existed, keeps working:
the hooks read the same fields whatever the type (:mod:`od_scheduler.connection_forms`).
"""

from __future__ import annotations

from typing import Any

from od_scheduler import __version__
from od_scheduler.connection_forms import NO_SCHEMA_PORT, ConnectionForm, text_field
from od_scheduler.platforms import PLATFORMS

PACKAGE_NAME = "od-scheduler"

PAYLOAD_CMS_FORM = ConnectionForm(
    "od_payload_cms",
    "payload_cms.PayloadCmsHook",
    "Open Dealer PayloadCMS",
    hidden=(*NO_SCHEMA_PORT, "login"),
    relabeling={"host": "CMS base URL", "password": "API key"},
    placeholders={"host": "https://cms.example.com", "password": "API key of the auth collection's user"},
    fields={
        "auth_collection": text_field(
            "Auth collection",
            "The Payload collection the API key belongs to (header 'Authorization: <collection> "
            "API-Key <key>').",
            default="users",
        )
    },
)

DATA_API_FORM = ConnectionForm(
    "od_data_api",
    "data_api.DataApiHook",
    "Open Dealer Data API",
    hidden=(*NO_SCHEMA_PORT, "login"),
    relabeling={"host": "Data API base URL", "password": "API key (X-API-Key)"},
    placeholders={"host": "https://data.example.com"},
)

ALERTS_FORM = ConnectionForm(
    "od_alerts",
    "alerts.AlertWebhookHook",
    "Open Dealer alert webhook",
    hidden=(*NO_SCHEMA_PORT, "login"),
    relabeling={"host": "Webhook URL", "password": "Bearer token (optional)"},
    placeholders={"host": "https://hooks.slack.com/services/..."},
)

#: The CMS, every registered platform's upstream (in the registry's order), the Data API, the alerts.
CONNECTION_TYPES: list[dict[str, Any]] = [
    form.provider_info()
    for form in (
        PAYLOAD_CMS_FORM,
        *(p.connection_form for p in PLATFORMS.values()),
        DATA_API_FORM,
        ALERTS_FORM,
    )
]


def _option(kind: str, default: str, description: str, example: str | None = None) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": "0.1.0",
        "type": kind,
        "example": example,
        "default": default,
    }


#: Every key :func:`od_scheduler.settings.get_settings` reads, with the default it falls back to (as the
#: string Airflow's config returns); ``airflow.cfg.example`` says the same at more length.
CONFIG_OPTIONS: dict[str, dict[str, Any]] = {
    "staging_url": _option(
        "string",
        "",
        "Root of staged vehicle files (gzipped JSON lines): a local folder on one machine, object storage "
        "in a cluster. Empty: file://$AIRFLOW_HOME/staging. The OD_STAGING_URL environment variable "
        "overrides it.",
        "s3://od-staging/inventory",
    ),
    "staging_conn_id": _option(
        "string",
        "",
        "The connection object-storage staging uses (an aws connection for s3://, with endpoint_url in its "
        "extra for an S3-compatible store). Empty: the storage's default credentials (environment, instance "
        "profile, IRSA role). Ignored for file://.",
        "od_staging",
    ),
    "max_failure_rate": _option(
        "float",
        "0.0",
        "A run fails when the share of its dealers that failed is greater than this (0 = any failed dealer "
        "fails the run). A run can override it with the max_failure_rate param.",
        "0.1",
    ),
    "ingest_batch_size": _option(
        "integer", "500", "Vehicles per Data API batch request (the Data API accepts at most 500)."
    ),
    "http_timeout_s": _option(
        "float",
        "30",
        "Per-request timeout of every HTTP client, in seconds. A connection's extra 'timeout' overrides it.",
    ),
    "http_max_attempts": _option(
        "integer",
        "5",
        "Attempts for transient HTTP errors (timeouts, 429, 5xx). A connection's extra 'max_attempts' "
        "overrides it.",
    ),
    "http_max_backoff_s": _option(
        "float", "30", "Cap of the exponential backoff between HTTP attempts, in seconds."
    ),
    "http_deadline_s": _option(
        "float",
        "300",
        "Overall deadline of one HTTP request, all its attempts and waits included, in seconds. A server "
        "that drips its body ends here; a Retry-After longer than the time left fails the request as "
        "retryable. A connection's extra 'deadline_s' overrides it.",
    ),
    "dealer_deadline_minutes": _option(
        "float",
        "20",
        "The most one dealer's pull (or ingest) may take, all its requests together, in minutes (never more "
        "than its task's execution_timeout). Past it the dealer fails as retryable and its shard "
        "goes on.",
    ),
    "max_response_mb": _option(
        "float",
        "50",
        "Largest response body read from an upstream, in MB, counted as received and after decoding. A "
        "connection's extra 'max_response_mb' overrides it.",
    ),
    "url_allowlist": _option(
        "string",
        "",
        "Hosts ('host' or 'host:port', comma-separated) that URLs from the CMS (Dealer.com base_url) may "
        "point at although they are not public; they may also use plain http. Every other CMS URL must be "
        "https and resolve only to public addresses.",
        "127.0.0.1,[::1]:8080",
    ),
    "dealer_com_requests_per_second": _option(
        "float",
        "2",
        "Dealer.com: request rate per dealer site. The od_dealer_com connection's extra "
        "'requests_per_second' overrides it.",
    ),
    "dealer_com_schedule": _option("string", "@hourly", "Schedule of inventory_dealer_com (cron, UTC)."),
    "default_schedule": _option("string", "0 9 * * *", "Schedule of the other platform DAGs (cron, UTC)."),
    "task_retries": _option(
        "integer", "2", "Airflow task retries for pulls and ingests (transient upstream errors)."
    ),
    "task_retry_delay_s": _option(
        "integer", "60", "First retry delay of pulls and ingests, in seconds (it grows exponentially)."
    ),
    "hold_after_failures": _option(
        "integer",
        "5",
        "A dealer whose last N finished executions all failed is held back from scheduled runs (a forced "
        "run still tries it; one success releases it). 0 disables holding.",
    ),
    "due_grace_minutes": _option(
        "integer",
        "5",
        "A dealer is due when its last success on the platform is older than its interval minus this grace, "
        "so a run a few seconds early does not skip it.",
    ),
    "lease_minutes": _option(
        "integer",
        "180",
        "A run leases each dealer from its pull until its ingest ends, so two runs of a platform never pull "
        "the same dealer at once; a lease left by a killed task expires after this many minutes.",
    ),
    "dealers_per_task": _option(
        "integer",
        "250",
        "Dealers per shard (mapped task); never more shards than [core] max_map_length. 1 gives one dealer "
        "per task.",
    ),
    "min_shards": _option(
        "integer",
        "4",
        "At least this many shards, and a whole multiple of it, while each still gets 10 dealers: a small "
        "run still fills the pools' concurrency and the last wave of ingests is as full as the others.",
    ),
    "ingest_dealers_in_flight": _option(
        "integer",
        "1",
        "Requests an ingest shard sends to the Data API at once (its slots in pool data_api); it readies "
        "up to 4x as many dealers.",
    ),
    "apify_max_wait_s": _option(
        "integer",
        "3600",
        "Web scraping: how long to wait for a dealer's Apify actor run before aborting it and failing the "
        "dealer (a dealer's web_scraping_config.max_wait_s overrides it). The wait is deferred.",
    ),
    "apify_wait_for_finish_s": _option(
        "integer",
        "60",
        "How long each Apify status poll asks Apify to hold its answer (waitForFinish, at most 60 s).",
    ),
    "retention_days": _option(
        "integer",
        "30",
        "maintenance_cleanup deletes job_executions, staged files and Airflow's XCom and task-instance "
        "history older than this (a run can override it with the retention_days param).",
    ),
    "keep_last_executions": _option(
        "integer",
        "10",
        "Cleanup always keeps each dealer x platform's last this-many executions and its latest success.",
    ),
    "cleanup_batch_size": _option("integer", "5000", "Cleanup deletes in batches of this many rows."),
    "cleanup_schedule": _option("string", "0 2 * * *", "Schedule of maintenance_cleanup (cron, UTC)."),
    "metadata_cleanup_in_task": _option(
        "boolean",
        "False",
        "Whether maintenance_cleanup's prune_airflow_metadata task prunes Airflow's metadata itself, with "
        "the od_airflow_db connection (which hands every task the metadata database's credentials). False: "
        "the task skips; run python -m od_scheduler.metadata_cleanup where the scheduler runs instead.",
    ),
    "max_drop_fraction": _option(
        "float",
        "0.5",
        "A full pull that is empty, or smaller than (1 - this) of the dealer's live vehicles, is an "
        "inventory anomaly: nothing is delisted and the dealer's job fails, unless the run sets "
        "force_delist=true.",
    ),
    "delist_after_missing_pulls": _option(
        "integer",
        "2",
        "A live vehicle is delisted only once it was missing from this many consecutive complete pulls (each "
        "DAG run counting once). 1 delists at the first miss.",
    ),
    "max_reject_fraction": _option(
        "float",
        "0.2",
        "Per-VIN rejections by the Data API are partial success unless more than this share of the vehicles "
        "sent were rejected; then the dealer's job fails.",
    ),
    "alert_failure_rate": _option(
        "float",
        "0.2",
        "summarize_run alerts (od_alerts) when the share of a run's dealers that failed is greater than this "
        "(independent of max_failure_rate).",
    ),
    "alert_channel": _option(
        "string",
        "webhook",
        "How alerts reach the od_alerts connection: webhook (the JSON payload to an od_alerts/http "
        "connection), slack (Airflow's Slack provider; od_alerts of type slack_webhook; pip install "
        "apache-airflow-providers-slack) or apprise (Airflow's Apprise provider; od_alerts of type apprise; "
        "pip install apache-airflow-providers-apprise). Links in alerts come from [api] base_url.",
        "slack",
    ),
    "long_run_alerts": _option(
        "boolean",
        "True",
        "Attach a DeadlineAlert to each platform DAG: a run still going its expected duration after it was "
        "queued sends a long_run alert (the run goes on). False leaves it off.",
    ),
    "dealer_com_expected_run_minutes": _option(
        "float", "45", "Expected duration of an inventory_dealer_com run (the long_run alert's deadline)."
    ),
    "default_expected_run_minutes": _option(
        "float", "180", "Expected duration of the other platforms' runs (the long_run alert's deadline)."
    ),
    "freshness_schedule": _option(
        "string",
        "30 * * * *",
        "Schedule of inventory_freshness (cron, UTC), which sends one digest of new problems: missing "
        "executions, held dealers, inventory anomalies.",
    ),
    "missing_after_intervals": _option(
        "float",
        "2",
        "A dealer whose last success is older than this many of its intervals counts as missing executions.",
    ),
    "incremental_overlap_minutes": _option(
        "integer",
        "60",
        "Incremental sources (HomeNet's updatedSince) ask for changes since the start of the dealer's last "
        "successful pull minus this overlap, absorbing clock skew and late modification stamps.",
    ),
    "full_pull_hours": _option(
        "float",
        "24",
        "Incremental sources also pull the whole lot at least once per this many hours (in the runs' "
        "data-interval time); only a full pull may delist. 0 makes every pull full.",
        "168",
    ),
}


def get_provider_info() -> dict[str, Any]:
    """The provider metadata Airflow validates against its ``provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Open Dealer scheduler",
        "description": "Open Dealer inventory scheduler: hooks, operators and connection types for dealer "
        "inventory platforms and the Open Dealer Data API.",
        "versions": [__version__],
        "connection-types": CONNECTION_TYPES,
        "config": {
            "od_scheduler": {
                "description": "Open Dealer scheduler settings. Every key is optional; each can also be "
                "set as AIRFLOW__OD_SCHEDULER__<KEY>. See airflow.cfg.example in the repository.",
                "options": CONFIG_OPTIONS,
            }
        },
    }
