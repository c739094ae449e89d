"""The only place connection ids are spelled. See README "Configuration" for what each holds."""

from __future__ import annotations

PAYLOAD_CMS = "od_payload_cms"
SOAP_TRANSFORMER = "od_soap_transformer"
DEALER_COM = "od_dealer_com"
APIFY = "od_apify"
VINSOLUTIONS = "od_vinsolutions"
DEALERSOCKET = "od_dealersocket"
COBALT = "od_cobalt"
DATA_API = "od_data_api"
JOB_HISTORY = "od_job_history"
ALERTS = "od_alerts"
AIRFLOW_DB = "od_airflow_db"
