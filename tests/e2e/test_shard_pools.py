"""Shards share their platform's pool with a real scheduler: at most ``slots`` dealers in flight, ever.

Five shards of four Dealer.com dealers (``dealers_per_task`` 4 in the e2e environment), each taking 4 slots
of ``dealer_com_api``, which the test shrinks to 8: two shards run at once, each with its four dealers in
flight. The sandbox's request log (every site request delayed 0.3 s) shows when each dealer was being
pulled; at no moment were more than 8 dealers in flight, and more than one shard's dealers were. The Data
API's log shows each shard's ingest posting its first dealers while its pull task was still running.
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
#: Every other site answers slower, so a shard's dealers are staged seconds apart.
SLOW_LATENCY_S = 1.2
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
    # Every site slow enough for pulls to overlap visibly, every other one slower still (so a shard's fast
    # dealers are staged while its slow ones are still being pulled); no failing site.
    latency = {
        d["id"]: SLOW_LATENCY_S if i % 2 else LATENCY_S
        for i, d in enumerate(sorted(on_site, key=lambda d: d["slug"]))
    }
    for dealer in on_site:
        clean.put(
            f"/_sandbox/faults/{dealer['slug']}", json={"latency_s": latency[dealer["id"]]}
        ).raise_for_status()
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
        # Each shard's dealers, as list_dealers cut them, by (run, map index).
        shards = {
            (run["dag_run_id"], index): {d["dealer_id"] for d in shard["dealers"]}
            for run in runs
            for index, shard in enumerate(
                api.get(
                    f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/list_dealers/"
                    "xcomEntries/return_value"
                ).json()["value"]
            )
        }
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
        (start, end + latency.get(dealer, LATENCY_S))
        for dealer, pulls in chains.items()
        for start, end in pulls
    ]
    peak = in_flight_peak(intervals)
    assert peak <= SLOTS, f"{peak} dealers in flight against a pool of {SLOTS}"
    assert peak > 4, f"only {peak} dealers in flight at once: the shards did not share the pool"
    # The ingest runs beside its pull: a shard's first dealers reach the Data API while its pull task is
    # still pulling the others (before, no post of a shard could come before its pull task ended).
    posts = clean.get("/_sandbox/requests", params={"service": "data_api"}).json()["requests"]
    post_times: dict[str, list[float]] = {}
    for entry in posts:
        if entry["method"] == "POST" and entry["dealer"]:
            post_times.setdefault(entry["dealer"], []).append(datetime.fromisoformat(entry["ts"]).timestamp())
    early = [
        ti["map_index"]
        for ti in pulls
        if ti["end_date"]
        and any(
            ts < datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00")).timestamp()
            for dealer in shards[(ti["dag_run_id"], ti["map_index"])]
            for ts in post_times.get(dealer, [])
        )
    ]
    assert early, "no shard's ingest posted before its pull task ended"
    with job_history_conn() as db:
        pulled = db.execute(
            "SELECT dealer_id FROM job_executions WHERE dag_id = %s AND status = 'success'", (DAG_ID,)
        ).fetchall()
    assert sorted(row[0] for row in pulled) == sorted(
        dealer for dealer, dealer_chains in chains.items() for _ in dealer_chains
    ), "every pull is one success row and one chain of requests"
