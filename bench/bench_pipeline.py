"""Throughput and memory of the per-dealer hot path, without the network: normalize -> stage -> read -> hash.

    .venv/bin/python bench/bench_pipeline.py [--vehicles 50000]

Builds realistic Dealer.com widget records (the sandbox's own generator), then times each step and
reports records/s and the peak Python heap (tracemalloc) of staging and reading, which must stay flat in
the lot size because vehicles stream through a gzip file instead of memory or XCom.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="od-bench-"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vehicles", type=int, default=50_000)
    args = parser.parse_args()

    from include.sandbox.app import create_app
    from include.sandbox.platforms import PLATFORMS
    from od_scheduler.models.dealer_com import DealerComVehicle

    state = create_app().state.sandbox
    platform = PLATFORMS["dealer.com"]
    dealers = [d for d in state.dealers if "dealer.com" in d.platforms and state.lot("dealer.com", d)]
    raw: list[dict] = []
    while len(raw) < args.vehicles:
        for dealer in dealers:
            raw += [platform.render(dealer, v) for v in state.lot("dealer.com", dealer).vehicles]
    raw = raw[: args.vehicles]

    t = time.perf_counter()
    parsed = [DealerComVehicle.model_validate(r) for r in raw]
    vehicles = []
    for p in parsed:
        try:
            vehicles.append(p.to_vehicle(dealer_id="bench", base_url="https://www.example.com"))
        except Exception:  # noqa: S112 - a rejected record is simply not staged
            continue
    normalize_s = time.perf_counter() - t

    from airflow.sdk import ObjectStoragePath

    from od_scheduler.staging import read_vehicles, write_vehicles

    path = ObjectStoragePath(f"file://{tempfile.mkdtemp(prefix='od-bench-stage-')}/bench.jsonl.gz")
    tracemalloc.start()
    t = time.perf_counter()
    count, checksum = write_vehicles(path, iter(vehicles))
    write_s = time.perf_counter() - t
    _, write_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    t = time.perf_counter()
    read = sum(1 for _ in read_vehicles(path, checksum=checksum))
    read_s = time.perf_counter() - t
    _, read_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    t = time.perf_counter()
    hashes = {v.vin: v.content_hash() for v in vehicles}
    hash_s = time.perf_counter() - t

    size = path.stat().st_size
    mb = 1e6
    rows = [
        ("normalize (parse, validate, to_vehicle)", normalize_s, len(raw), ""),
        (
            "stage (gzip JSON lines)",
            write_s,
            count,
            f"file {size / mb:.1f} MB, peak heap {write_peak / mb:.1f} MB",
        ),
        ("read back + checksum", read_s, read, f"peak heap {read_peak / mb:.1f} MB"),
        ("content hash", hash_s, len(hashes), ""),
    ]
    print(f"vehicles: {len(raw)} records, {len(vehicles)} valid, {count} staged, {read} read back")
    for name, seconds, n, extra in rows:
        print(f"{name:<42} {seconds:6.2f}s {n / seconds:>9,.0f}/s  {extra}")


if __name__ == "__main__":
    main()
