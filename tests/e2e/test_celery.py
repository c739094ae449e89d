"""A platform DAG on the CeleryExecutor: two workers, a Redis broker, staging on an S3-compatible server.

``inventory_cobalt``'s scheduled run (three sandbox dealers, ``dealers_per_task`` 1: three pull shards and
three ingest shards) on the stack of :mod:`tests.e2e.celery_stack`, staging to moto's S3 server through
``[od_scheduler] staging_url`` and an ``aws`` connection. What a user of a cluster relies on, checked:

- **both workers ran tasks**: each worker writes the logs of the tasks it ran under its own
  ``AIRFLOW_HOME``; each has some, no task is in both, and together they are every task of the run;
- **the Data API holds exactly the source's vehicles**: for each dealer, its valid-VIN lot, nothing else;
- **no staging file was read from a local disk**: every staged file of the run is an object in the
  bucket, moto's request log shows it uploaded and then fetched with GET, and there is no staged file on
  any disk (no ``*.jsonl.gz`` under either worker's directory or the scheduler's home, none of this run in
  the suite's local staging folder).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from od_scheduler.staging import safe_component
from tests.e2e.celery_stack import LOGS, WORKERS, CeleryStack
from tests.fixtures import job_history_conn, platform_dealers
from tests.s3server import S3Server

# The stack starts inside the first test's setup (about 2 min, several on a busy machine): more than the
# default per-test timeout must be allowed for it.
pytestmark = [pytest.mark.e2e, pytest.mark.celery, pytest.mark.timeout(1500)]

DAG_ID = "inventory_cobalt"
PLATFORM = "cobalt"
BUCKET = "od-staging-celery"


@pytest.fixture(scope="module")
def stack(sandbox: str, s3_server: S3Server) -> Iterator[tuple[CeleryStack, str]]:
    s3 = s3_server.client()
    if BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=BUCKET)
    prefix = f"inventory-{uuid.uuid4().hex[:8]}"
    celery = CeleryStack(
        staging_url=f"s3://{BUCKET}/{prefix}",
        staging_conn=s3_server.connection(),
        settings={"dealers_per_task": "1"},
    )
    try:
        celery.start()
        yield celery, prefix
    finally:
        celery.stop()


@pytest.fixture(scope="module")
def run(stack: tuple[CeleryStack, str], sandbox: str) -> Iterator[dict[str, Any]]:
    """One scheduled run of the DAG, from a clean job history and sandbox, finished."""
    celery, _ = stack
    airflow = celery.airflow
    assert airflow is not None
    with job_history_conn() as db:
        db.execute(
            "TRUNCATE job_executions, source_state, dealer_leases, vehicle_fingerprints, platform_listings"
        )
    control = httpx.Client(base_url=sandbox, timeout=30)
    control.post("/_sandbox/reset").raise_for_status()
    with airflow.client() as api:
        # A fresh metadata DB: unpausing creates exactly one run, for the latest interval (catchup off).
        api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        try:
            runs = airflow.wait_for_runs(DAG_ID, 1, timeout_s=420)
        finally:
            api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": True})
        assert len(runs) == 1, runs
        dag_run = runs[0]
        tis = api.get(
            f"/api/v2/dags/{DAG_ID}/dagRuns/{dag_run['dag_run_id']}/taskInstances", params={"limit": 100}
        ).json()["task_instances"]
    yield {"run": dag_run, "tis": tis, "control": control}
    control.close()


def history(run_id: str) -> dict[str, dict[str, Any]]:
    with job_history_conn() as db:
        rows = db.execute(
            "SELECT dealer_id, status, errors, pull_result FROM job_executions "
            "WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    return {r[0]: {"status": r[1], "errors": r[2], "pull_result": r[3]} for r in rows}


def tasks_logged_by(home: Path, run_id: str) -> set[tuple[str, int]]:
    """(task_id, map_index) of every task whose log a worker wrote under its own home."""
    found = set()
    folder = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
    for log in folder.rglob("attempt=*.log"):
        parts = dict(p.split("=", 1) for p in log.relative_to(folder).parent.parts)
        found.add((parts["task_id"], int(parts.get("map_index", -1))))
    return found


def test_the_run_succeeds_on_the_celery_executor(run) -> None:
    assert run["run"]["state"] == "success", run["run"]
    states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in run["tis"]}
    assert all(state == "success" for state in states.values()), states
    pulls = [key for key in states if key[0] == "shard.pull_inventory"]
    assert len(pulls) == 3, "three dealers, one per shard"
    assert len(states) == 1 + 3 + 3 + 2  # list_dealers, pulls, ingests, summarize_run, announce_changes
    scheduler_log = (LOGS / "scheduler.log").read_text(errors="replace")
    assert "CeleryExecutor" in scheduler_log


def test_both_workers_ran_tasks_and_together_ran_all(run, stack) -> None:
    celery, _ = stack
    run_id = run["run"]["dag_run_id"]
    by_worker = {name: tasks_logged_by(celery.worker_home(name), run_id) for name in WORKERS}
    every = {(ti["task_id"], ti["map_index"]) for ti in run["tis"]}
    assert all(by_worker.values()), f"a worker ran nothing: {by_worker}"
    assert not set.intersection(*by_worker.values()), by_worker
    assert set.union(*by_worker.values()) == every, by_worker
    for name in WORKERS:  # and the worker's own Celery log says it took tasks off the queue
        assert "execute_workload" in (LOGS / f"{name}.log").read_text(errors="replace"), name


def test_the_data_api_holds_exactly_each_dealers_vehicles(run) -> None:
    control = run["control"]
    rows = history(run["run"]["dag_run_id"])
    cobalt = {d["id"]: d for d in platform_dealers(control, PLATFORM).values()}
    assert set(rows) == set(cobalt)
    expected: set[tuple[str, str]] = set()
    for dealer_id, dealer in cobalt.items():
        assert rows[dealer_id]["status"] == "success", (dealer["slug"], rows[dealer_id]["errors"])
        truth = control.get(f"/_sandbox/truth/{PLATFORM}/{dealer_id}").json()
        valid = set(truth["vins"]) - set(truth["invalid_vins"])
        assert valid, dealer["slug"]
        expected |= {(dealer_id, vin) for vin in valid}
    stored = control.get("/_sandbox/data-api/vehicles").json()["vehicles"]
    assert {(v["dealer_id"], v["vin"]) for v in stored} == expected  # no vehicle missing, none extra
    assert {v["source"] for v in stored} == {PLATFORM}
    assert len(stored) == len(expected), "each vehicle once"


def test_staged_files_went_through_s3_and_never_a_local_disk(run, stack, s3_server: S3Server) -> None:
    celery, prefix = stack
    run_id = run["run"]["dag_run_id"]
    rows = history(run_id)
    paths = [row["pull_result"]["staging_path"] for row in rows.values()]
    assert len(paths) == 3
    url_prefix = f"s3://od_staging@{BUCKET}/{prefix}/{PLATFORM}/"
    assert all(p.startswith(url_prefix) for p in paths), paths
    staged_keys = {p.removeprefix(f"s3://od_staging@{BUCKET}/") for p in paths}

    listed = s3_server.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")
    assert {item["Key"] for item in listed.get("Contents", [])} == staged_keys

    requests = [r for r in s3_server.requests() if r.bucket == BUCKET]
    for key in staged_keys:
        on_key = [r for r in requests if r.key == key]
        assert any(r.method == "POST" and "uploadId=" in r.query and r.status == 200 for r in on_key), (
            f"{key}: no completed upload"
        )
        reads = [r for r in on_key if r.method == "GET" and r.status in (200, 206)]
        assert reads, f"{key}: the ingest never fetched it from S3"

    # Nothing staged on a disk: not in any worker's directory (its home, its default staging folder,
    # its working directory), not in the scheduler's home, not in the suite's local staging folder.
    for name in WORKERS:
        assert not (celery.worker_home(name) / "staging").exists(), name
    on_disk = [str(p) for p in celery.dir.rglob("*.jsonl.gz")]
    assert on_disk == []
    local_staging = Path(os.environ["OD_STAGING_URL"].removeprefix("file://"))
    this_run = f"*{safe_component(run_id)}*"
    # Run ids repeat (today's scheduled run) and a developer's checkout keeps files of earlier runs with the
    # same id: only files written since this run started count.
    started = datetime.fromisoformat(run["run"]["start_date"].replace("Z", "+00:00")).timestamp()
    written = [p for p in local_staging.rglob(this_run) if p.stat().st_mtime >= started - 1]
    assert not local_staging.exists() or written == []
