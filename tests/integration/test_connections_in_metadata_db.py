"""Connections kept only in Airflow's metadata DB (what `make setup` and the UI create) work everywhere,
including in a trigger that `airflow dags test` runs in line, outside any task."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.fixtures import run_dag

pytestmark = pytest.mark.integration


def test_the_apify_trigger_finds_a_metadata_db_connection(
    dagbag, clean: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    spec = json.loads(os.environ["AIRFLOW_CONN_OD_APIFY"])
    monkeypatch.delenv("AIRFLOW_CONN_OD_APIFY")
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "od_apify").delete()
        session.add(
            Connection(conn_id="od_apify", conn_type="http", host=spec["host"], password=spec["password"])
        )
    try:
        dealer = next(
            d for d in clean.get("/_sandbox/dealers").json()["dealers"] if d["slug"] == "hilltop-used-cars"
        )
        run = run_dag(dagbag.dags["inventory_web_scraping"], conf={"dealer_id": dealer["id"], "force": True})
        assert run.state == "success"
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == "od_apify").delete()
