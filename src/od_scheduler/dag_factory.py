"""The shape every platform DAG shares, written once.

A platform's DAG file passes its pull operator class (which names its platform, ``platform_id``) to
``platform_schedule(operator)`` and ``inventory_dag_kwargs(operator)``, the ``@dag`` arguments (schedule,
documentation, params, defaults, tags; the documentation composed from the platform's registry entry and
the params themselves, so it cannot drift), and to ``inventory_tasks(operator)``, which wires, inside the
DAG being defined::

    list_dealers >> shard[pull_inventory | ingest_inventory] (mapped, one per shard) >> summarize_run

Each shard task works on ``pool_slots`` dealers at once (see :mod:`od_scheduler.operators.shard`): the pull
in the platform's pool, the ingest in ``data_api``. The two run side by side: the ingest ingests each dealer
as soon as the pull has staged it, and ends once the pull has ended (``od_scheduler.operators.ingest_feed``),
so one dealer's slow or failed pull never holds back the others of its shard.

Alerts are wired here too: a ``DeadlineAlert`` per platform DAG (a run still going after the platform's
expected duration → a ``long_run`` alert from the triggerer) and a system alert when ``list_dealers`` fails.

Nothing here touches the network, a database, Variables or Connections: DAG files call it at parse time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import (  # type: ignore[attr-defined]  # the deadline names are missing from sdk/__init__.pyi
    AsyncCallback,
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    TriggerRule,
    task_group,
)

from od_scheduler.alert_rules import task_timeout_minutes
from od_scheduler.assets import inventory_asset
from od_scheduler.models.alert import AlertKind
from od_scheduler.notifications import WebhookAlertNotifier
from od_scheduler.operators.announce import AnnounceChangesOperator
from od_scheduler.operators.ingest import DataApiIngestOperator
from od_scheduler.operators.list_dealers import LIST_DEALERS_TASK_ID, ListDealersOperator
from od_scheduler.operators.pull import PullInventoryOperator
from od_scheduler.operators.summarize import SummarizeRunOperator
from od_scheduler.platforms import DATA_API_POOL, PAYLOAD_CMS_POOL, get_platform
from od_scheduler.settings import get_settings, platform_timing

#: Shown as each mapped task's index in the UI: the shard's first dealers and its size (``Shard.label``).
SHARD_LABEL = "{{ task.shard['label'] }}"


#: A platform DAG's mapped group, its two tasks (``shard.pull_inventory``, ``shard.ingest_inventory``).
SHARD_GROUP = "shard"
PULL_TASK = "pull_inventory"
INGEST_TASK = "ingest_inventory"


#: The trigger form's section for params most runs leave alone.
ADVANCED = "Advanced"


def inventory_params() -> dict[str, Param]:
    """Typed run parameters; an invalid ``--conf`` is rejected at trigger time with Airflow's message."""
    return {
        "dealer_id": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="Dealer id",
            description=(
                "Pull only this dealer, by its PayloadCMS dealer id. Empty: every active dealer. Find the "
                "id by name or slug under Browse > Inventory status > Dealers, or "
                "GET /od-scheduler/api/dealers?q=ford (part of a name)."
            ),
        ),
        "force": Param(
            False,
            type="boolean",
            title="Force",
            description="Pull every selected dealer, whether or not it is due.",
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            title="Full refresh",
            description=(
                "Pull each dealer's whole inventory (not only what changed since its last pull) and send "
                "every vehicle to the Data API, changed or not."
            ),
        ),
        "force_delist": Param(
            False,
            type="boolean",
            title="Force delisting",
            description=(
                "Delist vehicles missing from a full pull even when the drop looks like an inventory anomaly "
                "(an empty pull, or one far below the live count). Use after checking the source really "
                "shrank."
            ),
            section=ADVANCED,
        ),
        "max_failure_rate": Param(
            None,
            type=["null", "number"],
            minimum=0,
            maximum=1,
            title="Max failure rate",
            description=(
                "Share of dealers (0 to 1) allowed to fail before the run fails. Empty: the setting "
                "max_failure_rate."
            ),
            section=ADVANCED,
        ),
    }


def platform_schedule(operator: type[PullInventoryOperator]) -> CronDataIntervalTimetable:
    """The schedule of ``operator``'s platform (``platform_timing``) as cron with real data intervals.

    A run's ``[data_interval_start, data_interval_end)`` is the window incremental sources and backfills
    work on, which a bare cron string (a trigger-only timetable in Airflow 3) would not give.
    """
    return CronDataIntervalTimetable(platform_timing(operator.platform_id).schedule, timezone="UTC")


def long_run_deadline(platform_id: str) -> DeadlineAlert:
    """Alert (through the triggerer) when a run is still going its expected duration after it was queued.

    The callback is named by its dotted path: the triggerer imports it from the installed package (a function
    defined in a DAG file cannot be imported there). The deadline does not stop or fail the run.
    """
    minutes = platform_timing(platform_id).expected_run_minutes
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(
            "od_scheduler.notifications.notify_long_run",
            kwargs={"platform": platform_id, "expected_minutes": minutes},
        ),
    )


#: How every platform DAG runs, after its registry entry's own paragraph.
FLOW_DOC = (
    "`list_dealers` (PayloadCMS) → per shard of dealers (`dealers_per_task`): `shard.pull_inventory` (pool "
    "`{pool}`, several dealers at once) and beside it `shard.ingest_inventory` (pool `{data_api_pool}`), "
    "which ingests each dealer as soon as its pull has staged it (it lets its slot go while there is "
    "nothing to ingest: `up_for_reschedule`) → `summarize_run`, which fails the run when more than "
    "`max_failure_rate` of the dealers failed. "
    "Every dealer's outcome is its own row in the `job_executions` table and its own folded section of the "
    "shard's task log; a retry or clear of a shard re-does only the dealers that did not succeed in the run "
    "(clear the pull and the ingest of a shard together: a pull refuses to begin once its ingest has ended)."
)
#: What ``announce_changes`` does (``{uri}``: the platform's asset).
ANNOUNCE_DOC = (
    "Beside `summarize_run`, `announce_changes` emits the asset event `{uri}` (extra: run id, dealers "
    "changed, vehicles sent and delisted) when the run changed the Data API, and is skipped when it did not: "
    "DAGs scheduled on that asset (see `example_inventory_updated`) run on real changes only."
)


def params_doc(params: Mapping[str, Param]) -> str:
    """A Markdown list of the run parameters: name, trigger-form title (and section), description."""
    lines = []
    for name, param in params.items():
        section = param.schema.get("section")
        where = f", under {section}" if section else ""
        lines.append(f"- `{name}` ({param.schema['title']}{where}): {param.description}")
    return "\n".join(lines)


def inventory_doc_md(platform_id: str) -> str:
    """The platform DAG's documentation: the registry entry's paragraph, then what every platform DAG shares
    (the flow, the asset event, every param from ``inventory_params()``, a trigger command)."""
    platform = get_platform(platform_id)
    example = json.dumps({"dealer_id": "<id>"})
    return "\n\n".join(
        [
            f"### {platform.name} inventory (schedule `{platform_timing(platform.id).schedule}`, UTC)",
            platform.doc,
            FLOW_DOC.format(pool=platform.pool, data_api_pool=DATA_API_POOL),
            ANNOUNCE_DOC.format(uri=inventory_asset(platform.id).uri),
            "**Params** (the trigger form; `--conf` keys):\n\n" + params_doc(inventory_params()),
            f"`airflow dags trigger {platform.dag_id} --conf '{example}'`",
        ]
    )


OWNER = "open-dealer-data"
#: A task of the run (listing, summarizing) that does little and must never hang.
SMALL_TASK_TIMEOUT = timedelta(minutes=15)


def task_timeout(platform_id: str) -> timedelta:
    """How long one try of a shard task may run (``alert_rules.task_timeout_minutes``)."""
    return timedelta(minutes=task_timeout_minutes(platform_id))


def default_args(*, execution_timeout: timedelta) -> dict[str, Any]:
    """The default args every DAG of the project shares: owner, retries, and a bound on each task."""
    settings = get_settings()
    return {
        "owner": OWNER,
        "retries": settings.task_retries,
        "retry_delay": timedelta(seconds=settings.task_retry_delay_s),
        "retry_exponential_backoff": True,
        "execution_timeout": execution_timeout,
    }


def parsed_for_dags_test(argv: Sequence[str] | None = None) -> bool:
    """Whether this process is ``airflow dags test`` (``airflow`` or ``python -m airflow``).

    Airflow 3.3.2's ``dags test`` cannot finish a run of a DAG with a ``DeadlineAlert``: marking the run
    successful looks its in-memory alerts up as database ids (``can't adapt type 'dict'``), exits 1 and
    leaves the run ``running``. Without a scheduler a deadline never fires anyway, so DAGs parsed by that
    command go without it; the dag-processor, which is what the scheduler's deadlines come from, still
    parses them with it (``tests/e2e/test_deadline_alert.py`` proves the alert fires there).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    return any(args[i : i + 2] == ["dags", "test"] for i in range(len(args)))


def inventory_dag_kwargs(operator: type[PullInventoryOperator]) -> dict[str, Any]:
    """The ``@dag(...)`` arguments of the DAG of ``operator``'s platform, apart from its schedule."""
    platform = get_platform(operator.platform_id)
    settings = get_settings()
    return {
        "dag_id": platform.dag_id,
        "doc_md": inventory_doc_md(platform.id),
        "start_date": datetime(2026, 1, 1, tzinfo=UTC),
        "catchup": False,
        "max_active_runs": 1,
        "params": inventory_params(),
        "tags": ["inventory", platform.id],
        "deadline": (
            long_run_deadline(platform.id)
            if settings.long_run_alerts and not parsed_for_dags_test()
            else None
        ),
        "default_args": default_args(execution_timeout=task_timeout(platform.id)),
    }


def inventory_tasks(operator: type[PullInventoryOperator]) -> None:
    """Wire the inventory pipeline of ``operator``'s platform, pulling with ``operator``, into the DAG being
    defined."""
    platform = get_platform(operator.platform_id)
    settings = get_settings()

    dealers = ListDealersOperator(
        task_id=LIST_DEALERS_TASK_ID,
        platform=platform.id,
        pool=PAYLOAD_CMS_POOL,
        execution_timeout=SMALL_TASK_TIMEOUT,
        on_failure_callback=WebhookAlertNotifier(kind=AlertKind.SYSTEM, platform=platform.id),
    )

    @task_group(group_id=SHARD_GROUP)
    def per_shard(shard: dict[str, Any]) -> None:
        # Side by side, no edge: the ingest ingests each dealer as soon as the pull has staged it (see
        # od_scheduler.operators.ingest_feed); Airflow has no trigger rule that starts a task of a mapped
        # group before its upstream ends.
        operator(
            task_id=PULL_TASK,
            shard=shard,
            ingest_task_id=f"{SHARD_GROUP}.{INGEST_TASK}",
            pool=platform.pool,
            pool_slots=min(platform.dealers_in_flight, settings.dealers_per_task),
            execution_timeout=task_timeout(platform.id),
            map_index_template=SHARD_LABEL,
        )
        DataApiIngestOperator(
            task_id=INGEST_TASK,
            shard=shard,
            platform=platform.id,
            pull_task_id=f"{SHARD_GROUP}.{PULL_TASK}",
            pool=DATA_API_POOL,
            pool_slots=min(settings.ingest_dealers_in_flight, settings.dealers_per_task),
            execution_timeout=task_timeout(platform.id),
            map_index_template=SHARD_LABEL,
        )

    summary = SummarizeRunOperator(
        task_id="summarize_run",
        platform=platform.id,
        max_failure_rate="{{ params.max_failure_rate }}",
        trigger_rule=TriggerRule.ALL_DONE,
        retries=0,
        execution_timeout=SMALL_TASK_TIMEOUT,
    )
    announce = AnnounceChangesOperator(
        task_id="announce_changes",
        platform=platform.id,
        trigger_rule=TriggerRule.ALL_DONE,
        execution_timeout=SMALL_TASK_TIMEOUT,
    )
    # Both after every shard, side by side: summarize_run stays a leaf, so its verdict is the run's.
    per_shard.expand(shard=dealers.output) >> [summary, announce]
