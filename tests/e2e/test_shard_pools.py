"""Shards share their platform's pool with a real scheduler: at most ``slots`` dealers in flight, ever.

Five shards of four Dealer.com dealers (``dealers_per_task`` 4 in the e2e environment), each taking 4 slots
of ``dealer_com_api``, which the test shrinks to 8: two shards run at once, each with its four dealers in
flight. The sandbox's request log (every site request delayed 0.3 s) shows when each dealer was being
pulled; at no moment were more than 8 dealers in flight, and more than one shard's dealers were.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.fixtures import job_history_conn

pytestmark = pytest.mark.e2e

DAG_ID = "inventory_dealer_com"
POOL = "dealer_com_api"
SLOTS = 8
LATENCY_S = 0.3
QUIET_S = 3.0


def in_flight_peak(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def pull_chains(times: list[float], gap_s: float) -> list[tuple[float, float]]:
    """One dealer's request times cut into chains (one per pull) wherever the site was quiet for ``gap_s``."""
    chains: list[tuple[float, float]] = []
    for ts in sorted(times):
        if chains and ts - chains[-1][1] <= gap_s:
            chains[-1] = (chains[-1][0], ts)
        else:
            chains.append((ts, ts))
    return chains


def test_pull_chains_split_where_a_site_was_quiet() -> None:
    assert pull_chains([10.0, 0.0, 0.8, 1.6], gap_s=3) == [(0.0, 1.6), (10.0, 10.0)]
    assert pull_chains([], gap_s=3) == []


def test_shards_share_the_platform_pool_and_never_exceed_it(airflow, clean) -> None:
    with job_history_conn() as db:
        db.execute("TRUNCATE job_executions")
    dealers = clean.get("/_sandbox/dealers").json()["dealers"]
    on_site = [d for d in dealers if "dealer.com" in d["platforms"] and d["status"] == "active"]
    for dealer in on_site:  # every site slow enough for pulls to overlap visibly; no failing site
        clean.put(f"/_sandbox/faults/{dealer['slug']}", json={"latency_s": LATENCY_S}).raise_for_status()
    airflow.delete_runs(DAG_ID)
    with airflow.client() as api:
        before = api.get(f"/api/v2/pools/{POOL}").json()
        airflow.cli("pools", "set", POOL, str(SLOTS), before["description"] or POOL)
        try:
            airflow.cli("dags", "trigger", DAG_ID, "--conf", '{"force": true}')
            airflow.cli("dags", "unpause", DAG_ID)
            runs = airflow.wait_for_runs(DAG_ID, 1)
        finally:
            airflow.cli("dags", "pause", DAG_ID)
            airflow.cli("pools", "set", POOL, str(before["slots"]), before["description"] or POOL)
        # Unpausing also starts the latest scheduled run; with max_active_runs 1 the two run one after the
        # other, and the dealers the first pulled are not due for the second.
        pulls = [
            ti
            for run in runs
            for ti in api.get(
                f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances",
                params={"task_id": "shard.pull_inventory", "limit": 100},
            ).json()["task_instances"]
        ]
    assert all(r["state"] == "success" for r in runs), runs
    assert len(pulls) >= 5
    assert {ti["pool_slots"] for ti in pulls} == {4}

    log = clean.get("/_sandbox/requests", params={"service": "dealer_com"}).json()["requests"]
    times: dict[str, list[float]] = {}
    for entry in log:
        times.setdefault(entry["dealer"], []).append(datetime.fromisoformat(entry["ts"]).timestamp())
    # Both runs may pull a dealer (which of them the scheduler starts first is its choice): each pull is one
    # chain of requests 0.5 s apart (2 req/s per site), and a dealer's two pulls are a run apart.
    chains = {dealer: pull_chains(ts, gap_s=QUIET_S) for dealer, ts in times.items()}
    intervals = [
        (start, end + LATENCY_S) for dealer_chains in chains.values() for start, end in dealer_chains
    ]
    peak = in_flight_peak(intervals)
    assert peak <= SLOTS, f"{peak} dealers in flight against a pool of {SLOTS}"
    assert peak > 4, f"only {peak} dealers in flight at once: the shards did not share the pool"
    with job_history_conn() as db:
        pulled = db.execute(
            "SELECT dealer_id FROM job_executions WHERE dag_id = %s AND status = 'success'", (DAG_ID,)
        ).fetchall()
    assert sorted(row[0] for row in pulled) == sorted(
        dealer for dealer, dealer_chains in chains.items() for _ in dealer_chains
    ), "every pull is one success row and one chain of requests"
