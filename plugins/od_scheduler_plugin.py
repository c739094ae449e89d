"""The project's Airflow plugin: the status API and page on the Airflow API server.

Mounts :mod:`od_scheduler.status.app` at ``/od-scheduler`` (every route behind Airflow's authentication)
and links the page from the UI's Browse menu as "Inventory status" (an external view: the UI shows it in
an iframe, authenticated by the user's session cookie).

Every Airflow process loads plugins (a task does, for macros), so this module stays light: the FastAPI app
(about 3 s of imports) is imported only when ``fastapi_apps`` is read, i.e. by the api-server.
The ``od_scheduler`` package itself is the installed ``od-scheduler`` distribution, not part of this folder.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


class _StatusApps:
    """``fastapi_apps``, importing the status app on first read."""

    def __get__(self, instance: object, owner: type | None = None) -> list[dict[str, Any]]:
        from od_scheduler.status.app import app

        return [{"app": app, "url_prefix": "/od-scheduler", "name": "OD scheduler status"}]


class OdSchedulerPlugin(AirflowPlugin):
    """Status API at ``/od-scheduler/api/...`` and the status page at ``/od-scheduler/ui``."""

    name = "od_scheduler"
    fastapi_apps = _StatusApps()  # a list, built on first read
    external_views = [
        {
            "name": "Inventory status",
            "href": "/od-scheduler/ui",
            "url_route": "inventory-status",
            "destination": "nav",
            "category": "browse",
        }
    ]
