"""A flood of tuning-job events on the local runtime: 100 events (80 distinct tuning jobs over 20 models, 20
redeliveries), shuffled across models, sent at once through the default bus, against the same events sent one by
one (each after the previous execution ended). Checks the invariants of tests/e2e/test_flood.py on both (none lost,
each distinct tuning job decided once, duplicates end Duplicate, no two promotions of a model interleave, promotions
in tuning-job order, each model ends on its newest job; one by one also: every tuning job promoted) and writes
bench/results/flood.json.

    .venv/bin/python bench/bench_flood.py [--models 20] [--jobs-per-model 4] [--duplicates 20] [--seed 7]

Everything runs in this process on moto (Lambda invocations are serialized, as the local runtime runs them), so the
numbers measure the product's coordination (claims, lock waits, approvals) on the local runtime, not AWS latency.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "layers" / "promotion" / "python", ROOT / "jobs"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.e2e import test_flood as flood  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _run(
    kind: str, models_dir: Path, assembly: Path, jobs: list[Any], deliveries: list[Any], work: Path
) -> dict[str, Any]:
    runner = flood.run_flood if kind == "flood" else flood.run_one_by_one
    cpu, wall = time.process_time(), time.monotonic()
    # The handlers' Powertools logs go to stdout: keep them out of the result this script prints.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        runtime, result = runner(models_dir, assembly, jobs, deliveries, work / kind)
        wall_s, cpu_s = time.monotonic() - wall, time.process_time() - cpu
        try:
            numbers = flood.check_flood(runtime, result, jobs, all_promoted=kind == "one_by_one")
        finally:
            runtime.stop()
    numbers.update(
        wall_s=round(wall_s, 2),
        cpu_s=round(cpu_s, 2),
        events_per_s=round(numbers["events"] / wall_s, 3),
        promotions_per_s=round(numbers["promoted"] / wall_s, 3),
    )
    return numbers


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--jobs-per-model", type=int, default=4)
    parser.add_argument("--duplicates", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--wait-factor", type=float, default=flood.WAIT_FACTOR, help="local seconds per Wait second")
    parser.add_argument("--output", type=Path, default=RESULTS / "flood.json")
    args = parser.parse_args()
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    flood.WAIT_FACTOR = args.wait_factor
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as folder:
        work = Path(folder)
        started = time.monotonic()
        models_dir, assembly = flood.synthesize(work / "stack", args.models)
        synth_s = time.monotonic() - started
        jobs = flood.jobs_of(flood.model_ids(args.models), args.jobs_per_model)
        deliveries = flood.flood_events(jobs, args.duplicates, seed=args.seed, ordered=True)
        at_once = _run("flood", models_dir, assembly, jobs, deliveries, work)
        one_by_one = _run("one_by_one", models_dir, assembly, jobs, deliveries, work)
    results = {
        "what": "tuning-job events through the default bus on the local runtime: all at once vs one by one",
        "models": args.models,
        "distinct_tuning_jobs": len(jobs),
        "events": len(deliveries),
        "duplicates": args.duplicates,
        "seed": args.seed,
        "lock_wait_compression": f"WaitForModelLock 300 s -> {300 * flood.WAIT_FACTOR:g} s",
        "note": "the local runtime runs Lambda invocations one at a time in this process, so a flood cannot be "
        "faster than one by one here: what it adds is the lock polling of waiting promotions (lock_waits extra "
        "ClaimPromotion looks). On AWS the functions run concurrently and models proceed in parallel.",
        "synth_s": round(synth_s, 1),
        "flood": at_once,
        "one_by_one": one_by_one,
        "speedup_wall": round(one_by_one["wall_s"] / at_once["wall_s"], 2),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": round(load, 2),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
