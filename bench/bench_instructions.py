"""Instructions per vehicle of each step of the per-dealer hot path, counted by valgrind (callgrind).

    .venv/bin/python bench/bench_instructions.py [--vehicles 300] [--steps parse to_vehicle ...]

CPU time on a shared two-core machine swings by half from one minute to the next (other engineers' work,
hyper-threads sharing a core), so before/after comparisons of small changes are made in instructions: the
same code on the same input executes the same count, whatever else runs. For each step this runs itself
under ``valgrind --tool=callgrind --instr-atstart=no``, builds the input uninstrumented (records from the
sandbox's generator, as ``bench_pipeline.py``), runs the step once to warm caches, then switches
instrumentation on (``callgrind_control -i on``) for one more run of that step only, and divides the
instructions collected by the vehicles. Steps are those of ``bench_pipeline.py``, in the garbage collector
setting of a pull or ingest task (``od_scheduler.task_gc``). Needs ``valgrind`` (``apt-get install
valgrind``); a step takes 10-30 s.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # od_scheduler is the installed package
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="od-bench-"))

STEPS = ("parse", "to_vehicle", "stage", "read", "hash")
BASE_URL = "https://www.example.com"


def step_work(step: str, n: int) -> Callable[[], Any]:
    """The work of one step over ``n`` vehicles, its input prepared beforehand."""
    from airflow.sdk import ObjectStoragePath
    from bench_pipeline import records

    from od_scheduler.models.dealer_com import DealerComVehicle
    from od_scheduler.staging import read_staged, write_vehicles

    raw = records(n)
    parsed = [DealerComVehicle.model_validate(r) for r in raw]
    vehicles = [p.to_vehicle(dealer_id="bench", base_url=BASE_URL) for p in parsed]
    folder = tempfile.mkdtemp(prefix="od-bench-")
    staged = ObjectStoragePath(f"file://{folder}/staged.jsonl.gz")
    _, checksum = write_vehicles(staged, iter(vehicles))
    read_back = read_staged(staged, checksum=checksum).vehicles
    copies = iter(range(1_000_000))
    work: dict[str, Callable[[], Any]] = {
        "parse": lambda: [DealerComVehicle.model_validate(r) for r in raw],
        "to_vehicle": lambda: [p.to_vehicle(dealer_id="bench", base_url=BASE_URL) for p in parsed],
        "stage": lambda: write_vehicles(
            ObjectStoragePath(f"file://{folder}/copy{next(copies)}.jsonl.gz"), iter(vehicles)
        ),
        "read": lambda: read_staged(staged, checksum=checksum),
        "hash": lambda: [v.content_hash() for v in read_back],
    }
    return work[step]


def measure_inside(step: str, n: int) -> None:
    """Under callgrind: prepare, warm up, then count one run of the step."""
    import gc

    from od_scheduler.task_gc import task_gc

    work = step_work(step, n)
    gc.collect()
    with task_gc():
        work()
        control = ["callgrind_control", "-i"]
        subprocess.run([*control, "on", str(os.getpid())], check=True, capture_output=True)
        work()
        subprocess.run([*control, "off", str(os.getpid())], check=True, capture_output=True)


def count(step: str, n: int) -> int:
    """Instructions per vehicle of ``step``."""
    run = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--inside",
            step,
            "--vehicles",
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind for {step}:\n{run.stderr[-2000:]}")
    return int(found.group(1)) // n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vehicles", type=int, default=300)
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--inside", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        measure_inside(args.inside, args.vehicles)
        return
    total = 0
    print(f"{'step':<12} {'instructions/vehicle':>21}")
    for step in args.steps:
        per_vehicle = count(step, args.vehicles)
        total += per_vehicle
        print(f"{step:<12} {per_vehicle:>21,}", flush=True)
    print(f"{'total':<12} {total:>21,}")


if __name__ == "__main__":
    main()
