"""ListDealersOperator: which dealers this run pulls, from PayloadCMS and the job history.

Returns a list of small ``DealerRef`` dicts (identity only; never credentials, since XCom stores values
in clear). Every active dealer of the platform is considered; the due-ness and hold rules of
``od_scheduler.scheduling`` decide which are pulled, and the log says how many were active, due and
held back, and why. A CMS document that fails validation is kept, with its error, so that dealer's pull
fails visibly instead of the dealer silently disappearing from the schedule. The selection's counts are
also pushed as the XCom ``selection`` for ``summarize_run``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.configuration import conf
from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException

from od_scheduler.exceptions import ConfigError, PayloadError, PermanentUpstreamError
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.hooks.payload_cms import PayloadCmsHook
from od_scheduler.models.dealer import Dealer, InvalidDealer
from od_scheduler.models.job import DealerRef, RunParams, plan_shards
from od_scheduler.platforms import get_platform
from od_scheduler.scheduling import select_dealers
from od_scheduler.settings import get_settings

#: The task id of ``ListDealersOperator`` in a platform DAG: ``summarize_run`` reads the run's shards from it.
LIST_DEALERS_TASK_ID = "list_dealers"

#: Run types that always pull every selected dealer: a backfill asks for its windows explicitly.
FORCED_RUN_TYPES = ("backfill",)


def declared_params(task: BaseOperator) -> list[str]:
    """The param names a task's DAG (and the task itself) declare, before any conf is merged in.

    ``context["params"]`` cannot tell: it already holds the run's conf, unknown keys included.
    """
    names = set(task.dag.params) if task.has_dag() else set()
    return sorted(names | set(task.params or {}))


def check_conf(conf: Mapping[str, Any] | None, declared: Iterable[str]) -> None:
    """Reject conf keys the DAG does not declare: a typo (``dealer-id``) must not widen a run to everyone."""
    accepted = sorted(declared)
    unknown = sorted(set(conf or {}) - set(accepted))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in the run's conf: {', '.join(unknown)}; the run stops here, before any work. "
            f"This DAG accepts: {', '.join(accepted)}"
        )


def max_map_length() -> int:
    """Airflow's ``[core] max_map_length``: a mapped task with more instances fails the whole run."""
    return conf.getint("core", "max_map_length", fallback=1024)


class ListDealersOperator(BaseOperator):
    """List the dealers of one platform this run pulls (or the one ``dealer_id`` it asks for), cut into
    shards: the mapped pull and ingest tasks each work on one shard."""

    ui_color = "#e8f4fd"

    def __init__(self, *, platform: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform = platform

    def execute(self, context: Context) -> list[dict[str, Any]]:
        platform = get_platform(self.platform)
        dag_run = context["dag_run"]
        try:
            check_conf(dag_run.conf, declared_params(self))
        except ConfigError as err:
            raise AirflowFailException(str(err)) from err
        params = RunParams.of(context["params"])
        dealer_id = params.dealer_id
        raw_type = getattr(dag_run, "run_type", None)
        run_type = str(getattr(raw_type, "value", raw_type) or "").lower()
        force = params.force or run_type in FORCED_RUN_TYPES

        dealers, invalid = self._fetch(platform.id, dealer_id)
        if dealer_id and not dealers and not invalid:
            raise AirflowFailException(
                f"dealer_id {dealer_id!r} is not an active {platform.name} dealer in PayloadCMS "
                "(unknown id, inactive, or not on this platform)"
            )
        settings = get_settings()
        history = JobHistoryHook()
        if dealer_id is None:
            self._check_listing(
                history, platform.id, platform.name, len(dealers) + len(invalid), params.force
            )
        # Names beside ids on the status page, in the status API and in alerts (one statement per listing).
        history.directory.remember_dealers([*dealers, *invalid], platform=platform.id)
        histories = history.executions.dealer_histories(platform.id, [d.id for d in dealers])
        selection = select_dealers(
            dealers,
            histories,
            now=datetime.now(UTC),
            default_interval_minutes=platform.default_interval_minutes,
            force=force,
            hold_after_failures=settings.hold_after_failures,
            grace=timedelta(minutes=settings.due_grace_minutes),
            explicit=dealer_id is not None,
        )
        by_id = {d.id: d for d in dealers}
        refs = [DealerRef.of(by_id[i], platform.id) for i in selection.selected]
        refs += [DealerRef.of(doc, platform.id) for doc in invalid]
        duplicates = [d for d, n in Counter(r.dealer_id for r in refs).items() if n > 1]
        if duplicates:
            raise AirflowFailException(f"PayloadCMS returned dealer id(s) more than once: {duplicates}")

        self.log.info(
            "%s%s: %d active dealer(s)%s; %d due and selected, %d not due, %d held back (%s run%s)",
            platform.name,
            f" dealer_id={dealer_id}" if dealer_id else "",
            selection.active + len(invalid),
            f" ({len(invalid)} with an invalid CMS document, pulled to fail visibly)" if invalid else "",
            len(selection.selected),
            len(selection.not_due),
            len(selection.held),
            run_type or "unknown",
            ", force" if force else "",
        )
        for held_id, reason in selection.held.items():
            self.log.warning("Held back %s: %s", by_id[held_id].name, reason)
        for skipped_id, reason in list(selection.not_due.items())[:50]:
            self.log.info("Skipped %s: %s", by_id[skipped_id].name, reason)
        context["ti"].xcom_push(key="selection", value={**selection.as_dict(), "invalid": len(invalid)})
        shards = plan_shards(
            refs,
            dealers_per_task=settings.dealers_per_task,
            max_shards=max_map_length(),
            min_shards=settings.min_shards,
        )
        if shards:
            self.log.info(
                "%d dealer(s) in %d shard(s) of up to %d (dealers_per_task %d, max_map_length %d)",
                len(refs),
                len(shards),
                max(len(s.dealers) for s in shards),
                settings.dealers_per_task,
                max_map_length(),
            )
        return [s.model_dump(mode="json") for s in shards]

    def _check_listing(
        self, history: JobHistoryHook, platform_id: str, name: str, listed: int, force: bool
    ) -> None:
        """A platform that had dealers and now lists none fails the run (and alerts, through this task's
        failure callback) unless ``force`` accepts the empty answer; otherwise the count is remembered."""
        previous = history.directory.last_listing(platform_id)
        if listed == 0 and previous and not force:
            # Wrapping the PayloadError makes it a system alert (a refusal alone would not alert).
            empty = PayloadError(
                f"PayloadCMS lists no active {name} dealer, but its last listing had {previous}"
            )
            raise AirflowFailException(
                f"{empty}: nothing is pulled and this run fails rather than going green. Check the CMS (its "
                "dealers collection, their status and platforms, the od_payload_cms API key). If every "
                f"{name} dealer really left, trigger a run with force=true to accept the empty listing."
            ) from empty
        if listed == 0 and previous:
            self.log.warning(
                "PayloadCMS lists no active %s dealer (the last listing had %d): accepted (force is set)",
                name,
                previous,
            )
        history.directory.record_listing(platform_id, listed)

    def _fetch(self, platform_id: str, dealer_id: str | None) -> tuple[list[Dealer], list[InvalidDealer]]:
        try:
            listing = PayloadCmsHook().read_dealers(platform=platform_id, dealer_id=dealer_id)
        except (PermanentUpstreamError, PayloadError) as err:
            raise AirflowFailException(f"PayloadCMS dealer listing failed: {err}") from err
        for doc in listing.invalid:
            self.log.error(
                "Dealer %s (%s) has an invalid CMS document and will fail this run: %s",
                doc.id,
                doc.name,
                doc.error,
            )
        self.log.info(
            "PayloadCMS: %d API call(s), %d retries, %d rate-limited",
            listing.stats.api_calls,
            listing.stats.retries,
            listing.stats.rate_limits_hit,
        )
        return listing.dealers, listing.invalid
