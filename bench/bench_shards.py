"""One scheduled Dealer.com run over N sandbox dealers, with a real scheduler: wall time against its bounds.

    .venv/bin/python bench/bench_shards.py --dealers 100 1000 5000 [--latency 0.1] [--dealers-per-task 100]

For each N it starts a fresh embedded PostgreSQL, a sandbox that serves N generated Dealer.com dealers
(``--fleet``, every request delayed by ``--latency``, the CMS and the Data API too), the api-server,
scheduler (LocalExecutor, ``--parallelism``), dag-processor and triggerer; unpauses
``inventory_dealer_com`` (which creates its scheduled run, every dealer due) and waits for that run. Then:

- **wall**: the run's start to end, as Airflow recorded it;
- **lower bound**: the same requests (counted per dealer from the sandbox's request log) scheduled as
  well as the pools allow: each dealer holds a ``dealer_com_api`` slot for its chain of site requests
  (2 req/s per site: ``(k-1) * max(0.5, latency) + latency``) and then a ``data_api`` slot for its chain of
  Data API posts, greedily, with no orchestration cost at all;
- **batches of 5**: the old service's algorithm on the same requests: five dealers at a time, each batch
  waiting for its slowest dealer's pull and ingest;
- task instances in the run, peak RSS of the scheduler process, dealers by job status, vehicles stored.

Results go to stdout as a table and, with ``--json``, to a file. Everything lives under
``.local/bench/<N>`` and is stopped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # include/; od_scheduler is the installed package

DAG_ID = "inventory_dealer_com"
SITE_RATE = 2  # the Dealer.com connection's default: 2 requests per second per site
SITE_RATE_S = 1 / SITE_RATE
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chain_seconds(requests: int, latency: float, spacing: float) -> float:
    """A sequential chain of ``requests`` with at least ``spacing`` between starts, each ``latency`` long."""
    return 0.0 if requests <= 0 else (requests - 1) * max(spacing, latency) + latency


def lower_bound(chains: list[tuple[float, float]], pull_slots: int, ingest_slots: int) -> float:
    """Greedy two-stage schedule: a pull slot for each dealer's pull chain, then an ingest slot."""
    pull_free = [0.0] * pull_slots
    ingest_free = [0.0] * ingest_slots
    end = 0.0
    pulled: list[float] = []
    for pull, _ in chains:
        start = heapq.heappop(pull_free)
        heapq.heappush(pull_free, start + pull)
        pulled.append(start + pull)
    for done, (_, ingest) in sorted(zip(pulled, chains, strict=True)):
        start = max(heapq.heappop(ingest_free), done)
        heapq.heappush(ingest_free, start + ingest)
        end = max(end, start + ingest)
    return end


def batches_of_five(chains: list[tuple[float, float]]) -> float:
    """The old service: 5 dealers at a time, each batch as long as its slowest dealer."""
    return sum(max(p + i for p, i in chains[k : k + 5]) for k in range(0, len(chains), 5))


class Stack:
    """Embedded PostgreSQL, the sandbox and the four Airflow services for one benchmark size."""

    def __init__(self, n: int, args: argparse.Namespace) -> None:
        self.n = n
        self.args = args
        self.local = ROOT / ".local" / "bench" / str(n)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        shutil.rmtree(self.local, ignore_errors=True)
        self.local.mkdir(parents=True)
        os.environ["OD_LOCAL_DIR"] = str(self.local)
        from include.tools import localenv

        socket_dir = localenv.start_postgres()
        self.sandbox = localenv.start_sandbox(
            extra_args=[
                "--fleet",
                str(self.n),
                "--fleet-only",
                "--fleet-latency-s",
                str(self.args.latency),
                "--fleet-vehicles",
                str(self.args.vehicles),
            ],
            timeout_s=600,
        )
        self.api_port = free_port()
        env = localenv.airflow_env(self.local, socket_dir, api_port=self.api_port)
        conn_file = self.local / "connections.json"
        conns = localenv.connections(self.sandbox, socket_dir)
        # The production politeness, not the demo's: 2 requests per second per Dealer.com site.
        conns["od_dealer_com"]["extra"]["requests_per_second"] = SITE_RATE
        conn_file.write_text(json.dumps(conns))
        env |= {
            "OD_CONNECTIONS_FILE": str(conn_file),
            "AIRFLOW__CORE__PARALLELISM": str(self.args.parallelism),
            **(
                {"AIRFLOW__OD_SCHEDULER__DEALERS_PER_TASK": str(self.args.dealers_per_task)}
                if self.args.dealers_per_task
                else {}
            ),
            **(
                {"AIRFLOW__OD_SCHEDULER__INGEST_DEALERS_IN_FLIGHT": str(self.args.ingest_in_flight)}
                if self.args.ingest_in_flight
                else {}
            ),
            "AIRFLOW__OD_SCHEDULER__LONG_RUN_ALERTS": "False",
            "AIRFLOW__OD_SCHEDULER__URL_ALLOWLIST": "127.0.0.1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": self.args.log_level,
        }
        self.env = {**os.environ, **env}
        subprocess.run(
            [sys.executable, "-m", "include.tools.setup_project", "--replace-db-connections"],
            env=self.env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        home = Path(env["AIRFLOW_HOME"])
        (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({"admin": "admin"}))
        logs = self.local / "logs"
        logs.mkdir(exist_ok=True)
        for name in SERVICES:
            cmd = [sys.executable, "-m", "airflow", name]
            if name == "api-server":
                cmd += ["--host", "127.0.0.1", "--port", str(self.api_port)]
            log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - handed to the child
            self.procs[name] = subprocess.Popen(
                cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=30)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if self.api.get("/api/v2/monitor/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        # The api-server builds its task execution API on the first request to it (about 3 s here: the first
        # task's PATCH /execution/task-instances/{id}/run took 2.98 s, the next 20-30 ms). A production
        # api-server has long done that; without this, the measured run's first task would pay it.
        self.api.get("/execution/health").raise_for_status()
        token = self.api.post("/auth/token", json={"username": "admin", "password": "admin"}).json()
        self.api.headers["Authorization"] = f"Bearer {token['access_token']}"
        while time.monotonic() < deadline:
            if self.api.get(f"/api/v2/dags/{DAG_ID}").status_code == 200:
                return
            time.sleep(2)
        raise RuntimeError(f"{DAG_ID} did not appear; see {logs}")

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        from include.tools import localenv

        pid_file = self.local / "pids" / "sandbox.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        localenv.stop_postgres()


TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far (all cores; /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICK


def process_cpu_s(match: str) -> float:
    """CPU seconds used so far by the live processes whose command line contains ``match``."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if match not in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                continue
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / TICK
    return total


def session_cpu_s(session: int) -> float:
    """CPU seconds used so far by the live processes of one session, with their reaped children's.

    Each Airflow service is started in its own session, so this is the service with everything it ran:
    the scheduler's includes its executor workers and the task processes they ran and reaped.
    """
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[3]) == session:
            total += sum(int(v) for v in stat[11:15]) / TICK
    return total


def cpu_snapshot(services: dict[str, int] | None = None) -> dict[str, float]:
    return {
        "machine": machine_busy_s(),
        "sandbox": process_cpu_s("include.sandbox"),
        "postgres": process_cpu_s("postgres"),
        **{name: session_cpu_s(pid) for name, pid in (services or {}).items()},
    }


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of one process, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def measure(n: int, args: argparse.Namespace) -> dict[str, Any]:
    stack = Stack(n, args)
    try:
        print(f"--- {n} dealers: starting the stack", flush=True)
        stack.start()
        control = httpx.Client(base_url=stack.sandbox, timeout=60)
        for target in ("cms", "data_api"):
            control.put(f"/_sandbox/faults/{target}", json={"latency_s": args.latency}).raise_for_status()
        services = {name: proc.pid for name, proc in stack.procs.items()}
        cpu_before = cpu_snapshot(services)
        stack.api.patch(f"/api/v2/dags/{DAG_ID}", json={"is_paused": False}).raise_for_status()
        scheduler = stack.procs["scheduler"].pid
        peak = 0.0
        run: dict[str, Any] | None = None
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            runs = stack.api.get(f"/api/v2/dags/{DAG_ID}/dagRuns").json()["dag_runs"]
            run = runs[0] if runs else None
            peak = max(peak, rss_mb(scheduler)[1])
            if run is not None and run["state"] in ("success", "failed"):
                break
            time.sleep(2)
        if run is None or run["state"] not in ("success", "failed"):
            raise RuntimeError(f"no finished run within {args.timeout:.0f}s: {run}")
        cpu = {k: round(v - cpu_before[k], 1) for k, v in cpu_snapshot(services).items()}
        wall = _ts(run["end_date"]) - _ts(run["start_date"])
        listed = stack.api.get(
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances", params={"limit": 1000}
        ).json()
        tis = listed["total_entries"]
        # Each task instance's start and end, in seconds from the run's start: where the wall time goes.
        timeline = sorted(
            (
                round(_ts(ti["start_date"]) - _ts(run["start_date"]), 1),
                round(_ts(ti["end_date"]) - _ts(run["start_date"]), 1),
                ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else ""),
            )
            for ti in listed["task_instances"]
            if ti["start_date"] and ti["end_date"]
        )
        pools = {
            p["name"]: p["slots"]
            for p in stack.api.get("/api/v2/pools", params={"limit": 100}).json()["pools"]
        }
        log = control.get("/_sandbox/requests").json()["requests"]
        site: Counter[str] = Counter()
        data: Counter[str] = Counter()
        for entry in log:
            if entry["service"] == "dealer_com" and entry["dealer"]:
                site[entry["dealer"]] += 1
            elif entry["service"] == "data_api" and entry["dealer"]:
                data[entry["dealer"]] += 1
        chains = [
            (
                chain_seconds(site[d], args.latency, SITE_RATE_S),
                chain_seconds(data[d], args.latency, 0.0),
            )
            for d in sorted(set(site) | set(data))
        ]
        bound = lower_bound(chains, pools["dealer_com_api"], pools["data_api"])
        statuses = Counter(_job_statuses(stack))
        stored = len(control.get("/_sandbox/data-api/vehicles").json()["vehicles"])
        result = {
            "dealers": n,
            "state": run["state"],
            "wall_s": round(wall, 1),
            "lower_bound_s": round(bound, 1),
            "ratio": round(wall / bound, 2) if bound else None,
            "batches_of_5_s": round(batches_of_five(chains), 1),
            "speedup_vs_batches": round(batches_of_five(chains) / wall, 2) if wall else None,
            "task_instances": tis,
            "scheduler_peak_rss_mb": round(peak, 1),
            # CPU seconds from unpausing to the end (2 cores: at most 2 s per second of wall time); the
            # sandbox serves every upstream and PostgreSQL both databases on the same 2 cores; each Airflow
            # service with the processes it started (the scheduler's: the executor and the task processes).
            "cpu_s": cpu,
            "jobs": dict(statuses),
            "requests": {"dealer.com": sum(site.values()), "data_api": sum(data.values())},
            "vehicles_stored": stored,
            "pools": {"dealer_com_api": pools["dealer_com_api"], "data_api": pools["data_api"]},
            "timeline": timeline,
        }
        print(json.dumps(result), flush=True)
        return result
    finally:
        stack.stop()


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _job_statuses(stack: Stack) -> list[str]:
    import psycopg

    conn = json.loads((stack.local / "connections.json").read_text())["od_job_history"]
    with psycopg.connect(host=conn["host"], user=conn["login"], dbname=conn["schema"]) as db:
        return [row[0] for row in db.execute("SELECT status FROM job_executions").fetchall()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dealers", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request (0.1)")
    parser.add_argument("--vehicles", type=int, default=30, help="vehicles per dealer (30)")
    parser.add_argument("--dealers-per-task", type=int, help="dealers_per_task (default: the setting's, 250)")
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--ingest-in-flight", type=int, help="ingest_dealers_in_flight (default: setting)")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--log-level", default="WARNING", help="Airflow's logging level (WARNING; INFO to read the task logs)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = [measure(n, args) for n in args.dealers]
    print("| dealers | wall | lower bound | ratio | batches of 5 | speed-up | TIs | sched. RSS | jobs |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        jobs = ", ".join(f"{k} {v}" for k, v in sorted(r["jobs"].items()))
        print(
            f"| {r['dealers']:,} | {r['wall_s']} s | {r['lower_bound_s']} s | {r['ratio']}x | "
            f"{r['batches_of_5_s']} s | {r['speedup_vs_batches']}x | {r['task_instances']} | "
            f"{r['scheduler_peak_rss_mb']} MB | {jobs} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
