"""Hooks: an Airflow Connection in, a configured client (or database session) out. No per-run state."""
