"""WebScrapingInventoryOperator: scrape a dealer's website with its Apify actor, deferring while it runs.

One actor run per dealer per DAG run: ``execute`` resumes or adopts the run an earlier try of this DAG run
started (recorded on the dealer's ``job_executions`` row) before it starts one, sent at most once, then the
shard defers to :class:`~od_scheduler.triggers.apify.ApifyShardTrigger`. ``execute_complete`` stages the
dataset of a SUCCEEDED run, fails the dealer for any other end, and aborts a run past our own limit; a
killed task aborts its runs. The run id is in the log and in ``performance_metrics.apify_run_id``. The
rules and why: docs/design.md, "Web scraping (Apify runs)".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from airflow.sdk import Context
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowNotFoundException,
    TaskDeferralError,
    TaskDeferralTimeout,
)

from od_scheduler.alert_rules import dealer_deadline_s
from od_scheduler.clients.apify import AmbiguousStartError, ApifyClient, run_input
from od_scheduler.exceptions import (
    OdSchedulerError,
    PayloadError,
    PermanentUpstreamError,
    RecordRejected,
    TransientUpstreamError,
    UpstreamError,
)
from od_scheduler.hooks.apify import ApifyHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.dealer import Dealer
from od_scheduler.models.job import DealerRef, JobExecution, RunParams, Shard
from od_scheduler.models.normalize import parse_datetime
from od_scheduler.models.web_scraping import ApifyRun, WebScrapingConfig
from od_scheduler.operators.pull import (
    DealerDocs,
    PullInventoryOperator,
    PullJob,
    PullOutcome,
    PullStream,
)
from od_scheduler.operators.shard import DealerOutcome, DealerWaits, finish_shard, run_dealers
from od_scheduler.platforms import WEB_SCRAPING
from od_scheduler.settings import get_settings
from od_scheduler.triggers.apify import ERROR, FINISHED, TIMEOUT, ApifyShardTrigger

#: Airflow's own deferral timeout is only a backstop behind the trigger's deadline: this much later.
DEFER_GRACE_S = 600
#: Polls that Apify answers early without a final status are spaced at least this far apart.
POLL_INTERVAL_S = 1.0
#: An abort sent while the task is being killed must be quick: Airflow will not wait long.
ABORT_TIMEOUT_S = 10.0
ABORT_ATTEMPTS = 2

#: ``performance_metrics`` keys that make this DAG run's actor run durable across task tries.
RUN_ID_KEY = "apify_run_id"
START_SENT_KEY = "apify_start_sent_at"
REPLACED_KEY = "apify_replaced_run_ids"
#: Statuses of a recorded run that a later try resumes (waits for, or reads at once when SUCCEEDED).
RESUMABLE_STATUSES = frozenset({"READY", "RUNNING", "SUCCEEDED"})


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


@dataclass(frozen=True)
class RecordedRun:
    """What earlier tries of this DAG run recorded about the dealer's actor run."""

    run_id: str | None = None
    start_sent_at: datetime | None = None
    replaced: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: JobExecution | None) -> RecordedRun:
        """Read from the dealer's ``job_executions`` row (``None``: nothing recorded yet)."""
        metrics = row.performance_metrics if row is not None else {}
        run_id = metrics.get(RUN_ID_KEY)
        replaced = metrics.get(REPLACED_KEY)
        return cls(
            run_id=str(run_id) if run_id else None,
            start_sent_at=parse_datetime(metrics.get(START_SENT_KEY)),
            replaced=tuple(str(r) for r in replaced) if isinstance(replaced, list) else (),
        )


class WebScrapingInventoryOperator(PullInventoryOperator):
    """Starts (or resumes) the Apify runs of a shard's dealers, waits for them in the triggerer (one
    deferral for the whole shard), then stages each dealer's dataset."""

    platform_id = WEB_SCRAPING.id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Runs this task instance works on while they are not finished, by dealer label (what ``on_kill``
        #: aborts). Filled from the dealers' threads.
        self._live_runs: dict[str, str] = {}
        self._live_lock = threading.Lock()

    def _config(self, dealer: Dealer) -> WebScrapingConfig:
        return dealer.config_for(WEB_SCRAPING)

    @staticmethod
    def max_wait_s(config: WebScrapingConfig) -> int:
        """Our limit on the run: the dealer's ``max_wait_s``, else the ``apify_max_wait_s`` setting."""
        return config.max_wait_s or get_settings().apify_max_wait_s

    @staticmethod
    def deadline(run: ApifyRun, max_wait: int) -> float:
        """Epoch seconds when our limit on ``run`` passes: ``max_wait`` after it started (never later than
        ``max_wait`` from now, should Apify's clock be ahead of ours)."""
        limit = time.time() + max_wait
        if run.started_at is None:
            return limit
        return min(limit, run.started_at.timestamp() + max_wait)

    def _track(self, job: PullJob, run: ApifyRun | None) -> None:
        """Remember the run ``on_kill`` must abort (none once it is finished)."""
        with self._live_lock:
            if run is not None and not run.finished:
                self._live_runs[job.ref.label] = run.id
            else:
                self._live_runs.pop(job.ref.label, None)

    def execute(self, context: Context) -> dict[str, Any]:
        shard = Shard.load(self.shard, self.platform_id)
        self.params_of_run = RunParams.of(context["params"])
        history = JobHistoryHook(reuse_connections=True)
        waits: dict[str, dict[str, Any]] = {}
        try:
            todo = self.dealers_to_pull(context, shard, history)
            docs = self.load_dealers(todo)
            outcomes = run_dealers(
                todo,
                lambda ref: self.start_dealer(context, ref, history, docs, waits),
                in_flight=self.pool_slots,
                log=self.log,
                what="Apify run start",
                deadline_s=dealer_deadline_s(self.platform_id),
            )
        finally:
            history.close()
        early = [o.as_dict() for o in outcomes if o.state != "waiting"]
        if not waits:
            return self._verdict(shard, early)
        runs = [waits[o.ref.dealer_id] for o in outcomes if o.ref.dealer_id in waits]
        longest = max(float(run["deadline"]) for run in runs) - time.time()
        self.log.info(
            "Waiting for %d Apify run(s) in the triggerer, up to %.0fs (no worker slot is held)",
            len(runs),
            max(longest, 0),
        )
        self.defer(
            trigger=ApifyShardTrigger(runs=runs),
            method_name="execute_complete",
            kwargs={"early": early},
            timeout=timedelta(seconds=max(longest, 0) + DEFER_GRACE_S),
        )

    def _verdict(self, shard: Shard, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
        by_id = {d.dealer_id: d for d in shard.dealers}
        ended = [
            DealerOutcome.from_dict(by_id[o["dealer_id"]], o) for o in outcomes if o["dealer_id"] in by_id
        ]
        return finish_shard(ended, what="web scraping pull", log=self.log)

    def start_dealer(
        self,
        context: Context,
        ref: DealerRef,
        history: JobHistoryHook,
        docs: DealerDocs,
        waits: dict[str, dict[str, Any]],
    ) -> dict[str, Any]:
        """Start (or find) the dealer's actor run; stage at once when it already succeeded, else add it to
        the shard's wait (``DealerWaits``)."""
        job = self.begin(context, ref, history)
        with self.guarded(job):
            dealer = self.dealer_document(ref, docs)
            config = self._config(dealer)
            max_wait = self.max_wait_s(config)
            actor_input = run_input(
                start_urls=config.start_urls, dealer_id=dealer.id, max_items=config.max_items
            )
            with ApifyHook().get_client() as client:
                run = self._find_or_start(job, client, config, actor_input)
                self._track(job, run)
                if run.succeeded:
                    # An earlier try's run already finished: read its dataset now, nothing to wait for.
                    self.log.info(
                        "%s: Apify %s (started by an earlier try of this DAG run): reading its dataset",
                        job.ref.label,
                        run.describe(),
                    )
                    measured = merge_metrics(client.stats.as_metrics(), {"polls": 0, "wait_ms": 0})
                    job.history.executions.progress(
                        job.key, metrics={**measured, "apify_run_status": run.status}
                    )
                    return self.stage(
                        job, dealer, self._read_dataset(client, run, config, dealer, {}), context
                    )
                start_metrics = client.stats.as_metrics()
            deadline = self.deadline(run, max_wait)
            self.log.info(
                "%s: Apify actor %s: %s, dataset %s, %d start URL(s), maxItems %s; waiting up to %.0fs "
                "in the triggerer",
                job.ref.label,
                config.actor_id,
                run.describe(),
                run.default_dataset_id,
                len(config.start_urls),
                config.max_items,
                max(deadline - time.time(), 0),
            )
            waits[ref.dealer_id] = {
                "run_id": run.id,
                "deadline": deadline,
                "dealer": job.ref.label,
                "wait_for_finish_s": get_settings().apify_wait_for_finish_s,
                "poll_interval_s": POLL_INTERVAL_S,
                "carry": {
                    "dealer_id": ref.dealer_id,
                    "actor_id": config.actor_id,
                    "dataset_id": run.default_dataset_id,
                    "max_wait_s": max_wait,
                    "start_metrics": start_metrics,
                },
            }
        raise DealerWaits(f"waiting for Apify run {run.id}")

    # -- one run per dealer per DAG run ------------------------------------------------------------
    def _find_or_start(
        self, job: PullJob, client: ApifyClient, config: WebScrapingConfig, actor_input: Mapping[str, Any]
    ) -> ApifyRun:
        """The run an earlier try of this DAG run started, if it can still serve; else a new one."""
        recorded = RecordedRun.of(job.history.executions.get(job.key))
        replaced = list(recorded.replaced)
        if recorded.run_id:
            run = self._current(job, client, recorded.run_id)
            if run is not None and run.status in RESUMABLE_STATUSES:
                self.log.info(
                    "%s: resuming Apify %s, started by an earlier try of this DAG run (no new run)",
                    job.ref.label,
                    run.describe(),
                )
                return run
            if run is not None:
                self.log.warning(
                    "%s: the recorded Apify %s ended without success; starting a new run",
                    job.ref.label,
                    run.describe(),
                )
            replaced.append(recorded.run_id)
        elif recorded.start_sent_at is not None:
            found = client.find_started_run(config.actor_id, actor_input, since=recorded.start_sent_at)
            if found is None:
                self.log.info(
                    "%s: the start an earlier try sent at %s started no run (none of actor %s's latest "
                    "runs since then has this dealer's input); starting one",
                    job.ref.label,
                    recorded.start_sent_at.isoformat(),
                    config.actor_id,
                )
            elif found.status in RESUMABLE_STATUSES:
                self.log.warning(
                    "%s: adopting Apify %s: an earlier try's start reached Apify but its answer was lost "
                    "(no new run)",
                    job.ref.label,
                    found.describe(),
                )
                job.history.executions.progress(job.key, metrics={RUN_ID_KEY: found.id, START_SENT_KEY: None})
                return found
            else:
                self.log.warning(
                    "%s: an earlier try's start created Apify %s, which ended without success; "
                    "starting a new run",
                    job.ref.label,
                    found.describe(),
                )
                replaced.append(found.id)
        return self._start(job, client, config, actor_input, replaced)

    def _current(self, job: PullJob, client: ApifyClient, run_id: str) -> ApifyRun | None:
        """The recorded run as Apify has it now; None when Apify no longer knows it (404)."""
        try:
            return client.get_run(run_id)
        except PermanentUpstreamError as err:
            if err.status_code != 404:
                raise
            self.log.warning(
                "%s: the recorded Apify run %s is unknown to Apify (%s); starting a new run",
                job.ref.label,
                run_id,
                err,
            )
            return None

    def _start(
        self,
        job: PullJob,
        client: ApifyClient,
        config: WebScrapingConfig,
        actor_input: Mapping[str, Any],
        replaced: list[str],
    ) -> ApifyRun:
        """Start the run, recording the time the start is sent before it and the run id right after."""
        sent_at = datetime.now(UTC)
        job.history.executions.progress(
            job.key, metrics={RUN_ID_KEY: None, START_SENT_KEY: sent_at.isoformat(), REPLACED_KEY: replaced}
        )
        try:
            run = client.start_run(config.actor_id, actor_input)
        except AmbiguousStartError:
            # ``apify_start_sent_at`` stays: the next try looks for the run before it starts one.
            raise
        except (UpstreamError, PayloadError):
            job.history.executions.progress(
                job.key, metrics={START_SENT_KEY: None}
            )  # certainly nothing started
            raise
        job.history.executions.progress(job.key, metrics={RUN_ID_KEY: run.id, START_SENT_KEY: None})
        self.log.info(
            "%s: started Apify actor %s: %s, dataset %s",
            job.ref.label,
            config.actor_id,
            run.describe(),
            run.default_dataset_id,
        )
        return run

    # -- killed, cleared, timed out: abort the runs ---------------------------------------------------
    def on_kill(self) -> None:
        """The task is being killed on the worker (SIGTERM, ``execution_timeout``): abort its live runs."""
        with self._live_lock:
            live = dict(self._live_runs)
        for label, run_id in live.items():
            self.log.warning("%s: task killed; aborting its Apify run %s", label, run_id)
            try:
                with ApifyHook().get_client(timeout=ABORT_TIMEOUT_S, max_attempts=ABORT_ATTEMPTS) as client:
                    after = client.abort_run(run_id)
            except (OdSchedulerError, AirflowNotFoundException) as err:
                self.log.error(
                    "%s: aborting Apify run %s failed (%s); abort it in the Apify console", label, run_id, err
                )
                continue
            with self._live_lock:
                self._live_runs.pop(label, None)
            self.log.warning("%s: abort of Apify run %s accepted: now %s", label, run_id, after.status)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the deferral; when Airflow's deferral timeout fired instead, abort the runs first."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout as err:
            return self._after_deferral_failure(context, next_kwargs, err, timed_out=True)
        except TaskDeferralError as err:
            # The trigger itself crashed: the runs go on upstream and the task retry resumes them.
            return self._after_deferral_failure(context, next_kwargs, err, timed_out=False)

    def _after_deferral_failure(
        self, context: Context, next_kwargs: dict[str, Any] | None, err: BaseException, *, timed_out: bool
    ) -> dict[str, Any]:
        """No event from the trigger: fail each waiting dealer (aborting its run on a timeout)."""
        shard = Shard.load(self.shard, self.platform_id)
        self.params_of_run = RunParams.of(context["params"])
        early = list((next_kwargs or {}).get("early") or [])
        ended = {o["dealer_id"] for o in early}
        waiting = [ref for ref in shard.dealers if ref.dealer_id not in ended]
        history = JobHistoryHook(reuse_connections=True)
        try:
            outcomes = run_dealers(
                waiting,
                lambda ref: self._fail_waiting(context, ref, history, err, timed_out=timed_out),
                in_flight=self.pool_slots,
                log=self.log,
                what="web scraping pull",
            )
        finally:
            history.close()
        return self._verdict(shard, [*early, *(o.as_dict() for o in outcomes)])

    def _fail_waiting(
        self,
        context: Context,
        ref: DealerRef,
        history: JobHistoryHook,
        err: BaseException,
        *,
        timed_out: bool,
    ) -> None:
        job = self.resume(context, ref, history)
        with self.guarded(job):
            if not timed_out:
                raise TransientUpstreamError(
                    f"{job.ref.label}: the Apify trigger failed ({err}); the run goes on, the next try "
                    "resumes it"
                ) from err
            run_id = RecordedRun.of(job.history.executions.get(job.key)).run_id
            if run_id is None:
                raise PermanentUpstreamError(
                    f"{job.ref.label}: the deferral timed out and no Apify run is recorded for this DAG run"
                ) from err
            self.log.warning(
                "%s: no word from the Apify trigger before Airflow's deferral timeout; aborting run %s",
                job.ref.label,
                run_id,
            )
            outcome = self._abort_run(job, run_id, {})
            raise PermanentUpstreamError(
                f"Apify run {run_id}: Airflow's deferral timeout passed without an event from the trigger "
                f"(is the triggerer running?); {outcome}."
            ) from err

    def _abort_run(self, job: PullJob, run_id: str, measured: Mapping[str, Any]) -> str:
        """Abort ``run_id`` from the worker; returns what happened, for the error message."""
        with ApifyHook().get_client() as client:
            try:
                after = client.abort_run(run_id).status
                self.log.warning("%s: abort of Apify run %s accepted: now %s", job.ref.label, run_id, after)
                outcome = f"aborted it (status now {after})"
            except (UpstreamError, PayloadError) as err:
                self.log.error("%s: aborting Apify run %s failed: %s", job.ref.label, run_id, err)
                outcome = f"the abort request failed ({err}); abort it in the Apify console"
            job.history.executions.progress(
                job.key, metrics=merge_metrics(measured, client.stats.as_metrics())
            )
        self._track(job, None)
        return outcome

    # -- resumed by the trigger ---------------------------------------------------------------------
    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, early: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Resumed by the trigger: per dealer, fail, abort, or read and stage its run's dataset."""
        shard = Shard.load(self.shard, self.platform_id)
        self.params_of_run = RunParams.of(context["params"])
        events = event.get("events") if isinstance(event, dict) else None
        if not isinstance(events, list):
            raise AirflowFailException(f"resumed without the shard trigger's events ({event!r})")
        by_dealer = {str((e.get("carry") or {}).get("dealer_id")): e for e in events if isinstance(e, dict)}
        waiting = [ref for ref in shard.dealers if ref.dealer_id in by_dealer]
        history = JobHistoryHook(reuse_connections=True)
        try:
            docs = self.load_dealers(waiting)
            outcomes = run_dealers(
                waiting,
                lambda ref: self.complete_dealer(context, ref, history, docs, by_dealer[ref.dealer_id]),
                in_flight=self.pool_slots,
                log=self.log,
                what="web scraping pull",
                deadline_s=dealer_deadline_s(self.platform_id),
            )
        finally:
            history.close()
        return self._verdict(shard, [*(early or []), *(o.as_dict() for o in outcomes)])

    def complete_dealer(
        self,
        context: Context,
        ref: DealerRef,
        history: JobHistoryHook,
        docs: DealerDocs,
        event: dict[str, Any],
    ) -> dict[str, Any]:
        """One dealer's run ended (or our limit passed): fail, abort, or read and stage its dataset."""
        job = self.resume(context, ref, history)
        with self.guarded(job):
            if "status" not in event:
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
            job.history.executions.progress(
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
            dealer = self.dealer_document(ref, docs)
            config = self._config(dealer)
            with ApifyHook().get_client() as client:
                return self.stage(
                    job, dealer, self._read_dataset(client, run, config, dealer, measured), context
                )

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
        outcome = self._abort_run(job, run_id, measured)
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
        if not run.default_dataset_id:
            raise PayloadError(f"Apify run {run.id} SUCCEEDED but names no defaultDatasetId")
        base_url = config.start_urls[0]
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
