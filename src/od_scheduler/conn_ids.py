"""The only place the shared connection ids are spelled (a platform's is its registry entry's ``conn_id``,
:mod:`od_scheduler.platforms`). See README "Configuration" for what each holds."""

from __future__ import annotations

PAYLOAD_CMS = "od_payload_cms"
DATA_API = "od_data_api"
JOB_HISTORY = "od_job_history"
ALERTS = "od_alerts"
AIRFLOW_DB = "od_airflow_db"
