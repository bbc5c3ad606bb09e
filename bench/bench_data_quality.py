"""The data-quality gate's job (promotion_ml.quality.check_data) on production-sized channels: 1,000,000 train,
200,000 validation and 1,000,000 holdout rows (generated, about 1.5 % fraud), against the champion's profile.

Setup (not timed): the CSV files and the champion's profile. The check then runs in a fresh process so its peak
memory (ru_maxrss) is its own: reading every field, all checks, PSI per feature, the profile of the train channel.

Run: .venv/bin/python bench/bench_data_quality.py [--train-rows 1000000] [--holdout-rows 1000000]
Writes bench/results/data_quality.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "jobs"))
sys.path.insert(0, str(ROOT))

from bench.processing_bench import measure_in_child, write_training_profile  # noqa: E402

CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {jobs!r})
from promotion_ml.data import FEATURE_NAMES
from promotion_ml.quality import Thresholds, check_data
root = Path({root!r})
reference = json.loads((root / "champion-profile.json").read_text())
started = time.perf_counter()
report, profile = check_data(
    {{c: root / c for c in ("train", "validation", "holdout")}}, Thresholds(), reference, list(FEATURE_NAMES)
)
seconds = time.perf_counter() - started
print(json.dumps({{
    "seconds": seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "passed": report["passed"],
    "checks": len(report["findings"]),
    "max_psi": max(f["value"] for f in report["findings"] if f["check"] == "shift.psi"),
}}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=int, default=1_000_000)
    parser.add_argument("--validation-rows", type=int, default=200_000)
    parser.add_argument("--holdout-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    from promotion_ml.data import write_splits

    with tempfile.TemporaryDirectory(prefix="bench-dq-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        write_training_profile(root / "champion", root / "champion-profile.json")
        write_splits(
            root, n_train=args.train_rows, n_validation=args.validation_rows, n_holdout=args.holdout_rows, seed=2
        )
        setup = time.perf_counter() - started
        size_mb = sum(p.stat().st_size for p in root.rglob("*.csv")) / 1e6
        measured = measure_in_child(CHILD, root)
    rows = args.train_rows + args.validation_rows + args.holdout_rows
    result = {
        "benchmark": "data_quality",
        "rows": {"train": args.train_rows, "validation": args.validation_rows, "holdout": args.holdout_rows},
        "csv_mb": round(size_mb, 1),
        "setup_seconds": round(setup, 1),
        "check_seconds": round(measured["seconds"], 2),
        "rows_per_second": round(rows / measured["seconds"]),
        "peak_rss_mb": round(measured["peak_rss_mb"], 1),
        "checks": measured["checks"],
        "passed": measured["passed"],
        "max_psi_same_population": measured["max_psi"],
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data_quality.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
