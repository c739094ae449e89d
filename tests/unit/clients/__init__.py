"""Unit tests of the HTTP clients (no Airflow, no network: httpx.MockTransport)."""
