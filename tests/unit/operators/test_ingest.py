"""The ingest's pure parts: 413 splitting, idempotency keys, the anomaly guard (the delta rules are in
tests/unit/test_delta.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from od_scheduler.clients.data_api import DataApiClient
from od_scheduler.delta import anomaly, idempotency_key
from od_scheduler.ingest_plan import IngestRules, plan_ingest
from od_scheduler.models.job import PullResult
from od_scheduler.models.vehicle import HASH_VERSION, Vehicle
from od_scheduler.models.vin import check_digit
from od_scheduler.operators.ingest import DataApiIngestOperator

pytestmark = pytest.mark.unit


def vehicles(n: int) -> list[dict]:
    return [{"vin": f"VIN{i:014d}", "make": "Ford"} for i in range(n)]


def valid_vin(serial: int) -> str:
    draft = f"1FTFW1E50P{serial:07d}"
    return draft[:8] + check_digit(draft) + draft[9:]


def test_a_413_splits_the_batch_until_it_fits_and_each_half_has_its_own_key() -> None:
    seen: list[tuple[int, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((len(body["vehicles"]), request.headers["Idempotency-Key"]))
        if len(body["vehicles"]) > 100:
            return httpx.Response(413, json={"error": "too large"})
        return httpx.Response(
            200,
            json={
                "success": True,
                "processed": len(body["vehicles"]),
                "dealer_id": "d",
                "source": "dealer.com",
                "errors": [],
            },
        )

    client = DataApiClient(base_url="http://data", api_key="k", transport=httpx.MockTransport(handler))
    op = DataApiIngestOperator(
        task_id="t", shard={"dealers": [{"dealer_id": "d"}], "label": "d"}, platform="dealer.com"
    )
    pulled = PullResult(
        dealer_id="d",
        platform="dealer.com",
        staging_path=None,
        checksum=None,
        vehicles_found=0,
        vehicles_staged=0,
        vehicles_rejected=0,
        complete=True,
    )
    cars = [Vehicle(vin=valid_vin(i), dealer_id="d", source="dealer.com", make="Ford") for i in range(300)]
    rules = IngestRules(
        batch_size=500,
        after_misses=2,
        max_drop_fraction=0.5,
        max_reject_fraction=0.2,
        hash_version=HASH_VERSION,
    )
    plan = plan_ingest(pulled, cars, {}, scope="s", run="dag/r", rules=rules)
    [batch] = plan.batches
    sent = op._post(client, pulled, plan, batch)
    assert [b.position for b in sent] == ["0aa", "0ab", "0ba", "0bb"]
    assert all(b.outcome.confirmed for b in sent)
    assert sum(len(b.outcome.accepted) for b in sent) == 300
    assert [n for n, _ in seen] == [300, 150, 75, 75, 150, 75, 75]
    keys = [k for _, k in seen]
    assert len(set(keys)) == len(keys)


def test_idempotency_keys_depend_on_run_position_content_and_stored_state_only() -> None:
    batch = vehicles(3)
    state = {v["vin"]: "new" for v in batch}
    key = idempotency_key("run1|d", "0", batch, state)
    assert key == idempotency_key("run1|d", "0", [dict(v) for v in batch], dict(state))
    assert key == idempotency_key("run1|d", "0", batch, {}), "a VIN the job history does not know is new"
    assert key != idempotency_key("run2|d", "0", batch, state)
    assert key != idempotency_key("run1|d", "500", batch, state)
    assert key != idempotency_key("run1|d", "0", batch[:2], state)
    changed = {**state, batch[1]["vin"]: "abc:1:live:3"}
    assert key != idempotency_key("run1|d", "0", batch, changed)


@pytest.mark.parametrize(
    ("pulled", "live", "expected"),
    [
        (0, 0, None),
        (10, 0, None),
        (0, 80, "the pull returned 0 vehicles but 80 are live"),
        (24, 80, "the pull returned 24 vehicles but 80 are live at the Data API (a 70% drop"),
        (40, 80, None),
        (75, 80, None),
    ],
)
def test_anomaly_guard(pulled: int, live: int, expected: str | None) -> None:
    why = anomaly(pulled, live, 0.5)
    assert (why is None) if expected is None else (expected in (why or ""))
