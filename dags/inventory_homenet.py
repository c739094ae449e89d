"""
### HomeNet inventory (daily, 09:00 UTC)

Pulls every active HomeNet dealer's rooftop through the Open Dealer SOAP transformer, each with the
dealer's own rooftop id and integration token, normalizes it to the canonical vehicle, stages it, and
ingests it into the Open Dealer Data API. A dealer's first pull (and any `full_refresh` run) reads the whole
rooftop; later runs ask only for vehicles changed since the run's `data_interval_start`: a partial pull,
from which nothing is delisted.

`list_dealers` (PayloadCMS) → per shard of dealers (`dealers_per_task`): `shard.pull_inventory` (pool
`homenet_api`, several dealers at once) → `shard.ingest_inventory` (pool `data_api`) → `summarize_run`,
which fails the run when more than `max_failure_rate` of the dealers failed. Every dealer's outcome is
its own row in the `job_executions` table and its own folded section of the shard's task log; a retry or
clear of a shard re-does only the dealers that did not succeed in the run.

Beside `summarize_run`, `announce_changes` emits the asset event `od://inventory/<platform>` (extra:
run id, dealers changed, vehicles sent and delisted) when the run changed the Data API, and is skipped
when it did not: DAGs scheduled on that asset (see `example_inventory_updated`) run on real changes only.

**Params**: `dealer_id` (one dealer), `force`, `full_refresh`, `force_delist` (delist even when the drop
looks like an anomaly), `max_failure_rate`.
`airflow dags trigger inventory_homenet --conf '{"dealer_id": "<id>", "full_refresh": true}'`
"""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule

PLATFORM = "homenet"


@dag(schedule=platform_schedule(PLATFORM), doc_md=__doc__, **inventory_dag_kwargs(PLATFORM))
def inventory_homenet() -> None:
    inventory_tasks(PLATFORM)


inventory_homenet()
