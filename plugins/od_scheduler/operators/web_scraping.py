"""WebScrapingInventoryOperator: scrape a dealer's website with its Apify actor, deferring while it runs.

``execute`` starts the dealer's actor run (``POST /v2/acts/<actor>/runs`` with ``{startUrls, dealerId,
maxItems}``) and defers to :class:`~od_scheduler.triggers.apify.ApifyRunTrigger`: the scrape can take many
minutes, and the task holds no worker slot (and no ``apify_api`` pool slot) while it waits. The trigger
resumes the task in ``execute_complete``, which

- reads the run's dataset and stages it when the run SUCCEEDED (items without a valid VIN are rejected
  and counted by reason, never repaired);
- fails the dealer, at once and without a task retry, when the run ended FAILED, TIMED-OUT or ABORTED,
  naming the run id and the status;
- aborts the run (``POST /v2/actor-runs/<id>/abort``) and fails the dealer when our own limit passed first:
  the dealer's ``web_scraping_config.max_wait_s``, else the ``apify_max_wait_s`` setting (1 hour).

The run id is in the task log from the start and in the dealer's ``job_executions`` row: in the error on
failure, in ``performance_metrics.apify_run_id`` always.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, NoReturn

from airflow.sdk import Context

from od_scheduler.clients.apify import ApifyClient, run_input
from od_scheduler.exceptions import (
    PayloadError,
    PermanentUpstreamError,
    RecordRejected,
    TransientUpstreamError,
    UpstreamError,
)
from od_scheduler.hooks.apify import ApifyHook
from od_scheduler.models.dealer import Dealer, WebScrapingConfig
from od_scheduler.models.web_scraping import ApifyRun
from od_scheduler.operators.pull import PullInventoryOperator, PullJob, PullOutcome, PullStream
from od_scheduler.settings import get_settings
from od_scheduler.triggers.apify import ERROR, FINISHED, TIMEOUT, ApifyRunTrigger

#: Airflow's own deferral timeout is only a backstop behind the trigger's deadline: this much later.
DEFER_GRACE_S = 600
#: Polls that Apify answers early without a final status are spaced at least this far apart.
POLL_INTERVAL_S = 1.0


def merge_metrics(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """Request counters of several clients added up key by key (non-numbers: the last one wins)."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            previous = merged.get(key)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and isinstance(previous, int | float) and not isinstance(previous, bool):
                merged[key] = round(previous + value, 3) if isinstance(value, float) else previous + value
            else:
                merged[key] = value
    return merged


class WebScrapingInventoryOperator(PullInventoryOperator):
    """Starts the dealer's Apify actor, waits for it in the triggerer, then stages its dataset."""

    platform_id = "web_scraping"

    def _config(self, dealer: Dealer) -> WebScrapingConfig:
        config = dealer.config_for(self.platform_id)
        assert isinstance(config, WebScrapingConfig)
        return config

    @staticmethod
    def max_wait_s(config: WebScrapingConfig) -> int:
        """Our limit on the run: the dealer's ``max_wait_s``, else the ``apify_max_wait_s`` setting."""
        return config.max_wait_s or get_settings().apify_max_wait_s

    def execute(self, context: Context) -> dict[str, Any]:
        job = self.begin(context)
        with self.guarded(job):
            dealer = self.load_dealer(job.ref)
            config = self._config(dealer)
            max_wait = self.max_wait_s(config)
            with ApifyHook().get_client() as client:
                actor_input = run_input(
                    start_urls=config.start_urls, dealer_id=dealer.id, max_items=config.max_items
                )
                run = client.start_run(config.actor_id, actor_input)
                start_metrics = client.stats.as_metrics()
            self.log.info(
                "%s: started Apify actor %s: %s, dataset %s, %d start URL(s), maxItems %s; waiting up to %ds "
                "in the triggerer (no worker slot is held)",
                job.ref.label,
                config.actor_id,
                run.describe(),
                run.default_dataset_id,
                len(config.start_urls),
                config.max_items,
                max_wait,
            )
            job.history.progress(job.key, metrics={"apify_run_id": run.id})
            self.defer(
                trigger=ApifyRunTrigger(
                    run_id=run.id,
                    deadline=time.time() + max_wait,
                    dealer=job.ref.label,
                    wait_for_finish_s=get_settings().apify_wait_for_finish_s,
                    poll_interval_s=POLL_INTERVAL_S,
                    carry={
                        "actor_id": config.actor_id,
                        "dataset_id": run.default_dataset_id,
                        "max_wait_s": max_wait,
                        "start_metrics": start_metrics,
                    },
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=max_wait + DEFER_GRACE_S),
            )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resumed by the trigger: fail, abort, or read and stage the run's dataset."""
        job = self.resume(context)
        with self.guarded(job):
            if not isinstance(event, dict) or "status" not in event:
                raise PayloadError(f"{job.ref.label}: resumed without an Apify trigger event ({event!r})")
            run_id = str(event.get("run_id"))
            carry: dict[str, Any] = dict(event.get("carry") or {})
            actor = carry.get("actor_id", "?")
            run = ApifyRun.model_validate(event["run"]) if event.get("run") else None
            # Start request + the trigger's polls, recorded now so a failed dealer's row has them too.
            measured = merge_metrics(
                dict(carry.get("start_metrics") or {}),
                dict(event.get("metrics") or {}),
                {"polls": event.get("polls", 0), "wait_ms": int(float(event.get("waited_s") or 0) * 1000)},
            )
            job.history.progress(
                job.key, metrics={**measured, "apify_run_status": run.status if run else None}
            )
            if event["status"] == ERROR:
                message = f"Apify run {run_id} of actor {actor} could not be watched: {event.get('error')}"
                if event.get("permanent"):
                    raise PermanentUpstreamError(message)
                raise TransientUpstreamError(message)
            if event["status"] == TIMEOUT:
                self._abort(job, run_id, run, actor, int(carry.get("max_wait_s") or 0), measured)
            if event["status"] != FINISHED or run is None:
                raise PayloadError(f"Apify run {run_id}: unexpected trigger event status {event['status']!r}")
            self.log.info(
                "%s: Apify %s after %d poll(s) over %.0fs",
                job.ref.label,
                run.describe(),
                measured["polls"],
                measured["wait_ms"] / 1000,
            )
            if not run.succeeded:
                raise PermanentUpstreamError(
                    f"Apify {run.describe()} of actor {actor}: only SUCCEEDED runs are pulled, so nothing "
                    f"was staged for this dealer. See run {run.id} in the Apify console for why it ended "
                    f"{run.status}."
                )
            if not run.default_dataset_id:
                raise PayloadError(f"Apify run {run.id} SUCCEEDED but names no defaultDatasetId")
            dealer = self.load_dealer(job.ref)
            config = self._config(dealer)
            with ApifyHook().get_client() as client:
                result = self.stage(
                    job, dealer, self._read_dataset(client, run, config, dealer, measured), context
                )
        return result

    def _abort(
        self,
        job: PullJob,
        run_id: str,
        last: ApifyRun | None,
        actor: str,
        max_wait: int,
        measured: Mapping[str, Any],
    ) -> NoReturn:
        """Our limit passed first: abort the run, then fail the dealer (permanently) saying so."""
        last_status = last.status if last else "unknown"
        self.log.warning(
            "%s: Apify run %s of actor %s still %s after our limit of %ds; aborting it",
            job.ref.label,
            run_id,
            actor,
            last_status,
            max_wait,
        )
        with ApifyHook().get_client() as client:
            try:
                after = client.abort_run(run_id).status
                self.log.warning("%s: abort of Apify run %s accepted: now %s", job.ref.label, run_id, after)
                outcome = f"aborted it (status now {after})"
            except (UpstreamError, PayloadError) as err:
                self.log.error("%s: aborting Apify run %s failed: %s", job.ref.label, run_id, err)
                outcome = f"the abort request failed ({err}); abort it in the Apify console"
            job.history.progress(job.key, metrics=merge_metrics(measured, client.stats.as_metrics()))
        raise PermanentUpstreamError(
            f"Apify run {run_id} of actor {actor} did not finish within our limit of {max_wait}s "
            f"(last status {last_status}); {outcome}. If this dealer's scrape needs longer, raise max_wait_s "
            "in its web_scraping_config or the apify_max_wait_s setting."
        )

    def _read_dataset(
        self,
        client: ApifyClient,
        run: ApifyRun,
        config: WebScrapingConfig,
        dealer: Dealer,
        prior_metrics: Mapping[str, Any],
    ) -> PullStream:
        base_url = config.start_urls[0]
        assert run.default_dataset_id is not None
        for raw in client.iter_items(run.default_dataset_id, max_items=config.max_items):
            try:
                yield raw.to_vehicle(dealer_id=dealer.id, base_url=base_url)
            except RecordRejected as rejected:
                yield rejected
        report = client.report
        return PullOutcome(
            complete=report.complete,
            notes=list(report.notes),
            metrics={**merge_metrics(prior_metrics, client.stats.as_metrics()), "apify_run_id": run.id},
        )
