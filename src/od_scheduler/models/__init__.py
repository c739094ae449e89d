"""Pydantic models: the canonical ``Vehicle``, ``Dealer`` configuration, job history, and one raw model per
platform with ``to_vehicle()``.

Import from the submodules (``od_scheduler.models.vehicle``, ``.dealer``, ``.vin``, ``.normalize``,
``.dealer_com``, ``.job``); this package module stays empty so importing one model never pulls in the rest.
No Airflow imports anywhere in this package.
"""
