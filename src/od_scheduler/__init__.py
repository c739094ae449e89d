"""Open Dealer inventory scheduler: the package Airflow's DAGs, plugin and provider entry point import.

Installed as the ``od-scheduler`` distribution; ``provider_info`` declares its connection types and its
``[od_scheduler]`` configuration section to Airflow.
"""

__version__ = "0.1.0"
