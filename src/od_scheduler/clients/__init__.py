"""httpx clients, one per upstream, on one base (``clients.base``): timeouts, auth, retry, rate limit,
pagination and redaction live there; platform clients describe endpoints and parse responses lazily.

No Airflow imports anywhere in this package.
"""
