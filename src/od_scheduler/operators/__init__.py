"""Operators: list dealers, pull (a base + one per platform), ingest, summarize."""
