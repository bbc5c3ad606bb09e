"""The drift check's job (promotion_ml.drift.measure_drift) on an hour of SageMaker data-capture files: 72,000
captured requests (100 requests a second, 20 % captured) and ten times that, against a release's training data
profile, with the amounts of the second run shifted 20x (drift).

Setup (not timed): the capture files (JSON Lines, 250 requests a file, as data capture writes them) and the profile.
The check then runs in a fresh process so its peak memory (ru_maxrss) is its own.

Run: .venv/bin/python bench/bench_drift.py [--requests 72000 720000]
Writes bench/results/drift.json.
"""

from __future__ import annotations

import argparse
import csv
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
from promotion_ml.drift import measure_drift
root = Path({root!r})
reference = json.loads((root / "profile.json").read_text())
files = sorted((root / "capture").rglob("*.jsonl"))
started = time.perf_counter()
report = measure_drift(files, reference, list(FEATURE_NAMES), max_psi=0.25, min_rows=500)
seconds = time.perf_counter() - started
print(json.dumps({{
    "seconds": seconds,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "verdict": report["verdict"],
    "rows": report["rows"],
    "max_psi": max(report["psi"].values()),
}}))
"""


def write_capture(folder: Path, rows: list[list[str]], count: int, shift: float) -> float:
    """`count` captured requests cycling over `rows`, in files of 250 lines; the MB written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for start in range(0, count, 250):
        lines = []
        for index in range(start, min(start + 250, count)):
            row = rows[index % len(rows)]
            body = ",".join([f"{float(row[0]) * shift:.6g}", *row[1:]])
            lines.append(json.dumps({
                "captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": body,
                                                  "encoding": "CSV"}},
                "eventMetadata": {"eventId": f"{index:032x}", "inferenceTime": "2026-12-03T16:00:00Z"},
                "eventVersion": "0",
            }))  # fmt: skip
        path = folder / f"{start:09d}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        written += path.stat().st_size
    return written / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[72_000, 720_000])
    args = parser.parse_args()

    from promotion_ml.data import write_splits

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as folder:
        root = Path(folder)
        write_training_profile(root / "release", root / "profile.json")
        callers = write_splits(root / "callers", n_train=100_000, n_validation=1, n_holdout=1, seed=2)
        with Path(callers.train).open() as handle:
            rows = [row[1:] for row in csv.reader(handle) if row]
        for count, shift in [(n, 1.0) for n in args.requests] + [(args.requests[0], 20.0)]:
            capture = root / "capture"
            started = time.perf_counter()
            size_mb = write_capture(capture, rows, count, shift)
            setup = time.perf_counter() - started
            measured = measure_in_child(CHILD, root)
            runs.append(
                {
                    "captured_requests": count,
                    "amount_shift": shift,
                    "capture_mb": round(size_mb, 1),
                    "setup_seconds": round(setup, 1),
                    "check_seconds": round(measured["seconds"], 2),
                    "requests_per_second": round(count / measured["seconds"]),
                    "peak_rss_mb": round(measured["peak_rss_mb"], 1),
                    "verdict": measured["verdict"],
                    "max_psi": measured["max_psi"],
                }
            )
            for path in capture.rglob("*.jsonl"):
                path.unlink()
    result = {
        "benchmark": "drift",
        "runs": runs,
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "drift.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
