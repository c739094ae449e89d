"""DataApiIngestOperator: send a dealer's staged vehicles to the Open Dealer Data API.

Vehicles are sorted by VIN and cut into batches of at most ``ingest_batch_size`` (≤ 500). Each batch
carries a deterministic ``Idempotency-Key`` derived from the run, dealer, platform, batch position and
the batch's content, so a retried task re-sends byte-identical batches under the same keys and the Data
API applies each once. A 413 splits the batch in halves (each half then has its own key). Per-VIN
rejections are partial success: counted by reason and logged, never retried.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from od_scheduler.clients.data_api import DataApiClient
from od_scheduler.exceptions import BatchTooLarge, PayloadError
from od_scheduler.hooks.data_api import DataApiHook
from od_scheduler.hooks.job_history import JobHistoryHook
from od_scheduler.models.job import IngestResult, JobStatus, PullResult
from od_scheduler.models.vehicle import Vehicle
from od_scheduler.operators.job_tracking import dealer_ref, execution_key, failing_job
from od_scheduler.platforms import get_platform
from od_scheduler.settings import get_settings
from od_scheduler.staging import ObjectStoragePath, read_vehicles

#: How many per-VIN API rejections are logged one by one.
MAX_LOGGED_API_ERRORS = 20


def idempotency_key(scope: str, position: str, vehicles: Sequence[dict[str, Any]]) -> str:
    """Stable key for one batch: same run, dealer, position and content -> same key."""
    digest = hashlib.sha256(scope.encode())
    digest.update(position.encode())
    for vehicle in vehicles:
        digest.update(json.dumps(vehicle, sort_keys=True, separators=(",", ":")).encode())
    return "od-" + digest.hexdigest()[:48]


class DataApiIngestOperator(BaseOperator):
    """Ingest one dealer's staged pull into the Data API and close its job-history row."""

    template_fields = ("dealer", "pull")
    ui_color = "#e9f7ef"

    def __init__(self, *, dealer: Any, pull: Any, platform: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dealer = dealer
        self.pull = pull
        self.platform = platform

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
            result, stats = self._ingest(
                pulled, scope=f"{key.dag_id}|{key.run_id}|{platform.id}|{ref.dealer_id}"
            )
            history.progress(
                key,
                processed=result.vehicles_processed,
                rejected=pulled.vehicles_rejected + result.vehicles_rejected,
                metrics={
                    "ingest_ms": int((time.monotonic() - started) * 1000),
                    "vehicles_sent": result.vehicles_sent,
                    "batches": result.batches,
                    "api_rejects": result.api_errors,
                    "ingest_api_calls": stats["api_calls"],
                    "ingest_retries": stats["retries"],
                    "ingest_rate_limits_hit": stats["rate_limits_hit"],
                },
            )
            if pulled.state:
                # Only now is it safe to advance per-source state (e.g. the ETag of this pull).
                history.set_state(pulled.dealer_id, pulled.platform, pulled.state)
            history.finish(key, JobStatus.SUCCESS)
        self.log.info(
            "%s: sent %d vehicle(s) in %d batch(es); Data API processed %d, rejected %d %s",
            ref.label,
            result.vehicles_sent,
            result.batches,
            result.vehicles_processed,
            result.vehicles_rejected,
            result.api_errors or "",
        )
        return result.model_dump(mode="json")

    def _ingest(self, pulled: PullResult, *, scope: str) -> tuple[IngestResult, dict[str, Any]]:
        vehicles: list[Vehicle] = []
        if pulled.staging_path:
            vehicles = list(read_vehicles(ObjectStoragePath(pulled.staging_path), checksum=pulled.checksum))
        if len(vehicles) != pulled.vehicles_staged:
            raise PayloadError(
                f"staged file holds {len(vehicles)} vehicles but the pull staged {pulled.vehicles_staged}"
            )
        vehicles.sort(key=lambda v: v.vin)
        bodies = [v.to_api() for v in vehicles]
        size = get_settings().ingest_batch_size
        counters = {"processed": 0, "batches": 0}
        api_errors: Counter[str] = Counter()
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
                )
                self.log.info(
                    "Ingest %s: %d/%d vehicle(s) sent, %d processed so far",
                    pulled.dealer_id,
                    min(start + size, len(bodies)),
                    len(bodies),
                    counters["processed"],
                )
            stats = client.stats.as_metrics()
        result = IngestResult(
            dealer_id=pulled.dealer_id,
            platform=pulled.platform,
            vehicles_sent=len(bodies),
            vehicles_processed=counters["processed"],
            vehicles_rejected=sum(api_errors.values()),
            batches=counters["batches"],
            api_errors=dict(api_errors),
        )
        return result, stats

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
            self._send(
                client,
                pulled,
                batch[:half],
                scope=scope,
                position=f"{position}a",
                counters=counters,
                api_errors=api_errors,
            )
            self._send(
                client,
                pulled,
                batch[half:],
                scope=scope,
                position=f"{position}b",
                counters=counters,
                api_errors=api_errors,
            )
            return
        counters["batches"] += 1
        counters["processed"] += response.processed
        for error in response.errors:
            api_errors[error.error] += 1
            if sum(api_errors.values()) <= MAX_LOGGED_API_ERRORS:
                self.log.warning("Data API rejected VIN %s: %s", error.vin, error.error)
