"""Helpers the test environment plugs into Airflow (importable by the e2e Airflow processes too)."""
