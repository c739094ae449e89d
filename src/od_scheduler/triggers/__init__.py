"""Deferrable waits, run by Airflow's triggerer (importable by dotted path: ``od_scheduler.triggers.*``)."""
