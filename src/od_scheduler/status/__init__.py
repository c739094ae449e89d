"""The status API and page, served by the Airflow API server behind Airflow's own login.

- ``schemas``: the validated query parameters and the response models;
- ``queries``: the read-only SQL over the job history (bound parameters only) and the health rules;
- ``page``: the HTML page (inline SVG chart, no external assets);
- ``app``: the FastAPI app that ``plugins/od_scheduler_plugin.py`` mounts at ``/od-scheduler``.
"""
