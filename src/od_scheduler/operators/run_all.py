"""``inventory_run_all``: trigger the platform DAGs a request names (the old ``POST /api/jobs/run``).

``PlanRunAllOperator`` resolves the request into one trigger per platform DAG — every platform, the one
asked for, or, with only a ``dealer_id``, the platforms that dealer is on — and checks a named dealer
exists and is active on them before anything is triggered. Its output feeds a mapped
``TriggerDagRunOperator``; ``ReportRunsOperator`` logs and returns the triggered run ids.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, Context, Param
from airflow.sdk.exceptions import AirflowFailException

from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import as_flag, optional_text
from od_scheduler.operators.list_dealers import check_conf, declared_params
from od_scheduler.platforms import PLATFORMS, get_platform
from od_scheduler.staging import safe_component

#: The task id of ``PlanRunAllOperator`` in ``inventory_run_all``: ``ReportRunsOperator`` reads its plan.
PLAN_RUNS_TASK_ID = "plan_runs"


def run_all_params() -> dict[str, Param]:
    """Typed params of ``inventory_run_all``; an unknown platform is refused at trigger time."""
    return {
        "platform": Param(
            None,
            type=["null", "string"],
            enum=[None, *sorted(PLATFORMS)],
            title="Platform",
            description="Platform id to run; empty: every platform (or, with dealer_id, the dealer's).",
        ),
        "dealer_id": Param(
            None,
            type=["null", "string"],
            minLength=1,
            title="Dealer id",
            description=(
                "Run only this dealer, by its PayloadCMS dealer id. Find the id by name or slug under "
                "Browse > Inventory status > Dealers, or "
                "GET /od-scheduler/api/dealers?q=ford (part of a name)."
            ),
        ),
        "force": Param(
            True,
            type="boolean",
            title="Force",
            description="Pull selected dealers whether or not they are due.",
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            title="Full refresh",
            description="Pull each dealer's whole inventory and send every vehicle, changed or not.",
        ),
    }


def paused_dags(context: Context, dag_ids: list[str]) -> list[str]:
    """Which of ``dag_ids`` are paused (a run triggered for a paused DAG waits, queued, until unpaused)."""
    ti = context["ti"]
    return [dag_id for dag_id in dag_ids if ti.get_dag(dag_id).is_paused]


class PlanRunAllOperator(BaseOperator):
    """Resolve a run-all request into ``TriggerDagRunOperator`` kwargs, one per platform DAG."""

    template_fields = ("platform", "dealer_id", "force", "full_refresh")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        platform: Any = None,
        dealer_id: Any = None,
        force: Any = True,
        full_refresh: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.platform = platform
        self.dealer_id = dealer_id
        self.force = force
        self.full_refresh = full_refresh

    def execute(self, context: Context) -> list[dict[str, Any]]:
        try:
            check_conf(context["dag_run"].conf, declared_params(self))
            platform = optional_text(self.platform)
            dealer_id = optional_text(self.dealer_id)
            platforms = [get_platform(platform).id] if platform else sorted(PLATFORMS)
        except ConfigError as err:  # an unknown conf key or platform
            raise AirflowFailException(str(err)) from err
        if dealer_id:
            dealer = self._find_dealer(dealer_id)
            on = [p for p in dealer.platforms if p in PLATFORMS]
            if platform and platform not in dealer.platforms:
                raise AirflowFailException(
                    f"dealer {dealer.name} ({dealer_id}) is not on platform {platform!r}; it is on: "
                    f"{', '.join(dealer.platforms) or 'no platform'}"
                )
            platforms = [platform] if platform else on
            if not platforms:
                raise AirflowFailException(
                    f"dealer {dealer.name} ({dealer_id}) is on no platform this project runs"
                )
        conf = {
            "dealer_id": dealer_id,
            "force": as_flag(self.force),
            "full_refresh": as_flag(self.full_refresh),
        }
        stamp = safe_component(context["run_id"])
        plan = [
            {
                "trigger_dag_id": get_platform(p).dag_id,
                "trigger_run_id": f"run_all__{stamp}__{safe_component(p)}",
                "conf": conf,
            }
            for p in platforms
        ]
        for item in plan:
            self.log.info(
                "Will trigger %s as run %s with conf %s", item["trigger_dag_id"], item["trigger_run_id"], conf
            )
        paused = paused_dags(context, [get_platform(p).dag_id for p in platforms])
        for dag_id in paused:
            self.log.warning(
                "%s is paused: the run triggered for it stays queued until it is unpaused "
                "(airflow dags unpause %s, or the toggle in the UI)",
                dag_id,
                dag_id,
            )
        context["ti"].xcom_push(key="paused", value=paused)
        return plan

    def _find_dealer(self, dealer_id: str) -> Dealer:
        try:
            listing = PayloadCmsHook().read_dealers(platform=None, dealer_id=dealer_id)
        except (PermanentUpstreamError, PayloadError) as err:
            raise AirflowFailException(f"PayloadCMS dealer lookup failed: {err}") from err
        if listing.invalid:
            raise AirflowFailException(
                f"dealer {dealer_id} has an invalid CMS document: {listing.invalid[0].error}"
            )
        if not listing.dealers:
            raise AirflowFailException(f"dealer_id {dealer_id!r} is not an active dealer in PayloadCMS")
        return listing.dealers[0]


class ReportRunsOperator(BaseOperator):
    """Log and return the platform DAG runs that were triggered: ``{dag_id: run_id}``."""

    ui_color = "#f4ecf7"

    def execute(self, context: Context) -> dict[str, str]:
        plan = context["ti"].xcom_pull(task_ids=PLAN_RUNS_TASK_ID) or []
        runs = {item["trigger_dag_id"]: item["trigger_run_id"] for item in plan}
        paused = set(context["ti"].xcom_pull(task_ids=PLAN_RUNS_TASK_ID, key="paused") or [])
        for dag_id, run_id in runs.items():
            if dag_id in paused:
                self.log.warning(
                    "Triggered %s: run %s, QUEUED until %s is unpaused (airflow dags unpause %s)",
                    dag_id,
                    run_id,
                    dag_id,
                    dag_id,
                )
            else:
                self.log.info("Triggered %s: run %s", dag_id, run_id)
        self.log.info(
            "%d platform DAG run(s) triggered%s",
            len(runs),
            f"; {len(paused)} of them wait for their paused DAG" if paused else "",
        )
        return runs
