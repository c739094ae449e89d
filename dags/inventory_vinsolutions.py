"""
### VinSolutions inventory (daily)

Pulls every active VinSolutions dealer's inventory from the VinSolutions inventory gateway (OAuth2
client credentials; one token per dealer pull, refreshed once when it expires mid-pagination),
normalizes it to the canonical vehicle, stages it, and ingests it into the Open Dealer Data API.

`list_dealers` (PayloadCMS) → per shard of dealers (`dealers_per_task`): `shard.pull_inventory` (pool
`vinsolutions_api`, several dealers at once) → `shard.ingest_inventory` (pool `data_api`) →
`summarize_run`, which fails the run when more than `max_failure_rate` of the dealers failed. Every
dealer's outcome is its own row in the `job_executions` table and its own folded section of the shard's
task log; a retry or clear of a shard re-does only the dealers that did not succeed in the run.

Beside `summarize_run`, `announce_changes` emits the asset event `od://inventory/<platform>` (extra:
run id, dealers changed, vehicles sent and delisted) when the run changed the Data API, and is skipped
when it did not: DAGs scheduled on that asset (see `example_inventory_updated`) run on real changes only.

**Params**: `dealer_id` (one dealer), `force`, `full_refresh`, `force_delist` (delist even when the drop
looks like an anomaly), `max_failure_rate`.
`airflow dags trigger inventory_vinsolutions --conf '{"dealer_id": "<id>"}'`
"""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule

PLATFORM = "vinsolutions"


@dag(schedule=platform_schedule(PLATFORM), doc_md=__doc__, **inventory_dag_kwargs(PLATFORM))
def inventory_vinsolutions() -> None:
    inventory_tasks(PLATFORM)


inventory_vinsolutions()
