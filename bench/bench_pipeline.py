"""CPU per vehicle and memory of the per-dealer hot path, without the network.

    .venv/bin/python bench/bench_pipeline.py [--vehicles 20000] [--repeat 3] [--task-gc] [--materialized]
        [--profile STEP]

Builds realistic Dealer.com widget records (the sandbox's own generator), then runs them the way one dealer's
pull and ingest do and prints microseconds of CPU per vehicle for each step and in total, the best of
``--repeat`` rounds. Times are CPU time of the process (``time.process_time``), not wall time: the machine is
shared, and the best round is the least disturbed one.

- the pull (streamed): pages of 100 records are parsed into the raw model (``parse``), each record becomes a
  canonical ``Vehicle`` (``to_vehicle``) and streams into ``write_vehicles`` (``stage``: the time
  ``write_vehicles`` spends outside the vehicle stream), as the Dealer.com client and the pull do;
- the ingest: ``read_staged`` with the checksum the pull recorded (``read``), then each vehicle's
  ``content_hash()`` (``hash``).

The input records are built first and frozen out of the garbage collector (``gc.freeze()``): a worker never
holds 20,000 raw records, and without the freeze every full collection would walk them and bill it to
whichever step happened to trigger it. ``--materialized`` instead runs each step over the whole lot held in a
list (the shape of this bench before issue 12): those numbers include the cost of collecting a heap of a
million objects, which is a property of the bench more than of the pull.

The peak Python heap (tracemalloc) of staging and reading is measured in a separate round, because tracing
every allocation slows the traced code several-fold: it must stay flat in the lot size, since vehicles stream
through a gzip file instead of memory or XCom. ``--profile STEP`` runs one round under cProfile and prints
the top functions of that step by own time.

Most of what remains is the cyclic garbage collector: a page of 100 parsed raw models (some 60 container
objects each) outlives two young collections and is promoted to the oldest generation, and every full
collection, due after a quarter of that generation's size in promotions, walks all of it. ``--task-gc`` runs
the rounds inside :func:`od_scheduler.task_gc.task_gc`, the larger young generation the pull and ingest tasks
apply while they work; ``--gc-threshold N`` tries another young threshold by hand.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # include/; od_scheduler is the installed package
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="od-bench-"))

STEPS = ("parse", "to_vehicle", "stage", "read", "hash")
LABELS = {
    "parse": "parse + validate raw model",
    "to_vehicle": "to_vehicle (normalize, screen, Vehicle)",
    "stage": "stage (gzip JSON lines + sha256)",
    "read": "read back + checksum",
    "hash": "content hash",
}
PAGE = 100
#: CPU time of this process, not wall time: the machine is shared, and waiting for a core is not our cost.
now = time.process_time
BASE_URL = "https://www.example.com"


def records(n: int) -> list[dict[str, Any]]:
    from include.sandbox.app import create_app
    from include.sandbox.platforms import PLATFORMS

    state = create_app().state.sandbox
    platform = PLATFORMS["dealer.com"]
    dealers = [d for d in state.dealers if "dealer.com" in d.platforms and state.lot("dealer.com", d)]
    raw: list[dict[str, Any]] = []
    while len(raw) < n:
        for dealer in dealers:
            raw += [platform.render(dealer, v) for v in state.lot("dealer.com", dealer).vehicles]
    return raw[:n]


class Clock:
    """Seconds per step; ``cProfile`` on one step when asked."""

    def __init__(self, profile: str | None) -> None:
        self.seconds = dict.fromkeys(STEPS, 0.0)
        self.profile = profile
        self.profiler = cProfile.Profile() if profile else None

    def run(self, step: str, fn: Callable[[], Any]) -> Any:
        profiling = self.profiler is not None and step == self.profile
        t = now()
        if profiling:
            self.profiler.enable()  # type: ignore[union-attr]
        try:
            return fn()
        finally:
            if profiling:
                self.profiler.disable()  # type: ignore[union-attr]
            self.seconds[step] += now() - t

    def report_profile(self) -> None:
        if self.profiler is not None and self.profiler.getstats():
            pstats.Stats(self.profiler).sort_stats("tottime").print_stats(30)


def stream_round(raw: list[dict[str, Any]], stage_dir: str, clock: Clock) -> dict[str, Any]:
    from airflow.sdk import ObjectStoragePath

    from od_scheduler.exceptions import RecordRejected
    from od_scheduler.models.dealer_com import DealerComVehicle
    from od_scheduler.staging import read_staged, write_vehicles

    valid = 0
    inside = 0.0  # time write_vehicles spent pulling from the stream (parse + to_vehicle)

    def normalize(page: list[Any]) -> Iterator[Any]:
        for parsed in page:
            try:
                yield parsed.to_vehicle(dealer_id="bench", base_url=BASE_URL)
            except RecordRejected:
                continue

    def pull() -> Iterator[Any]:
        nonlocal valid, inside
        for start in range(0, len(raw), PAGE):
            t = now()
            page = clock.run(
                "parse", lambda s=start: [DealerComVehicle.model_validate(r) for r in raw[s : s + PAGE]]
            )
            vehicles = clock.run("to_vehicle", lambda p=page: list(normalize(p)))
            valid += len(vehicles)
            inside += now() - t
            yield from vehicles

    path = ObjectStoragePath(f"file://{tempfile.mkdtemp(prefix='stage-', dir=stage_dir)}/b.jsonl.gz")
    # The stream runs inside write_vehicles: stage is the rest (its profile shows parse, to_vehicle too).
    count, checksum = clock.run("stage", lambda: write_vehicles(path, pull()))
    clock.seconds["stage"] -= inside
    staged = clock.run("read", lambda: read_staged(path, checksum=checksum))
    hashes = clock.run("hash", lambda: [v.content_hash() for v in staged.vehicles])
    return {
        "valid": valid,
        "staged": count,
        "read": len(staged.vehicles),
        "hashed": len(hashes),
        "path": path,
    }


def materialized_round(raw: list[dict[str, Any]], stage_dir: str, clock: Clock) -> dict[str, Any]:
    from airflow.sdk import ObjectStoragePath

    from od_scheduler.exceptions import RecordRejected
    from od_scheduler.models.dealer_com import DealerComVehicle
    from od_scheduler.staging import read_staged, write_vehicles

    parsed = clock.run("parse", lambda: [DealerComVehicle.model_validate(r) for r in raw])

    def normalize() -> list[Any]:
        vehicles = []
        for p in parsed:
            try:
                vehicles.append(p.to_vehicle(dealer_id="bench", base_url=BASE_URL))
            except RecordRejected:
                continue
        return vehicles

    vehicles = clock.run("to_vehicle", normalize)
    path = ObjectStoragePath(f"file://{tempfile.mkdtemp(prefix='stage-', dir=stage_dir)}/b.jsonl.gz")
    count, checksum = clock.run("stage", lambda: write_vehicles(path, iter(vehicles)))
    staged = clock.run("read", lambda: read_staged(path, checksum=checksum))
    hashes = clock.run("hash", lambda: [v.content_hash() for v in staged.vehicles])
    return {
        "valid": len(vehicles),
        "staged": count,
        "read": len(staged.vehicles),
        "hashed": len(hashes),
        "path": path,
    }


def heap_round(path: Any) -> tuple[int, int]:
    """Peak heap of re-staging the vehicles of ``path`` and of reading them back one by one."""
    from airflow.sdk import ObjectStoragePath

    from od_scheduler.staging import read_vehicles, write_vehicles

    vehicles = list(read_vehicles(path))
    copy = ObjectStoragePath(str(path) + ".heap.jsonl.gz")
    tracemalloc.start()
    _, checksum = write_vehicles(copy, iter(vehicles))
    _, write_peak = tracemalloc.get_traced_memory()
    del vehicles
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    for _ in read_vehicles(copy, checksum=checksum):
        pass
    _, read_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return write_peak, read_peak - base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vehicles", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each step reports its best round")
    parser.add_argument("--materialized", action="store_true", help="each step over the whole lot in a list")
    parser.add_argument("--profile", choices=STEPS, help="one round, this step under cProfile")
    parser.add_argument("--no-heap", action="store_true", help="skip the tracemalloc round")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        help="experiment: gc.set_threshold(N, 10, 10) for the rounds (a worker-wide setting)",
    )
    parser.add_argument("--task-gc", action="store_true", help="rounds inside od_scheduler.task_gc.task_gc()")
    args = parser.parse_args()

    raw = records(args.vehicles)
    gc.collect()
    gc.freeze()
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, 10, 10)
    n = len(raw)
    stage_dir = tempfile.mkdtemp(prefix="od-bench-")
    run_round = materialized_round if args.materialized else stream_round
    best: dict[str, float] = {}
    result: dict[str, Any] = {}
    from od_scheduler.task_gc import task_gc

    for _ in range(1 if args.profile else args.repeat):
        clock = Clock(args.profile)
        if args.task_gc:
            with task_gc():
                result = run_round(raw, stage_dir, clock)
        else:
            result = run_round(raw, stage_dir, clock)
        clock.report_profile()
        for step, s in clock.seconds.items():
            best[step] = min(best.get(step, s), s)
        gc.collect()

    size = result["path"].stat().st_size
    print(
        f"{'materialized' if args.materialized else 'streamed'}{' with task_gc' if args.task_gc else ''}: "
        f"{n} records, {result['valid']} valid, "
        f"{result['staged']} staged, {result['read']} read back, {result['hashed']} hashed; staged file "
        f"{size / 1e6:.1f} MB ({size / max(result['staged'], 1):.0f} B/vehicle)"
    )
    print(f"{'step':<42} {'µs/vehicle':>10} {'vehicles/s':>11}")
    for step in STEPS:
        print(f"{LABELS[step]:<42} {best[step] / n * 1e6:>10.1f} {n / best[step]:>11,.0f}")
    total = sum(best.values())
    print(f"{'total':<42} {total / n * 1e6:>10.1f} {n / total:>11,.0f}")
    if not args.no_heap and not args.profile:
        write_peak, read_peak = heap_round(result["path"])
        print(f"peak Python heap: stage {write_peak / 1e6:.1f} MB, read back {read_peak / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
