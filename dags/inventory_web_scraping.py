"""
### Web-scraped inventory through Apify (daily, 09:00 UTC)

Scrapes every active web-scraping dealer's website with the dealer's Apify actor, normalizes the scraped
vehicles to the canonical vehicle, stages them, and ingests them into the Open Dealer Data API.

`list_dealers` (PayloadCMS) → per shard of dealers (`dealers_per_task`): `shard.pull_inventory` (pool
`apify_api`, several dealers at once) → `shard.ingest_inventory` (pool `data_api`) → `summarize_run`,
which fails the run when more than `max_failure_rate` of the dealers failed. Every dealer's outcome is
its own row in the `job_executions` table and its own folded section of the shard's task log; a retry or
clear of a shard re-does only the dealers that did not succeed in the run.

`shard.pull_inventory` starts each dealer's actor run, then **defers** once for the shard: the triggerer
waits for the runs, so no worker slot is held while the scrapers work. Only a SUCCEEDED run is pulled;
FAILED, TIMED-OUT and ABORTED runs fail the dealer with the run id and status. A run still going after
the dealer's `max_wait_s` (else the `apify_max_wait_s` setting, 1 hour) is aborted and the dealer fails.
Scraped items without a valid VIN are rejected and counted by reason in `performance_metrics.rejects`.

Beside `summarize_run`, `announce_changes` emits the asset event `od://inventory/<platform>` (extra:
run id, dealers changed, vehicles sent and delisted) when the run changed the Data API, and is skipped
when it did not: DAGs scheduled on that asset (see `example_inventory_updated`) run on real changes only.

**Params**: `dealer_id` (one dealer), `force`, `full_refresh`, `force_delist` (delist even when the drop
looks like an anomaly), `max_failure_rate`.
`airflow dags trigger inventory_web_scraping --conf '{"dealer_id": "<id>"}'`
"""

from __future__ import annotations

from airflow.sdk import dag

from od_scheduler.dag_factory import inventory_dag_kwargs, inventory_tasks, platform_schedule

PLATFORM = "web_scraping"


@dag(schedule=platform_schedule(PLATFORM), doc_md=__doc__, **inventory_dag_kwargs(PLATFORM))
def inventory_web_scraping() -> None:
    inventory_tasks(PLATFORM)


inventory_web_scraping()
