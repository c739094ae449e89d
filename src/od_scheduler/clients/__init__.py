"""httpx clients, one per upstream, on one base split by job: ``http`` (the client, its bounds and stats),
``retry`` (the one retry policy), ``ratelimit``, ``auth``, ``pagination`` and ``redaction``; platform
clients describe endpoints and parse responses lazily.

No Airflow imports anywhere in this package.
"""
