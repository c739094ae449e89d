"""DataApiIngestOperator: send a dealer's staged pull to the Open Dealer Data API, as a delta.

1. **Delta.** Each staged vehicle's content hash is compared with its fingerprint (the last version the
   Data API accepted): only new, changed or previously delisted vehicles are sent; unchanged ones are
   counted (``vehicles_unchanged``) and not sent. ``full_refresh`` sends everything.
2. **Batches.** Vehicles are sorted by VIN and cut into batches of at most ``ingest_batch_size`` (≤ 500),
   each with a deterministic ``Idempotency-Key`` (run, dealer, platform, position, content): a retried
   task recomputes the same delta (fingerprints are only written after the posts) and re-sends
   byte-identical batches under the same keys, so the Data API applies each once. A 413 splits a batch.
3. **Fingerprints** are written only for vehicles the Data API accepted; per-VIN rejections keep their old
   fingerprint and are retried next run. Too many rejections (> ``max_reject_fraction``) fail the job.
4. **Delisting.** Only after a *full* pull: live fingerprints missing from the pull are delisted. A pull
   that is empty, or that dropped below ``1 - max_drop_fraction`` of the live count, is an *inventory
   anomaly*: nothing is delisted and the job fails naming both counts, unless ``force_delist``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context, ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException

from od_scheduler.clients.data_api import DataApiClient
from od_scheduler.exceptions import BatchTooLarge, PayloadError
from od_scheduler.hooks.data_api import DataApiHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.job import IngestResult, JobStatus, PullResult
from od_scheduler.models.vehicle import HASH_VERSION, Vehicle
from od_scheduler.operators.job_tracking import dealer_ref, execution_key, failing_job
from od_scheduler.platforms import get_platform
from od_scheduler.settings import get_settings
from od_scheduler.staging import read_vehicles

#: How many per-VIN API rejections are logged one by one.
MAX_LOGGED_API_ERRORS = 20
DELIST_BATCH = 500


def idempotency_key(scope: str, position: str, vehicles: Sequence[dict[str, Any]]) -> str:
    """Stable key for one batch: same run, dealer, position and content -> same key."""
    digest = hashlib.sha256(scope.encode())
    digest.update(position.encode())
    for vehicle in vehicles:
        digest.update(json.dumps(vehicle, sort_keys=True, separators=(",", ":")).encode())
    return "od-" + digest.hexdigest()[:48]


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def anomaly(pulled: int, live: int, max_drop_fraction: float) -> str | None:
    """Why a full pull of ``pulled`` vehicles must not delist from ``live`` ones, or None."""
    if live == 0:
        return None
    if pulled == 0:
        return f"inventory anomaly: the pull returned 0 vehicles but {live} are live at the Data API"
    floor = (1 - max_drop_fraction) * live
    if pulled < floor:
        return (
            f"inventory anomaly: the pull returned {pulled} vehicles but {live} are live at the Data API "
            f"(a {100 * (1 - pulled / live):.0f}% drop; max_drop_fraction {max_drop_fraction:g})"
        )
    return None


class DataApiIngestOperator(BaseOperator):
    """Ingest one dealer's staged pull into the Data API and close its job-history row."""

    template_fields = ("dealer", "pull", "full_refresh", "force_delist")
    ui_color = "#e9f7ef"

    def __init__(
        self,
        *,
        dealer: Any,
        pull: Any,
        platform: str,
        full_refresh: Any = False,
        force_delist: Any = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dealer = dealer
        self.pull = pull
        self.platform = platform
        self.full_refresh = full_refresh
        self.force_delist = force_delist

    def execute(self, context: Context) -> dict[str, Any]:
        platform = get_platform(self.platform)
        ref = dealer_ref(self.dealer)
        key = execution_key(context, ref, platform.id)
        try_number = int(context["ti"].try_number or 1)
        history = JobHistoryHook()

        with failing_job(history, key, what="Data API ingest", label=ref.label, try_number=try_number):
            if not self.pull:
                raise PayloadError("no pull result to ingest (the pull task returned nothing)")
            pulled = PullResult.model_validate(self.pull)
            started = time.monotonic()
            scope = f"{key.dag_id}|{key.run_id}|{platform.id}|{ref.dealer_id}"
            result, stats, problem = self._ingest(pulled, history, scope=scope)
            history.progress(
                key,
                processed=result.vehicles_processed,
                rejected=pulled.vehicles_rejected + result.vehicles_rejected,
                delisted=result.vehicles_delisted,
                metrics={
                    "ingest_ms": int((time.monotonic() - started) * 1000),
                    "vehicles_sent": result.vehicles_sent,
                    "vehicles_unchanged": result.vehicles_unchanged,
                    "batches": result.batches,
                    "api_rejects": result.api_errors,
                    "ingest_api_calls": stats["api_calls"],
                    "ingest_retries": stats["retries"],
                    "ingest_rate_limits_hit": stats["rate_limits_hit"],
                },
            )
            self.log.info(
                "%s: %d unchanged (not sent), sent %d in %d batch(es); Data API processed %d, "
                "rejected %d %s; delisted %d",
                ref.label,
                result.vehicles_unchanged,
                result.vehicles_sent,
                result.batches,
                result.vehicles_processed,
                result.vehicles_rejected,
                result.api_errors or "",
                result.vehicles_delisted,
            )
            if problem:
                raise AirflowFailException(problem)
            if pulled.state:
                # Only now is it safe to advance per-source state (e.g. the ETag of this pull).
                history.set_state(pulled.dealer_id, pulled.platform, pulled.state)
            history.finish(key, JobStatus.SUCCESS)
        return result.model_dump(mode="json")

    def _ingest(
        self, pulled: PullResult, history: JobHistoryHook, *, scope: str
    ) -> tuple[IngestResult, dict[str, Any], str | None]:
        settings = get_settings()
        vehicles: list[Vehicle] = []
        if pulled.staging_path:
            vehicles = list(read_vehicles(ObjectStoragePath(pulled.staging_path), checksum=pulled.checksum))
        if len(vehicles) != pulled.vehicles_staged:
            raise PayloadError(
                f"staged file holds {len(vehicles)} vehicles but the pull staged {pulled.vehicles_staged}"
            )
        vehicles.sort(key=lambda v: v.vin)
        known = history.fingerprints(pulled.dealer_id, pulled.platform)
        full_refresh = _flag(self.full_refresh)
        hashes = {v.vin: v.content_hash() for v in vehicles}
        to_send = [
            v for v in vehicles if full_refresh or known.get(v.vin) != (hashes[v.vin], HASH_VERSION, True)
        ]
        sending = {v.vin for v in to_send}
        unchanged = [v.vin for v in vehicles if v.vin not in sending]
        bodies = [v.to_api() for v in to_send]
        size = settings.ingest_batch_size
        counters = {"processed": 0, "batches": 0}
        api_errors: Counter[str] = Counter()
        rejected_vins: set[str] = set()
        delisted = 0
        problem: str | None = None
        with DataApiHook().get_client() as client:
            for start in range(0, len(bodies), size):
                self._send(
                    client,
                    pulled,
                    bodies[start : start + size],
                    scope=scope,
                    position=f"{start}",
                    counters=counters,
                    api_errors=api_errors,
                    rejected_vins=rejected_vins,
                )
                self.log.info(
                    "Ingest %s: %d/%d changed vehicle(s) sent, %d processed so far",
                    pulled.dealer_id,
                    min(start + size, len(bodies)),
                    len(bodies),
                    counters["processed"],
                )
            accepted = {v.vin: hashes[v.vin] for v in to_send if v.vin not in rejected_vins}
            history.record_accepted(pulled.dealer_id, pulled.platform, accepted, hash_version=HASH_VERSION)
            history.touch_seen(pulled.dealer_id, pulled.platform, unchanged)

            if bodies and len(rejected_vins) > settings.max_reject_fraction * len(bodies):
                problem = (
                    f"the Data API rejected {len(rejected_vins)} of {len(bodies)} vehicles sent "
                    f"(> max_reject_fraction {settings.max_reject_fraction:g}): {dict(api_errors)}"
                )
            if pulled.complete:
                live = {vin for vin, (_h, _v, is_live) in known.items() if is_live}
                gone = sorted(live - set(hashes))
                why = anomaly(len(hashes), len(live), settings.max_drop_fraction)
                if why and not _flag(self.force_delist):
                    self.log.error(
                        "%s; nothing delisted. If the lot really shrank, re-run with force_delist=true", why
                    )
                    problem = (
                        problem or f"{why}; nothing was delisted (re-run with force_delist=true if real)"
                    )
                elif gone:
                    delisted = self._delist(client, history, pulled, gone)
            else:
                self.log.info(
                    "Partial or unchanged pull (%s): nothing is delisted",
                    "; ".join(pulled.notes) or "not full",
                )
            stats = client.stats.as_metrics()
        result = IngestResult(
            dealer_id=pulled.dealer_id,
            platform=pulled.platform,
            vehicles_sent=len(bodies),
            vehicles_unchanged=len(unchanged),
            vehicles_processed=counters["processed"],
            vehicles_rejected=sum(api_errors.values()),
            vehicles_delisted=delisted,
            batches=counters["batches"],
            api_errors=dict(api_errors),
        )
        return result, stats, problem

    def _delist(
        self, client: DataApiClient, history: JobHistoryHook, pulled: PullResult, vins: list[str]
    ) -> int:
        """Delist VINs gone from a full pull, in batches; fingerprints marked per accepted batch."""
        total = 0
        for start in range(0, len(vins), DELIST_BATCH):
            chunk = vins[start : start + DELIST_BATCH]
            total += client.delist(dealer_id=pulled.dealer_id, source=pulled.platform, vins=chunk)
            history.mark_delisted(pulled.dealer_id, pulled.platform, chunk)
        self.log.info("Delisted %d vehicle(s) no longer on the lot: %s", total, ", ".join(vins[:20]))
        return total

    def _send(
        self,
        client: DataApiClient,
        pulled: PullResult,
        batch: list[dict[str, Any]],
        *,
        scope: str,
        position: str,
        counters: dict[str, int],
        api_errors: Counter[str],
        rejected_vins: set[str],
    ) -> None:
        """Post one batch; on 413 split it in halves and post each (recursively)."""
        key = idempotency_key(scope, position, batch)
        try:
            response = client.post_batch(
                dealer_id=pulled.dealer_id, source=pulled.platform, vehicles=batch, idempotency_key=key
            )
        except BatchTooLarge:
            if len(batch) == 1:
                raise
            half = len(batch) // 2
            self.log.warning("Data API answered 413 for %d vehicles: splitting the batch", len(batch))
            for part, sub in (("a", batch[:half]), ("b", batch[half:])):
                self._send(
                    client,
                    pulled,
                    sub,
                    scope=scope,
                    position=f"{position}{part}",
                    counters=counters,
                    api_errors=api_errors,
                    rejected_vins=rejected_vins,
                )
            return
        counters["batches"] += 1
        counters["processed"] += response.processed
        for error in response.errors:
            api_errors[error.error] += 1
            if error.vin:
                rejected_vins.add(error.vin)
            if sum(api_errors.values()) <= MAX_LOGGED_API_ERRORS:
                self.log.warning("Data API rejected VIN %s: %s", error.vin, error.error)
